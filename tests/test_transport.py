"""HTTP_TRANSPORT: the same failure kinds through aiohttp (the default) and httpx, and clean shutdowns."""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap

import aiohttp
import groq
import httpx
import pytest
from conftest import TEST_KEY, USER, logged_rows

import app
from app.core import ai_models
from app.errors import AllModelsFailedError, ConfigError, ProviderConnectionError, ProviderTimeout
from app.providers.groq_provider import GroqProvider, map_groq_error

pytestmark = pytest.mark.anyio

FIRST, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]
TRANSPORTS = ["aiohttp", "httpx"]


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("disconnect", "connection"),
        ({"fault": "hang", "seconds": 30}, "timeout"),
        ("server_error", "server_error"),
        ("rate_limit", "rate_limited"),
    ],
)
async def test_each_transport_reports_the_same_failure_kind(sim, make_router, db_path, transport, fault, kind):
    sim.script(FIRST, fault)
    resp = await make_router(http_transport=transport, llm_timeout_seconds=0.5).execute("reasoning", USER)
    assert resp.model_used == SECOND
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in logged_rows(db_path)] == [
        (FIRST, "failure", kind),
        (SECOND, "success", None),
    ]


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_refused_connection_is_a_connection_failure_on_each_transport(make_router, db_path, transport):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once the block ends
    with pytest.raises(AllModelsFailedError) as caught:
        await make_router(http_transport=transport, groq_base_url=f"http://127.0.0.1:{port}").execute("fast", USER)
    assert {a.error_kind.value for a in caught.value.attempts} == {"connection"}
    assert caught.value.attempts[0].message.startswith("connection failed: ")


@pytest.mark.parametrize(
    ("aiohttp_error", "expected"),
    [
        (aiohttp.ServerDisconnectedError(), ProviderConnectionError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), ProviderConnectionError),
        (aiohttp.SocketTimeoutError("Timeout on reading data from socket"), ProviderTimeout),
        (aiohttp.ConnectionTimeoutError("Connection timeout"), ProviderTimeout),
    ],
)
def test_aiohttp_errors_behind_httpx_aiohttps_connect_timeout_are_told_apart(aiohttp_error, expected):
    """httpx-aiohttp turns every aiohttp connection error into httpx.ConnectTimeout; the cause decides."""
    request = httpx.Request("POST", "http://127.0.0.1/openai/v1/chat/completions")
    middle = httpx.ConnectTimeout(str(aiohttp_error))
    middle.__cause__ = aiohttp_error
    outer = groq.APITimeoutError(request=request)
    outer.__cause__ = middle
    assert type(map_groq_error(outer, TEST_KEY)) is expected


async def test_an_unknown_transport_is_refused_naming_the_setting(env):
    env.setenv("HTTP_TRANSPORT", "curl")
    with pytest.raises(ConfigError, match="HTTP_TRANSPORT"):
        await app.execute_fast_task(USER)


async def test_clients_are_kept_per_transport(sim):
    from app.providers import Endpoint

    provider = GroqProvider()
    aio = provider.client(Endpoint("groq", sim.base_url, TEST_KEY, "aiohttp"))
    plain = provider.client(Endpoint("groq", sim.base_url, TEST_KEY, "httpx"))
    assert aio is not plain
    assert type(aio._client) is groq.DefaultAioHttpClient and type(plain._client) is httpx.AsyncClient
    await provider.aclose()


@pytest.mark.slow
def test_no_unclosed_session_warnings_at_exit(sim, tmp_path):
    """asyncio.run in two loops, then the sync entry point: every aiohttp session is closed on its own loop."""
    script = textwrap.dedent(f"""
        import asyncio, gc, app
        app.configure(groq_api_key={TEST_KEY!r}, groq_base_url={sim.base_url!r},
                      attempts_db_path={str(tmp_path / "exit.db")!r})
        async def main():
            await asyncio.gather(*(app.execute_fast_task([{{"role": "user", "content": "hi"}}]) for _ in range(5)))
        asyncio.run(main())
        asyncio.run(main())
        gc.collect()
        print(app.execute_task_sync("fast", [{{"role": "user", "content": "hi"}}]).model_used)
    """)
    done = subprocess.run(
        [sys.executable, "-X", "dev", "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ai_models.MODEL_REGISTRY["fast"][0]
    assert "Unclosed" not in done.stderr and "unclosed" not in done.stderr, done.stderr


def test_every_loops_clients_share_one_tls_context_built_with_the_router(make_router):
    """Loading the CA bundle takes tens of milliseconds: done once, as the router is built, not in the first request
    of each event loop (where it overran that request's deadline)."""
    import asyncio

    from app.providers import Endpoint
    from app.providers.loop_clients import shared_ssl_context

    shared_ssl_context.cache_clear()
    make_router()
    assert shared_ssl_context.cache_info().currsize == 1  # built by the router's construction
    provider = GroqProvider()

    async def context_of(transport: str) -> object:
        http = provider.client(Endpoint("groq", "http://127.0.0.1:9", TEST_KEY, transport))._client
        # The transport each HTTP client was given (httpx's keeps it in its pool).
        return getattr(http._transport, "ssl_context", None) or http._transport._pool._ssl_context

    contexts = [asyncio.run(context_of(transport)) for transport in TRANSPORTS for _ in range(2)]  # four loops
    assert all(context is shared_ssl_context() for context in contexts)

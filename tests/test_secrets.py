"""The API key never travels on: not in what the package raises (message, cause, context, headers, attached
request or response), logs (the groq SDK's, httpx's, httpcore's and aiohttp's DEBUG lines included), stores or
prints, even behind a proxy that echoes the request's Authorization header back in its errors (the simulator's
`echo_auth` fault). Real SDK, real HTTP on loopback; the canary key is fresh for every run."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import USER, is_setting
from leaks import chain_of, database_texts, exception_texts, log_texts, sightings

from app.cli import main as cli_main
from app.core import ai_models
from app.core.router import Router
from app.errors import (
    AllModelsFailedError,
    AuthenticationFailedError,
    ProviderError,
    RequestRejectedError,
    StreamInterruptedError,
    TaskFailedError,
)
from app.providers import Endpoint, list_models, open_stream, run_llm
from app.registry.catalog import ModelInfo
from app.simulator import ModelProfile, Simulator
from app.simulator.echo import ECHO_HEADER, echo_response
from app.simulator.server import HttpServer, Request, Response
from app.testing import FakeClock

CANARY = "gsk_canary_" + secrets.token_hex(16)
A, B = "sim/echo-a", "sim/echo-b"
COMPAT, DEAD = "compat/echo", "compat/refused"  # on OpenAI-compatible endpoints: the proxy, and a closed port
TASK, COMPAT_TASK = "canary", "canary-compat"
COMPAT_KEY_ENV = "CANARY_COMPAT_KEY"
LIBRARY_LOGGERS = ("groq", "httpx", "httpcore", "aiohttp")
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def proxy() -> Iterator[Simulator]:
    """A simulator behind which the canary is the valid key, so that requests reach their scripted faults."""
    with Simulator(api_key=CANARY, default_profile=ModelProfile(), seed=0) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def _chain(proxy: Simulator, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy.reset()
    ai_models.MODEL_REGISTRY[TASK] = [A, B]
    ai_models.MODEL_REGISTRY[COMPAT_TASK] = [COMPAT, DEAD]
    ai_models.MODEL_REGISTRY["fallback"] = []
    with socket.socket() as unused:  # a port nothing listens on once closed
        unused.bind(("127.0.0.1", 0))
        dead_port = unused.getsockname()[1]
    for model, base_url in ((COMPAT, proxy.openai_base_url), (DEAD, f"http://127.0.0.1:{dead_port}/v1")):
        ai_models.MODEL_CATALOG[model] = ModelInfo(
            provider="openai_compatible", base_url=base_url, api_key_env=COMPAT_KEY_ENV
        )
    monkeypatch.setenv(COMPAT_KEY_ENV, CANARY)


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    for name in LIBRARY_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


# -- the proxy really echoes: otherwise the tests below would pass for nothing ----------------------------------


def test_the_proxy_echoes_the_key_in_the_body_a_header_and_a_stream_event(proxy: Simulator) -> None:
    url = f"{proxy.base_url}/openai/v1/chat/completions"
    headers = {"authorization": f"Bearer {CANARY}"}
    body = {"model": A, "messages": USER}
    for status in (401, 400, 429, 500):
        proxy.script(A, {"fault": "echo_auth", "status": status})
        answer = httpx.post(url, json=body, headers=headers)
        assert answer.status_code == status
        assert CANARY in answer.json()["error"]["message"]
        assert answer.headers[ECHO_HEADER] == f"Bearer {CANARY}"
    assert httpx.post(url, json=body, headers=headers).status_code == 200  # scripts used up: an ordinary answer
    proxy.script(A, {"fault": "stream_error", "error": "echo_auth", "after_chunks": 1})
    streamed = httpx.post(url, json={**body, "stream": True}, headers=headers).text
    assert "event: error" in streamed and CANARY in streamed.split("event: error", 1)[1]
    assert [(r.outcome, r.status) for r in proxy.requests] == [
        ("echo_auth", 401),
        ("echo_auth", 400),
        ("echo_auth", 429),
        ("echo_auth", 500),
        ("ok", 200),
        ("stream_error", 200),
    ]


# -- the router, through the real SDK -------------------------------------------------------------------------


async def failures(router: Router, proxy: Simulator) -> list[TaskFailedError]:
    """Every failure that can carry an echoed key, each raised from a fresh request."""
    caught: list[TaskFailedError] = []

    async def expect(kind: type[TaskFailedError], call: Callable[[], Any]) -> None:
        with pytest.raises(kind) as info:
            await call()
        caught.append(info.value)

    async def read_stream() -> None:
        async with router.stream(TASK, USER) as stream:
            async for _ in stream:
                pass

    proxy.script(A, {"fault": "echo_auth", "status": 401})
    await expect(AuthenticationFailedError, lambda: router.execute(TASK, USER))
    proxy.script(A, {"fault": "echo_auth", "status": 400})
    await expect(RequestRejectedError, lambda: router.execute(TASK, USER))
    # Refused at its opening, the stream falls back; the next one breaks after its first token.
    proxy.script(A, {"fault": "echo_auth", "status": 500})
    proxy.script(B, {"fault": "stream_error", "error": "echo_auth", "after_chunks": 1})
    await expect(StreamInterruptedError, read_stream)
    # Last: the 429 leaves A cooling down.
    proxy.script(A, {"fault": "echo_auth", "status": 429})
    proxy.script(B, {"fault": "echo_auth", "status": 500})
    await expect(AllModelsFailedError, lambda: router.execute(TASK, USER))
    # Over plain httpx: a refused key on one endpoint lets the next be tried, whose connection is refused (an
    # httpx error, which carries the request and so the key, without any proxy).
    proxy.script(COMPAT, {"fault": "echo_auth", "status": 401})
    await expect(AllModelsFailedError, lambda: router.execute(COMPAT_TASK, USER))
    return caught


async def provider_failures(proxy: Simulator, transport: str) -> list[ProviderError]:
    """The provider layer's own errors (`run_llm`, `open_stream`, `list_models` are public): the router keeps
    most of them to itself, so they are looked at here directly."""
    groq_door = Endpoint("groq", proxy.base_url, CANARY, transport)
    caught: list[ProviderError] = []

    async def expect(call: Callable[[], Any]) -> None:
        with pytest.raises(ProviderError) as info:
            await call()
        caught.append(info.value)

    async def read_stream() -> None:
        async for _ in await open_stream(groq_door, A, USER, {}, 2):
            pass

    proxy.script(A, {"fault": "echo_auth", "status": 500}, {"fault": "stream_error", "error": "echo_auth"})
    await expect(lambda: run_llm(groq_door, A, USER, {}, 2))
    await expect(read_stream)
    proxy.script(COMPAT, {"fault": "echo_auth", "status": 400})
    for model in (COMPAT, DEAD):
        door = Endpoint("openai_compatible", ai_models.MODEL_CATALOG[model].base_url or "", CANARY)
        await expect(lambda door=door, model=model: run_llm(door, model, USER, {}, 2))
    with serving(_echo_everything) as url:
        await expect(lambda: list_models(Endpoint("groq", url, CANARY, transport), 2))
    return caught


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_no_key_in_exceptions_logs_or_the_attempt_log(
    proxy: Simulator,
    make_router: Callable[..., Router],
    db_path: Path,
    debug_logs: pytest.LogCaptureFixture,
    transport: str,
) -> None:
    router = make_router(
        groq_api_key=CANARY, groq_base_url=proxy.base_url, http_transport=transport, llm_max_attempts=2
    )
    caught = await failures(router, proxy)
    raised = [*caught, *await provider_failures(proxy, transport)]
    # The echo really reached each failure (the provider's message in its attempt) and the SDK's DEBUG log of
    # the responses' headers: a canary in none of them would mean nothing was tested.
    echoed = [a for exc in caught for a in exc.attempts if "the proxy received Authorization" in (a.message or "")]
    assert len(echoed) == 7, [a.describe() for exc in caught for a in exc.attempts]
    assert caught[-1].attempts[-1].error_kind == "connection"
    responses = [r.getMessage() for r in debug_logs.records if r.getMessage().startswith("HTTP Response:")]
    # Through the groq SDK: 5 of the router's calls, run_llm and list_models (a stream's error event follows a 200).
    assert sum(ECHO_HEADER in line for line in responses) == 7
    assert {type(e).__name__ for e in raised[len(caught) :]} == {"ProviderStatusError", "ProviderConnectionError"}

    found = sightings(
        CANARY,
        exceptions=[text for exc in raised for text in exception_texts(exc)],
        attempts=[text for exc in caught for a in exc.attempts for text in (a.describe(), repr(a), a.message or "")],
        logs=list(log_texts(debug_logs)),
        attempt_log=list(database_texts(db_path)),
    )
    assert found == [], f"{len(found)} sightings:\n" + "\n".join(found)
    assert all("Authorization: Bearer [redacted]" in (a.message or "") for a in echoed)
    # Each chain ends at the project's own ProviderError, which keeps none of the headers the proxy added.
    chained = [e for exc in raised for e in chain_of(exc)]
    assert {type(e).__module__ for e in chained} == {"app.errors"}
    assert all(ECHO_HEADER not in e.headers for e in chained if isinstance(e, ProviderError))


@pytest.mark.anyio
async def test_a_429_keeps_the_wait_and_drops_the_echo(proxy: Simulator, make_router: Callable[..., Router]) -> None:
    """The router still reads the provider's wait from the headers an error keeps."""
    proxy.script(A, {"fault": "echo_auth", "status": 429, "retry_after": 7})
    proxy.script(B, {"fault": "echo_auth", "status": 500})
    fake = FakeClock()
    router = make_router(groq_api_key=CANARY, groq_base_url=proxy.base_url, llm_max_attempts=2, clock=fake.clock)
    with pytest.raises(AllModelsFailedError) as info:
        await router.execute(TASK, USER)
    mark = router.health.mark(A)
    assert info.value.__cause__ is None and info.value.__context__ is None
    assert mark is not None and mark.until == fake.now + 7
    assert "Bearer [redacted]" in mark.detail and CANARY not in mark.detail


# -- the command line -----------------------------------------------------------------------------------------


@contextmanager
def serving(handler: Callable[[Request], Any]) -> Iterator[str]:
    """One of the simulator's HTTP servers with a handler of the test's own, on a thread; yields its base URL."""
    loop = asyncio.new_event_loop()
    server = HttpServer(handler)
    thread = threading.Thread(target=loop.run_forever, name="echo-server", daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


async def _echo_everything(request: Request) -> Response:
    """A proxy whose every answer is a 401 quoting the Authorization header: GET /models for `taskrouter check`."""
    return echo_response("", {}, "req_models", request.headers.get("authorization", ""))


def test_no_key_in_cli_output_or_logs(
    proxy: Simulator,
    env: pytest.MonkeyPatch,
    db_path: Path,
    debug_logs: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env.setenv("GROQ_API_KEY", CANARY)
    env.setenv("GROQ_BASE_URL", proxy.base_url)
    proxy.script(A, {"fault": "echo_auth", "status": 500})
    proxy.script(B, {"fault": "echo_auth", "status": 401})
    assert cli_main(["-v", "run", TASK, "hello"]) == 1
    run_output = capsys.readouterr()
    assert "refused the API key" in run_output.err and "Bearer [redacted]" in run_output.err
    with serving(_echo_everything) as url:
        env.setenv("GROQ_BASE_URL", url)
        assert cli_main(["check", "--no-store"]) == 2
    check_output = capsys.readouterr()
    assert "failed (status 401)" in check_output.out and "Bearer [redacted]" in check_output.out
    found = sightings(
        CANARY,
        run=[run_output.out, run_output.err],
        check=[check_output.out, check_output.err],
        logs=list(log_texts(debug_logs)),
        attempt_log=list(database_texts(db_path)),
    )
    assert found == [], "\n".join(found)


@pytest.mark.slow
def test_no_key_from_python_m_app_run_with_the_sdks_debug_log(proxy: Simulator, tmp_path: Path) -> None:
    proxy.script(A, {"fault": "echo_auth", "status": 401})
    environment = {name: value for name, value in os.environ.items() if not is_setting(name)}
    environment.update(
        PYTHONPATH=str(ROOT),
        GROQ_API_KEY=CANARY,
        GROQ_BASE_URL=proxy.base_url,
        FORCE_MODEL=A,
        ATTEMPTS_DB_PATH=str(tmp_path / "cli.db"),
        GROQ_LOG="debug",
    )
    done = subprocess.run(
        [sys.executable, "-m", "app", "-v", "run", "fast", "hello"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "HTTP Response:" in done.stderr and ECHO_HEADER in done.stderr  # the SDK's DEBUG lines were printed
    assert sightings(CANARY, stdout=[done.stdout], stderr=[done.stderr]) == []

"""A catalog entry on another, OpenAI-compatible endpoint: routed over httpx, without touching the router."""

from __future__ import annotations

import asyncio

import pytest
from conftest import TEST_KEY, USER, logged_rows

from app.core import ai_models
from app.registry.catalog import ModelInfo
from app.simulator import ModelProfile, Simulator

pytestmark = pytest.mark.anyio

LOCAL_KEY = "local-secret-key-123456"


@pytest.fixture(scope="module")
def second_server():
    with Simulator(api_key=LOCAL_KEY, default_profile=ModelProfile()) as sim:
        yield sim


@pytest.fixture
def local(second_server, monkeypatch):
    second_server.reset()
    monkeypatch.setenv("LOCAL_LLM_KEY", LOCAL_KEY)
    ai_models.MODEL_CATALOG["local/llama"] = ModelInfo(
        provider="openai_compatible",
        base_url=second_server.openai_base_url,
        api_key_env="LOCAL_LLM_KEY",
        input_price=0.0,
        output_price=0.0,
    )
    ai_models.MODEL_REGISTRY["private"] = ["local/llama"]
    return second_server


async def test_routed_to_the_second_server(local, sim, make_router, db_path):
    resp = await make_router().execute("private", USER, max_tokens=7)
    assert resp.model_used == "local/llama" and resp.provider == "openai_compatible"
    assert "local/llama" in resp.content
    assert local.calls("local/llama") == 1 and sim.calls("local/llama") == 0
    assert local.requests[-1].body["max_tokens"] == 7
    row = logged_rows(db_path)[0]
    assert (row["provider"], row["cost_usd"]) == ("openai_compatible", 0.0)


async def test_its_failures_are_classified_and_fall_back_to_groq(local, sim, make_router, db_path):
    local.script("local/llama", "unavailable")
    resp = await make_router().execute("private", USER)
    assert resp.provider == "groq"
    first = logged_rows(db_path)[0]
    assert (first["provider"], first["error_kind"], first["status_code"]) == ("openai_compatible", "server_error", 503)


async def test_a_refused_key_on_that_endpoint_does_not_stop_groq_models(local, sim, make_router, db_path, monkeypatch):
    monkeypatch.setenv("LOCAL_LLM_KEY", "wrong")
    resp = await make_router().execute("private", USER)
    assert resp.provider == "groq"
    assert logged_rows(db_path)[0]["error_kind"] == "auth"


async def test_timeouts_and_refused_connections_are_mapped(local, sim, make_router, db_path):
    local.script("local/llama", {"fault": "hang", "seconds": 10})
    # The timeout would open the model's breaker (shared through the database) and skip the second call.
    await make_router(llm_timeout_seconds=0.3, breaker_open_after_timeouts=2).execute("private", USER)
    ai_models.MODEL_CATALOG["local/llama"] = ModelInfo(provider="openai_compatible", base_url="http://127.0.0.1:9/v1")
    await make_router(breaker_open_after_timeouts=2).execute("private", USER)
    assert [r["error_kind"] for r in logged_rows(db_path) if r["provider"] == "openai_compatible"] == [
        "timeout",
        "connection",
    ]


def test_each_loops_client_is_closed_when_the_loop_shuts_down(sim):
    """One client per event loop; asyncio.run's shutdown closes it, so neither it nor its loop outlives the run."""
    import gc
    import weakref

    from app.providers import Endpoint
    from app.providers.openai_compat import OpenAICompatProvider

    provider = OpenAICompatProvider()
    endpoint = Endpoint("openai_compatible", sim.openai_base_url, TEST_KEY)
    clients = []

    async def one_call() -> str | None:
        result = await provider.complete(endpoint, "local/model", [{"role": "user", "content": "hi"}], {}, 5)
        clients.append(weakref.ref(provider._client()))
        return result.content

    assert asyncio.run(one_call()) and asyncio.run(one_call())
    gc.collect()
    assert [ref() for ref in clients] == [None, None]  # closed and released with their loops

"""Streams through the real SDK on loopback: fallback before the first token is invisible, a failure after it
raises StreamInterruptedError, usage and cost come from the stream, every attempt is logged."""

from __future__ import annotations

import asyncio

import pytest
from conftest import TEST_KEY, USER, logged_rows

import app
from app.core import ai_models
from app.errors import ConfigError, StreamInterruptedError
from app.registry.catalog import ModelInfo, cost_usd
from app.simulator import ModelProfile, Simulator

pytestmark = pytest.mark.anyio

A, B = "sim/primary", "sim/secondary"
PRICED = ModelInfo(input_price=0.15, output_price=0.60, capabilities=frozenset({"tools"}))


@pytest.fixture(autouse=True)
def _two_model_chain() -> None:
    ai_models.MODEL_REGISTRY["pair"] = [A, B]
    ai_models.MODEL_REGISTRY["fallback"] = []
    ai_models.MODEL_CATALOG[A] = PRICED
    ai_models.MODEL_CATALOG[B] = PRICED


def rows_of(db_path, request_id):
    return logged_rows(db_path, "SELECT * FROM attempts WHERE request_id = ? ORDER BY id", request_id)


async def read_all(stream) -> list[str]:
    return [delta async for delta in stream]


async def test_a_plain_stream_gives_deltas_then_the_whole_response(sim, make_router, db_path):
    stream = make_router().stream("pair", USER, max_tokens=12)
    deltas = await read_all(stream)
    resp = stream.response
    assert len(deltas) > 1 and "".join(deltas) == resp.content
    assert (resp.model_used, resp.fallback_used, resp.finish_reason) == (A, False, "length")
    # Usage is the stream's own (the simulator's final chunk), and the cost is computed from it.
    assert resp.usage.completion_tokens == 12 and resp.usage.total_tokens == resp.usage.prompt_tokens + 12 > 12
    assert resp.cost_usd == pytest.approx(cost_usd(PRICED, resp.usage))
    [row] = rows_of(db_path, resp.request_id)
    assert (row["outcome"], row["completion_tokens"], row["cost_usd"]) == ("success", 12, resp.cost_usd)
    assert 0 < row["first_token_ms"] <= row["latency_ms"]
    assert sim.requests[-1].body["stream"] is True


async def test_nothing_is_sent_before_the_first_read(sim, make_router):
    stream = make_router().stream("pair", USER)
    await asyncio.sleep(0)
    assert sim.calls(A) == 0
    await stream.aclose()  # closed unread: no call, no row
    assert sim.calls(A) == 0


@pytest.mark.parametrize(
    "fault",
    [
        "server_error",
        "rate_limit",
        {"fault": "stream_error", "after_chunks": 0},
        {"fault": "stream_cut", "after_chunks": 0},
    ],
)
async def test_a_failure_before_the_first_token_is_invisible(sim, make_router, db_path, fault):
    sim.script(A, fault)
    stream = make_router().stream("pair", USER)
    text = "".join(await read_all(stream))
    resp = stream.response
    assert resp.model_used == B and text == resp.content and text.startswith(f"[{B}]")
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["outcome"]) for r in rows] == [(A, "failure"), (B, "success")]
    assert rows[1]["first_token_ms"] is not None


async def test_no_first_token_in_time_falls_back(sim, make_router, db_path):
    sim.script(A, {"fault": "ok", "first_token_ms": 3000})
    stream = make_router(llm_first_token_timeout_seconds=0.3).stream("pair", USER)
    text = "".join(await read_all(stream))
    assert text.startswith(f"[{B}]")  # A's first token, 3 s away, was not waited for
    row = rows_of(db_path, stream.response.request_id)[0]
    assert (row["model"], row["error_kind"]) == (A, "timeout")
    assert "no first token within 0.3s" in row["error_message"]


async def test_the_first_token_wait_is_at_most_the_models_attempt_timeout(sim, make_router, db_path):
    sim.script(A, {"fault": "ok", "first_token_ms": 3000})
    stream = make_router(llm_timeout_seconds=0.4, llm_first_token_timeout_seconds=15).stream("pair", USER)
    # Waited 15 s for, A's first token (3 s away) would have come: B answering shows the 0.4 s cap.
    assert "".join(await read_all(stream)).startswith(f"[{B}]")
    row = rows_of(db_path, stream.response.request_id)[0]
    assert (row["model"], row["error_kind"]) == (A, "timeout")
    assert "no first token within 0.4s" in row["error_message"]


async def test_a_cut_stream_raises_with_the_partial_text(sim, make_router, db_path):
    sim.script(A, {"fault": "stream_cut", "after_chunks": 3})
    stream = make_router().stream("pair", USER, max_tokens=30)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async for delta in stream:
            seen.append(delta)
    error = caught.value
    assert len(seen) == 3 and error.partial_content == "".join(seen)
    assert "Not moved to another model" in str(error)
    assert sim.calls(B) == 0
    [row] = rows_of(db_path, error.request_id)
    assert (row["model"], row["error_kind"], row["completion_tokens"]) == (A, "stream_interrupted", 3)
    assert row["first_token_ms"] is not None and row["cost_usd"] > 0  # the tokens it did generate


async def test_a_stream_closed_cleanly_before_any_text_falls_back(sim, make_router, db_path):
    # A close-delimited body (no chunked framing) that a proxy ends early: the SDK's iterator just stops.
    sim.script(A, {"fault": "stream_cut", "after_chunks": 0, "framing": "close"})
    stream = make_router().stream("pair", USER, max_tokens=12)
    text = "".join(await read_all(stream))
    resp = stream.response
    assert resp.model_used == B and resp.fallback_used and text == resp.content and text.startswith(f"[{B}]")
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        (A, "failure", "connection"),
        (B, "success", None),
    ]
    assert "ended without a finish reason" in rows[0]["error_message"]


@pytest.mark.parametrize("provider", ["groq", "openai_compatible"])
async def test_a_stream_closed_cleanly_after_text_is_interrupted(sim, make_router, db_path, provider, monkeypatch):
    if provider == "openai_compatible":
        monkeypatch.setenv("SIM_KEY", TEST_KEY)
        ai_models.MODEL_CATALOG[A] = ModelInfo(
            input_price=0.15,
            output_price=0.60,
            provider="openai_compatible",
            base_url=sim.openai_base_url,
            api_key_env="SIM_KEY",
        )
    sim.script(A, {"fault": "stream_cut", "after_chunks": 3, "framing": "close"})
    stream = make_router().stream("pair", USER, max_tokens=30)
    seen: list[str] = []
    with pytest.raises(StreamInterruptedError) as caught:
        async for delta in stream:
            seen.append(delta)
    assert len(seen) == 3 and caught.value.partial_content == "".join(seen)
    assert sim.calls(B) == 0
    [row] = rows_of(db_path, caught.value.request_id)
    assert (row["model"], row["outcome"], row["error_kind"], row["completion_tokens"]) == (
        A,
        "failure",
        "stream_interrupted",
        3,
    )
    assert "ended without a finish reason" in row["error_message"]


async def test_an_error_event_mid_stream_raises(sim, make_router, db_path):
    sim.script(A, {"fault": "stream_error", "after_chunks": 2})
    with pytest.raises(StreamInterruptedError) as caught:
        await read_all(make_router().stream("pair", USER, max_tokens=30))
    [row] = rows_of(db_path, caught.value.request_id)
    assert row["error_kind"] == "stream_interrupted" and "Failed to call a function" in row["error_message"]


async def test_a_stalled_stream_is_cut_by_the_idle_timeout(sim, make_router, db_path):
    sim.script(A, {"fault": "stream_stall", "after_chunks": 2})  # stalls until the client leaves
    with pytest.raises(StreamInterruptedError) as caught:
        await read_all(make_router(llm_stream_idle_timeout_seconds=0.3).stream("pair", USER, max_tokens=30))
    assert len(caught.value.partial_content) > 0
    [row] = rows_of(db_path, caught.value.request_id)
    assert "LLM_STREAM_IDLE_TIMEOUT_SECONDS=0.3s" in row["error_message"]


async def test_closing_early_cancels_and_logs_the_tokens_seen(sim, make_router, db_path):
    sim.script(A, {"fault": "ok", "chunk_ms": 50})
    async with make_router().stream("pair", USER, max_tokens=30) as stream:
        seen = []
        async for delta in stream:
            seen.append(delta)
            if len(seen) == 2:
                break
    [row] = rows_of(db_path, stream.request_id)
    assert (row["outcome"], row["error_kind"], row["completion_tokens"]) == ("failure", "cancelled", 2)
    assert "closed by the caller after 2 chunk(s)" in row["error_message"]
    with pytest.raises(RuntimeError, match="has not finished"):
        _ = stream.response


async def test_tool_call_deltas_are_assembled(sim, make_router):
    sim.script(A, {"fault": "ok", "tool_calls": [{"name": "lookup", "arguments": '{"city": "Paris", "days": 3}'}]})
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    stream = make_router().stream("pair", USER, tools=tools)
    assert await read_all(stream) == []  # no text, only a tool call
    resp = stream.response
    assert resp.finish_reason == "tool_calls"
    [call] = resp.tool_calls
    assert call["function"] == {"name": "lookup", "arguments": '{"city": "Paris", "days": 3}'}
    assert call["type"] == "function" and call["id"]


async def test_options_a_stream_cannot_honour_are_refused(make_router):
    router = make_router()
    with pytest.raises(ConfigError, match="validate= is not available with streaming"):
        router.stream("pair", USER, validate=lambda r: None)
    with pytest.raises(ConfigError, match="hedge_after_ms= is not available"):
        router.stream("pair", USER, hedge_after_ms=100)


async def test_the_public_functions_stream(env, sim, db_path):
    ai_models.MODEL_REGISTRY["reasoning"] = [A, B]
    text = "".join([d async for d in app.stream_reasoning_task(USER)])
    assert text.startswith(f"[{A}]")
    async with app.stream_task("pair", USER) as stream:
        assert "".join([d async for d in stream]) == stream.response.content


def test_the_sync_iterator(env, sim, db_path):
    stream = app.stream_task_sync("pair", USER, max_tokens=8)
    deltas = list(stream)
    assert "".join(deltas) == stream.response.content and stream.response.usage.completion_tokens == 8


@pytest.mark.slow
async def test_every_attempt_of_200_concurrent_streams_is_logged(sim, make_router, db_path):
    sim.set_profile(A, ModelProfile(fault_rates={"server_error": 0.2, "stream_cut": 0.1}))
    # No fault here is a hang: the timeouts only end a stuck test, so they leave a loaded machine all the time it
    # needs to start 200 streams (the conftest's 2 s does not, under coverage on two busy cores).
    router = make_router(llm_timeout_seconds=60, llm_first_token_timeout_seconds=60)

    async def one() -> str:
        try:
            return "".join([d async for d in router.stream("pair", USER, max_tokens=6)])
        except StreamInterruptedError:
            return "interrupted"

    results = await asyncio.gather(*(one() for _ in range(200)))
    rows = logged_rows(db_path)
    calls = sum(1 for r in rows if r["outcome"] != "skipped")
    assert calls == sim.calls(A) + sim.calls(B)
    assert len({r["request_id"] for r in rows}) == 200
    assert sum(r["outcome"] == "success" for r in rows) == sum(text != "interrupted" for text in results)
    assert sum(r["error_kind"] == "stream_interrupted" for r in rows) == results.count("interrupted") > 0


async def test_an_openai_compatible_endpoint_streams_with_usage(make_router, db_path, monkeypatch):
    with Simulator(api_key="local-key-123", default_profile=ModelProfile()) as local:
        monkeypatch.setenv("LOCAL_STREAM_KEY", "local-key-123")
        ai_models.MODEL_CATALOG["local/llama"] = ModelInfo(
            provider="openai_compatible",
            base_url=local.openai_base_url,
            api_key_env="LOCAL_STREAM_KEY",
            input_price=1.0,
            output_price=1.0,
        )
        ai_models.MODEL_REGISTRY["private"] = ["local/llama"]
        stream = make_router().stream("private", USER, max_tokens=5)
        text = "".join(await read_all(stream))
        assert text.startswith("[local/llama]")
        assert stream.response.usage.completion_tokens == 5  # from the include_usage chunk it asked for
        assert stream.response.provider == "openai_compatible"
        assert local.requests[-1].body["stream_options"] == {"include_usage": True}
    [row] = rows_of(db_path, stream.response.request_id)
    assert (row["provider"], row["outcome"], row["completion_tokens"]) == ("openai_compatible", "success", 5)


async def test_a_forced_model_is_retried_before_its_first_token(sim, make_router, db_path):
    sim.script(A, "server_error", {"fault": "stream_cut", "after_chunks": 0}, "ok")
    stream = make_router(force_model=A).stream("pair", USER)
    text = "".join(await read_all(stream))
    assert text.startswith(f"[{A}]") and sim.calls(B) == 0
    rows = rows_of(db_path, stream.response.request_id)
    assert [(r["model"], r["error_kind"], r["retry"], r["forced"]) for r in rows] == [
        (A, "server_error", 0, 1),
        (A, "connection", 1, 1),
        (A, None, 2, 1),
    ]


async def test_a_stream_spends_and_respects_the_daily_budget(sim, make_router, db_path):
    router = make_router(daily_budget_usd=100.0)
    stream = router.stream("pair", USER, max_tokens=10)
    await read_all(stream)
    spent, reserved = router.budget.status()
    assert reserved == 0.0 and spent == pytest.approx(stream.response.cost_usd) and spent > 0

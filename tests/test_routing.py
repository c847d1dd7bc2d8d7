"""The public entry points, the chain (registry, overrides, fallback) and the all-fail error."""

from __future__ import annotations

import asyncio

import pytest
from conftest import TEST_KEY, USER, logged_rows, until

import app
from app.core import ai_models
from app.errors import AllModelsFailedError, ConfigError, InvalidMessagesError, UnknownTaskError
from app.store import get_attempt_log

pytestmark = pytest.mark.anyio

REASONING = ai_models.MODEL_REGISTRY["reasoning"]
FALLBACK = ai_models.MODEL_REGISTRY["fallback"]


async def test_execute_reasoning_task_returns_the_documented_response(env, sim, db_path):
    resp = await app.execute_reasoning_task(USER, max_tokens=2048, temperature=0.7)
    assert resp.model_used == REASONING[0]
    assert resp.content and REASONING[0] in resp.content  # the simulator names the model that answered
    assert resp.finish_reason == "stop"
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens > 0
    assert resp.task_type == "reasoning"
    assert resp.fallback_used is False
    assert len(resp.request_id) == 32
    assert resp.latency_ms > 0
    assert [(a.model, a.outcome.value) for a in resp.attempts] == [(REASONING[0], "success")]
    # What went over the wire is what the caller asked for.
    sent = sim.requests[-1].body
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == (REASONING[0], 2048, 0.7)
    row = logged_rows(db_path)[0]
    assert (row["task_type"], row["model"], row["outcome"], row["forced"], row["is_fallback"]) == (
        "reasoning",
        REASONING[0],
        "success",
        0,
        0,
    )
    assert row["total_tokens"] == resp.usage.total_tokens
    assert row["created_at"].endswith("Z") and row["created_at"][:2] == "20"
    assert row["prompt"] is None and row["response"] is None  # LOG_CONTENT is off by default


@pytest.mark.parametrize(
    ("entry", "task"),
    [(app.execute_fast_task, "fast"), (app.execute_summarization_task, "summarization")],
)
async def test_each_entry_point_uses_its_task(env, entry, task):
    resp = await entry(USER)
    assert (resp.task_type, resp.model_used) == (task, ai_models.MODEL_REGISTRY[task][0])


def test_sync_entry_point(env):
    resp = app.execute_task_sync("fast", USER)
    assert resp.model_used == ai_models.MODEL_REGISTRY["fast"][0]
    assert app.execute_task_sync("fast", USER).model_used == resp.model_used  # the loop and pool are reused


async def test_sync_entry_point_refuses_to_block_a_running_loop(env):
    with pytest.raises(RuntimeError, match="await execute_task"):
        app.execute_task_sync("fast", USER)


async def test_unknown_task_names_it_and_lists_the_known_ones(env):
    with pytest.raises(UnknownTaskError) as caught:
        await app.execute_task("poetry", USER)
    message = str(caught.value)
    assert "'poetry'" in message
    for known in ("fast", "reasoning", "summarization", "fallback"):
        assert known in message
    # How to add it from the application's own code, not by editing the installed package.
    assert """app.MODEL_REGISTRY['poetry'] = ["<model>", ...]""" in message and "app/core" not in message
    app.MODEL_REGISTRY["poetry"] = ["openai/gpt-oss-20b"]  # the recipe works, on the very next call
    assert (await app.execute_task("poetry", USER)).model_used == "openai/gpt-oss-20b"


async def test_registry_edits_and_new_task_types_apply_on_the_next_call(env, sim):
    ai_models.MODEL_REGISTRY["writer"] = ["custom/writer-model"]
    resp = await app.execute_task("writer", USER)
    assert resp.model_used == "custom/writer-model"
    ai_models.MODEL_REGISTRY["writer"].insert(0, "custom/better-writer")
    assert (await app.execute_task("writer", USER)).model_used == "custom/better-writer"
    ai_models.MODEL_REGISTRY = {**ai_models.MODEL_REGISTRY, "fast": ["custom/replaced"]}
    assert (await app.execute_fast_task(USER)).model_used == "custom/replaced"


async def test_force_model_pins_every_task_without_fallback(env, sim, db_path):
    env.setenv("FORCE_MODEL", "custom/pinned")
    for task in ("fast", "reasoning", "summarization"):
        resp = await app.execute_task(task, USER)
        assert resp.model_used == "custom/pinned"
    rows = logged_rows(db_path)
    assert {(r["model"], r["forced"]) for r in rows} == {("custom/pinned", 1)}

    # No fallback while forced: the forced model is retried, up to LLM_MAX_ATTEMPTS calls.
    sim.script("custom/pinned", *["server_error"] * 6)
    with pytest.raises(AllModelsFailedError) as caught:
        await app.execute_reasoning_task(USER)
    assert "FORCE_MODEL=custom/pinned" in str(caught.value)
    assert "6 provider calls, 5 of them retries" in str(caught.value)
    assert [(a.model, a.retry) for a in caught.value.attempts] == [("custom/pinned", n) for n in range(6)]


async def test_forced_model_is_called_even_when_marked_deprecated(env, sim):
    env.setenv("FORCE_MODEL", "custom/pinned")
    sim.script("custom/pinned", "decommissioned")
    with pytest.raises(AllModelsFailedError):
        await app.execute_fast_task(USER)
    assert (await app.execute_fast_task(USER)).model_used == "custom/pinned"  # ops pinned it: no skipping


async def test_default_task_model_goes_first_without_duplicates(env, sim):
    env.setenv("DEFAULT_REASONING_MODEL", REASONING[1])
    chain = app.get_router().chain_for("reasoning")
    fallback_rest = [m for m in FALLBACK if m not in REASONING]
    assert [c.model for c in chain.candidates] == [REASONING[1], REASONING[0], *fallback_rest]
    assert chain.override == REASONING[1]
    assert (await app.execute_reasoning_task(USER)).model_used == REASONING[1]
    assert (await app.execute_fast_task(USER)).model_used == ai_models.MODEL_REGISTRY["fast"][0]


async def test_default_model_for_a_custom_task_from_dotenv(env, sim, tmp_path):
    ai_models.MODEL_REGISTRY["code-review"] = ["custom/reviewer"]
    (tmp_path / ".env").write_text("DEFAULT_CODE_REVIEW_MODEL=custom/senior-reviewer\n")
    resp = await app.execute_task("code-review", USER)
    assert resp.model_used == "custom/senior-reviewer"


async def test_universal_fallback_is_marked(env, sim, db_path):
    for model in REASONING:
        sim.script(model, "server_error")
    resp = await app.execute_reasoning_task(USER)
    assert resp.model_used == FALLBACK[0]
    assert [r["is_fallback"] for r in logged_rows(db_path)] == [0, 0, 1]


async def test_all_models_failed_lists_every_attempt(env, sim, db_path):
    for model in [*REASONING, *FALLBACK]:  # a wait past the request's deadline: no retry can help
        sim.script(model, {"fault": "rate_limit", "retry_after": 60})
    with pytest.raises(AllModelsFailedError) as caught:
        await app.execute_reasoning_task(USER)
    error = caught.value
    assert isinstance(error, RuntimeError)
    message = str(error)
    for model in [*REASONING, *FALLBACK]:
        assert model in message
    assert message.count("error_kind=rate_limited status=429") == 3
    assert "Rate limit reached for model" in message
    assert "would start after the request's deadline (30s)" in message.splitlines()[0]
    assert TEST_KEY not in message
    rows = logged_rows(db_path)
    assert len(rows) == 3
    assert {r["request_id"] for r in rows} == {error.request_id}  # the error leads ops to its rows
    assert f"(request_id={error.request_id})" in message.splitlines()[0]

    # Now all three are cooling down: the next call is refused without a single request.
    before = len(sim.requests)
    with pytest.raises(AllModelsFailedError) as caught:
        await app.execute_reasoning_task(USER)
    assert len(sim.requests) == before
    assert {a.outcome.value for a in caught.value.attempts} == {"skipped"}


async def test_max_attempts_bounds_provider_calls(env, sim, db_path):
    env.setenv("LLM_MAX_ATTEMPTS", "2")
    ai_models.MODEL_REGISTRY["wide"] = ["m/one", "m/two", "m/three", "m/four"]
    for model in ai_models.MODEL_REGISTRY["wide"]:
        sim.script(model, "server_error")
    with pytest.raises(AllModelsFailedError) as caught:
        await app.execute_task("wide", USER)
    assert [r["model"] for r in logged_rows(db_path)] == ["m/one", "m/two"]
    assert "LLM_MAX_ATTEMPTS=2" in str(caught.value) and "m/three" in str(caught.value)
    assert sim.calls("m/three") == 0


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([], "messages is empty"),
        ("hello", "must be a list"),
        ([{"role": "bot", "content": "hi"}], "messages[0].role must be one of"),
        ([{"role": "user"}], "messages[0].content is missing"),
        ([{"role": "user", "content": 5}], "must be a string or a list"),
        ([{"role": "tool", "content": "x"}], "tool_call_id"),
    ],
)
async def test_bad_messages_never_reach_the_network(env, sim, messages, fragment):
    with pytest.raises(InvalidMessagesError) as caught:
        await app.execute_fast_task(messages)
    assert fragment in str(caught.value)
    assert sim.requests == []


async def test_unknown_parameter_is_rejected_before_trying_any_model(env, sim, db_path):
    from app.errors import InvalidParameterError, RequestRejectedError

    with pytest.raises(RequestRejectedError, match="unknown parameter 'max_tokenz'") as caught:
        await app.execute_fast_task(USER, max_tokenz=10)
    assert isinstance(caught.value, InvalidParameterError)
    assert sim.requests == []
    assert get_attempt_log(db_path).flush(timeout=30)
    assert not db_path.exists() or logged_rows(db_path) == []  # refused locally: no model was tried


async def test_stream_is_refused_before_any_call(env, sim, db_path):
    with pytest.raises(ConfigError, match="stream=True is not supported"):
        await app.execute_fast_task(USER, stream=True)
    assert sim.requests == []
    assert logged_rows(db_path) == []


async def test_bad_setting_fails_at_start_naming_the_variable(env):
    env.setenv("LLM_TIMEOUT_SECONDS", "soon")
    with pytest.raises(ConfigError, match="LLM_TIMEOUT_SECONDS"):
        await app.execute_fast_task(USER)


async def test_missing_key_says_how_to_fix_it(env, db_path):
    env.delenv("GROQ_API_KEY")
    with pytest.raises(AllModelsFailedError, match="GROQ_API_KEY is not set") as caught:
        await app.execute_fast_task(USER)
    assert "no provider call was sent" in str(caught.value)  # nothing left the machine without a key


async def test_log_content_stores_prompt_and_answer(env, db_path):
    env.setenv("LOG_CONTENT", "true")
    resp = await app.execute_fast_task(USER)
    row = logged_rows(db_path)[0]
    assert "Analyse my sales" in row["prompt"]
    assert row["response"] == resp.content


async def test_cancelled_call_is_still_logged(env, sim, db_path):
    model = ai_models.MODEL_REGISTRY["fast"][0]
    sim.script(model, {"fault": "hang", "seconds": 30})
    task = asyncio.ensure_future(app.execute_fast_task(USER))
    await until(lambda: sim.calls(model) == 1, "the call reaching the simulator")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(r["outcome"], r["error_kind"]) for r in logged_rows(db_path)] == [("failure", "cancelled")]

"""The agent developer's testing story: the documented mock recipe works verbatim, and `app.testing` runs the
real router against scripted models in-process (no socket)."""

from __future__ import annotations

from unittest.mock import AsyncMock, patch

import pytest
from conftest import USER

import app
from app.core import ai_models
from app.core.failures import POLICY, policy
from app.testing import FAILURE_KINDS, UnscriptedCall, failure, fake_models, reply
from app.types import ErrorKind, LLMResponse, Usage

pytestmark = pytest.mark.anyio
FAST = ai_models.MODEL_REGISTRY["fast"][0]
PRIMARY, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]


# -- the mock recipe from the model-routing guide ------------------------------------------------------------


def test_the_guides_llmresponse_is_built_verbatim_and_usage_reads_both_ways():
    response = LLMResponse(
        content="Test response", model_used="llama-3.1-8b-instant", finish_reason="stop", usage={"total_tokens": 100}
    )
    assert response.usage["total_tokens"] == 100 and response.usage.total_tokens == 100
    assert response.usage.get("prompt_tokens") == 0 and response.usage.get("nope", -1) == -1
    assert dict(response.usage) == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 100,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }
    assert isinstance(response.usage, Usage) and response.usage == Usage(total_tokens=100)
    assert (response.task_type, response.request_id, response.fallback_used, response.latency_ms) == (
        "",
        "",
        False,
        0.0,
    )
    with pytest.raises(TypeError, match="unknown fields \\['tokens'\\]"):
        LLMResponse(content="x", model_used="m", finish_reason="stop", usage={"tokens": 1})
    with pytest.raises(KeyError):
        response.usage["total"]


async def my_agent(question: str) -> str:
    """An agent as the guide writes it: it calls the registry module's function by attribute."""
    response = await ai_models.execute_fast_task([{"role": "user", "content": question}])
    return f"{response.content} ({response.usage['total_tokens']} tokens)"


async def test_the_guides_asyncmock_patch_of_execute_fast_task_keeps_working():
    with patch("app.core.ai_models.execute_fast_task", new_callable=AsyncMock) as mocked:
        mocked.return_value = LLMResponse(
            content="Test response",
            model_used="llama-3.1-8b-instant",
            finish_reason="stop",
            usage={"total_tokens": 100},
        )
        assert await my_agent("hi") == "Test response (100 tokens)"
    mocked.assert_awaited_once()


# -- fake_models: the real router, scripted models -----------------------------------------------------------


async def test_the_issue_example_falls_back_past_a_rate_limit_and_logs_both_attempts():
    with fake_models(
        {PRIMARY: [failure("rate_limited", retry_after=5), "second answer"], "*": "default answer"}
    ) as fake:
        response = await app.execute_reasoning_task(USER, max_tokens=64)
        rows = fake.attempts()
    assert response.content == "default answer" and response.model_used == SECOND and response.fallback_used
    assert [(c.model, c.messages, c.params) for c in fake.calls] == [
        (PRIMARY, USER, {"max_tokens": 64}),
        (SECOND, USER, {"max_tokens": 64}),
    ]
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        (PRIMARY, "failure", "rate_limited"),
        (SECOND, "success", None),
    ]


async def test_scripted_rows_stay_in_the_temporary_file_when_the_environment_names_a_postgresql_store(monkeypatch):
    monkeypatch.setenv("ATTEMPTS_DB_URL", "postgresql://ci:pw@127.0.0.1:9/shared")  # nothing listens on port 9
    with fake_models({"*": "answer"}) as fake:
        response = await app.execute_fast_task(USER)
        rows = fake.attempts()
    assert response.content == "answer"
    assert [(r["model"], r["outcome"]) for r in rows] == [(FAST, "success")]


async def test_a_list_is_consumed_in_order_and_a_single_outcome_answers_every_call():
    with fake_models({FAST: ["one", "two"], "*": "rest"}, default_models={}) as fake:
        answers = [(await app.execute_fast_task(USER)).content for _ in range(4)]
    assert answers == ["one", "two", "rest", "rest"]
    assert [c.model for c in fake.calls] == [FAST] * 4  # "*" answers for FAST once its list is spent


async def test_force_model_retries_the_forced_model_to_success():
    with fake_models(
        {SECOND: [failure("server_error"), failure("timeout"), "third time"]},
        force_model=SECOND,
        retry_backoff_base_seconds=0.001,
    ) as fake:
        response = await app.execute_reasoning_task(USER)
        rows = fake.attempts()
    assert response.content == "third time" and [c.model for c in fake.calls] == [SECOND] * 3
    assert [(r["error_kind"], r["retry"], r["forced"]) for r in rows] == [
        ("server_error", 0, 1),
        ("timeout", 1, 1),
        (None, 2, 1),
    ]


@pytest.mark.parametrize("kind", FAILURE_KINDS)
async def test_every_failure_kind_does_what_the_failure_table_says(kind):
    rule = policy(ErrorKind(kind))
    with fake_models(
        {PRIMARY: failure(kind), SECOND: "the next model"}, retry_backoff_base_seconds=0.001, llm_max_attempts=2
    ) as fake:
        if rule.stop and kind != "setup":
            with pytest.raises(app.TaskFailedError) as caught:
                await app.execute_reasoning_task(USER)
            assert caught.value.attempts[0].error_kind is ErrorKind(kind)
        else:
            response = await app.execute_reasoning_task(USER)
            assert response.content == "the next model" and response.model_used == SECOND
        rows = fake.attempts()
    assert (rows[0]["model"], rows[0]["outcome"], rows[0]["error_kind"]) == (PRIMARY, "failure", kind)
    assert fake.calls[0].model == PRIMARY


def test_failure_refuses_what_no_provider_causes():
    assert set(FAILURE_KINDS) < {k.value for k in POLICY}
    with pytest.raises(ValueError, match="router's own verdict"):
        failure("hedge_lost")
    with pytest.raises(ValueError, match="unknown failure kind 'rate-limited'"):
        failure("rate-limited")


async def test_a_full_reply_with_tool_calls_and_usage_comes_back_as_the_provider_sent_it():
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"id": 7}'}}
    with fake_models(
        {"*": reply(tool_calls=[call], usage={"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14})}
    ):
        response = await app.execute_fast_task(USER)
    assert response.tool_calls == (call,) and response.finish_reason == "tool_calls"
    assert response.usage == Usage(11, 3, 14)
    assert response.cost_usd == pytest.approx((11 * 0.075 + 3 * 0.30) / 1e6)


async def test_streams_run_against_the_script_too():
    with fake_models({PRIMARY: failure("capacity"), SECOND: "streamed from the second model"}) as fake:
        async with app.stream_reasoning_task(USER) as stream:
            text = "".join([delta async for delta in stream])
    assert text == "streamed from the second model" and stream.response.model_used == SECOND
    assert [(c.model, c.stream) for c in fake.calls] == [(PRIMARY, True), (SECOND, True)]


async def test_a_validator_rejecting_an_answer_moves_to_the_next_model():
    def wants_json(response: LLMResponse) -> str | None:
        return None if (response.content or "").startswith("{") else "not JSON"

    with fake_models({PRIMARY: "plain text", SECOND: '{"ok": true}'}) as fake:
        response = await app.execute_reasoning_task(USER, validate=wants_json)
        rows = fake.attempts()
    assert response.content == '{"ok": true}'
    assert [r["error_kind"] for r in rows] == ["validation", None]


async def test_a_callable_answers_from_the_request():
    with fake_models({"*": lambda messages, params: f"echo: {messages[-1]['content']}"}):
        assert (await app.execute_fast_task([{"role": "user", "content": "ping"}])).content == "echo: ping"


async def test_an_unscripted_model_fails_the_test_loudly_and_the_previous_router_comes_back():
    before = app.get_router()
    with fake_models({"someone/else": "never called"}), pytest.raises(UnscriptedCall, match=FAST):
        await app.execute_fast_task(USER)
    assert app.get_router() is before


def test_fake_models_works_with_the_sync_entry_point_and_no_socket():
    with fake_models({"*": "sync answer"}) as fake:
        assert app.execute_task_sync("fast", USER).content == "sync answer"
    assert len(fake.calls) == 1


async def test_the_fake_llm_fixture_is_registered_for_users(fake_llm):
    fake = fake_llm({"*": "from the fixture"})
    assert (await app.execute_fast_task(USER)).content == "from the fixture"
    assert len(fake.calls) == 1

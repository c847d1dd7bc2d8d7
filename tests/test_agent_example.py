"""A small agent, as an application team would write it, tested the way README's "Testing your agents" shows:
`fake_models` runs the real router (fallback, FORCE_MODEL, validation, rate limits) against scripted models."""

from __future__ import annotations

import json

import pytest
from conftest import USER

import app
from app.core import ai_models
from app.testing import failure, fake_models, reply

pytestmark = pytest.mark.anyio
PRIMARY, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup_invoice",
        "parameters": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
    },
}


def valid_triage(response: app.LLMResponse) -> str | None:
    """The agent's quality gate: a JSON object with a known category, or a tool call."""
    if response.tool_calls:
        return None
    try:
        answer = json.loads(response.content or "")
    except ValueError:
        return "not JSON"
    return (
        None
        if isinstance(answer, dict) and answer.get("category") in ("billing", "bug", "question")
        else "no known category"
    )


async def triage(ticket: str) -> dict:
    """The agent under test: classify a support ticket, or ask for the invoice it mentions."""
    response = await app.execute_reasoning_task(
        [
            {"role": "system", "content": 'Classify the ticket as JSON {"category": ...}.'},
            {"role": "user", "content": ticket},
        ],
        tools=[LOOKUP],
        validate=valid_triage,
        max_tokens=256,
    )
    if response.tool_calls:
        return {
            "action": "lookup",
            "arguments": json.loads(response.tool_calls[0]["function"]["arguments"]),
            "model": response.model_used,
        }
    return {
        "category": json.loads(response.content or "{}")["category"],
        "model": response.model_used,
        "fallback": response.fallback_used,
    }


BILLING = '{"category": "billing"}'


async def test_the_agent_falls_back_when_its_first_model_fails():
    with fake_models({PRIMARY: failure("server_error"), SECOND: BILLING}, llm_max_attempts=2) as fake:
        assert await triage("my invoice is wrong") == {"category": "billing", "model": SECOND, "fallback": True}
    assert [c.model for c in fake.calls] == [PRIMARY, SECOND]
    assert fake.calls[0].params["tools"] == [LOOKUP]  # what the agent sent reached the model as given


async def test_the_agent_under_a_forced_model():
    with fake_models({SECOND: BILLING}, force_model=SECOND) as fake:
        assert (await triage("my invoice is wrong"))["model"] == SECOND
    assert [c.model for c in fake.calls] == [SECOND]
    assert [r["forced"] for r in fake.attempts()] == [1]


async def test_an_answer_the_validator_rejects_moves_to_the_next_model():
    with fake_models({PRIMARY: "I think it is about billing.", SECOND: BILLING}) as fake:
        assert (await triage("my invoice is wrong"))["model"] == SECOND
    rows = fake.attempts()
    assert [(r["model"], r["error_kind"]) for r in rows] == [(PRIMARY, "validation"), (SECOND, None)]
    assert "not JSON" in rows[0]["error_message"]


async def test_a_rate_limited_model_is_left_alone_and_a_tool_call_comes_through():
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup_invoice", "arguments": '{"id": 42}'}}
    with fake_models({PRIMARY: failure("rate_limited", retry_after=30), SECOND: reply(tool_calls=[call])}) as fake:
        assert await triage("invoice 42 is wrong") == {"action": "lookup", "arguments": {"id": 42}, "model": SECOND}
        again = await triage("invoice 42 is wrong")  # the primary cools down for 30 s: not called again
    assert again["model"] == SECOND
    assert [c.model for c in fake.calls] == [PRIMARY, SECOND, SECOND]
    assert [r["error_kind"] for r in fake.attempts()] == ["rate_limited", None, "cooling_down", None]


async def test_when_every_model_fails_the_agent_sees_one_clear_error():
    with (
        fake_models({"*": failure("server_error")}, llm_max_attempts=3, retry_backoff_base_seconds=0.001),
        pytest.raises(app.AllModelsFailedError) as caught,
    ):
        await triage("my invoice is wrong")
    error = caught.value
    assert "reasoning" in str(error) and "3 provider calls" in str(error)
    assert [a.error_kind for a in error.attempts if a.error_kind] == [app.ErrorKind.SERVER_ERROR] * 3


def test_usage_is_read_as_the_guide_reads_it():
    with fake_models({"*": reply(BILLING, usage={"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35})}):
        response = app.execute_task_sync("reasoning", USER)
    assert response.usage["total_tokens"] == 35 and dict(response.usage)["prompt_tokens"] == 30

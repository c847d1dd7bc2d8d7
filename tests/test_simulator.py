"""The Groq simulator, exercised through the real `groq` SDK (and raw HTTP where the SDK hides details)."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import groq
import httpx
import pytest

from app.simulator import (
    DEFAULT_PROFILES_PATH,
    FAULTS,
    ModelProfile,
    RequestRecord,
    Simulator,
    load_default_profile,
    load_profiles,
)
from app.simulator.server import HttpServer, Pause, Request, Response, StreamResponse

FAST = "sim/fast"
OTHER = "sim/other"
HIDDEN = "sim/hidden"
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]
PROFILES = {
    FAST: ModelProfile(owned_by="OpenAI", max_completion_tokens=1000),
    OTHER: ModelProfile(active=False, context_window=1000),
    HIDDEN: ModelProfile(listed=False),
}


@pytest.fixture(scope="module")
def sim() -> Iterator[Simulator]:
    with Simulator(PROFILES, seed=1) as simulator:
        yield simulator


@pytest.fixture(autouse=True)
def _fresh(sim: Simulator) -> None:
    sim.reset()


@pytest.fixture(scope="module")
def client(sim: Simulator) -> Iterator[groq.Groq]:
    with groq.Groq(base_url=sim.base_url, api_key="test-key", max_retries=0, timeout=5) as c:
        yield c


def chat(client: groq.Groq, model: str = FAST, **kwargs: Any) -> Any:
    return client.chat.completions.create(model=model, messages=kwargs.pop("messages", MESSAGES), **kwargs)


@pytest.fixture(scope="module")
def impatient(sim: Simulator) -> Iterator[groq.Groq]:
    """A client that gives up after 0.1 s. A delay is tested by what such a client gets (a timeout, when the delay
    is longer), not by a stopwatch: a loaded machine can make a call slower, never faster, so a short timeout
    shows a long delay whatever the load."""
    with groq.Groq(base_url=sim.base_url, api_key="k", max_retries=0, timeout=0.1) as c:
        yield c


# -- success -----------------------------------------------------------------------------------------


def test_success_body_usage_and_headers(sim: Simulator, client: groq.Groq) -> None:
    raw = client.chat.completions.with_raw_response.create(model=FAST, messages=MESSAGES)
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == FAST
    assert completion.system_fingerprint == "fp_sim"
    assert completion.service_tier == "on_demand"
    assert completion.x_groq is not None and completion.x_groq.id.startswith("req_")
    choice = completion.choices[0]
    assert choice.index == 0 and choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    assert choice.message.content == f"[{FAST}] Simulated reply to: What is 2+2?"
    usage = completion.usage
    # ceil(9/4)+4 for the system message, ceil(12/4)+4 for the user message
    assert usage.prompt_tokens == 7 + 7
    assert usage.completion_tokens == 24
    assert usage.total_tokens == 38
    assert usage.prompt_tokens_details is None and usage.completion_tokens_details is None
    assert usage.total_time == pytest.approx(usage.prompt_time + usage.completion_time)
    assert raw.headers["x-request-id"] == completion.x_groq.id
    assert raw.headers["content-type"] == "application/json"
    assert int(raw.headers["x-ratelimit-remaining-requests"]) > 0
    assert int(raw.headers["x-ratelimit-remaining-tokens"]) > 0
    assert raw.headers["x-ratelimit-reset-requests"] == "2m59.56s"
    assert "retry-after" not in raw.headers
    assert sim.requests == [RequestRecord(FAST, "/openai/v1/chat/completions", sim.requests[0].body, "ok", 200)]
    assert sim.requests[0].body["messages"] == MESSAGES
    assert sim.calls(FAST) == 1 and sim.calls(OTHER) == 0


def test_scripted_success_sets_content_and_usage(sim: Simulator, client: groq.Groq) -> None:
    sim.script(
        FAST,
        {
            "fault": "ok",
            "content": '{"a": 1}',
            "prompt_tokens": 10,
            "completion_tokens": 5,
            "cached_tokens": 2,
            "reasoning_tokens": 3,
        },
    )
    completion = chat(client)
    assert json.loads(completion.choices[0].message.content) == {"a": 1}
    usage = completion.usage
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (10, 5, 15)
    assert usage.prompt_tokens_details.cached_tokens == 2
    assert usage.completion_tokens_details.reasoning_tokens == 3
    assert chat(client).choices[0].message.content.startswith(f"[{FAST}]")  # the script was used up


def test_max_tokens_caps_the_answer(client: groq.Groq) -> None:
    completion = chat(client, max_tokens=3)
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage.completion_tokens == 3
    assert len(completion.choices[0].message.content) <= 12
    assert chat(client, max_completion_tokens=100).choices[0].finish_reason == "stop"


def test_json_modes_answer_valid_json(client: groq.Groq) -> None:
    plain = chat(client, response_format={"type": "json_object"})
    assert json.loads(plain.choices[0].message.content) == {"model": FAST, "reply": "What is 2+2?"}
    schema = {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "score": {"type": "integer", "minimum": 1},
            "tags": {"type": "array", "items": {"enum": ["x", "y"]}},
            "ok": {"type": "boolean"},
        },
        "required": ["title", "score", "tags", "ok"],
    }
    structured = chat(client, response_format={"type": "json_schema", "json_schema": {"name": "t", "schema": schema}})
    assert json.loads(structured.choices[0].message.content) == {
        "title": "What is 2+2?",
        "score": 1,
        "tags": ["x"],
        "ok": True,
    }


def test_openai_compatible_paths(sim: Simulator) -> None:
    assert sim.openai_base_url == sim.base_url + "/v1"
    with httpx.Client(base_url=sim.openai_base_url) as http:
        answer = http.post("/chat/completions", json={"model": FAST, "messages": MESSAGES})
        models = http.get("/models")
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["role"] == "assistant"
    assert sim.requests[0].path == "/v1/chat/completions"
    assert [m["id"] for m in models.json()["data"]] == [FAST, OTHER]


# -- faults ------------------------------------------------------------------------------------------

# fault -> (SDK exception, status, error.code, error.type)
FAULT_TABLE: dict[str, tuple[type[groq.APIStatusError], int, str | None, str]] = {
    "decommissioned": (groq.BadRequestError, 400, "model_decommissioned", "invalid_request_error"),
    "not_found": (groq.NotFoundError, 404, "model_not_found", "invalid_request_error"),
    "rate_limit": (groq.RateLimitError, 429, "rate_limit_exceeded", "tokens"),
    "rate_limit_daily": (groq.RateLimitError, 429, "rate_limit_exceeded", "requests"),
    "too_large": (groq.APIStatusError, 413, "rate_limit_exceeded", "tokens"),
    "context_length": (groq.BadRequestError, 400, "context_length_exceeded", "invalid_request_error"),
    "capacity": (groq.APIStatusError, 498, "capacity_exceeded", "service_unavailable"),
    "server_error": (groq.InternalServerError, 500, None, "internal_server_error"),
    "bad_gateway": (groq.InternalServerError, 502, "bad_gateway", "internal_server_error"),
    "unavailable": (groq.InternalServerError, 503, "service_unavailable", "service_unavailable"),
    "invalid_request": (groq.BadRequestError, 400, None, "invalid_request_error"),
    "json_validate_failed": (groq.BadRequestError, 400, "json_validate_failed", "invalid_request_error"),
    "tool_use_failed": (groq.BadRequestError, 400, "tool_use_failed", "invalid_request_error"),
    "auth": (groq.AuthenticationError, 401, "invalid_api_key", "invalid_request_error"),
    "forbidden": (groq.PermissionDeniedError, 403, "permission_denied", "permission_denied"),
    "echo_auth": (groq.AuthenticationError, 401, "invalid_api_key", "invalid_request_error"),  # `status` 401
}


def test_every_fault_is_covered() -> None:
    assert set(FAULT_TABLE) | {
        "hang",
        "disconnect",
        "stream_cut",
        "stream_stall",
        "stream_error",
        "foreign_error",
    } == set(FAULTS)


def test_a_foreign_error_is_sent_as_scripted(sim: Simulator, client: groq.Groq) -> None:
    vllm = {
        "object": "error",
        "message": "This model's maximum context length is 4096 tokens.",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    sim.script(FAST, {"fault": "foreign_error", "body": vllm})
    with pytest.raises(groq.BadRequestError) as info:
        chat(client)
    assert (info.value.status_code, info.value.body) == (400, vllm)
    sim.script(FAST, {"fault": "foreign_error", "status": 404, "body": "404 page not found"})
    with pytest.raises(groq.NotFoundError) as found:
        chat(client)
    assert found.value.response.text == "404 page not found"
    assert [r.status for r in sim.requests[-2:]] == [400, 404]
    with pytest.raises(ValueError, match="body must be"):
        sim.script(FAST, {"fault": "foreign_error", "status": 400})


@pytest.mark.parametrize("fault", sorted(FAULT_TABLE))
def test_fault_maps_to_groq_sdk_error(sim: Simulator, client: groq.Groq, fault: str) -> None:
    exc_type, status, code, type_ = FAULT_TABLE[fault]
    sim.script(FAST, fault)
    with pytest.raises(exc_type) as info:
        chat(client)
    err = info.value
    assert type(err) is exc_type  # 413 and 498 must stay plain APIStatusError, as with Groq
    assert err.status_code == status
    assert err.response.headers["content-type"] == "application/json"
    assert err.body["error"].get("code") == code
    assert err.body["error"]["type"] == type_
    assert err.body["error"]["message"]
    assert sim.requests[-1].outcome == fault and sim.requests[-1].status == status


def test_fault_messages_name_the_model(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, "decommissioned", "not_found", "rate_limit", "too_large", "context_length", "capacity")
    messages = []
    for _ in range(6):
        with pytest.raises(groq.APIStatusError) as info:
            chat(client)
        messages.append(info.value.body["error"]["message"])
    assert messages[0].startswith(f"The model `{FAST}` has been decommissioned and is no longer supported.")
    assert "https://console.groq.com/docs/deprecations" in messages[0]
    assert messages[1] == f"The model `{FAST}` does not exist or you do not have access to it."
    assert messages[2].startswith(
        f"Rate limit reached for model `{FAST}` in organization `org_sim` service tier `on_demand` on tokens "
        "per minute (TPM): Limit 12000, Used 2542, Requested 9855. Please try again in 1.98s."
    )
    assert messages[3].startswith(f"Request too large for model `{FAST}`")
    assert messages[4] == "Please reduce the length of the messages or completion."
    assert messages[5].startswith("Flex tier capacity exceeded.")


def test_rate_limit_headers(sim: Simulator, client: groq.Groq) -> None:
    sim.script(
        FAST,
        "rate_limit",
        {"fault": "rate_limit", "retry_after": 7},
        {"fault": "rate_limit", "retry_after": None},
        "rate_limit_daily",
    )
    errors = []
    for _ in range(4):
        with pytest.raises(groq.RateLimitError) as info:
            chat(client)
        errors.append(info.value)
    headers = errors[0].response.headers
    assert headers["retry-after"] == "2"
    assert headers["x-ratelimit-remaining-tokens"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "2m59.56s"
    assert headers["x-ratelimit-reset-tokens"] == "7.66s"
    for name in ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-limit-tokens"):
        assert int(headers[name]) > 0
    assert errors[1].response.headers["retry-after"] == "7"
    assert "Please try again in 7s." in errors[1].body["error"]["message"]
    assert "retry-after" not in errors[2].response.headers
    daily = errors[3]
    assert "retry-after" not in daily.response.headers
    assert daily.response.headers["x-ratelimit-reset-requests"] == "9m38s"
    assert daily.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert (
        "requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try again in 9m38s."
        in (daily.body["error"]["message"])
    )


JSON_FAILED = "Failed to generate JSON. Please adjust your prompt. See 'failed_generation' for more details."
TOOL_FAILED = "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details."
BROKEN_JSON = '{\n  "answer": "4",\n  "explanation": "2 plus 2 equals 4'
BROKEN_TOOL_CALL = '<function=calculator{"expression": "2+2"}</function>'
DEFAULT_FAILURES: dict[str, tuple[str, str]] = {
    "json_validate_failed": (JSON_FAILED, BROKEN_JSON),
    "tool_use_failed": (TOOL_FAILED, BROKEN_TOOL_CALL),
}


def failed_generation_body(code: str, message: str, generation: str) -> dict[str, Any]:
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "code": code,
            "failed_generation": generation,
        }
    }


def test_failed_generation_bodies_are_groqs(sim: Simulator) -> None:
    sim.script(FAST, "json_validate_failed", "tool_use_failed")
    json_mode = post(sim, {"model": FAST, "messages": MESSAGES, "response_format": {"type": "json_object"}})
    tool = {"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}
    tools = post(sim, {"model": FAST, "messages": MESSAGES, "tools": [tool]})
    assert json_mode.status_code == 400 and tools.status_code == 400
    assert json_mode.headers["content-type"] == "application/json"
    assert json_mode.headers["x-request-id"].startswith("req_")
    assert json_mode.json() == failed_generation_body("json_validate_failed", JSON_FAILED, BROKEN_JSON)
    assert tools.json() == failed_generation_body("tool_use_failed", TOOL_FAILED, BROKEN_TOOL_CALL)
    with pytest.raises(json.JSONDecodeError):  # the default generation really is broken JSON
        json.loads(json_mode.json()["error"]["failed_generation"])
    assert [(r.outcome, r.status) for r in sim.requests] == [("json_validate_failed", 400), ("tool_use_failed", 400)]


def test_failed_generation_and_message_can_be_scripted(sim: Simulator, client: groq.Groq) -> None:
    sim.script(
        FAST,
        {"fault": "json_validate_failed", "failed_generation": '{"a": '},
        {"fault": "tool_use_failed", "failed_generation": "<tool_call>oops", "message": "tool call validation failed"},
    )
    with pytest.raises(groq.BadRequestError) as info:
        chat(client)
    assert info.value.body == failed_generation_body("json_validate_failed", JSON_FAILED, '{"a": ')
    with pytest.raises(groq.BadRequestError) as info:
        chat(client)
    expected = failed_generation_body("tool_use_failed", "tool call validation failed", "<tool_call>oops")
    assert info.value.body == expected


def test_failed_generation_faults_reject_other_options(sim: Simulator) -> None:
    with pytest.raises(ValueError, match=r"^option\(s\) failed_generaton do not apply to 'json_validate_failed'$"):
        sim.script(FAST, {"fault": "json_validate_failed", "failed_generaton": "{"})
    with pytest.raises(ValueError, match=r"^option\(s\) param, retry_after do not apply to 'tool_use_failed'$"):
        sim.script(FAST, {"fault": "tool_use_failed", "retry_after": 1, "param": "tools"})
    with pytest.raises(ValueError, match=r"^option\(s\) failed_generation do not apply to 'invalid_request'$"):
        sim.script(FAST, {"fault": "invalid_request", "failed_generation": "{"})
    assert post(sim, {"model": FAST, "messages": MESSAGES}).status_code == 200  # nothing was queued


@pytest.mark.slow
def test_failed_generation_faults_in_fault_rates(sim: Simulator) -> None:
    sim.set_profile(FAST, ModelProfile(fault_rates={"json_validate_failed": 0.3, "tool_use_failed": 0.3}))
    bodies = [post(sim, {"model": FAST, "messages": MESSAGES}) for _ in range(60)]
    outcomes = [r.outcome for r in sim.requests]
    for outcome in ("ok", "json_validate_failed", "tool_use_failed"):
        assert 8 <= outcomes.count(outcome) <= 35, outcomes
    for outcome, response in zip(outcomes, bodies, strict=True):
        if outcome == "ok":
            assert response.status_code == 200
            continue
        assert response.status_code == 400
        assert response.json() == failed_generation_body(outcome, *DEFAULT_FAILURES[outcome])


def test_scripts_are_per_model_and_fifo(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, "server_error", {"fault": "ok", "content": "second"})
    sim.script(OTHER, "unavailable")
    with pytest.raises(groq.InternalServerError):
        chat(client, OTHER)
    with pytest.raises(groq.InternalServerError) as info:
        chat(client)
    assert info.value.status_code == 500
    assert chat(client).choices[0].message.content == "second"
    assert chat(client, OTHER).choices[0].finish_reason == "stop"
    assert [(r.model, r.outcome) for r in sim.requests] == [
        (OTHER, "unavailable"),
        (FAST, "server_error"),
        (FAST, "ok"),
        (OTHER, "ok"),
    ]


def test_script_rejects_typos(sim: Simulator) -> None:
    with pytest.raises(ValueError, match="unknown outcome"):
        sim.script(FAST, "ok", "rate_limted")
    with pytest.raises(ValueError, match="retry_afer"):
        sim.script(FAST, {"fault": "rate_limit", "retry_afer": 3})
    with pytest.raises(ValueError, match="'fault'"):
        sim.script(FAST, {"retry_after": 3})
    with httpx.Client(base_url=sim.base_url) as http:
        response = http.post("/openai/v1/chat/completions", json={"model": FAST, "messages": MESSAGES})
    assert response.status_code == 200  # the valid "ok" before the typo was not queued either


def test_disconnect_is_a_connection_error(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, "disconnect")
    with pytest.raises(groq.APIConnectionError) as info:
        chat(client)
    assert not isinstance(info.value, groq.APITimeoutError)
    assert sim.requests[-1].outcome == "disconnect" and sim.requests[-1].status is None
    assert chat(client).choices[0].finish_reason == "stop"  # the client reconnects


def start_hung_call(server: Simulator, timeout: float, errors: list[BaseException]) -> threading.Thread:
    """A call to FAST (scripted to hang) in a thread; returns once the server has it, or fails after 5 s."""

    def hung_call() -> None:
        with groq.Groq(base_url=server.base_url, api_key="k", max_retries=0, timeout=timeout) as c:
            try:
                chat(c)
            except groq.APIError as exc:
                errors.append(exc)

    before = server.calls(FAST)
    thread = threading.Thread(target=hung_call)
    thread.start()
    deadline = time.monotonic() + 5
    while server.calls(FAST) == before:
        assert time.monotonic() < deadline, "the hung call never reached the simulator"
        time.sleep(0.005)
    return thread


def test_hang_times_out_without_blocking_others(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, "hang")
    outcome: list[BaseException] = []

    thread = start_hung_call(sim, timeout=0.5, errors=outcome)
    answer = chat(client)  # served while the other request hangs
    assert answer.choices[0].finish_reason == "stop"
    assert thread.is_alive()
    thread.join(5)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], groq.APITimeoutError)
    assert sim.requests[0].outcome == "hang" and sim.requests[0].status is None


def test_short_hang_ends_in_a_slow_success(sim: Simulator, client: groq.Groq, impatient: groq.Groq) -> None:
    short_hang = {"fault": "hang", "seconds": 0.3}
    sim.script(FAST, short_hang, short_hang)
    with pytest.raises(groq.APITimeoutError):
        chat(impatient)  # the hang outlasts a 0.1 s timeout...
    assert chat(client).choices[0].finish_reason == "stop"  # ...then the answer comes
    assert [(r.outcome, r.status) for r in sim.requests] == [("hang", None)] * 2


def test_scripted_latency(sim: Simulator, client: groq.Groq, impatient: groq.Groq) -> None:
    slow_answer, slow_error = {"fault": "ok", "latency_ms": 300}, {"fault": "server_error", "latency_ms": 300}
    sim.script(FAST, slow_answer, slow_error, slow_answer, slow_error)
    for _ in range(2):  # the answer and the error both come after the latency
        with pytest.raises(groq.APITimeoutError):
            chat(impatient)
    assert chat(client).choices[0].finish_reason == "stop"
    with pytest.raises(groq.InternalServerError):
        chat(client)
    assert [r.outcome for r in sim.requests] == ["ok", "server_error"] * 2


# -- request checks ----------------------------------------------------------------------------------


def post(sim: Simulator, body: Any, **kwargs: Any) -> httpx.Response:
    with httpx.Client(base_url=sim.base_url) as http:
        if isinstance(body, bytes):
            return http.post("/openai/v1/chat/completions", content=body, **kwargs)
        return http.post("/openai/v1/chat/completions", json=body, **kwargs)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": FAST}, "'messages' : property 'messages' is missing or empty"),
        ({"model": FAST, "messages": []}, "'messages' : property 'messages' is missing or empty"),
        (
            {"model": FAST, "messages": [{"role": "robot", "content": "hi"}]},
            "'messages.0' : discriminator property 'role' has invalid value",
        ),
        ({"messages": MESSAGES}, "'model' : property 'model' is missing"),
        (b"{not json", "failed to parse request body: expected a JSON object"),
    ],
)
def test_invalid_bodies_are_rejected(sim: Simulator, body: Any, message: str) -> None:
    sim.script(FAST, "ok")
    response = post(sim, body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == message and error["type"] == "invalid_request_error" and "code" not in error
    assert sim.requests[-1].outcome == "invalid_request"


def test_invalid_bodies_do_not_consume_scripts(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, "rate_limit")
    assert post(sim, {"model": FAST}).status_code == 400
    with pytest.raises(groq.RateLimitError):
        chat(client)


def test_context_window_and_completion_limit(sim: Simulator, client: groq.Groq) -> None:
    # OTHER has a 1000-token context window.
    long = [{"role": "user", "content": "x" * 4000}]
    with pytest.raises(groq.BadRequestError) as info:
        chat(client, OTHER, messages=long)
    assert info.value.body["error"]["code"] == "context_length_exceeded"
    assert info.value.body["error"]["param"] == "messages"
    with pytest.raises(groq.BadRequestError) as info:
        chat(client, OTHER, max_tokens=990)  # fits alone, not with the prompt
    assert info.value.body["error"]["code"] == "context_length_exceeded"
    # FAST allows at most 1000 completion tokens.
    with pytest.raises(groq.BadRequestError) as info:
        chat(client, max_tokens=1001)
    assert info.value.body["error"]["message"].startswith("`max_tokens` must be less than or equal to `1000`")
    assert chat(client, max_tokens=1000).choices[0].finish_reason == "stop"


def test_unknown_model_and_default_profile(client: groq.Groq) -> None:
    with pytest.raises(groq.NotFoundError) as info:
        chat(client, "sim/nope")
    assert info.value.body["error"]["code"] == "model_not_found"
    with Simulator(default_profile=ModelProfile(completion_tokens=3)) as catch_all:
        with groq.Groq(base_url=catch_all.base_url, api_key="k", max_retries=0) as c:
            completion = chat(c, "sim/anything")
        assert completion.model == "sim/anything" and completion.usage.completion_tokens == 3
        assert catch_all.calls("sim/anything") == 1


def test_unknown_url(sim: Simulator) -> None:
    with httpx.Client(base_url=sim.base_url) as http:
        response = http.get("/openai/v1/nothing?x=1")
        wrong_method = http.get("/openai/v1/chat/completions")
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "unknown_url" and error["type"] == "invalid_request_error"
    assert error["message"].startswith("Unknown request URL: GET /openai/v1/nothing")
    assert wrong_method.status_code == 404
    assert sim.requests == []


# -- authentication ----------------------------------------------------------------------------------


def test_api_key_is_checked_and_never_logged() -> None:
    with Simulator({FAST: ModelProfile()}, api_key="right-key") as keyed:
        with groq.Groq(base_url=keyed.base_url, api_key="wrong-key", max_retries=0) as bad:
            with pytest.raises(groq.AuthenticationError) as info:
                chat(bad)
            with pytest.raises(groq.AuthenticationError):
                bad.models.list()
        assert info.value.body == {
            "error": {"message": "Invalid API Key", "type": "invalid_request_error", "code": "invalid_api_key"}
        }
        keyed.script(FAST, "server_error")
        with groq.Groq(base_url=keyed.base_url, api_key="right-key", max_retries=0) as good:
            with pytest.raises(groq.InternalServerError):  # the failed auth did not use up the script
                chat(good)
            assert chat(good).choices[0].finish_reason == "stop"
            assert [m.id for m in good.models.list().data] == [FAST]
        assert [r.outcome for r in keyed.requests] == ["auth", "server_error", "ok"]
        assert "right-key" not in repr(keyed.requests) and "wrong-key" not in repr(keyed.requests)
        assert "authorization" not in {f.lower() for f in RequestRecord.__dataclass_fields__}


ECHO_STATUSES = {
    401: (groq.AuthenticationError, "Invalid API Key"),
    400: (groq.BadRequestError, "'messages.0' : discriminator property 'role' has invalid value"),
    429: (groq.RateLimitError, "Rate limit reached for model `sim/fast`"),
    500: (groq.InternalServerError, "Internal Server Error"),
}


def test_echo_auth_quotes_the_authorization_header_as_a_proxy_would(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, *({"fault": "echo_auth", "status": status} for status in ECHO_STATUSES))
    for status, (exc_type, message) in ECHO_STATUSES.items():
        with pytest.raises(exc_type) as info:
            chat(client)
        error = info.value
        assert error.status_code == status and error.body["error"]["message"].startswith(message)
        assert error.body["error"]["message"].endswith("(the proxy received Authorization: Bearer test-key)")
        assert error.response.headers["x-echoed-authorization"] == "Bearer test-key"
        assert ("retry-after" in error.response.headers) == (status == 429)  # Groq's own headers stay
    assert [(r.outcome, r.status) for r in sim.requests] == [("echo_auth", s) for s in ECHO_STATUSES]
    assert "test-key" not in repr(sim.requests)  # quoted back, never kept
    with pytest.raises(ValueError, match="'echo_auth': status must be one of 401, 400, 429, 500, got 404"):
        sim.script(FAST, {"fault": "echo_auth", "status": 404})
    with pytest.raises(ValueError, match=r"option\(s\) param do not apply to 'echo_auth'"):
        sim.script(FAST, {"fault": "echo_auth", "param": "messages"})


@pytest.mark.anyio
async def test_echo_auth_as_a_stream_error_event(sim: Simulator) -> None:
    sim.script(FAST, scripted_stream("stream_error", after_chunks=1, error="echo_auth"))
    async with async_client(sim, "httpx") as client:
        chunks, error = await stream_until_error(client)
    assert [c.choices[0].delta.content for c in chunks] == ["", "one "]
    assert type(error) is groq.APIError
    assert error.body["message"] == "Invalid API Key (the proxy received Authorization: Bearer k)"
    assert error.body["status_code"] == 401


# -- streaming ---------------------------------------------------------------------------------------


def test_streaming_chunks_match_the_plain_answer(sim: Simulator, client: groq.Groq) -> None:
    plain = chat(client).choices[0].message.content
    chunks = list(chat(client, stream=True))
    assert all(c.object == "chat.completion.chunk" and c.model == FAST for c in chunks)
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[0].x_groq is not None and chunks[0].x_groq.id.startswith("req_")
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == plain
    assert [c.choices[0].finish_reason for c in chunks][-1] == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    usage = chunks[-1].x_groq.usage
    assert usage is not None and usage.completion_tokens == 24 and usage.prompt_tokens == 14
    assert chunks[-1].usage is None
    assert sim.requests[-1].body["stream"] is True


def test_streaming_is_paced_by_tokens_per_second(sim: Simulator, client: groq.Groq) -> None:
    # 30 tokens at 10 a second: 3 s spread over a handful of chunks, so well over 0.2 s before the first one.
    sim.set_profile(FAST, ModelProfile(tokens_per_second=10.0, completion_tokens=30))
    received, error = read_stream(sim, stream_body(), timeout=httpx.Timeout(5, read=0.2))
    assert type(error) is httpx.ReadTimeout and received == b""
    sim.set_profile(FAST, ModelProfile(tokens_per_second=100.0, completion_tokens=30))
    chunks = list(chat(client, stream=True))
    assert chunks[-1].x_groq.usage.completion_time == pytest.approx(0.3)
    assert chunks[-1].choices[0].finish_reason == "stop"


CHAT_PATH = "/openai/v1/chat/completions"
STREAM_CONTENT = "one two three four five"  # streamed as 5 chunks: "one ", "two ", "three ", "four ", "five"
# prompt_tokens 10 and completion_tokens 5 scripted; prompt_time = 10 / 50000; no tokens_per_second, so
# completion_time = 5 / 1000; no latency, so queue_time 0.
STREAM_USAGE = {
    "queue_time": 0.0,
    "prompt_tokens": 10,
    "prompt_time": 0.0002,
    "completion_tokens": 5,
    "completion_time": 0.005,
    "total_tokens": 15,
    "total_time": 0.0052,
}
TOOLS = [{"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}}]


def scripted_stream(fault: str = "ok", **options: Any) -> dict[str, Any]:
    return {"fault": fault, "content": STREAM_CONTENT, "prompt_tokens": 10, "completion_tokens": 5, **options}


def stream_body(**extra: Any) -> dict[str, Any]:
    return {"model": FAST, "messages": MESSAGES, "stream": True, **extra}


def sse_events(text: str) -> list[tuple[str | None, Any]]:
    """(event name, data parsed as JSON unless it is `[DONE]`) for each server-sent event."""
    events: list[tuple[str | None, Any]] = []
    for block in text.split("\n\n"):
        if not block:
            continue
        name, data = None, ""
        for line in block.split("\n"):
            field, _, value = line.partition(": ")
            if field == "event":
                name = value
            else:
                assert field == "data", block
                data = value
        events.append((name, data if data == "[DONE]" else json.loads(data)))
    return events


def chunk(first: dict[str, Any], delta: dict[str, Any], finish_reason: str | None = None, **extra: Any) -> dict:
    """A chunk as Groq sends it, with the id, created and model of the stream's first chunk."""
    return {
        "id": first["id"],
        "object": "chat.completion.chunk",
        "created": first["created"],
        "model": FAST,
        "system_fingerprint": "fp_sim",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        **extra,
    }


def content_chunks(first: dict[str, Any], count: int) -> list[tuple[None, dict[str, Any]]]:
    pieces = ["one ", "two ", "three ", "four ", "five"]
    return [(None, chunk(first, {"content": piece})) for piece in pieces[:count]]


def read_stream(sim: Simulator, body: dict[str, Any], timeout: httpx.Timeout | float = 5) -> tuple[bytes, Any]:
    """The raw event bytes received, and the exception that ended the read (None when the stream ended)."""
    received = b""
    with httpx.Client(base_url=sim.base_url, timeout=timeout) as http, http.stream("POST", CHAT_PATH, json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"] == "text/event-stream"
        try:
            for piece in r.iter_raw():
                received += piece
        except httpx.TransportError as exc:
            return received, exc
    return received, None


def test_streaming_wire_format_is_groqs(sim: Simulator) -> None:
    sim.script(FAST, scripted_stream(), scripted_stream())
    with httpx.Client(base_url=sim.base_url) as http:
        response = http.post(CHAT_PATH, json=stream_body())
        with_usage = http.post(CHAT_PATH, json=stream_body(stream_options={"include_usage": True}))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["transfer-encoding"] == "chunked"
    assert response.headers["cache-control"] == "no-cache"
    events = sse_events(response.text)
    first = events[0][1]
    request_id = response.headers["x-request-id"]
    assert first["id"].startswith("chatcmpl-") and isinstance(first["created"], int)
    assert events == [
        (None, chunk(first, {"role": "assistant", "content": ""}, x_groq={"id": request_id})),
        *content_chunks(first, 5),
        (None, chunk(first, {}, "stop", x_groq={"id": request_id, "usage": STREAM_USAGE})),
        (None, "[DONE]"),
    ]
    # include_usage adds OpenAI's last chunk: no choices, the usage at the top level.
    events = sse_events(with_usage.text)
    first = events[0][1]
    request_id = with_usage.headers["x-request-id"]
    usage_chunk = {**chunk(first, {}), "choices": [], "usage": STREAM_USAGE, "x_groq": {"id": request_id}}
    assert events[-3:] == [
        (None, chunk(first, {}, "stop", x_groq={"id": request_id, "usage": STREAM_USAGE})),
        (None, usage_chunk),
        (None, "[DONE]"),
    ]
    assert len(events) == 9


@pytest.mark.anyio
async def test_streaming_through_the_async_sdk(sim: Simulator) -> None:
    sim.script(FAST, scripted_stream(), scripted_stream())
    async with groq.AsyncGroq(api_key="k", base_url=sim.base_url, max_retries=0, timeout=5) as client:
        stream = await client.chat.completions.create(model=FAST, messages=MESSAGES, stream=True)
        chunks = [c async for c in stream]
        include_usage = {"stream_options": {"include_usage": True}}
        stream = await client.chat.completions.create(
            model=FAST, messages=MESSAGES, stream=True, extra_body=include_usage
        )
        with_usage = [c async for c in stream]
    assert [c.choices[0].delta.content for c in chunks] == ["", "one ", "two ", "three ", "four ", "five", None]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks] == [None] * 6 + ["stop"]
    assert [c.x_groq is not None for c in chunks] == [True] + [False] * 5 + [True]
    assert chunks[0].x_groq.id == chunks[-1].x_groq.id
    assert chunks[-1].x_groq.usage.model_dump(exclude_none=True) == STREAM_USAGE
    assert all(c.usage is None for c in chunks)
    assert len(with_usage) == 8 and with_usage[-1].choices == []
    assert with_usage[-1].usage.model_dump(exclude_none=True) == STREAM_USAGE
    assert [r.body.get("stream_options") for r in sim.requests] == [None, {"include_usage": True}]


def test_tool_calls_answer_requests_that_offer_tools(sim: Simulator, client: groq.Groq) -> None:
    calls = [
        {"name": "calculator", "arguments": '{"expression": "2+2"}', "id": "call_a1"},
        {"name": "lookup", "arguments": {"q": "x"}},
    ]
    sim.script(FAST, {"fault": "ok", "tool_calls": calls}, {"fault": "ok", "tool_calls": calls})
    completion = chat(client, tools=TOOLS)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    made = [(c.id, c.type, c.function.name, c.function.arguments) for c in choice.message.tool_calls]
    assert made[0] == ("call_a1", "function", "calculator", '{"expression": "2+2"}')
    assert made[1][1:] == ("function", "lookup", '{"q": "x"}') and re.fullmatch(r"call_[0-9a-f]{24}", made[1][0])
    assert completion.usage.completion_tokens == 12  # ceil(len("calculator" + args + "lookup" + args) / 4) = 47 / 4
    # Without `tools` in the request there is nothing to call: the ordinary text answer.
    assert chat(client).choices[0].message.tool_calls is None


def test_tool_calls_stream_as_fragments(sim: Simulator) -> None:
    arguments = '{"expression": "2+2"}'  # 21 characters: 4 fragments of up to 6
    sim.script(FAST, {"fault": "ok", "tool_calls": [{"name": "calculator", "arguments": arguments, "id": "call_a1"}]})
    response = post(sim, stream_body(tools=TOOLS))
    events = sse_events(response.text)
    first = events[0][1]
    request_id = response.headers["x-request-id"]
    head = {"index": 0, "id": "call_a1", "type": "function", "function": {"name": "calculator", "arguments": ""}}
    fragments = [{"index": 0, "function": {"arguments": arguments[i : i + 6]}} for i in range(0, 21, 6)]
    usage = events[-2][1]["x_groq"]["usage"]
    assert events == [
        (None, chunk(first, {"role": "assistant", "content": None}, x_groq={"id": request_id})),
        (None, chunk(first, {"tool_calls": [head]})),
        *[(None, chunk(first, {"tool_calls": [fragment]})) for fragment in fragments],
        (None, chunk(first, {}, "tool_calls", x_groq={"id": request_id, "usage": usage})),
        (None, "[DONE]"),
    ]


@pytest.mark.anyio
async def test_tool_call_fragments_reassemble_through_the_sdk(sim: Simulator) -> None:
    calls = [{"name": "calculator", "arguments": '{"expression": "2+2"}'}, {"name": "noop", "arguments": ""}]
    sim.script(FAST, {"fault": "ok", "tool_calls": calls})
    async with groq.AsyncGroq(api_key="k", base_url=sim.base_url, max_retries=0, timeout=5) as client:
        stream = await client.chat.completions.create(model=FAST, messages=MESSAGES, stream=True, tools=TOOLS)
        chunks = [c async for c in stream]
    assembled: dict[int, dict[str, str]] = {}
    for c in chunks:
        for fragment in c.choices[0].delta.tool_calls or []:
            call = assembled.setdefault(fragment.index, {"id": "", "name": "", "arguments": ""})
            call["id"] += fragment.id or ""
            call["name"] += fragment.function.name or ""
            call["arguments"] += fragment.function.arguments or ""
    assert [(c["name"], c["arguments"]) for c in assembled.values()] == [
        ("calculator", '{"expression": "2+2"}'),
        ("noop", ""),
    ]
    assert all(c["id"].startswith("call_") for c in assembled.values())
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_stream_options_are_checked_when_scripted(sim: Simulator) -> None:
    bad: list[tuple[dict[str, Any], str]] = [
        ({"fault": "stream_cut", "after_chunks": -1}, "after_chunks must be an int >= 0"),
        ({"fault": "stream_cut", "after_chunks": True}, "after_chunks must be an int >= 0"),
        ({"fault": "stream_stall", "seconds": -1}, "seconds must be a finite number >= 0"),
        ({"fault": "ok", "chunk_ms": "fast"}, "chunk_ms must be a finite number >= 0"),
        ({"fault": "ok", "first_token_ms": float("inf")}, "first_token_ms must be a finite number >= 0"),
        ({"fault": "ok", "after_chunks": 1}, r"option\(s\) after_chunks do not apply to 'ok'"),
        ({"fault": "stream_cut", "seconds": 1}, r"option\(s\) seconds do not apply to 'stream_cut'"),
        ({"fault": "stream_error", "error": "hang"}, "error must be an error object or one of: decommissioned"),
        ({"fault": "stream_error", "error": {"type": "x"}}, "an error object needs a string 'message'"),
        ({"fault": "ok", "tool_calls": []}, "tool_calls must be a non-empty list"),
        ({"fault": "ok", "tool_calls": [{"arguments": "{}"}]}, "every tool call needs a non-empty string 'name'"),
        ({"fault": "ok", "tool_calls": [{"name": "f", "args": "{}"}]}, r"unknown tool call key\(s\) args"),
        ({"fault": "ok", "tool_calls": [{"name": "f", "arguments": 3}]}, "arguments must be a JSON string"),
    ]
    for outcome, message in bad:
        with pytest.raises(ValueError, match=message):
            sim.script(FAST, "ok", outcome)
    assert post(sim, stream_body()).status_code == 200
    assert [r.outcome for r in sim.requests] == ["ok"]  # nothing was queued


# -- stream faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", sorted(FAULT_TABLE))
def test_error_faults_answer_a_stream_request_with_their_status(sim: Simulator, client: groq.Groq, fault: str) -> None:
    exc_type, status, code, _ = FAULT_TABLE[fault]
    sim.script(FAST, fault)
    with pytest.raises(exc_type) as info:
        chat(client, stream=True)
    assert type(info.value) is exc_type and info.value.status_code == status
    assert info.value.response.headers["content-type"] == "application/json"
    assert info.value.body["error"].get("code") == code
    assert sim.requests[-1].outcome == fault and sim.requests[-1].status == status


def test_streaming_fault_answers_with_the_error_status(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, "rate_limit", {"fault": "ok", "content": "a b c", "finish_reason": "length"})
    with pytest.raises(groq.RateLimitError) as info:
        chat(client, stream=True)
    assert info.value.response.headers["retry-after"] == "2"
    chunks = list(chat(client, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "a b c"
    assert chunks[-1].choices[0].finish_reason == "length"


@pytest.mark.anyio
async def test_hang_and_disconnect_before_the_first_byte_of_a_stream(sim: Simulator) -> None:
    sim.script(FAST, "hang", "disconnect", {"fault": "hang", "seconds": 0.1})
    async with groq.AsyncGroq(api_key="k", base_url=sim.base_url, max_retries=0, timeout=0.3) as client:
        with pytest.raises(groq.APITimeoutError):
            await client.chat.completions.create(model=FAST, messages=MESSAGES, stream=True)
        with pytest.raises(groq.APIConnectionError) as info:
            await client.chat.completions.create(model=FAST, messages=MESSAGES, stream=True)
        assert not isinstance(info.value, groq.APITimeoutError)
        # A short hang ends in a slow but complete stream.
        stream = await client.chat.completions.create(model=FAST, messages=MESSAGES, stream=True)
        chunks = [c async for c in stream]
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].x_groq.usage is not None
    assert [(r.outcome, r.status) for r in sim.requests] == [("hang", None), ("disconnect", None), ("hang", None)]


def test_stream_cut_drops_the_connection_mid_stream(sim: Simulator) -> None:
    sim.script(FAST, scripted_stream("stream_cut", after_chunks=2), scripted_stream("stream_cut", after_chunks=9))
    received, error = read_stream(sim, stream_body(stream_options={"include_usage": True}))
    assert type(error) is httpx.RemoteProtocolError
    assert str(error) == "peer closed connection without sending complete message body (incomplete chunked read)"
    events = sse_events(received.decode())
    first = events[0][1]
    assert events[1:] == content_chunks(first, 2)  # no finish reason, no usage, no [DONE]
    # More chunks asked for than the answer has: all of its content, then the cut before the finish chunk.
    received, error = read_stream(sim, stream_body())
    assert type(error) is httpx.RemoteProtocolError
    events = sse_events(received.decode())
    assert events[1:] == content_chunks(events[0][1], 5)
    assert [(r.outcome, r.status) for r in sim.requests] == [("stream_cut", 200)] * 2


def test_stream_stall_stops_sending_until_the_client_gives_up(sim: Simulator) -> None:
    sim.script(FAST, scripted_stream("stream_stall", after_chunks=1))
    received, error = read_stream(sim, stream_body(), timeout=httpx.Timeout(5, read=0.3))
    assert type(error) is httpx.ReadTimeout
    events = sse_events(received.decode())
    assert events[1:] == content_chunks(events[0][1], 1)
    assert (sim.requests[-1].outcome, sim.requests[-1].status) == ("stream_stall", 200)


def test_a_timed_stream_stall_then_finishes_the_stream(sim: Simulator) -> None:
    stall = scripted_stream("stream_stall", after_chunks=0, seconds=0.3)
    sim.script(FAST, stall, stall)
    received, error = read_stream(sim, stream_body(), timeout=httpx.Timeout(5, read=0.1))
    assert type(error) is httpx.ReadTimeout and len(sse_events(received.decode())) == 1  # role chunk, then stall
    received, error = read_stream(sim, stream_body())
    assert error is None
    events = sse_events(received.decode())
    assert len(events) == 8 and events[-1] == (None, "[DONE]")
    assert events[-2][1]["x_groq"]["usage"] == STREAM_USAGE


def test_stream_error_sends_groqs_error_event(sim: Simulator) -> None:
    sim.script(
        FAST,
        scripted_stream("stream_error", after_chunks=1),
        scripted_stream("stream_error", after_chunks=0, error="rate_limit", message="slow down"),
        scripted_stream("stream_error", error={"message": "boom", "type": "server_error"}),
        scripted_stream("stream_error", failed_generation="<tool_call>oops"),
    )
    bodies = [read_stream(sim, stream_body(stream_options={"include_usage": True})) for _ in range(4)]
    assert [error for _, error in bodies] == [None] * 4  # the body ends properly; only [DONE] is missing
    events = [sse_events(received.decode()) for received, _ in bodies]
    tool_use_failed = failed_generation_body("tool_use_failed", TOOL_FAILED, BROKEN_TOOL_CALL)["error"]
    assert events[0][1:] == [
        *content_chunks(events[0][0][1], 1),
        ("error", {"error": {**tool_use_failed, "status_code": 400}}),
    ]
    rate_limit = events[1][1:]
    assert len(rate_limit) == 1 and rate_limit[0][0] == "error"
    assert rate_limit[0][1]["error"] == {
        "message": "slow down",
        "type": "tokens",
        "code": "rate_limit_exceeded",
        "status_code": 429,
    }
    assert events[2][-1] == ("error", {"error": {"message": "boom", "type": "server_error", "status_code": 400}})
    assert events[2][1:-1] == content_chunks(events[2][0][1], 3)  # the default: 3 chunks, then the error
    assert events[3][-1][1]["error"]["failed_generation"] == "<tool_call>oops"
    assert [(r.outcome, r.status) for r in sim.requests] == [("stream_error", 200)] * 4


TRANSPORTS = ["httpx", "aiohttp"]


def async_client(sim: Simulator, transport: str, timeout: httpx.Timeout | float = 5) -> groq.AsyncGroq:
    # The provider layer may use either transport; the exceptions a broken stream raises differ.
    http_client = groq.DefaultAioHttpClient() if transport == "aiohttp" else groq.DefaultAsyncHttpxClient()
    return groq.AsyncGroq(api_key="k", base_url=sim.base_url, max_retries=0, timeout=timeout, http_client=http_client)


async def stream_until_error(client: groq.AsyncGroq, **kwargs: Any) -> tuple[list[Any], BaseException]:
    """The chunks the SDK yielded before the stream failed, and what it raised (asserted to be raised)."""
    chunks: list[Any] = []
    stream = await client.chat.completions.create(model=FAST, messages=MESSAGES, stream=True, **kwargs)
    async with stream:
        try:
            async for c in stream:
                chunks.append(c)
        except Exception as exc:
            return chunks, exc
    raise AssertionError(f"the stream ended normally after {len(chunks)} chunks")


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sdk_on_a_cut_stream(sim: Simulator, transport: str) -> None:
    sim.script(FAST, scripted_stream("stream_cut", after_chunks=2))
    async with async_client(sim, transport) as client:
        chunks, error = await stream_until_error(client)
    assert [c.choices[0].delta.content for c in chunks] == ["", "one ", "two "]
    # The SDK wraps transport errors only while sending the request; one in the body comes out of httpx as is.
    assert not isinstance(error, groq.GroqError)
    if transport == "httpx":
        assert type(error) is httpx.RemoteProtocolError
        assert str(error) == "peer closed connection without sending complete message body (incomplete chunked read)"
    else:
        assert type(error) is httpx.ReadError
        assert type(error.__cause__).__name__ == "ClientPayloadError"
        assert "Response payload is not completed" in str(error)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sdk_on_a_stalled_stream(sim: Simulator, transport: str) -> None:
    sim.script(FAST, scripted_stream("stream_stall", after_chunks=1))
    async with async_client(sim, transport, timeout=httpx.Timeout(5, read=0.3)) as client:
        chunks, error = await stream_until_error(client)
    assert [c.choices[0].delta.content for c in chunks] == ["", "one "]
    assert type(error) is httpx.ReadTimeout  # not groq.APITimeoutError, for the same reason as the cut


@pytest.mark.anyio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_sdk_on_a_stream_error_event(sim: Simulator, transport: str) -> None:
    sim.script(FAST, scripted_stream("stream_error", after_chunks=1))
    async with async_client(sim, transport) as client:
        chunks, error = await stream_until_error(client, extra_body={"stream_options": {"include_usage": True}})
    assert [c.choices[0].delta.content for c in chunks] == ["", "one "]
    assert type(error) is groq.APIError  # neither a status error nor a connection error
    assert error.message == TOOL_FAILED
    assert error.body == {
        "message": TOOL_FAILED,
        "type": "invalid_request_error",
        "code": "tool_use_failed",
        "failed_generation": BROKEN_TOOL_CALL,
        "status_code": 400,
    }
    assert error.request.url.path == CHAT_PATH


@pytest.mark.anyio
async def test_a_stall_for_ever_ends_when_the_server_stops() -> None:
    with Simulator({FAST: ModelProfile()}) as own:
        own.script(FAST, {"fault": "stream_stall", "after_chunks": 0})
        async with groq.AsyncGroq(api_key="k", base_url=own.base_url, max_retries=0, timeout=30) as client:
            stream = await client.chat.completions.create(model=FAST, messages=MESSAGES, stream=True)
            async with stream:
                assert (await stream.__anext__()).choices[0].delta.role == "assistant"
                await asyncio.to_thread(own.stop)
                # The server closed the connection: no read timeout (30 s) had to end the wait.
                with pytest.raises(httpx.RemoteProtocolError):
                    await stream.__anext__()


@pytest.mark.anyio
async def test_a_pause_ends_as_soon_as_the_client_leaves() -> None:
    closed = asyncio.Event()

    async def stalled() -> AsyncIterator[bytes | Pause]:
        try:
            yield b"data: {}\n\n"
            yield Pause(None)
            yield b"data: never\n\n"
        finally:
            closed.set()

    async def handler(request: Request) -> StreamResponse:
        return StreamResponse(200, stalled())

    server = HttpServer(handler)
    port = await server.start()
    try:
        async with httpx.AsyncClient(timeout=5) as http, http.stream("GET", f"http://127.0.0.1:{port}/") as response:
            assert await response.aiter_raw().__anext__() == b"data: {}\n\n"
        # The server noticed the closed connection during the pause and closed the stream's generator.
        await asyncio.wait_for(closed.wait(), 2)
    finally:
        await server.close()


def test_stream_faults_leave_plain_requests_alone(sim: Simulator, client: groq.Groq) -> None:
    sim.script(FAST, scripted_stream("stream_cut"), scripted_stream("stream_stall"), scripted_stream("stream_error"))
    for _ in range(3):
        completion = chat(client)
        assert completion.choices[0].message.content == STREAM_CONTENT
        assert completion.usage.total_tokens == 15
    assert [(r.outcome, r.status) for r in sim.requests] == [("ok", 200)] * 3


@pytest.mark.slow
def test_stream_faults_in_fault_rates(sim: Simulator) -> None:
    sim.set_profile(FAST, ModelProfile(fault_rates={"stream_cut": 0.3, "stream_error": 0.3}))
    endings = []
    for _ in range(40):
        received, error = read_stream(sim, stream_body())
        events = sse_events(received.decode())
        endings.append("cut" if error is not None else events[-1][0] or "done")
    outcomes = [r.outcome for r in sim.requests]
    assert endings == [{"stream_cut": "cut", "stream_error": "error", "ok": "done"}[o] for o in outcomes]
    for outcome in ("ok", "stream_cut", "stream_error"):
        assert 5 <= outcomes.count(outcome) <= 25, outcomes
    assert {post(sim, {"model": FAST, "messages": MESSAGES}).status_code for _ in range(10)} == {200}
    assert set(r.outcome for r in sim.requests[40:]) == {"ok"}


def contents(received: bytes) -> list[str]:
    """The content of each chunk received ("<end>" for the finish chunk), in order."""
    return [
        data["choices"][0]["delta"].get("content", "<end>")
        for _, data in sse_events(received.decode())
        if isinstance(data, dict) and data["choices"]
    ]


def test_first_token_and_chunk_pauses(sim: Simulator) -> None:
    # Where the pauses are shows in where a reader that waits at most 0.3 s between reads gives up: each pause
    # is 0.6 s, and what comes at once has 0.3 s to arrive.
    paced = {"fault": "ok", "content": "a b c", "first_token_ms": 600, "chunk_ms": 600}
    sim.script(FAST, paced, {**paced, "first_token_ms": 0}, {**paced, "first_token_ms": 50, "chunk_ms": 50})
    impatient = httpx.Timeout(5, read=0.3)
    received, error = read_stream(sim, stream_body(), timeout=impatient)  # latency_ms 0: the headers at once
    assert type(error) is httpx.ReadTimeout and contents(received) == []  # then the wait for the first token
    received, error = read_stream(sim, stream_body(), timeout=impatient)
    assert type(error) is httpx.ReadTimeout
    assert contents(received) == ["", "a "]  # role and first token together, then a pause
    received, error = read_stream(sim, stream_body())
    assert error is None and contents(received) == ["", "a ", "b ", "c", "<end>"]


def test_chunk_pauses_apply_to_broken_streams_and_not_to_plain_answers(sim: Simulator, client: groq.Groq) -> None:
    sim.script(
        FAST,
        scripted_stream("stream_cut", after_chunks=2, chunk_ms=600),
        scripted_stream(first_token_ms=2000, chunk_ms=2000),
    )
    received, error = read_stream(sim, stream_body(), timeout=httpx.Timeout(5, read=0.3))
    assert type(error) is httpx.ReadTimeout and len(sse_events(received.decode())) == 2  # paused after one chunk
    # Paced, this answer would take 2 s before its first token and 2 s after each: sent in one piece, it has no
    # chunks to pace and comes well inside a 1 s timeout.
    with groq.Groq(base_url=sim.base_url, api_key="k", max_retries=0, timeout=1) as impatient:
        assert chat(impatient).choices[0].message.content == STREAM_CONTENT


# -- models ------------------------------------------------------------------------------------------


def test_models_list_follows_listed_and_active(sim: Simulator, client: groq.Groq) -> None:
    models = client.models.list()
    assert models.object == "list"
    assert [m.id for m in models.data] == [FAST, OTHER]
    fast, other = models.data
    assert (fast.owned_by, fast.active, fast.context_window, fast.max_completion_tokens) == (
        "OpenAI",
        True,
        131072,
        1000,
    )
    assert fast.object == "model" and fast.public_apps is None and fast.created == 1754408224
    assert (other.active, other.context_window) == (False, 1000)
    assert chat(client, OTHER).choices[0].finish_reason == "stop"  # inactive still answers
    assert chat(client, HIDDEN).choices[0].finish_reason == "stop"  # unlisted still answers
    assert client.models.retrieve(FAST).id == FAST
    with pytest.raises(groq.NotFoundError):
        client.models.retrieve(HIDDEN)


def test_set_and_remove_profile_then_reset(sim: Simulator, client: groq.Groq) -> None:
    sim.set_profile("sim/new", ModelProfile(owned_by="Someone"))
    sim.remove_profile(HIDDEN)
    assert [m.id for m in client.models.list().data] == [FAST, OTHER, "sim/new"]
    with pytest.raises(groq.NotFoundError):
        chat(client, HIDDEN)
    sim.set_profile(FAST, ModelProfile(retired="decommissioned"))
    with pytest.raises(groq.BadRequestError):
        chat(client)
    sim.script(FAST, "rate_limit")
    sim.reset()
    assert sim.requests == [] and sim.calls(FAST) == 0
    assert [m.id for m in client.models.list().data] == [FAST, OTHER]
    assert chat(client).choices[0].finish_reason == "stop"  # profile restored, script gone
    assert chat(client, HIDDEN).choices[0].finish_reason == "stop"


# -- retirement --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("retire_as", "exc_type", "code"),
    [
        ("decommissioned", groq.BadRequestError, "model_decommissioned"),
        ("not_found", groq.NotFoundError, "model_not_found"),
    ],
)
def test_retire_after(
    sim: Simulator, client: groq.Groq, retire_as: str, exc_type: type[groq.APIStatusError], code: str
) -> None:
    sim.set_profile(FAST, ModelProfile(retire_after=2, retire_as=retire_as))
    assert chat(client).choices[0].finish_reason == "stop"
    assert chat(client).choices[0].finish_reason == "stop"
    for _ in range(2):
        with pytest.raises(exc_type) as info:
            chat(client)
        assert info.value.body["error"]["code"] == code
    assert [r.outcome for r in sim.requests] == ["ok", "ok", retire_as, retire_as]


# -- profiles and TOML -------------------------------------------------------------------------------


def test_shipped_toml(tmp_path: Path) -> None:
    profiles = load_profiles()
    live = ["openai/gpt-oss-20b", "openai/gpt-oss-120b", "qwen/qwen3.8-27b", "openai/gpt-oss-safeguard-20b"]
    retired = {
        "qwen/qwen3.6-27b": "not_found",
        "groq/compound": "not_found",
        "llama-3.1-8b-instant": "not_found",
        "llama-3.3-70b-versatile": "not_found",
        "mixtral-8x7b-32768": "decommissioned",
    }
    assert set(profiles) == set(live) | set(retired)
    for name in live:
        profile = profiles[name]
        assert profile.retired is None and profile.listed and profile.active
        assert 40 <= profile.latency_ms <= 300
        assert 0 < sum(profile.fault_rates.values()) <= 0.05
    for name, kind in retired.items():
        assert profiles[name].retired == kind
    assert load_default_profile() is None
    with Simulator.from_toml() as shipped, groq.Groq(base_url=shipped.base_url, api_key="k", max_retries=0) as c:
        assert [m.id for m in c.models.list().data] == live
        with pytest.raises(groq.NotFoundError):
            chat(c, "qwen/qwen3.6-27b")
        with pytest.raises(groq.BadRequestError) as info:
            chat(c, "mixtral-8x7b-32768")
        assert info.value.body["error"]["code"] == "model_decommissioned"


def test_load_custom_toml(tmp_path: Path) -> None:
    path = tmp_path / "profiles.toml"
    path.write_text(
        '[default]\ncompletion_tokens = 5\n\n[models."a/b"]\nactive = false\nlatency_ms = 10.0\n'
        "fault_rates = { rate_limit = 0.25, disconnect = 0.5 }\n"
    )
    profiles = load_profiles(path)
    assert profiles == {
        "a/b": ModelProfile(active=False, latency_ms=10.0, fault_rates={"rate_limit": 0.25, "disconnect": 0.5})
    }
    assert load_default_profile(path) == ModelProfile(completion_tokens=5)
    sim = Simulator.from_toml(path)
    with sim, groq.Groq(base_url=sim.base_url, api_key="k", max_retries=0) as c:
        assert chat(c, "x/y").usage.completion_tokens == 5


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ('[models."a"]\nlatncy_ms = 1.0\n', "unknown key"),
        ('[models."a"]\nfault_rates = { rate_limt = 0.1 }\n', "unknown fault"),
        ('[models."a"]\nfault_rates = { rate_limit = 0.7, capacity = 0.7 }\n', "sum to at most 1"),
        ('[models."a"]\nretired = "gone"\n', "retired must be"),
        ("[modles]\n", "unknown top-level"),
    ],
)
def test_bad_toml_is_rejected(tmp_path: Path, text: str, error: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ValueError, match=error):
        load_profiles(path)


def test_no_model_names_in_package_code() -> None:
    names = set(load_profiles())
    for source in DEFAULT_PROFILES_PATH.parent.glob("*.py"):
        text = source.read_text()
        assert not [n for n in names if n in text], source.name


# -- seeded faults -----------------------------------------------------------------------------------


def outcomes_with_seed(seed: int, count: int) -> list[str]:
    profile = ModelProfile(fault_rates={"rate_limit": 0.2, "server_error": 0.1, "capacity": 0.1})
    with Simulator({FAST: profile, OTHER: profile}, seed=seed) as seeded:
        with httpx.Client(base_url=seeded.base_url) as http:
            for i in range(count):
                http.post("/openai/v1/chat/completions", json={"model": FAST, "messages": MESSAGES})
                if i % 3 == 0:  # interleaved traffic to another model must not shift FAST's draws
                    http.post("/openai/v1/chat/completions", json={"model": OTHER, "messages": MESSAGES})
        first = [r.outcome for r in seeded.requests if r.model == FAST]
        seeded.reset()
        with httpx.Client(base_url=seeded.base_url) as http:
            for _ in range(count):
                http.post("/openai/v1/chat/completions", json={"model": FAST, "messages": MESSAGES})
        assert [r.outcome for r in seeded.requests] == first  # reset restarts the draws
    return first


@pytest.mark.slow
def test_fault_rates_are_seeded_and_reproducible() -> None:
    first = outcomes_with_seed(7, 200)
    assert outcomes_with_seed(7, 200) == first
    assert outcomes_with_seed(8, 200) != first
    counts = {name: first.count(name) for name in ("ok", "rate_limit", "server_error", "capacity")}
    assert sum(counts.values()) == 200
    assert 0.45 < counts["ok"] / 200 < 0.75 and 0.1 < counts["rate_limit"] / 200 < 0.3


# -- HTTP plumbing, concurrency and lifecycle -------------------------------------------------------


def raw_exchange(sim: Simulator, payload: bytes, responses: int = 1) -> list[bytes]:
    """Send raw bytes on one connection and read `responses` Content-Length-framed answers."""
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as sock:
        sock.sendall(payload)
        buffer, answers = b"", []
        while len(answers) < responses:
            chunk = sock.recv(65536)
            if not chunk:
                break
            buffer += chunk
            while b"\r\n\r\n" in buffer:
                head, rest = buffer.split(b"\r\n\r\n", 1)
                length = int(re.search(rb"content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
                if len(rest) < length:
                    break
                answers.append(head + b"\r\n\r\n" + rest[:length])
                buffer = rest[length:]
        return answers


def test_keep_alive_pipelining_and_chunked_bodies(sim: Simulator) -> None:
    body = json.dumps({"model": FAST, "messages": MESSAGES}).encode()
    plain = b"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    half = len(body) // 2
    chunked = (
        b"POST /openai/v1/chat/completions HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
        b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (half, body[:half], len(body) - half, body[half:])
    )
    closing = plain.replace(b"host: x\r\n", b"host: x\r\nconnection: close\r\n")
    answers = raw_exchange(sim, plain + chunked + closing, responses=3)
    assert len(answers) == 3
    assert all(a.startswith(b"HTTP/1.1 200 OK\r\n") for a in answers)
    assert b"connection: close" in answers[2] and b"connection: close" not in answers[0]
    assert sim.calls(FAST) == 3


@pytest.mark.slow
def test_two_hundred_concurrent_requests() -> None:
    # Every request waits 1.5 s server-side; each answer notes how many requests the simulator had received when
    # it came. Served one after another, the first would come after one request; served together, after all 200.
    profile = ModelProfile(latency_ms=1500.0, latency_sigma=0.0)
    received_by_then: list[int] = []

    async def one(client: groq.AsyncGroq, i: int, busy: Simulator) -> Any:
        question = [{"role": "user", "content": f"question {i}"}]
        answer = await client.chat.completions.create(model=FAST, messages=question)
        received_by_then.append(busy.calls(FAST))
        return answer

    async def run(busy: Simulator) -> list[Any]:
        base_url = busy.base_url
        clients = [
            groq.AsyncGroq(
                base_url=base_url,
                api_key="k",
                max_retries=0,
                http_client=httpx.AsyncClient(limits=httpx.Limits(max_connections=50)),
            )
            for _ in range(4)
        ]
        try:
            return await asyncio.gather(*(one(clients[i % 4], i, busy) for i in range(200)))
        finally:
            for c in clients:
                await c.close()

    with Simulator({FAST: profile}) as busy:
        results = asyncio.run(run(busy))
        assert busy.calls(FAST) == 200
    assert received_by_then == [200] * 200
    assert sorted(r.choices[0].message.content for r in results) == sorted(
        f"[{FAST}] Simulated reply to: question {i}" for i in range(200)
    )


def test_stop_ends_hung_connections_and_lifecycle() -> None:
    fresh = Simulator({FAST: ModelProfile()})
    with pytest.raises(RuntimeError):
        _ = fresh.base_url
    fresh.start()
    assert fresh.start() is fresh
    fresh.script(FAST, "hang")
    errors: list[BaseException] = []

    thread = start_hung_call(fresh, timeout=30, errors=errors)
    fresh.stop()
    thread.join(5)
    # The stop ended the call (the client would have waited 30 s): a dropped connection, not a timeout.
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], groq.APIConnectionError)
    assert not isinstance(errors[0], groq.APITimeoutError)
    fresh.stop()  # idempotent
    with fresh, groq.Groq(base_url=fresh.base_url, api_key="k", max_retries=0) as c:  # restartable
        assert chat(c).choices[0].finish_reason == "stop"


def test_port_in_use_fails_start(sim: Simulator) -> None:
    with pytest.raises(OSError):
        Simulator(port=sim.port).start()


@pytest.mark.slow
def test_command_line_server(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[models."a/b"]\n')
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.simulator", "--port", str(port), "--profiles", str(path), "--api-key", "kk"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == f"http://127.0.0.1:{port}"
        with groq.Groq(base_url=f"http://127.0.0.1:{port}", api_key="kk", max_retries=0) as c:
            assert [m.id for m in c.models.list().data] == ["a/b"]
            assert chat(c, "a/b").choices[0].finish_reason == "stop"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_a_simulator_bug_answers_500_not_a_dropped_connection() -> None:
    async def broken(request: Request) -> Response:
        raise RuntimeError("bug")

    async def run() -> httpx.Response:
        server = HttpServer(broken)
        port = await server.start()
        try:
            async with httpx.AsyncClient() as http:
                return await http.get(f"http://127.0.0.1:{port}/anything")
        finally:
            await server.close()

    response = asyncio.run(run())
    assert response.status_code == 500 and response.json()["error"]["type"] == "simulator_error"

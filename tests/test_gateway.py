"""`taskrouter serve`: a real uvicorn server on 127.0.0.1 in front of a router on the simulator, driven by the
official `openai` SDK, a client nobody here wrote."""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import openai
import pytest
from conftest import TEST_KEY, USER, logged_rows
from gateway_server import Served, serve_command

from app.commands.serve import check_exposure
from app.config import load_settings
from app.core import ai_models
from app.core.router import Router
from app.errors import ConfigError
from app.gateway import create_app
from app.simulator import ModelProfile, Simulator


class Gateway:
    """A gateway without keys in front of `router`, served (tests/gateway_server.py), with the openai SDK on it."""

    def __init__(self, router: Router, served: Served) -> None:
        self.router = router
        self.url = served.url
        self.client = served.openai()


@pytest.fixture
def serve(make_router: Callable[..., Router], served: Callable[..., Served]) -> Callable[..., Gateway]:
    """`serve(**settings)`: a gateway in front of a router with those settings; stopped after the test."""

    def start(**settings: object) -> Gateway:
        router = make_router(**settings)
        return Gateway(router, served(create_app(router.settings, router=router, require_keys=False)))

    return start


@pytest.fixture
def gateway(serve: Callable[..., Gateway]) -> Gateway:
    return serve()


def fails_always(sim: Simulator, models: list[str], fault: str) -> None:
    for model in models:
        sim.set_profile(model, ModelProfile(fault_rates={fault: 1.0}))


def only(task: str, model: str) -> None:
    """A task with one model and no universal fallback list behind it."""
    ai_models.MODEL_REGISTRY[task] = [model]
    ai_models.MODEL_REGISTRY["fallback"] = []


def test_a_chat_completion(gateway: Gateway, db_path: Path) -> None:
    raw = gateway.client.chat.completions.with_raw_response.create(model="fast", messages=USER, max_tokens=7)
    completion = raw.parse()
    first = ai_models.MODEL_REGISTRY["fast"][0]
    assert completion.model == first
    assert completion.object == "chat.completion"
    assert first in (completion.choices[0].message.content or "")
    assert completion.choices[0].finish_reason == "length"  # the simulator fills max_tokens
    assert completion.usage is not None and completion.usage.completion_tokens == 7
    extension = (completion.model_extra or {})["x_taskrouter"]
    (row,) = logged_rows(db_path)
    assert (extension["request_id"], extension["task"], extension["fallback_used"]) == (
        row["request_id"],
        "fast",
        False,
    )
    assert [a["outcome"] for a in extension["attempts"]] == ["success"]
    assert raw.headers["x-taskrouter-request-id"] == row["request_id"]
    assert (raw.headers["x-taskrouter-task"], raw.headers["x-taskrouter-attempts"]) == ("fast", "1")
    assert completion.id == f"chatcmpl-{row['request_id']}"


def test_a_variant_is_named_by_its_registry_key(gateway: Gateway, db_path: Path) -> None:
    ai_models.MODEL_REGISTRY["fast:landing"] = ["landing-model"]
    completion = gateway.client.chat.completions.create(model="fast:landing", messages=USER)
    assert completion.model == "landing-model"
    extension = (completion.model_extra or {})["x_taskrouter"]
    assert (extension["task"], extension["variant"]) == ("fast", "landing")


def test_a_stream_with_usage(gateway: Gateway, db_path: Path) -> None:
    chunks = list(
        gateway.client.chat.completions.create(
            model="fast", messages=USER, stream=True, stream_options={"include_usage": True}, max_tokens=5
        )
    )
    first = ai_models.MODEL_REGISTRY["fast"][0]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    (row,) = logged_rows(db_path)
    assert (row["outcome"], row["model"]) == ("success", first)
    assert first in text
    assert {c.model for c in chunks} == {first}
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    usage = chunks[-1]
    assert usage.choices == [] and usage.usage is not None and usage.usage.completion_tokens == 5
    assert (
        chunks[-2].model_extra is not None and chunks[-2].model_extra["x_taskrouter"]["request_id"] == row["request_id"]
    )


def test_a_stream_without_usage_has_none(gateway: Gateway) -> None:
    chunks = list(gateway.client.chat.completions.create(model="fast", messages=USER, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


def test_a_fallback_the_client_never_sees(gateway: Gateway, sim: Simulator, db_path: Path) -> None:
    first, second = gateway.router.chain_for("fast").models[:2]
    fails_always(sim, [first], "unavailable")
    raw = gateway.client.chat.completions.with_raw_response.create(model="fast", messages=USER)
    completion = raw.parse()
    assert completion.model == second
    assert (completion.model_extra or {})["x_taskrouter"]["fallback_used"] is True
    assert raw.headers["x-taskrouter-fallback-used"] == "true"
    streamed = list(gateway.client.chat.completions.create(model="fast", messages=USER, stream=True))
    assert {c.model for c in streamed} == {second}
    assert [r["model"] for r in logged_rows(db_path) if r["outcome"] == "success"] == [second, second]


def test_an_unknown_task_is_a_404_listing_the_tasks(gateway: Gateway, sim: Simulator) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        gateway.client.chat.completions.create(model="gpt-4o", messages=USER)
    assert caught.value.code == "model_not_found"
    assert (
        "'gpt-4o'" in caught.value.message and "one of fallback, fast, reasoning, summarization" in caught.value.message
    )
    assert sim.requests == []


def test_bad_messages_and_parameters_are_400s(gateway: Gateway, sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client.chat.completions.create(model="fast", messages=[{"role": "wizard", "content": "hi"}])
    assert caught.value.code == "invalid_messages"
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client.chat.completions.create(model="fast", messages=USER, temperature=7)
    assert (caught.value.code, caught.value.param) == ("invalid_parameter", "temperature")
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client.chat.completions.create(model="fast", messages=[])
    assert caught.value.param == "messages"
    broken = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{not json")
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "invalid_json")
    not_an_object = httpx.post(f"{gateway.url}/v1/chat/completions", json=["fast"])
    assert (not_an_object.status_code, not_an_object.json()["error"]["param"]) == (400, "body")
    assert sim.requests == []


def test_every_model_failing_is_a_503(gateway: Gateway, sim: Simulator, db_path: Path) -> None:
    only("solo", "solo-model")
    fails_always(sim, ["solo-model"], "unavailable")
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client.chat.completions.create(model="solo", messages=USER)
    assert (caught.value.status_code, caught.value.code) == (503, "all_models_failed")
    rows = logged_rows(db_path)
    assert rows and caught.value.response.headers["x-taskrouter-request-id"] == rows[0]["request_id"]
    with pytest.raises(openai.InternalServerError) as caught:  # before the first token: an HTTP error too
        list(gateway.client.chat.completions.create(model="solo", messages=USER, stream=True))
    assert caught.value.status_code == 503


def test_every_model_rate_limited_is_a_429_with_retry_after(gateway: Gateway, sim: Simulator) -> None:
    only("solo", "solo-model")
    # A wait longer than the request's deadline: the router does not wait, it marks the model until then.
    sim.script("solo-model", *[{"fault": "rate_limit", "retry_after": 60}] * 3)
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.client.chat.completions.create(model="solo", messages=USER)
    assert caught.value.code == "rate_limit_exceeded"
    assert 50 <= int(caught.value.response.headers["retry-after"]) <= 60
    ready = httpx.get(f"{gateway.url}/readyz")  # the task's only model is marked until then
    assert ready.status_code == 503
    assert ready.json()["problems"] == ["solo: every model is held back (solo-model)"]


def test_the_deadline_is_a_504(serve: Callable[..., Gateway], sim: Simulator) -> None:
    gateway = serve(llm_request_deadline_seconds=0.5)
    only("solo", "solo-model")
    sim.script("solo-model", {"fault": "hang", "seconds": 3})
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client.chat.completions.create(model="solo", messages=USER)
    assert (caught.value.status_code, caught.value.code) == (504, "deadline_exceeded")


def test_the_budget_spent_is_a_429(serve: Callable[..., Gateway], sim: Simulator) -> None:
    gateway = serve(daily_budget_usd=0.0000001)
    gateway.client.chat.completions.create(model="fast", messages=USER)  # spends it
    calls = len(sim.requests)
    with pytest.raises(openai.RateLimitError) as caught:
        gateway.client.chat.completions.create(model="fast", messages=USER)
    assert caught.value.code == "budget_exceeded"
    assert len(sim.requests) == calls


def test_the_tasks_are_the_models(gateway: Gateway) -> None:
    models = {m.id: m for m in gateway.client.models.list()}
    assert set(models) == set(ai_models.MODEL_REGISTRY)
    fast = (models["fast"].model_extra or {})["x_taskrouter"]
    assert fast["task"] == "fast" and fast["chain"] == list(gateway.router.chain_for("fast").models)
    assert fast["chain"][0] == ai_models.MODEL_REGISTRY["fast"][0]


def test_health_and_readiness(gateway: Gateway, sim: Simulator) -> None:
    assert httpx.get(f"{gateway.url}/healthz").json() == {"status": "ok"}
    ready = httpx.get(f"{gateway.url}/readyz")
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


def test_a_client_leaving_a_stream_cancels_it(gateway: Gateway, sim: Simulator, db_path: Path) -> None:
    first = ai_models.MODEL_REGISTRY["fast"][0]
    sim.script(first, {"fault": "stream_stall", "after_chunks": 1, "seconds": None})
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", json={"model": "fast", "messages": USER, "stream": True}
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        assert next(lines).startswith("data: ")  # the role chunk, then the first token: the model is stalled
    assert [(r["model"], r["error_kind"]) for r in wait_for_rows(db_path)] == [(first, "cancelled")]


def wait_for_rows(db_path: Path) -> list[dict]:
    """The rows once the server, on its own thread, has recorded the request."""
    rows: list[dict] = []
    deadline = time.monotonic() + 10
    while not rows and time.monotonic() < deadline:
        rows = logged_rows(db_path)
        time.sleep(0.02)
    return rows


def test_a_client_leaving_before_the_answer_cancels_it(gateway: Gateway, sim: Simulator, db_path: Path) -> None:
    first = ai_models.MODEL_REGISTRY["fast"][0]
    sim.script(first, {"fault": "hang", "seconds": 5})
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway.url}/v1/chat/completions", json={"model": "fast", "messages": USER}, timeout=0.5)
    assert [(r["model"], r["error_kind"]) for r in wait_for_rows(db_path)] == [(first, "cancelled")]


def test_a_client_leaving_before_the_first_token_cancels_the_stream(
    gateway: Gateway, sim: Simulator, db_path: Path
) -> None:
    first = ai_models.MODEL_REGISTRY["fast"][0]
    sim.script(first, {"fault": "hang", "seconds": 5})
    body = {"model": "fast", "messages": USER, "stream": True}
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway.url}/v1/chat/completions", json=body, timeout=0.5)
    assert [(r["model"], r["error_kind"]) for r in wait_for_rows(db_path)] == [(first, "cancelled")]


def test_a_stream_broken_after_its_first_token_ends_with_an_error_event(
    gateway: Gateway, sim: Simulator, db_path: Path
) -> None:
    first = ai_models.MODEL_REGISTRY["fast"][0]
    sim.script(first, {"fault": "stream_cut", "after_chunks": 2})
    received: list[str] = []
    with pytest.raises(
        openai.APIError,
    ) as caught:
        for chunk in gateway.client.chat.completions.create(model="fast", messages=USER, stream=True):
            received.append(chunk.choices[0].delta.content or "")
    assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "stream_interrupted"
    assert len([r for r in received if r]) == 2  # the text sent before the cut, from the model that started
    assert [(r["model"], r["outcome"]) for r in logged_rows(db_path)] == [(first, "failure")]


def test_tool_calls_plain_and_streamed(gateway: Gateway, sim: Simulator) -> None:
    first = ai_models.MODEL_REGISTRY["fast"][0]
    call = {"name": "lookup", "arguments": '{"city": "Paris"}'}
    sim.script(first, {"fault": "ok", "tool_calls": [call]}, {"fault": "ok", "tool_calls": [call]})
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    completion = gateway.client.chat.completions.create(model="fast", messages=USER, tools=tools)
    assert completion.choices[0].finish_reason == "tool_calls"
    [plain] = completion.choices[0].message.tool_calls or []
    assert (plain.function.name, plain.function.arguments) == ("lookup", '{"city": "Paris"}')
    chunks = list(gateway.client.chat.completions.create(model="fast", messages=USER, tools=tools, stream=True))
    [streamed] = [d for c in chunks for d in (c.choices[0].delta.tool_calls or [])]
    assert streamed.function is not None and streamed.function.arguments == '{"city": "Paris"}'
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_routers_own_options_are_not_taken_from_the_body(gateway: Gateway, sim: Simulator) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        gateway.client.chat.completions.create(model="fast", messages=USER, extra_body={"started": 0})
    assert caught.value.param == "started"
    assert sim.requests == []


class BrokenProvider:
    """A custom provider with a bug: it raises what no provider may."""

    async def complete(self, *args: object) -> object:
        raise KeyError("a secret the client must not see")


def test_a_fault_of_the_gateway_is_a_500_in_openais_shape(
    sim: Simulator, db_path: Path, served: Callable[..., Served]
) -> None:
    settings = load_settings(env_file=None, groq_api_key=TEST_KEY, groq_base_url=sim.base_url, attempts_db_path=db_path)
    router = Router(
        settings,
        registry=lambda: ai_models.MODEL_REGISTRY,
        catalog=lambda: ai_models.MODEL_CATALOG,
        providers={"groq": BrokenProvider()},  # type: ignore[dict-item]
    )
    gateway = Gateway(router, served(create_app(settings, router=router, require_keys=False)))
    with pytest.raises(openai.InternalServerError) as caught:
        gateway.client.chat.completions.create(model="fast", messages=USER)
    assert (caught.value.status_code, caught.value.code) == (500, "internal_error")
    assert "secret" not in caught.value.response.text


def test_serve_without_keys_is_refused_off_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    assert main(["serve", "--no-auth", "--host", "0.0.0.0"]) == 2
    assert "loopback host only" in capsys.readouterr().err


def test_no_auth_is_for_loopback_only() -> None:
    check_exposure("127.0.0.1", no_auth=True)
    check_exposure("::1", no_auth=True)
    check_exposure("localhost", no_auth=True)
    with pytest.raises(ConfigError, match="loopback host only"):
        check_exposure("0.0.0.0", no_auth=True)
    check_exposure("0.0.0.0", no_auth=False)  # with keys, any interface


IN_FLIGHT = 20


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_taskrouter_serve_answers_and_stops_cleanly_on_sigterm(sim: Simulator, db_path: Path, workers: int) -> None:
    """The command as a user runs it: its own routers from the environment, uvicorn; SIGTERM with requests in flight
    lets each finish and writes every row."""
    env = {
        "GROQ_API_KEY": TEST_KEY,
        "GROQ_BASE_URL": sim.base_url,
        "ATTEMPTS_DB_PATH": str(db_path),
        "LLM_TIMEOUT_SECONDS": "10",
    }
    with serve_command(["--no-auth", "--workers", str(workers)], env) as (child, url):
        first = ai_models.MODEL_REGISTRY["fast"][0]
        sim.set_profile(first, ModelProfile(latency_ms=1500, latency_sigma=0))  # long enough to be caught in flight
        with (
            openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30) as client,
            ThreadPoolExecutor(IN_FLIGHT) as pool,
        ):
            calls = [pool.submit(client.chat.completions.create, model="fast", messages=USER) for _ in range(IN_FLIGHT)]
            deadline = time.monotonic() + 30
            while sim.calls(first) < IN_FLIGHT:  # every request has reached the model, none has its answer yet
                assert time.monotonic() < deadline, "the requests did not reach the simulator"
                time.sleep(0.01)
            assert not any(c.done() for c in calls)
            child.send_signal(signal.SIGTERM)
            answers = [c.result(timeout=30) for c in calls]  # each finished, none refused
        assert child.wait(30) == 0
    ids = {(a.model_extra or {})["x_taskrouter"]["request_id"] for a in answers}
    with sqlite3.connect(db_path) as conn:  # no flush from this process: the children wrote them before exiting
        rows = conn.execute("SELECT request_id, outcome FROM attempts").fetchall()
    # Every request's rows, and its answer among them; a loaded machine may add a timed-out attempt before it.
    assert len(ids) == IN_FLIGHT and {r for r, _ in rows} == ids
    assert sorted(r for r, outcome in rows if outcome == "success") == sorted(ids)

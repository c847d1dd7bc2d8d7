"""OpenTelemetry spans of real requests (issue 24): the router on scripted models (app.testing, through the
`providers` seam) and on the simulator over real HTTP, with the OpenTelemetry SDK's in-memory exporter and its OTLP
exporter to a receiver on 127.0.0.1. Each test checks the span tree and exact attributes against the attempt log: one
request span, one child span per row that called a provider, skips as events, the caller's span as the parent."""

from __future__ import annotations

import asyncio
import http.server
import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY, is_setting, logged_rows
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
from opentelemetry.trace import SpanKind, StatusCode

from app.config import load_settings
from app.core import ai_models
from app.core.router import Router
from app.errors import BudgetExceededError, DeadlineExceededError, ProviderTimeout
from app.providers import Endpoint, ProviderResponse
from app.registry.catalog import ModelInfo
from app.simulator import Simulator
from app.store import open_database
from app.store.overrides import DISABLE, set_override
from app.telemetry import Telemetry
from app.testing import FakeClock, FakeModels, failure, reply

pytestmark = pytest.mark.anyio

A, B, C = "openai/gpt-oss-120b", "openai/gpt-oss-20b", "qwen/qwen3.8-27b"  # priced in the shipped catalog
REGISTRY: dict[str, list[str]] = {"pair": [A, B], "solo": [A], "trio": [A, B, C], "fallback": []}
KEY = "gsk_SPANS_only_in_the_settings_7Qz9Xw4Lp2"  # must never reach a span
USER = [{"role": "user", "content": "Summarise the quarter in one line"}]
USAGE = {"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16}
ANSWER = reply("Sales rose 4 %", usage=USAGE)
DETAILS = "gen_ai.client.inference.operation.details"


# -- the scene: a router on scripted models, its spans and its attempt log ---------------------------------------


class Scripted:
    """app.testing's scripted models behind a provider that can take time. A model in `slow` does not answer until
    the router cancels its call (a hedge's slower call). A model in `hung` gives up when its timeout has passed on
    the test's FakeClock, as a client's read timeout does, at once in real time. A stream's first chunk takes
    `first_chunk` seconds on that clock."""

    def __init__(
        self,
        fake: FakeModels,
        clock: FakeClock,
        *,
        slow: Sequence[str] = (),
        hung: Sequence[str] = (),
        first_chunk: float = 0.0,
    ) -> None:
        self.fake, self.clock = fake, clock
        self.slow, self.hung, self.first_chunk = frozenset(slow), frozenset(hung), first_chunk

    async def _wait(self, model: str, timeout: float) -> None:
        if model in self.slow:
            await asyncio.Event().wait()  # until cancelled
        if model in self.hung:
            self.clock.advance(timeout)
            raise ProviderTimeout(f"no answer within {timeout:g}s")

    async def complete(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> ProviderResponse:
        await self._wait(model, timeout)
        return await self.fake.complete(endpoint, model, messages, params, timeout)

    async def open_stream(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> Any:
        await self._wait(model, timeout)
        stream = await self.fake.open_stream(endpoint, model, messages, params, timeout)
        self.clock.advance(self.first_chunk)
        return stream

    async def list_models(self, endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
        return await self.fake.list_models(endpoint, timeout)


@dataclass
class Scene:
    router: Router
    fake: FakeModels
    clock: FakeClock
    exporter: InMemorySpanExporter
    provider: TracerProvider
    db_path: Path

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    async def rows(self) -> list[dict[str, Any]]:
        await self.router.aclose()  # every row written
        return logged_rows(self.db_path)


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Callable[..., Scene]]:
    """`scene(script, slow=..., hung=..., first_chunk=..., **settings)`: a router of its own on `script`, a FakeClock
    and a TracerProvider of the test's (never the global one) whose spans an in-memory exporter keeps."""
    providers: list[TracerProvider] = []

    def make(
        script: Mapping[str, Any],
        *,
        slow: Sequence[str] = (),
        hung: Sequence[str] = (),
        first_chunk: float = 0.0,
        registry: Mapping[str, list[str]] = REGISTRY,
        catalog: Mapping[str, ModelInfo] | None = None,
        sampler: Sampler | None = None,
        **settings: Any,
    ) -> Scene:
        exporter = InMemorySpanExporter()
        provider = TracerProvider(sampler=sampler)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
        clock = FakeClock()
        fake = FakeModels(script)
        scripted = Scripted(fake, clock, slow=slow, hung=hung, first_chunk=first_chunk)
        db_path = tmp_path / f"attempts-{len(providers)}.db"
        loaded = load_settings(
            env_file=None, **{"groq_api_key": KEY, "attempts_db_path": db_path, "alert_webhook_url": None, **settings}
        )
        tables = dict(ai_models.MODEL_CATALOG) | dict(catalog or {})
        router = Router(
            loaded,
            registry=lambda: registry,
            catalog=lambda: tables,
            providers={"groq": scripted, "openai_compatible": scripted},
            clock=clock.clock,
            telemetry=Telemetry(tracer_provider=provider),
        )
        return Scene(router, fake, clock, exporter, provider, db_path)

    yield make
    for provider in providers:
        provider.shutdown()


# -- what every test checks: the tree against the attempt log --------------------------------------------------


def request_spans(spans: Sequence[ReadableSpan]) -> dict[str, ReadableSpan]:
    """The request spans by request id."""
    return {
        str(s.attributes["taskrouter.request_id"]): s
        for s in spans
        if s.attributes and "taskrouter.request_id" in s.attributes
    }


def children(spans: Sequence[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    """`parent`'s child spans, in the order they ended (the order their rows were recorded)."""
    return [s for s in spans if s.parent is not None and s.parent.span_id == parent.context.span_id]


def attrs(item: Any) -> dict[str, Any]:
    return dict(item.attributes or {})


def everything_said(spans: Sequence[ReadableSpan]) -> str:
    """Every attribute, event attribute, name and status description, as one text to search."""
    said: list[str] = []
    for span in spans:
        said += [span.name, span.status.description or "", repr(attrs(span))]
        said += [f"{e.name} {attrs(e)!r}" for e in span.events]
    return "\n".join(said)


def check_tree(
    spans: Sequence[ReadableSpan], rows: Sequence[Mapping[str, Any]], *, content: bool = False, callers: int = 0
) -> None:
    """Exactly one request span per request in the log; under it one `chat {model}` span per row that called a
    provider (answered or failed, in the rows' order) with that row's model, error kind, attempt, retry and hedged;
    each skip row an event on the request span, not a span; no other span but the test's own `callers`. The key
    appears nowhere, and prompts and answers (the conventions' details event) only with LOG_CONTENT."""
    by_request = request_spans(spans)
    assert sorted(by_request) == sorted({r["request_id"] for r in rows})
    accounted = 0
    for request_id, request in by_request.items():
        mine = [r for r in rows if r["request_id"] == request_id]
        called = [r for r in mine if r["outcome"] in ("success", "failure")]
        skipped = [r for r in mine if r["outcome"] == "skipped"]
        calls = children(spans, request)
        assert [(s.name, s.kind) for s in calls] == [(f"chat {r['model']}", SpanKind.CLIENT) for r in called]
        for span, row in zip(calls, called, strict=True):
            a = attrs(span)
            assert span.context.trace_id == request.context.trace_id
            assert (a["gen_ai.request.model"], a.get("error.type")) == (row["model"], row["error_kind"])
            assert (a["taskrouter.attempt"], a["taskrouter.retry"], a["taskrouter.hedged"]) == (
                row["attempt"],
                row["retry"],
                bool(row["hedged"]),
            )
            assert span.status.status_code is (StatusCode.ERROR if row["error_kind"] else StatusCode.UNSET)
            assert span.end_time - span.start_time == int(row["latency_ms"] * 1_000_000)
        skips = [e for e in request.events if e.name == "taskrouter.skip"]
        assert [(attrs(e)["gen_ai.request.model"], attrs(e)["error.type"]) for e in skips] == [
            (r["model"], r["error_kind"]) for r in skipped
        ]
        assert [attrs(e)["taskrouter.reason"] for e in skips] == [r["error_message"][:512] for r in skipped]
        accounted += 1 + len(calls)
    assert len(spans) == accounted + callers  # nothing else: a skip is never a span
    assert KEY not in everything_said(spans)
    details = [e for s in spans for e in s.events if e.name == DETAILS]
    if not content:
        assert details == [] and "gen_ai.input.messages" not in everything_said(spans)


def request_attrs(task: str, response_or_error: Any, chain: Sequence[str], **more: Any) -> dict[str, Any]:
    """A request span's attributes: what every request has, and `more`."""
    return {
        "taskrouter.task": task,
        "taskrouter.request_id": response_or_error.request_id,
        "taskrouter.chain": tuple(chain),
        "taskrouter.deadline_seconds": 30.0,
        "taskrouter.forced": False,
        "gen_ai.request.stream": False,
        **more,
    }


def call_attrs(model: str, *, attempt: int, retry: int = 0, hedged: bool = False, **more: Any) -> dict[str, Any]:
    """A Groq call's span attributes: what every call has, and `more`."""
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "groq",
        "gen_ai.system": "groq",
        "gen_ai.request.model": model,
        "taskrouter.attempt": attempt,
        "taskrouter.retry": retry,
        "taskrouter.hedged": hedged,
        "taskrouter.from_fallback_list": False,
        "server.address": "api.groq.com",
        "server.port": 443,
        **more,
    }


def answered(model: str, response_id: str, usage: Mapping[str, int] = USAGE, finish: str = "stop") -> dict[str, Any]:
    """The attributes an answered call adds."""
    return {
        "gen_ai.response.model": model,
        "gen_ai.usage.input_tokens": usage["prompt_tokens"],
        "gen_ai.usage.output_tokens": usage["completion_tokens"],
        "gen_ai.response.finish_reasons": (finish,),
        "gen_ai.response.id": response_id,
    }


def only(spans: Sequence[ReadableSpan]) -> tuple[ReadableSpan, list[ReadableSpan]]:
    """The one request span and its chat spans."""
    requests = list(request_spans(spans).values())
    assert len(requests) == 1, [s.name for s in spans]
    return requests[0], children(spans, requests[0])


# -- the scenarios -------------------------------------------------------------------------------------------


async def test_a_clean_call_is_a_request_span_with_one_chat_span(scene):
    s = scene({A: ANSWER})
    response = await s.router.execute("solo", USER, max_tokens=64, temperature=0.3)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    request, (chat,) = only(spans)
    assert (request.name, request.kind, request.parent) == ("taskrouter solo", SpanKind.INTERNAL, None)
    assert attrs(request) == request_attrs(
        "solo",
        response,
        [A],
        **{
            "taskrouter.ending": "answered",
            "gen_ai.response.model": A,
            "taskrouter.fallback_used": False,
            "taskrouter.cost_usd": rows[0]["cost_usd"],
        },
    )
    assert rows[0]["cost_usd"] == pytest.approx((11 * 0.15 + 5 * 0.60) / 1e6)
    assert response.cost_usd == rows[0]["cost_usd"]
    assert request.status.status_code is StatusCode.UNSET
    assert attrs(chat) == call_attrs(
        A,
        attempt=1,
        **{"gen_ai.request.max_tokens": 64, "gen_ai.request.temperature": 0.3},
        **answered(A, "fake-1"),
    )
    assert chat.status.status_code is StatusCode.UNSET and chat.events == ()


async def test_a_fallback_after_a_429_is_a_failed_chat_span_then_an_answered_one(scene):
    s = scene({A: failure("rate_limited", retry_after=5), B: ANSWER})
    response = await s.router.execute("pair", USER, max_tokens=64)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        (A, "failure", "rate_limited"),
        (B, "success", None),
    ]
    request, (limited, fallback) = only(spans)
    assert attrs(request)["taskrouter.ending"] == "answered"
    assert (attrs(request)["gen_ai.response.model"], attrs(request)["taskrouter.fallback_used"]) == (B, True)
    assert response.model_used == B and response.fallback_used
    assert attrs(limited) == call_attrs(
        A,
        attempt=1,
        **{"gen_ai.request.max_tokens": 64, "error.type": "rate_limited", "http.response.status_code": 429},
    )
    assert (limited.status.status_code, limited.status.description) == (
        StatusCode.ERROR,
        "rate_limited: Rate limit reached. Please try again later",
    )
    assert attrs(fallback) == call_attrs(B, attempt=2, **{"gen_ai.request.max_tokens": 64}, **answered(B, "fake-2"))
    assert request.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize(("kind", "status"), [("server_error", 500), ("capacity", 498)])
async def test_a_retry_of_the_only_model_is_a_second_chat_span_with_its_retry_number(scene, kind, status):
    s = scene({A: [failure(kind), ANSWER]})
    response = await s.router.execute("solo", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    assert [(r["outcome"], r["error_kind"], r["retry"]) for r in rows] == [("failure", kind, 0), ("success", None, 1)]
    request, (first, again) = only(spans)
    assert attrs(first) == call_attrs(A, attempt=1, **{"error.type": kind, "http.response.status_code": status})
    assert attrs(again) == call_attrs(A, attempt=1, retry=1, **answered(A, "fake-2"))
    assert attrs(request)["taskrouter.ending"] == "answered" and response.model_used == A
    assert attrs(request)["taskrouter.fallback_used"] is False  # the same model again is no fallback


async def test_a_hedge_is_two_chat_spans_the_winner_hedged_the_loser_hedge_lost(scene):
    s = scene({B: ANSWER}, slow=[A])
    response = await s.router.execute("pair", USER, hedge_after_ms=5)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    assert [(r["model"], r["outcome"], r["error_kind"], r["hedged"]) for r in rows] == [
        (A, "failure", "hedge_lost", 0),
        (B, "success", None, 1),
    ]
    request, (lost, won) = only(spans)
    assert attrs(lost) == call_attrs(A, attempt=1, **{"error.type": "hedge_lost"})
    assert lost.status.description == "hedge_lost: cancelled: the other call of this hedged request answered first"
    assert attrs(won) == call_attrs(B, attempt=2, hedged=True, **answered(B, "fake-1"))
    assert attrs(request)["taskrouter.ending"] == "answered" and response.model_used == B


async def test_a_stream_records_its_time_to_first_chunk_and_is_marked_a_stream(scene):
    s = scene({A: ANSWER}, first_chunk=0.25)
    tracer = s.provider.get_tracer("agent")
    with tracer.start_as_current_span("agent step") as outer:
        stream = s.router.stream("solo", USER, max_tokens=32)
        text = "".join([delta async for delta in stream])
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows, callers=1)
    assert text == "Sales rose 4 %" and rows[0]["first_token_ms"] == 250.0
    request, (chat,) = only(spans)
    assert request.parent is not None and request.parent.span_id == outer.get_span_context().span_id
    assert attrs(request) == request_attrs(
        "solo",
        stream,
        [A],
        **{
            "gen_ai.request.stream": True,
            "taskrouter.ending": "answered",
            "gen_ai.response.model": A,
            "taskrouter.fallback_used": False,
            "taskrouter.cost_usd": rows[0]["cost_usd"],
        },
    )
    assert attrs(chat) == call_attrs(
        A,
        attempt=1,
        **{"gen_ai.request.max_tokens": 32, "gen_ai.response.time_to_first_chunk": 0.25},
        **answered(A, "fake-1"),
    )


async def test_a_deadline_ends_the_request_span_in_error_with_ending_deadline(scene):
    s = scene({}, hung=[A, B])
    with pytest.raises(DeadlineExceededError) as caught:
        await s.router.execute("pair", USER, timeout=0.6)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    # The first model may use two thirds of the time left while another remains untried; both are cut short.
    assert [(r["model"], r["error_kind"]) for r in rows] == [(A, "deadline"), (B, "deadline")]
    request, (first, second) = only(spans)
    a = attrs(request)
    assert a == request_attrs(
        "pair", caught.value, [A, B], **{"taskrouter.deadline_seconds": 0.6, "taskrouter.ending": "deadline"}
    ) | {"error.type": "deadline"}
    assert request.status.status_code is StatusCode.ERROR
    assert request.status.description == f"DeadlineExceededError: {str(caught.value)[:512]}"
    assert str(caught.value).startswith("pair: no answer within the request's deadline of 0.6s")
    for span, model, attempt in ((first, A, 1), (second, B, 2)):
        assert attrs(span) == call_attrs(model, attempt=attempt, **{"error.type": "deadline"})


async def test_a_budget_refusal_is_a_skip_event_and_no_chat_span(scene):
    # Nothing spent, the first call may go; its cost alone passes the tiny limit, so the next request's first
    # reservation is refused before any call.
    s = scene({"*": ANSWER}, daily_budget_usd=1e-9)
    first = await s.router.execute("solo", USER)
    with pytest.raises(BudgetExceededError) as caught:
        await s.router.execute("solo", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    refused = [r for r in rows if r["request_id"] == caught.value.request_id]
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in refused] == [(A, "skipped", "budget")]
    request = request_spans(spans)[caught.value.request_id]
    assert children(spans, request) == []
    assert attrs(request) == request_attrs(
        "solo", caught.value, [A], **{"taskrouter.ending": "budget", "error.type": "budget"}
    )
    assert request.status.status_code is StatusCode.ERROR
    assert request.status.description.startswith("BudgetExceededError: solo: ")
    (event,) = request.events
    assert (event.name, attrs(event)) == (
        "taskrouter.skip",
        {"gen_ai.request.model": A, "error.type": "budget", "taskrouter.reason": refused[0]["error_message"]},
    )
    assert attrs(request_spans(spans)[first.request_id])["taskrouter.ending"] == "answered"


async def test_a_disabled_and_a_circuit_open_model_are_skip_events_not_spans(scene):
    s = scene({B: failure("timeout"), C: ANSWER})  # one timeout opens B's breaker (BREAKER_OPEN_AFTER_TIMEOUTS=1)
    with open_database(s.db_path).conn as conn:
        set_override(conn, DISABLE, A, reason="flaky since 03:10", now_epoch=s.clock.now - 60)
    first = await s.router.execute("trio", USER)
    second = await s.router.execute("trio", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        (A, "skipped", "disabled"),
        (B, "failure", "timeout"),
        (C, "success", None),
        (A, "skipped", "disabled"),
        (B, "skipped", "circuit_open"),
        (C, "success", None),
    ]
    by_request = request_spans(spans)
    for response, skipped in ((first, [(A, "disabled")]), (second, [(A, "disabled"), (B, "circuit_open")])):
        request = by_request[response.request_id]
        assert [(e.name, attrs(e)["gen_ai.request.model"], attrs(e)["error.type"]) for e in request.events] == [
            ("taskrouter.skip", model, kind) for model, kind in skipped
        ]
        assert "flaky since 03:10" in attrs(request.events[0])["taskrouter.reason"]
        assert attrs(request)["gen_ai.response.model"] == C and attrs(request)["taskrouter.fallback_used"] is True
    assert [s.name for s in children(spans, by_request[first.request_id])] == [f"chat {B}", f"chat {C}"]
    assert [s.name for s in children(spans, by_request[second.request_id])] == [f"chat {C}"]
    assert attrs(children(spans, by_request[first.request_id])[0])["error.type"] == "timeout"


async def test_the_caller_s_current_span_is_the_request_span_s_parent(scene):
    s = scene({A: failure("server_error"), B: ANSWER})
    tracer = s.provider.get_tracer("agent")
    with tracer.start_as_current_span("agent step") as outer:
        response = await s.router.execute("pair", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows, callers=1)
    agent = next(span for span in spans if span.name == "agent step")
    request = request_spans(spans)[response.request_id]
    assert request.parent is not None and request.parent.span_id == outer.get_span_context().span_id
    assert request.context.trace_id == agent.context.trace_id
    calls = children(spans, request)
    assert [c.name for c in calls] == [f"chat {A}", f"chat {B}"]
    assert all(c.parent.span_id == request.context.span_id for c in calls)
    assert agent.parent is None and len(spans) == 4


async def test_a_cache_hit_is_an_event_on_its_request_span_and_no_chat_span(scene):
    s = scene({A: ANSWER}, response_cache_tasks="solo")
    first = await s.router.execute("solo", USER)
    hit = await s.router.execute("solo", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    assert hit.cached and [r["outcome"] for r in rows] == ["success", "cache_hit"]
    request = request_spans(spans)[hit.request_id]
    assert children(spans, request) == []
    assert [(e.name, attrs(e)) for e in request.events] == [("taskrouter.cache_hit", {"gen_ai.request.model": A})]
    assert request.start_time <= request.events[0].timestamp <= request.end_time
    a = attrs(request)
    assert (a["taskrouter.ending"], a["taskrouter.cached"], a["gen_ai.response.model"]) == ("cache_hit", True, A)
    assert [s.name for s in children(spans, request_spans(spans)[first.request_id])] == [f"chat {A}"]


async def test_a_span_opened_during_the_request_is_the_caller_s_child_the_request_span_never_current(scene):
    # Deliberate: the request's spans are drawn at its end, so nothing the course runs sees the request span as
    # current (docs/operations/monitoring.md, "The request span").
    inside: list[Any] = []
    box: dict[str, Any] = {}

    def answer(messages: Any, params: Any) -> Any:
        with box["tracer"].start_as_current_span("inside the call") as span:
            inside.append(span)
        return ANSWER

    s = scene({A: answer})
    box["tracer"] = tracer = s.provider.get_tracer("agent")
    with tracer.start_as_current_span("agent step") as outer:
        response = await s.router.execute("solo", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows, callers=2)
    request = request_spans(spans)[response.request_id]
    (opened,) = [span for span in spans if span.name == "inside the call"]
    assert len(inside) == 1 and opened.parent is not None
    assert opened.parent.span_id == outer.get_span_context().span_id != request.context.span_id
    assert request.parent is not None and request.parent.span_id == outer.get_span_context().span_id
    assert [c.name for c in children(spans, request)] == [f"chat {A}"]


async def test_log_content_adds_the_conventions_details_event_to_each_call(scene):
    s = scene({A: failure("rate_limited"), B: ANSWER}, log_content=True)
    await s.router.execute("pair", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows, content=True)
    request, (limited, fallback) = only(spans)
    assert request.events == ()
    prompt = [{"role": "user", "parts": [{"type": "text", "content": USER[0]["content"]}]}]
    ((name, details),) = [(e.name, attrs(e)) for e in limited.events]
    assert name == DETAILS and set(details) == {"gen_ai.input.messages"}  # a failed call answered nothing
    assert json.loads(details["gen_ai.input.messages"]) == prompt
    ((name, details),) = [(e.name, attrs(e)) for e in fallback.events]
    assert name == DETAILS
    assert json.loads(details["gen_ai.input.messages"]) == prompt
    assert json.loads(details["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "Sales rose 4 %"}], "finish_reason": "stop"}
    ]


async def test_log_content_shows_tool_calls_and_results_as_the_conventions_parts(scene):
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "sales"}'}}
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "Sales?"}]},
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "4 %"},
    ]
    s = scene({A: reply(tool_calls=[call], usage=USAGE)}, log_content=True)
    await s.router.execute("solo", messages)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows, content=True)
    _, (chat,) = only(spans)
    ((name, details),) = [(e.name, attrs(e)) for e in chat.events]
    assert name == DETAILS
    tool_call = {"type": "tool_call", "id": "call_1", "name": "lookup", "arguments": '{"q": "sales"}'}
    assert json.loads(details["gen_ai.input.messages"]) == [
        {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
        {"role": "user", "parts": [{"type": "text", "content": "Sales?"}]},
        {"role": "assistant", "parts": [tool_call]},
        {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "4 %"}]},
    ]
    assert json.loads(details["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [tool_call], "finish_reason": "tool_calls"}
    ]


async def test_an_openai_compatible_endpoint_shows_its_host_and_port_never_its_key(scene, monkeypatch):
    monkeypatch.setenv("SPANS_COMPAT_KEY", KEY)
    local = "local/llama"
    info = ModelInfo(provider="openai_compatible", base_url="http://10.1.2.3:8000/v1", api_key_env="SPANS_COMPAT_KEY")
    s = scene({local: ANSWER}, registry={**REGISTRY, "local": [local]}, catalog={local: info})
    await s.router.execute("local", USER)
    rows = await s.rows()
    spans = s.spans()
    check_tree(spans, rows)
    _, (chat,) = only(spans)
    a = attrs(chat)
    assert (a["gen_ai.provider.name"], a["server.address"], a["server.port"]) == ("openai_compatible", "10.1.2.3", 8000)


class LeavesOutRequests(Sampler):
    """Samples every span but a request's: what a sampler keyed on names, or a collector's rules, may decide."""

    def should_sample(self, parent_context: Any, trace_id: int, name: str, *args: Any, **kwargs: Any) -> SamplingResult:
        return SamplingResult(Decision.DROP if name.startswith("taskrouter ") else Decision.RECORD_AND_SAMPLE)

    def get_description(self) -> str:
        return "LeavesOutRequests"


async def test_a_request_span_the_sampler_leaves_out_draws_nothing_under_it(scene):
    s = scene({A: failure("server_error"), B: ANSWER}, sampler=LeavesOutRequests())
    response = await s.router.execute("pair", USER)
    rows = await s.rows()
    assert response.model_used == B and [r["model"] for r in rows] == [A, B]
    assert s.spans() == []  # no orphan chat span whose parent was never recorded


# -- OpenTelemetry configured by the application: OPENTELEMETRY=auto, in a process of its own -------------------

CHILD = """
import asyncio, json, sys
from app.config import load_settings
from app.core.router import Router
from app.testing import FakeModels

def router(**settings):
    fake = FakeModels({"*": "scripted"})
    return Router(
        load_settings(env_file=None, groq_api_key="gsk_child", attempts_db_path="a.db", **settings),
        registry=lambda: {"solo": ["m"], "fallback": []},
        catalog=dict,
        providers={"groq": fake, "openai_compatible": fake},
    )

async def ask(r):
    await r.execute("solo", [{"role": "user", "content": "hi"}])
    await r.aclose()
"""

AUTO = """
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
reader = InMemoryMetricReader()
metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))

def requests():
    data = reader.get_metrics_data()
    return sum(
        p.value
        for r in (data.resource_metrics if data else ())
        for s in r.scope_metrics
        for m in s.metrics
        if m.name == "taskrouter.requests"
        for p in m.data.data_points
    )

auto, off = router(), router(opentelemetry="off")
asyncio.run(ask(auto))
seen, counted = [s.name for s in exporter.get_finished_spans()], requests()
asyncio.run(ask(off))
print(json.dumps({
    "auto": seen,
    "auto_requests": counted,
    "off": [s.name for s in exporter.get_finished_spans()][len(seen):],
    "off_requests": requests() - counted,
    "off_telemetry": off.telemetry is None,
}))
"""

DEFAULT = """
r = router()
asyncio.run(ask(r))
print(json.dumps({
    "telemetry": r.telemetry is None,
    "loaded": sorted(m for m in ("opentelemetry", "prometheus_client", "app.telemetry") if m in sys.modules),
}))
"""


def run_child(code: str, cwd: Path) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not is_setting(k)}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CHILD) + textwrap.dedent(code)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow  # a process of its own, importing the OpenTelemetry SDK
def test_a_router_built_from_settings_uses_the_application_s_providers_unless_off(tmp_path):
    seen = run_child(AUTO, tmp_path)
    assert seen == {
        "auto": ["chat m", "taskrouter solo"],
        "auto_requests": 1,
        "off": [],
        "off_requests": 0,
        "off_telemetry": True,
    }


@pytest.mark.slow  # a process of its own
def test_by_default_a_router_imports_neither_opentelemetry_nor_prometheus_client(tmp_path):
    assert run_child(DEFAULT, tmp_path) == {"telemetry": True, "loaded": []}


# -- OTLP over HTTP to a receiver on 127.0.0.1, the calls through the simulator ------------------------------


class Receiver(http.server.ThreadingHTTPServer):
    """A collector's OTLP/HTTP traces endpoint: keeps each POST /v1/traces body."""

    daemon_threads = False  # server_close() waits for every request's thread

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        if self.path != "/v1/traces":
            self.send_response(404)
            self.end_headers()
            return
        self.server.bodies.append(body)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()
        self.wfile.write(b"")

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def otlp_spans(bodies: Sequence[bytes]) -> list[Any]:
    spans = []
    for body in bodies:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                spans.extend(scope.spans)
    return spans


def otlp_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(otlp_value(v) for v in value.array_value.values)
    return getattr(value, kind)


async def test_spans_reach_a_collector_over_otlp_http_with_the_simulator_s_address(sim: Simulator, receiver, tmp_path):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    port = receiver.server_address[1]
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces")))
    db_path = tmp_path / "otlp.db"
    settings = load_settings(
        env_file=None,
        groq_api_key=TEST_KEY,
        groq_base_url=sim.base_url,
        attempts_db_path=db_path,
        llm_timeout_seconds=5,
    )
    # A proxy in front of the first model quotes the key back in its 429: the provider's redaction is all that
    # keeps it out of the span.
    sim.script(A, {"fault": "echo_auth", "status": 429})
    router = Router(
        settings,
        registry=lambda: REGISTRY,
        catalog=lambda: ai_models.MODEL_CATALOG,
        telemetry=Telemetry(tracer_provider=provider),
    )
    try:
        response = await router.execute("pair", USER, max_tokens=40)
        await router.aclose()
        assert provider.force_flush(timeout_millis=10_000)
    finally:
        provider.shutdown()
    rows = logged_rows(db_path)
    assert [(r["model"], r["error_kind"], r["status_code"]) for r in rows] == [
        (A, "rate_limited", 429),
        (B, None, None),
    ]
    assert receiver.bodies and all(TEST_KEY.encode() not in body for body in receiver.bodies)
    spans = otlp_spans(receiver.bodies)
    by_name = {s.name: s for s in spans}
    assert sorted(by_name) == sorted(["taskrouter pair", f"chat {A}", f"chat {B}"])
    request = by_name["taskrouter pair"]
    values = {s.name: {kv.key: otlp_value(kv.value) for kv in s.attributes} for s in spans}
    assert values["taskrouter pair"] | {"taskrouter.cost_usd": None} == {
        "taskrouter.task": "pair",
        "taskrouter.request_id": response.request_id,
        "taskrouter.chain": (A, B),
        "taskrouter.deadline_seconds": 30.0,
        "taskrouter.forced": False,
        "gen_ai.request.stream": False,
        "taskrouter.ending": "answered",
        "gen_ai.response.model": B,
        "taskrouter.fallback_used": True,
        "taskrouter.cost_usd": None,
    }
    assert values["taskrouter pair"]["taskrouter.cost_usd"] == pytest.approx(rows[1]["cost_usd"], abs=1e-15)
    assert request.parent_span_id == b""
    server = {"server.address": "127.0.0.1", "server.port": int(sim.base_url.rsplit(":", 1)[1])}
    common = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "groq", "gen_ai.system": "groq"}
    assert values[f"chat {A}"] == {
        **common,
        **server,
        "gen_ai.request.model": A,
        "taskrouter.attempt": 1,
        "taskrouter.retry": 0,
        "taskrouter.hedged": False,
        "taskrouter.from_fallback_list": False,
        "gen_ai.request.max_tokens": 40,
        "error.type": "rate_limited",
        "http.response.status_code": 429,
    }
    assert values[f"chat {B}"] == {
        **common,
        **server,
        "gen_ai.request.model": B,
        "taskrouter.attempt": 2,
        "taskrouter.retry": 0,
        "taskrouter.hedged": False,
        "taskrouter.from_fallback_list": False,
        "gen_ai.request.max_tokens": 40,
        "gen_ai.response.model": B,
        "gen_ai.usage.input_tokens": rows[1]["prompt_tokens"],
        "gen_ai.usage.output_tokens": rows[1]["completion_tokens"],
        "gen_ai.response.finish_reasons": (rows[1]["finish_reason"],),
        "gen_ai.response.id": rows[1]["provider_request_id"],
    }
    assert rows[1]["prompt_tokens"] > 0 and rows[1]["completion_tokens"] > 0
    for name in (f"chat {A}", f"chat {B}"):
        assert by_name[name].parent_span_id == request.span_id
        assert by_name[name].trace_id == request.trace_id
        assert by_name[name].kind == 3  # SPAN_KIND_CLIENT
    assert by_name[f"chat {A}"].status.code == 2  # STATUS_CODE_ERROR
    assert "the proxy received Authorization" in by_name[f"chat {A}"].status.message

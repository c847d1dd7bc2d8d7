"""What a request reports, and where it goes: `Telemetry`, the one object the request's owner calls.

The owner calls `begin` when a request starts (under a tracer), `attempt` for every row it records
(answer, failure, skip, cache hit) and `RequestTrace.end` when the request ends; each goes to the metrics (the
Prometheus collector, an OpenTelemetry meter) as it happens, and to the spans, drawn at the request's end, when a
tracer is on. A router without any of them holds no
Telemetry at all, so the request path only checks for None.
"""

from __future__ import annotations

import asyncio
from time import time_ns
from typing import TYPE_CHECKING, Any, Protocol

from app.errors import (
    AllModelsFailedError,
    AuthenticationFailedError,
    BudgetExceededError,
    DeadlineExceededError,
    NoCapableModelError,
    RequestRejectedError,
    StreamInterruptedError,
)
from app.telemetry.metrics import Gauges
from app.types import ErrorKind, Outcome

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Tracer, TracerProvider

    from app.telemetry.metrics import Metrics
    from app.telemetry.spans import Tracing
    from app.types import LLMResponse


class Sink(Protocol):
    """Where the metrics' events go: `Metrics` (Prometheus) or `OtelMetrics` (an OpenTelemetry meter)."""

    def call(
        self,
        *,
        task: str,
        model: str,
        provider: str,
        error: str,
        seconds: float | None,
        input_tokens: int | None,
        output_tokens: int | None,
        cost: float | None,
        first_chunk_seconds: float | None,
        retry: bool,
        hedged: bool,
        retirement: str | None,
    ) -> None: ...

    def skip(self, *, task: str, model: str, error: str) -> None: ...

    def cache_hit(self, *, task: str, saved: float | None) -> None: ...

    def request(self, *, task: str, ending: str, seconds: float, fallback_model: str | None) -> None: ...

    def watch(self, gauges: Gauges) -> None: ...

    def unwatch(self, gauges: Gauges) -> None: ...


# How a request ended, by the error that ended it (the first class that matches).
_ENDINGS: tuple[tuple[type[BaseException], str], ...] = (
    (DeadlineExceededError, "deadline"),
    (BudgetExceededError, "budget"),
    (NoCapableModelError, "no_capable_model"),
    (AuthenticationFailedError, "auth"),
    (RequestRejectedError, "rejected"),
    (StreamInterruptedError, "interrupted"),
    (AllModelsFailedError, "failed"),
    (asyncio.CancelledError, "cancelled"),
    (GeneratorExit, "cancelled"),
)


_SKIPPED, _CACHE_HIT = Outcome.SKIPPED, Outcome.CACHE_HIT  # read once: an enum member's lookup costs per call


def ending_of(response: LLMResponse | None, error: BaseException | None) -> str:
    """How the request ended (taskrouter.ending), as taskrouter.requests counts it."""
    if error is None:
        return "cache_hit" if response is not None and response.cached else "answered"
    for kind, ending in _ENDINGS:
        if isinstance(error, kind):
            return ending
    return "error"


class Telemetry:
    """The metrics and spans a router reports. `metrics`: a Metrics to add to (the process's one when built from
    the settings); `tracer_provider` / `meter_provider`: OpenTelemetry's (None: no spans, no meter)."""

    def __init__(
        self,
        *,
        metrics: Metrics | None = None,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        sinks: list[Sink] = []
        if metrics is not None:
            sinks.append(metrics)
        if meter_provider is not None:
            from app.telemetry.otel_metrics import OtelMetrics

            sinks.append(OtelMetrics(meter_provider))
        self.sinks: tuple[Sink, ...] = tuple(sinks)
        self.tracer: Tracer | None = None
        self.tracing: Tracing | None = None
        if tracer_provider is not None:
            from opentelemetry import context

            from app.telemetry.spans import Tracing

            self.tracer = tracer_provider.get_tracer("taskrouter")
            self.tracing = Tracing(self.tracer)
            self.current = context.get_current  # the context a request's span will be drawn under
        self._watched: list[Gauges] = []

    def watch(self, gauges: Gauges) -> None:
        """Show a router's circuit states and budget at each collection."""
        self._watched.append(gauges)
        for sink in self.sinks:
            sink.watch(gauges)

    def close(self) -> None:
        for gauges in self._watched:
            for sink in self.sinks:
                sink.unwatch(gauges)
        self._watched.clear()

    # -- a request --------------------------------------------------------------------------------------------

    def begin(self, request: Any, *, stream: bool = False) -> RequestTrace:
        """The request's trace, kept on the request (`request.trace`) until it ends; the request is not kept on it,
        so that a finished request is freed at once rather than by the garbage collector. Its spans are drawn at
        its end, under the context current now (the caller's)."""
        trace = request.trace = RequestTrace(self, stream)
        return trace

    def ended(self, request: Any, response: LLMResponse | None, error: BaseException | None) -> str:
        """Count the request's end in the metrics; returns how it ended."""
        ending = ending_of(response, error)
        if self.sinks:
            fallback = response.model_used if response is not None and response.fallback_used else None
            seconds = request.clock.monotonic() - request.started
            task = request.chain.task_type
            for sink in self.sinks:
                sink.request(task=task, ending=ending, seconds=seconds, fallback_model=fallback)
        return ending

    def attempt(
        self,
        request: Any,
        pick: Any,
        outcome: Outcome,
        *,
        provider: str,
        kind: ErrorKind | None,
        status: int | None,
        message: str | None,
        latency_ms: float | None,
        result: Any,
        cost: float | None,
        first_token_ms: float | None,
        saved_usd: float | None,
    ) -> None:
        """One row the request recorded."""
        # The kind itself, a str (StrEnum): its `.value` is a descriptor lookup per call.
        error: str = kind if kind is not None else ""
        trace: RequestTrace | None = request.trace
        if trace is not None and trace.calls is not None:
            # Kept for the spans drawn at the request's end, with the moment it happened.
            if outcome is _SKIPPED or outcome is _CACHE_HIT:
                trace.event((outcome, pick.candidate.model, error, message, time_ns()))
            else:
                trace.calls.append(
                    (pick, provider, error, status, message, latency_ms, result, first_token_ms, time_ns())
                )
        sinks = self.sinks
        if not sinks:
            return
        task = request.chain.task_type
        model = pick.candidate.model
        if outcome is _SKIPPED:
            for sink in sinks:
                sink.skip(task=task, model=model, error=error)
            return
        if outcome is _CACHE_HIT:
            for sink in sinks:
                sink.cache_hit(task=task, saved=saved_usd)
            return
        usage = result.usage if result is not None else None
        retirement = None
        if model in request.router.retiring:
            retirement = "past" if request.retirement(model) is not None else "scheduled"
        for sink in sinks:
            sink.call(
                task=task,
                model=model,
                provider=provider,
                error=error,
                seconds=latency_ms / 1000.0 if latency_ms is not None else None,
                input_tokens=usage.prompt_tokens if usage is not None else None,
                output_tokens=usage.completion_tokens if usage is not None else None,
                cost=cost,
                first_chunk_seconds=first_token_ms / 1000.0 if first_token_ms is not None else None,
                retry=pick.retry > 0,
                hedged=pick.hedged,
                retirement=retirement,
            )


class RequestTrace:
    """One request's course as its spans need it, drawn at its end (app/telemetry/spans.py): the context current
    at its start (the caller's) and when it started, then each provider call's row and each event (a skip, a cache
    hit) as recorded.
    `calls` and `events` are None without a tracer (metrics alone)."""

    __slots__ = ("caller", "calls", "ended", "events", "start", "stream", "telemetry")

    def __init__(self, telemetry: Telemetry, stream: bool) -> None:
        self.telemetry = telemetry
        self.stream = stream
        self.ended = False
        self.events: list[tuple[Outcome, str, str, str | None, int]] | None = None  # most requests have none
        if telemetry.tracing is None:
            self.calls: list[tuple[Any, ...]] | None = None
        else:
            self.caller = telemetry.current()
            self.start = time_ns()
            self.calls = []

    def event(self, event: tuple[Outcome, str, str, str | None, int]) -> None:
        """A skip or a cache hit: its outcome, model, error kind, reason and time (time_ns)."""
        if self.events is None:
            self.events = []
        self.events.append(event)

    def end(self, request: Any, response: LLMResponse | None, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        telemetry = self.telemetry
        ending = telemetry.ended(request, response, error)
        if telemetry.tracing is not None:
            telemetry.tracing.draw(request, self, ending, response, error)

"""What a request reports, and where it goes: `Telemetry`, the one object the request's owner calls.

The owner calls `begin` when a request starts (under a tracer), `attempt` for every row it records
(answer, failure, skip, cache hit) and `RequestTrace.end` when the request ends; each goes to the metrics (the
Prometheus collector, an OpenTelemetry meter) and the spans that are on. A router without any of them holds no
Telemetry at all, so the request path only checks for None.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider

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
        self.spans: Any = None  # app/telemetry/spans.py, loaded with the tracer: not imported inside a request
        if tracer_provider is not None:
            from app.telemetry import spans

            self.spans = spans
            self.tracer = tracer_provider.get_tracer("taskrouter")
            self.tracing = spans.Tracing(self.tracer)
            # The request's owner makes the request's span current around its course (Request.run).
            self.attach: Callable[[Any], object] = spans.attach
            self.detach: Callable[[Any], None] = spans.detach
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
        so that a finished request is freed at once rather than by the garbage collector."""
        tracing = self.tracing
        if tracing is None:
            trace = RequestTrace(self, None, None)
        else:
            span, parent = tracing.request_span(request, stream)
            trace = RequestTrace(self, span, parent)
        request.trace = trace
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
        task = request.chain.task_type
        model = pick.candidate.model
        # The kind itself, a str (StrEnum): its `.value` is a descriptor lookup per call.
        error: str = kind if kind is not None else ""
        trace: RequestTrace | None = request.trace
        # A request span the sampler left out still carries the trace's context, but nothing is drawn under it.
        traced = trace is not None and trace.recording
        if outcome is _SKIPPED:
            for sink in self.sinks:
                sink.skip(task=task, model=model, error=error)
            if traced:
                self.spans.skip_event(trace.span, model=model, kind=error, reason=message)  # type: ignore[union-attr]
            return
        if outcome is _CACHE_HIT:
            for sink in self.sinks:
                sink.cache_hit(task=task, saved=saved_usd)
            if traced:
                trace.span.add_event("taskrouter.cache_hit", {"gen_ai.request.model": model})  # type: ignore[union-attr]
            return
        if self.sinks:
            usage = result.usage if result is not None else None
            retirement = None
            if model in request.router.retiring:
                retirement = "past" if request.retirement(model) is not None else "scheduled"
            for sink in self.sinks:
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
        if traced:
            self.tracing.call(  # type: ignore[union-attr]
                parent=trace.context,  # type: ignore[union-attr, arg-type]
                request=request,
                pick=pick,
                provider=provider,
                kind=error,
                status=status,
                message=message,
                latency_ms=latency_ms,
                result=result,
                first_token_ms=first_token_ms,
            )


class RequestTrace:
    """One request's span (None without a tracer) and the context that makes it the parent of each call's span."""

    __slots__ = ("context", "ended", "recording", "span", "telemetry")

    def __init__(self, telemetry: Telemetry, span: Span | None, context: Context | None) -> None:
        self.telemetry = telemetry
        self.span = span
        self.context = context
        self.recording = span is not None and span.is_recording()
        self.ended = False

    def end(self, request: Any, response: LLMResponse | None, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        ending = self.telemetry.ended(request, response, error)
        if self.span is not None:
            self.telemetry.spans.end_request_span(self.span, ending=ending, response=response, error=error)

"""The same metrics through an OpenTelemetry meter: for an application that configured a MeterProvider (and its
exporter: OTLP, Prometheus, a vendor's). Same instruments, names and attributes as the Prometheus collector."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.telemetry.instruments import ENDING, INSTRUMENTS, MODEL, TASK
from app.telemetry.metrics import Gauges, merge_gauges

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation


class OtelMetrics:
    def __init__(self, meter_provider: MeterProvider) -> None:
        meter = meter_provider.get_meter("taskrouter")
        self._instruments: dict[str, Any] = {}
        self._gauges: list[Gauges] = []
        for instrument in INSTRUMENTS:
            if instrument.kind == "counter":
                made: Any = meter.create_counter(instrument.name, instrument.unit, instrument.description)
            elif instrument.kind == "histogram":
                made = meter.create_histogram(
                    instrument.name,
                    instrument.unit,
                    instrument.description,
                    explicit_bucket_boundaries_advisory=list(instrument.buckets),
                )
            else:
                made = meter.create_observable_gauge(
                    instrument.name, [self._gauge_reader(instrument.name)], instrument.unit, instrument.description
                )
            self._instruments[instrument.name] = made

    def watch(self, gauges: Gauges) -> None:
        self._gauges.append(gauges)

    def unwatch(self, gauges: Gauges) -> None:
        if gauges in self._gauges:
            self._gauges.remove(gauges)

    def _gauge_reader(self, name: str) -> Any:
        from opentelemetry.metrics import Observation

        def read(options: CallbackOptions) -> Iterable[Observation]:
            circuits, budget = merge_gauges(list(self._gauges), self.unwatch)
            if name == "taskrouter.circuit.state":
                return [Observation(state, {MODEL: model}) for model, state in sorted(circuits.items())]
            if budget is None:
                return []
            return [Observation(budget[0] if name == "taskrouter.budget.spent" else budget[1])]

        return read

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
    ) -> None:
        made = self._instruments
        base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, MODEL: model, TASK: task}
        made["taskrouter.provider.calls"].add(
            1, {TASK: task, MODEL: model, "taskrouter.outcome": "failure" if error else "success", "error.type": error}
        )
        if seconds is not None:
            made["gen_ai.client.operation.duration"].record(seconds, {**base, "error.type": error} if error else base)
        if input_tokens is not None:
            made["gen_ai.client.token.usage"].record(input_tokens, {**base, "gen_ai.token.type": "input"})
        if output_tokens is not None:
            made["gen_ai.client.token.usage"].record(output_tokens, {**base, "gen_ai.token.type": "output"})
        if first_chunk_seconds is not None:
            made["gen_ai.client.operation.time_to_first_chunk"].record(first_chunk_seconds, base)
        pair = {TASK: task, MODEL: model}
        if cost:
            made["taskrouter.cost"].add(cost, pair)
        if retry:
            made["taskrouter.retries"].add(1, pair)
        if hedged:
            made["taskrouter.hedges"].add(1, pair)
        if retirement is not None:
            made["taskrouter.retired_model.calls"].add(1, {**pair, "taskrouter.retirement": retirement})

    def skip(self, *, task: str, model: str, error: str) -> None:
        self._instruments["taskrouter.skips"].add(1, {TASK: task, MODEL: model, "error.type": error})

    def cache_hit(self, *, task: str, saved: float | None) -> None:
        self._instruments["taskrouter.cache.hits"].add(1, {TASK: task})
        if saved:
            self._instruments["taskrouter.cache.saved"].add(saved, {TASK: task})

    def request(self, *, task: str, ending: str, seconds: float, fallback_model: str | None) -> None:
        attributes = {TASK: task, ENDING: ending}
        self._instruments["taskrouter.requests"].add(1, attributes)
        self._instruments["taskrouter.request.duration"].record(seconds, attributes)
        if fallback_model is not None:
            self._instruments["taskrouter.fallbacks"].add(1, {TASK: task, MODEL: fallback_model})

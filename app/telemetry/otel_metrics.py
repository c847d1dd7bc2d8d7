"""The same metrics through an OpenTelemetry meter: for an application that configured a MeterProvider (and its
exporter: OTLP, Prometheus, a vendor's). Same instruments, names and attributes as the Prometheus collector.

The counters are kept in this process's own `Metrics` and handed to the SDK as observable counters when it
collects (once per export interval): a call then pays the SDK only for its histograms' records, each of which
costs more than the whole of the router's counting."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from app.telemetry.instruments import ENDING, INSTRUMENTS, MODEL, TASK, Instrument
from app.telemetry.metrics import Gauges, Metrics, merge_gauges

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation


class OtelMetrics:
    def __init__(self, meter_provider: MeterProvider) -> None:
        meter = meter_provider.get_meter("taskrouter")
        self._counts = Metrics()  # the counters, read by the SDK when it collects
        self._gauges: list[Gauges] = []
        made: dict[str, Any] = {}
        for instrument in INSTRUMENTS:
            if instrument.kind == "counter":
                made[instrument.name] = meter.create_observable_counter(
                    instrument.name, [self._counter_reader(instrument)], instrument.unit, instrument.description
                )
            elif instrument.kind == "histogram":
                made[instrument.name] = meter.create_histogram(
                    instrument.name,
                    instrument.unit,
                    instrument.description,
                    explicit_bucket_boundaries_advisory=list(instrument.buckets),
                )
            else:
                made[instrument.name] = meter.create_observable_gauge(
                    instrument.name, [self._gauge_reader(instrument.name)], instrument.unit, instrument.description
                )
        self._duration = made["gen_ai.client.operation.duration"]
        self._tokens = made["gen_ai.client.token.usage"]
        self._first_chunk = made["gen_ai.client.operation.time_to_first_chunk"]
        self._request_duration = made["taskrouter.request.duration"]

    def watch(self, gauges: Gauges) -> None:
        self._gauges.append(gauges)

    def unwatch(self, gauges: Gauges) -> None:
        if gauges in self._gauges:
            self._gauges.remove(gauges)

    def _counter_reader(self, instrument: Instrument) -> Any:
        from opentelemetry.metrics import Observation

        names = instrument.attributes

        def read(options: CallbackOptions) -> Iterable[Observation]:
            series = self._counts.counter(instrument.name)
            return [Observation(value, dict(zip(names, key, strict=True))) for key, value in series.items()]

        return read

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
        self._counts.call(
            task=task,
            model=model,
            provider=provider,
            error=error,
            seconds=None,
            input_tokens=None,
            output_tokens=None,
            cost=cost,
            first_chunk_seconds=None,
            retry=retry,
            hedged=hedged,
            retirement=retirement,
        )
        error = str(error)  # the SDK's exporters take a plain str, not the ErrorKind it may be
        base = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, MODEL: model, TASK: task}
        if seconds is not None:
            self._duration.record(seconds, {**base, "error.type": error} if error else base)
        if input_tokens is not None:
            self._tokens.record(input_tokens, {**base, "gen_ai.token.type": "input"})
        if output_tokens is not None:
            self._tokens.record(output_tokens, {**base, "gen_ai.token.type": "output"})
        if first_chunk_seconds is not None:
            self._first_chunk.record(first_chunk_seconds, base)

    def skip(self, *, task: str, model: str, error: str) -> None:
        self._counts.skip(task=task, model=model, error=error)

    def cache_hit(self, *, task: str, saved: float | None) -> None:
        self._counts.cache_hit(task=task, saved=saved)

    def request(self, *, task: str, ending: str, seconds: float, fallback_model: str | None) -> None:
        self._counts.request(task=task, ending=ending, seconds=seconds, fallback_model=fallback_model)
        self._request_duration.record(seconds, {TASK: task, ENDING: ending})

"""The metrics kept in the router's process, and shown to Prometheus.

`Metrics` adds each event to plain counters and bucket counts under one lock, and builds Prometheus' families only
when scraped: the request path pays a few dictionary updates, not prometheus_client's per-series objects. It is a
prometheus_client Collector: `REGISTRY.register(metrics)` (PROMETHEUS_METRICS, METRICS_PORT) or a registry of the
application's own. The gauges (circuit states, budget) are read from the routers at scrape time.
"""

from __future__ import annotations

import threading
from bisect import bisect_left
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from app.telemetry.instruments import BY_NAME, INSTRUMENTS, Instrument, prometheus_labels

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

# What a router shows at scrape time: {model: circuit state (0, 1, 2)} and (spent, limit) or None without a budget;
# None for the whole once the router is gone (its source is then dropped).
Gauges = Callable[[], tuple[dict[str, int], tuple[float, float] | None] | None]

_REQUESTS = BY_NAME["taskrouter.requests"]
_REQUEST_DURATION = BY_NAME["taskrouter.request.duration"]
_CALLS = BY_NAME["taskrouter.provider.calls"]
_DURATION = BY_NAME["gen_ai.client.operation.duration"]
_TOKENS = BY_NAME["gen_ai.client.token.usage"]
_FIRST_CHUNK = BY_NAME["gen_ai.client.operation.time_to_first_chunk"]
_SKIPS = BY_NAME["taskrouter.skips"]
_FALLBACKS = BY_NAME["taskrouter.fallbacks"]
_RETRIES = BY_NAME["taskrouter.retries"]
_HEDGES = BY_NAME["taskrouter.hedges"]
_COST = BY_NAME["taskrouter.cost"]
_CACHE_HITS = BY_NAME["taskrouter.cache.hits"]
_CACHE_SAVED = BY_NAME["taskrouter.cache.saved"]
_RETIRED = BY_NAME["taskrouter.retired_model.calls"]
_CIRCUIT = BY_NAME["taskrouter.circuit.state"]
_SPENT = BY_NAME["taskrouter.budget.spent"]
_LIMIT = BY_NAME["taskrouter.budget.limit"]


class _Histogram:
    """Bucket counts (not cumulative: one increment per observation), their sum and count."""

    __slots__ = ("buckets", "count", "counts", "total")

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)  # the last: above the highest bound (+Inf only)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.buckets, value)] += 1
        self.total += value
        self.count += 1


class Metrics:
    """The process's metrics: `call`, `skip`, `cache_hit` and `request` add events; `collect` shows them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[str, dict[tuple[str, ...], float]] = {
            i.name: {} for i in INSTRUMENTS if i.kind == "counter"
        }
        self._histograms: dict[str, dict[tuple[str, ...], _Histogram]] = {
            i.name: {} for i in INSTRUMENTS if i.kind == "histogram"
        }
        self._gauges: list[Gauges] = []

    # -- events (the request path) ----------------------------------------------------------------------------

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
        """One provider call, answered (`error` "") or failed (`error`: its kind)."""
        counters = self._counters
        with self._lock:
            key = (task, model, "failure" if error else "success", error)
            calls = counters[_CALLS.name]
            calls[key] = calls.get(key, 0) + 1
            if seconds is not None:
                self._observe(_DURATION, ("chat", provider, model, task, error), seconds)
            if input_tokens is not None:
                self._observe(_TOKENS, ("chat", provider, model, task, "input"), input_tokens)
            if output_tokens is not None:
                self._observe(_TOKENS, ("chat", provider, model, task, "output"), output_tokens)
            if first_chunk_seconds is not None:
                self._observe(_FIRST_CHUNK, ("chat", provider, model, task), first_chunk_seconds)
            pair = (task, model)
            if cost:
                spent = counters[_COST.name]
                spent[pair] = spent.get(pair, 0.0) + cost
            if retry:
                retries = counters[_RETRIES.name]
                retries[pair] = retries.get(pair, 0) + 1
            if hedged:
                hedges = counters[_HEDGES.name]
                hedges[pair] = hedges.get(pair, 0) + 1
            if retirement is not None:
                retired = counters[_RETIRED.name]
                named = (task, model, retirement)
                retired[named] = retired.get(named, 0) + 1

    def skip(self, *, task: str, model: str, error: str) -> None:
        key = (task, model, error)
        with self._lock:
            skips = self._counters[_SKIPS.name]
            skips[key] = skips.get(key, 0) + 1

    def cache_hit(self, *, task: str, saved: float | None) -> None:
        key = (task,)
        with self._lock:
            hits = self._counters[_CACHE_HITS.name]
            hits[key] = hits.get(key, 0) + 1
            if saved:
                total = self._counters[_CACHE_SAVED.name]
                total[key] = total.get(key, 0.0) + saved

    def request(self, *, task: str, outcome: str, seconds: float, fallback_model: str | None) -> None:
        """A request ended: `outcome` as taskrouter.requests lists them; `fallback_model` the model that answered
        when it was not the chain's first."""
        key = (task, outcome)
        with self._lock:
            requests = self._counters[_REQUESTS.name]
            requests[key] = requests.get(key, 0) + 1
            self._observe(_REQUEST_DURATION, key, seconds)
            if fallback_model is not None:
                fallbacks = self._counters[_FALLBACKS.name]
                pair = (task, fallback_model)
                fallbacks[pair] = fallbacks.get(pair, 0) + 1

    def _observe(self, instrument: Instrument, key: tuple[str, ...], value: float) -> None:
        series = self._histograms[instrument.name]
        histogram = series.get(key)
        if histogram is None:
            histogram = series[key] = _Histogram(instrument.buckets)
        histogram.observe(value)

    # -- gauges -----------------------------------------------------------------------------------------------

    def watch(self, gauges: Gauges) -> None:
        """Read `gauges` at each scrape (a router's circuit states and budget)."""
        with self._lock:
            self._gauges.append(gauges)

    def unwatch(self, gauges: Gauges) -> None:
        with self._lock:
            if gauges in self._gauges:
                self._gauges.remove(gauges)

    def gauge_values(self) -> tuple[dict[str, int], tuple[float, float] | None]:
        """Every watched router's circuits (the worst state a model has in any of them) and the first budget."""
        with self._lock:
            sources = list(self._gauges)
        return merge_gauges(sources, self.unwatch)

    # -- reading ----------------------------------------------------------------------------------------------

    def counter(self, name: str) -> dict[tuple[str, ...], float]:
        """A counter's series by attribute values (in the instrument's attribute order), for tests and tools."""
        with self._lock:
            return dict(self._counters[name])

    def histogram(self, name: str) -> dict[tuple[str, ...], tuple[list[int], float, int]]:
        """A histogram's series: (per-bucket counts, the last above the highest bound; sum; count)."""
        with self._lock:
            return {k: (list(h.counts), h.total, h.count) for k, h in self._histograms[name].items()}

    # -- prometheus_client's Collector ------------------------------------------------------------------------

    def describe(self) -> list[Any]:
        """Nothing: the registry then asks `collect` only when scraped, not when the collector is registered."""
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        with self._lock:
            counters = {name: dict(series) for name, series in self._counters.items()}
            histograms = {
                name: {k: (list(h.counts), h.total, h.count) for k, h in series.items()}
                for name, series in self._histograms.items()
            }
        circuits, budget = self.gauge_values()
        for instrument in INSTRUMENTS:
            labels = list(prometheus_labels(instrument))
            if instrument.kind == "counter":
                family: Any = CounterMetricFamily(
                    instrument.prometheus.removesuffix("_total"), instrument.description, labels=labels
                )
                for key, value in counters[instrument.name].items():
                    family.add_metric(list(key), value)
            elif instrument.kind == "histogram":
                family = HistogramMetricFamily(instrument.prometheus, instrument.description, labels=labels)
                bounds = [_le(b) for b in instrument.buckets] + ["+Inf"]
                for key, (counts, total, _count) in histograms[instrument.name].items():
                    cumulative, running = [], 0
                    for bound, count in zip(bounds, counts, strict=True):
                        running += count
                        cumulative.append((bound, running))
                    family.add_metric(list(key), cumulative, total)
            else:
                family = GaugeMetricFamily(instrument.prometheus, instrument.description, labels=labels)
                if instrument is _CIRCUIT:
                    for model, state in sorted(circuits.items()):
                        family.add_metric([model], state)
                elif budget is not None:
                    family.add_metric([], budget[0] if instrument is _SPENT else budget[1])
            yield family


def merge_gauges(
    sources: list[Gauges], gone: Callable[[Gauges], None]
) -> tuple[dict[str, int], tuple[float, float] | None]:
    """The routers' gauges as one: a model's worst circuit state in any of them, the first budget; a source whose
    router is gone is handed to `gone`."""
    circuits: dict[str, int] = {}
    budget: tuple[float, float] | None = None
    for source in sources:
        read = source()
        if read is None:
            gone(source)
            continue
        states, spent = read
        for model, state in states.items():
            circuits[model] = max(state, circuits.get(model, 0))
        if budget is None:
            budget = spent
    return circuits, budget


def _le(bound: float) -> str:
    return repr(float(bound))


_process_metrics: Metrics | None = None
_process_lock = threading.Lock()
_server_port: int | None = None


def process_metrics(*, port: int = 0, host: str = "127.0.0.1", registry: CollectorRegistry | None = None) -> Metrics:
    """The process's one Metrics, registered in prometheus_client's default registry the first time; with `port`,
    /metrics served on host:port (once per process: a second port asked for is a ConfigError)."""
    global _process_metrics, _server_port
    from prometheus_client import REGISTRY, start_http_server

    from app.errors import ConfigError

    with _process_lock:
        if _process_metrics is None:
            _process_metrics = Metrics()
            (registry or REGISTRY).register(_process_metrics)
        if port and _server_port is None:
            try:
                start_http_server(port, addr=host)
            except OSError as exc:
                raise ConfigError(
                    f"METRICS_PORT={port}: cannot serve /metrics on {host}:{port} ({exc.strerror or exc}); choose a "
                    "free port, or 0 for none"
                ) from None
            _server_port = port
        elif port and port != _server_port:
            raise ConfigError(
                f"METRICS_PORT={port}: this process already serves /metrics on port {_server_port}; one port per "
                "process"
            )
        return _process_metrics

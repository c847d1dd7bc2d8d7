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

from app.telemetry.instruments import BY_NAME, DURATION_BUCKETS, INSTRUMENTS, TOKEN_BUCKETS, prometheus_labels

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


class _Calls:
    """The numbers of one (task, model, provider, error kind) combination: a call's events update this one object,
    and a scrape adds them up into each instrument's series. A histogram is its per-bucket counts (the last: above
    the highest bound) and its sum."""

    __slots__ = (
        "calls",
        "cost",
        "duration",
        "duration_sum",
        "first_chunk",
        "first_chunk_sum",
        "hedges",
        "input",
        "input_sum",
        "output",
        "output_sum",
        "retired",
        "retries",
    )

    def __init__(self) -> None:
        self.calls = self.retries = self.hedges = 0
        self.cost = self.duration_sum = self.first_chunk_sum = 0.0
        self.input_sum = self.output_sum = 0
        self.duration = [0] * (len(DURATION_BUCKETS) + 1)
        self.first_chunk = [0] * (len(DURATION_BUCKETS) + 1)
        self.input = [0] * (len(TOKEN_BUCKETS) + 1)
        self.output = [0] * (len(TOKEN_BUCKETS) + 1)
        self.retired: dict[str, int] = {}


class _Requests:
    """The numbers of one (task, ending) combination, and its fallbacks by the model that answered."""

    __slots__ = ("duration", "duration_sum", "fallbacks", "requests")

    def __init__(self) -> None:
        self.requests = 0
        self.duration = [0] * (len(DURATION_BUCKETS) + 1)
        self.duration_sum = 0.0
        self.fallbacks: dict[str, int] = {}


Series = dict[tuple[str, ...], float]
HistogramSeries = dict[tuple[str, ...], tuple[list[int], float, int]]


class _Shard:
    """One thread's numbers. Only that thread writes them, so an event takes no lock; a scrape reads every
    thread's (a copy of each table, taken whole under the GIL) and adds them up. A thread's shard outlives it:
    counters only grow."""

    __slots__ = ("cache_hits", "cache_saved", "calls", "requests", "skips")

    def __init__(self) -> None:
        self.calls: dict[tuple[str, str, str, str], _Calls] = {}
        self.requests: dict[tuple[str, str], _Requests] = {}
        self.skips: dict[tuple[str, ...], float] = {}
        self.cache_hits: dict[tuple[str, ...], float] = {}
        self.cache_saved: dict[tuple[str, ...], float] = {}


class Metrics:
    """The process's metrics: `call`, `skip`, `cache_hit` and `request` add events; `collect` shows them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the list of shards and of gauges, not the events
        self._local = threading.local()
        self._shards: list[_Shard] = []
        self._gauges: list[Gauges] = []

    def _shard(self) -> _Shard:
        """This thread's shard, made on its first event."""
        shard = _Shard()
        self._local.shard = shard
        with self._lock:
            self._shards.append(shard)
        return shard

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
        key = (task, model, provider, error)
        shard: _Shard = getattr(self._local, "shard", None) or self._shard()
        series = shard.calls.get(key)
        if series is None:
            series = shard.calls[key] = _Calls()
        series.calls += 1
        if seconds is not None:
            series.duration[bisect_left(DURATION_BUCKETS, seconds)] += 1
            series.duration_sum += seconds
        if input_tokens is not None:
            series.input[bisect_left(TOKEN_BUCKETS, input_tokens)] += 1
            series.input_sum += input_tokens
        if output_tokens is not None:
            series.output[bisect_left(TOKEN_BUCKETS, output_tokens)] += 1
            series.output_sum += output_tokens
        if first_chunk_seconds is not None:
            series.first_chunk[bisect_left(DURATION_BUCKETS, first_chunk_seconds)] += 1
            series.first_chunk_sum += first_chunk_seconds
        if cost:
            series.cost += cost
        if retry:
            series.retries += 1
        if hedged:
            series.hedges += 1
        if retirement is not None:
            series.retired[retirement] = series.retired.get(retirement, 0) + 1

    def skip(self, *, task: str, model: str, error: str) -> None:
        key = (task, model, error)
        shard: _Shard = getattr(self._local, "shard", None) or self._shard()
        shard.skips[key] = shard.skips.get(key, 0) + 1

    def cache_hit(self, *, task: str, saved: float | None) -> None:
        key = (task,)
        shard: _Shard = getattr(self._local, "shard", None) or self._shard()
        shard.cache_hits[key] = shard.cache_hits.get(key, 0) + 1
        if saved:
            shard.cache_saved[key] = shard.cache_saved.get(key, 0.0) + saved

    def request(self, *, task: str, ending: str, seconds: float, fallback_model: str | None) -> None:
        """A request ended: `ending` as taskrouter.requests lists them; `fallback_model` the model that answered
        when it was not the chain's first."""
        key = (task, ending)
        shard: _Shard = getattr(self._local, "shard", None) or self._shard()
        series = shard.requests.get(key)
        if series is None:
            series = shard.requests[key] = _Requests()
        series.requests += 1
        series.duration[bisect_left(DURATION_BUCKETS, seconds)] += 1
        series.duration_sum += seconds
        if fallback_model is not None:
            series.fallbacks[fallback_model] = series.fallbacks.get(fallback_model, 0) + 1

    # -- what the events add up to ----------------------------------------------------------------------------

    def _snapshot(self) -> tuple[dict[str, Series], dict[str, HistogramSeries]]:
        """Every counter's and histogram's series, by instrument name, keyed by attribute values in the
        instrument's attribute order."""
        counters: dict[str, Series] = {i.name: {} for i in INSTRUMENTS if i.kind == "counter"}
        histograms: dict[str, HistogramSeries] = {i.name: {} for i in INSTRUMENTS if i.kind == "histogram"}

        def add(name: str, key: tuple[str, ...], value: float) -> None:
            if value:
                series = counters[name]
                series[key] = series.get(key, 0) + value

        def observe(name: str, key: tuple[str, ...], counts: list[int], total: float) -> None:
            if not any(counts):
                return
            series = histograms[name]
            kept = series.get(key)
            if kept is None:
                series[key] = (list(counts), total, sum(counts))
            else:
                merged = [a + b for a, b in zip(kept[0], counts, strict=True)]
                series[key] = (merged, kept[1] + total, kept[2] + sum(counts))

        with self._lock:
            shards = list(self._shards)
        for shard in shards:
            for (task, model, provider, error), c in dict(shard.calls).items():
                add(_CALLS.name, (task, model, "failure" if error else "success", error), c.calls)
                add(_COST.name, (task, model), c.cost)
                add(_RETRIES.name, (task, model), c.retries)
                add(_HEDGES.name, (task, model), c.hedges)
                for retirement, count in dict(c.retired).items():
                    add(_RETIRED.name, (task, model, retirement), count)
                observe(_DURATION.name, ("chat", provider, model, task, error), c.duration, c.duration_sum)
                observe(_TOKENS.name, ("chat", provider, model, task, "input"), c.input, c.input_sum)
                observe(_TOKENS.name, ("chat", provider, model, task, "output"), c.output, c.output_sum)
                observe(_FIRST_CHUNK.name, ("chat", provider, model, task), c.first_chunk, c.first_chunk_sum)
            for (task, ending), r in dict(shard.requests).items():
                add(_REQUESTS.name, (task, ending), r.requests)
                observe(_REQUEST_DURATION.name, (task, ending), r.duration, r.duration_sum)
                for model, count in dict(r.fallbacks).items():
                    add(_FALLBACKS.name, (task, model), count)
            for key, value in dict(shard.skips).items():
                add(_SKIPS.name, key, value)
            for key, value in dict(shard.cache_hits).items():
                add(_CACHE_HITS.name, key, value)
            for key, value in dict(shard.cache_saved).items():
                add(_CACHE_SAVED.name, key, value)
        return counters, histograms

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

    def counter(self, name: str) -> Series:
        """A counter's series by attribute values (in the instrument's attribute order), for tests and tools."""
        return self._snapshot()[0][name]

    def histogram(self, name: str) -> HistogramSeries:
        """A histogram's series: (per-bucket counts, the last above the highest bound; sum; count)."""
        return self._snapshot()[1][name]

    # -- prometheus_client's Collector ------------------------------------------------------------------------

    def describe(self) -> list[Any]:
        """Nothing: the registry then asks `collect` only when scraped, not when the collector is registered."""
        return []

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        counters, histograms = self._snapshot()
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

"""What metrics and traces cost the router: its own work per call with telemetry off, with Prometheus metrics, with
OpenTelemetry traces, OpenTelemetry metrics, and all of them, side by side in one run. By hand.

    python bench/telemetry.py --instructions      # instructions per call under callgrind (about 15 minutes)
    python bench/telemetry.py                     # CPU time per call, 6 alternating rounds (about 5 minutes)
    python bench/telemetry.py --smoke             # a tiny timed run: does every configuration work
    python bench/telemetry.py --instructions --smoke --configurations "all on" --scenarios clean

The target (issue 24): off costs nothing (with the defaults neither `opentelemetry` nor `prometheus_client` is
imported, which each worker of "off" checks after its calls), and on, the router's own CPU per call grows by at most
10 % over off. The growth's verdicts rest on --instructions: on a shared 2-core machine the timed rounds disagree by
20-80 %, too much to judge a 10 % line, while callgrind counts the same instructions for the same work whatever else
the machine does. Instructions are not seconds (a cache miss costs cycles, no instruction), so the timed mode stays
as the other half of the picture, as bench/own_cpu.py is beside bench/own_instructions.py.

Each configuration runs in worker processes of its own (OpenTelemetry's global providers can be set once per
process), started from this script with `--worker NAME` and PYTHONPATH set to this tree:

- off: the defaults (PROMETHEUS_METRICS=false, OPENTELEMETRY=auto with no provider configured);
- prometheus: PROMETHEUS_METRICS=true (the metrics in prometheus_client's default registry, no server);
- otel traces: an OpenTelemetry SDK TracerProvider set globally, its BatchSpanProcessor feeding an exporter that
  counts the spans and drops them; OPENTELEMETRY=auto;
- otel metrics: a global SDK MeterProvider with an InMemoryMetricReader, not collected while calls are measured;
- all on: prometheus, otel traces and otel metrics.

A worker builds a `Router` on app.testing's scripted models (`FakeModels`, a provider passed to the router: no
socket, no simulator), so the work measured is the router's own: chain, gates, health, the attempt log (on, in a
temporary SQLite file, its writer thread counted) and the telemetry. Two scenarios: clean (the chain's first model
answers) and fallback (the first model answers 413, too large, which marks nothing, and the second answers).

--instructions: one worker per configuration and scenario, under `valgrind --tool=callgrind` (PYTHONHASHSEED=0),
two at a time. After the warm-up it makes a window of N1 calls and one of N2 (500 and 2500), each ending with the
flush of the attempt log and the span processor, and each bracketed by calls to `os.getppid()`, before which
callgrind dumps its counters (`--dump-before=os_getppid`): every window's count is exact, and
(window N2 - window N1) / (N2 - N1) is the instructions per call with each window's fixed cost (the flushes, the
writer's commit) cancelled. The same worker then counts, the same way, the scripted provider alone (its calls for the
scenario, no router) and, in the OpenTelemetry configurations, the SDK alone: each span the router drew in the
warm-up, drawn through the same processor the way the router draws it (after the fact, every attribute at its
start, with given start and end times: the request's under the caller's context, a provider call's as a child of a
span; an error status where the router's had one), and a bare `histogram.record(value, attributes)` of each
measurement it made (no span is current while a request runs). Then:

    router's = calls' instructions - the scripted provider's
    the SDK's share = spans per call x the SDK's span + records per call x a bare record's
    router's own = router's - the SDK's share; the verdict: own / off's router's <= 1.10

The SDK is also given bare spans (every attribute at the start, ended at once, no parent): the table's last column
is the ratio with that smaller share, which counts the SDK's extra work for the way spans must be drawn as the
router's own. Spans and records per call are what the code draws (a request span and one per provider call;
histograms only, the counters being observable, read when the SDK collects), checked against what the warm-up and the
windows exported.
Wall-clock timers would make the count depend on valgrind's slowness, so the worker stretches them past the run:
the attempt log's linger (one commit per window, at its flush), the refresh of marks from the database (once, at the
first call), the store's upkeep (not during the run) and the span processor's schedule delay (an export per full
batch and at the flush).

Timed (the default): after a warm-up a worker measures process CPU (`time.process_time()`, every thread) over windows
of calls, alternating the scenarios; each window ends with the flushes. A worker's figure is the median over its
windows; the configurations alternate in rounds (off, prometheus, ..., all on, then the reverse) and each ratio to
off is taken within its round. A worker also times one collection (a `generate_latest()` of the registry, a
collection of the in-memory reader: per scrape or export interval, not per call) and the SDK's own span and record.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib.metadata
import json
import os
import platform
import re
import shlex
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import cpu_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
TASK = "fast"
CLEAN_PROMPT = "Classify this ticket as billing, bug or question: my invoice is wrong"
FALLBACK_PROMPT = "Classify this ticket as billing, bug or question: the export button does nothing"
ANSWER = "billing"
MAX_TOKENS = 64
MAX_GROWTH = 1.10  # configuration's own work per call / off's
SCENARIOS = ("clean", "fallback")
TELEMETRY_MODULES = ("opentelemetry", "prometheus_client")
PACKAGES = ("opentelemetry-api", "opentelemetry-sdk", "prometheus-client", "groq", "pydantic")
MARKER = "os_getppid"  # the C function behind os.getppid(): nothing else in a worker calls it
HOUR = 3600.0
VALGRIND_JOBS = 2  # callgrind workers at a time: one per core of the machine the figures come from

# What the code draws per request, which --instructions checks against what the warm-up and the windows exported:
# the request's span and one span per provider call (app/telemetry/spans.py); a record per answered call's duration,
# input and output tokens, per failed call's duration, and per request's duration (app/telemetry/otel_metrics.py; the
# counters are observable instruments, read when the SDK collects, so a call adds nothing to them).
SPANS_PER_CALL = {"clean": 2, "fallback": 3}
RECORDS_PER_CALL = {"clean": 4, "fallback": 5}


@dataclass(frozen=True, slots=True, kw_only=True)
class Configuration:
    name: str
    settings: Mapping[str, Any]  # Settings fields beyond the defaults
    traces: bool  # a global TracerProvider before the router is built
    otel_metrics: bool  # a global MeterProvider before the router is built


CONFIGURATIONS = (
    Configuration(name="off", settings={}, traces=False, otel_metrics=False),
    Configuration(name="prometheus", settings={"prometheus_metrics": True}, traces=False, otel_metrics=False),
    Configuration(name="otel traces", settings={"opentelemetry": "auto"}, traces=True, otel_metrics=False),
    Configuration(name="otel metrics", settings={"opentelemetry": "auto"}, traces=False, otel_metrics=True),
    Configuration(
        name="all on", settings={"prometheus_metrics": True, "opentelemetry": "auto"}, traces=True, otel_metrics=True
    ),
)
BY_NAME = {c.name: c for c in CONFIGURATIONS}


# -- the worker: one configuration, in a process of its own ------------------------------------------------


def clean_environment(settings_fields: Iterable[str]) -> None:
    """Drop the caller's settings variables (PROMETHEUS_METRICS, OPENTELEMETRY, METRICS_PORT, GROQ_*, ...):
    load_settings reads the environment even with env_file=None, and "off" must be the defaults."""
    names = {name.upper() for name in settings_fields}
    for var in list(os.environ):
        if var.upper() in names or re.fullmatch(r"DEFAULT_[A-Z0-9_]+_MODEL", var.upper()):
            del os.environ[var]
    for var in [v for v in os.environ if v.startswith("OTEL_")]:  # the SDK's own variables, e.g. a sampler
        del os.environ[var]


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanShape:
    """A span as the router drew it, for the SDK alone to draw the same way: after the fact, every attribute at
    its start, with its own start and end times, under a parent or not, with an error status or not."""

    name: str
    kind: str  # SpanKind's member name
    attributes: Mapping[str, Any]
    parented: bool
    error: str | None  # the status description of a span that failed

    @property
    def label(self) -> str:
        how = "a child, timed" if self.parented else "timed"
        if self.error is not None:
            how += ", error status"
        return f"span {self.name!r} ({len(self.attributes)} attributes; {how})"


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordShape:
    """A histogram's record as the router made it."""

    instrument: str
    attributes: Mapping[str, Any]
    value: float

    @property
    def label(self) -> str:
        return f"record {self.instrument} ({len(self.attributes)} attributes)"


class Otel:
    """The OpenTelemetry SDK as an application configures it, with exporters that keep nothing: the spans are
    counted and dropped (and, while `keep_shapes`, tallied by shape); the metrics wait in an in-memory reader until
    it is collected. `schedule_delay_millis`: the span processor's (None: the SDK's default)."""

    def __init__(self, *, traces: bool, metrics: bool, schedule_delay_millis: float | None = None) -> None:
        from opentelemetry import metrics as otel_metrics
        from opentelemetry import trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        self.spans = 0
        self.keep_shapes = False
        self.span_shapes: dict[tuple[Any, ...], tuple[int, SpanShape]] = {}
        outer = self

        class DropSpans(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                outer.spans += len(spans)
                if outer.keep_shapes:
                    outer.tally(spans)
                return SpanExportResult.SUCCESS

        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self.reader: Any = None
        if traces:
            self.tracer_provider = TracerProvider()
            processor = BatchSpanProcessor(DropSpans(), schedule_delay_millis=schedule_delay_millis)
            self.tracer_provider.add_span_processor(processor)
            trace.set_tracer_provider(self.tracer_provider)
        if metrics:
            self.reader = InMemoryMetricReader()
            self.meter_provider = MeterProvider(metric_readers=[self.reader])
            otel_metrics.set_meter_provider(self.meter_provider)

    def flush(self) -> bool:
        return self.tracer_provider is None or bool(self.tracer_provider.force_flush(30_000))

    def tally(self, spans: Sequence[Any]) -> None:
        for span in spans:
            attributes = dict(span.attributes or {})
            error = span.status.description if not span.status.is_ok and span.status.description else None
            parented = span.parent is not None
            key = (span.name, span.kind.name, tuple(sorted(attributes)), parented, error is not None)
            count, shape = self.span_shapes.get(key, (0, None))
            if shape is None:
                shape = SpanShape(
                    name=span.name, kind=span.kind.name, attributes=attributes, parented=parented, error=error
                )
            self.span_shapes[key] = (count + 1, shape)

    def histogram_points(self, scope: str = "taskrouter") -> dict[tuple[str, frozenset[Any]], tuple[int, float]]:
        """(count, sum) of every histogram data point `scope`'s meter holds (cumulative), by (name, attributes)."""
        points: dict[tuple[str, frozenset[Any]], tuple[int, float]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data is not None else ():
            for scope_metrics in resource.scope_metrics:
                if scope_metrics.scope.name != scope:
                    continue
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        if hasattr(point, "bucket_counts"):
                            key = (metric.name, frozenset(dict(point.attributes).items()))
                            points[key] = (point.count, point.sum)
        return points

    def sdk_costs(self, n: int) -> dict[str, float]:
        """The SDK's own CPU per operation in this process, no taskrouter code involved: a span of as many attributes
        as a provider call's, started and ended through the same processor (flushed); a histogram's record of five
        attributes, with no span current, as a provider call's are."""
        from opentelemetry import trace

        attributes: dict[str, Any] = {f"bench.attribute_{i}": f"value {i}" for i in range(8)}
        attributes |= {f"bench.number_{i}": i for i in range(7)}
        costs: dict[str, float] = {}
        if self.tracer_provider is not None:
            tracer = self.tracer_provider.get_tracer("bench")
            cpu = time.process_time()
            for _ in range(n):
                tracer.start_span("bench", kind=trace.SpanKind.CLIENT, attributes=attributes).end()
            self.flush()
            costs["span"] = (time.process_time() - cpu) / n * 1e6
        if self.meter_provider is not None:
            histogram = self.meter_provider.get_meter("bench").create_histogram("bench.histogram")
            five = dict(list(attributes.items())[:5])
            cpu = time.process_time()
            for _ in range(n):
                histogram.record(1, five)
            costs["histogram record"] = (time.process_time() - cpu) / n * 1e6
        return costs

    def requests_counted(self) -> float:
        """taskrouter.requests as the meter provider collected it: every data point's sum."""
        data = self.reader.get_metrics_data()
        return sum(
            point.value
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for metric in scope.metrics
            if metric.name == "taskrouter.requests"
            for point in metric.data.data_points
        )


def prometheus_requests() -> tuple[float, float]:
    """(taskrouter_requests_total over every label set, the scrape's CPU in us) from prometheus_client's default
    registry, as its /metrics would render it."""
    from prometheus_client import REGISTRY, generate_latest

    cpu = time.process_time()
    text = generate_latest(REGISTRY).decode()
    scrape_us = (time.process_time() - cpu) * 1e6
    total = sum(
        float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith("taskrouter_requests_total{")
    )
    return total, scrape_us


@dataclass(frozen=True, slots=True, kw_only=True)
class Bench:
    """A router on scripted models in one configuration, and a call of each scenario."""

    config: Configuration
    router: Any
    fake: Any
    log: Any
    otel: Otel | None
    calls: Mapping[str, Callable[[], Awaitable[Any]]]
    provider_calls: Mapping[str, Callable[[], Awaitable[None]]]  # the scenario's calls to the scripted provider alone
    made: dict[str, int]
    models: tuple[str, str]
    db: Path

    def flush(self) -> bool:
        return bool(self.log.flush(timeout=900)) and (self.otel is None or self.otel.flush())

    async def check(self) -> None:
        """One call of each scenario does what it says, or the comparison is meaningless."""
        for scenario, expected in (("clean", (self.models[0], 1)), ("fallback", (self.models[1], 2))):
            response = await self.calls[scenario]()
            if (response.model_used, len(response.attempts)) != expected:
                raise RuntimeError(f"{scenario}: {response.model_used} after {len(response.attempts)} attempts")

    def verify(self) -> dict[str, float]:
        """What the run left: a row per attempt, a request counted per call made (in what each collects); the
        collections' CPU in us (once per scrape or export interval)."""
        rows = log_rows(self.db)
        rows_expected = self.made["clean"] + 2 * self.made["fallback"]
        if rows != rows_expected:
            raise RuntimeError(f"attempt log: {rows} rows for {rows_expected} attempts")
        requests = sum(self.made.values())
        collected: dict[str, float] = {}
        if self.config.settings.get("prometheus_metrics"):
            counted, collected["prometheus scrape"] = prometheus_requests()
            if counted != requests:
                raise RuntimeError(f"prometheus: taskrouter_requests_total {counted}, {requests} requests made")
        if self.otel is not None and self.otel.reader is not None:
            cpu = time.process_time()
            counted = self.otel.requests_counted()
            collected["otel collection"] = (time.process_time() - cpu) * 1e6
            if counted != requests:
                raise RuntimeError(f"otel metrics: taskrouter.requests {counted}, {requests} requests made")
        return collected


def build(config: Configuration, tmp: Path, *, schedule_delay_millis: float | None = None, **settings: Any) -> Bench:
    """The router of `config` on scripted models, its attempt log in `tmp`; `settings` beyond the configuration's."""
    from app.config import Settings, load_settings
    from app.core import ai_models
    from app.core.router import Router
    from app.errors import ProviderError
    from app.testing import FakeModels, failure

    clean_environment(Settings.model_fields)
    otel = None
    if config.traces or config.otel_metrics:
        otel = Otel(traces=config.traces, metrics=config.otel_metrics, schedule_delay_millis=schedule_delay_millis)
    chain = [*dict.fromkeys([*ai_models.MODEL_REGISTRY[TASK], *ai_models.MODEL_REGISTRY["fallback"]])]
    first, second = chain[0], chain[1]

    def first_model(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Any:
        # A fresh error each time: raising one instance again and again would grow its traceback.
        return failure("too_large") if messages[-1]["content"] == FALLBACK_PROMPT else ANSWER

    fake = FakeModels({first: first_model, "*": ANSWER})
    db = tmp / "attempts.db"
    loaded = load_settings(
        env_file=None,
        groq_api_key="gsk_bench_not_a_real_key",
        attempts_db_path=db,
        attempts_db_url=None,
        alert_webhook_url=None,
        force_model=None,
        default_models={},
        daily_budget_usd=None,
        **config.settings,
        **settings,
    )
    router = Router(loaded, providers={"groq": fake, "openai_compatible": fake})
    assert router.log is not None, "the attempt log is on by default"
    made = dict.fromkeys(SCENARIOS, 0)
    prompts = {"clean": CLEAN_PROMPT, "fallback": FALLBACK_PROMPT}
    params = {"max_tokens": MAX_TOKENS}
    endpoint = router.groq_endpoint

    def scenario_call(scenario: str) -> Callable[[], Awaitable[Any]]:
        messages = [{"role": "user", "content": prompts[scenario]}]

        async def call() -> Any:
            made[scenario] += 1
            return await router.execute(TASK, messages, max_tokens=MAX_TOKENS)

        return call

    def provider_call(scenario: str) -> Callable[[], Awaitable[None]]:
        messages = [{"role": "user", "content": prompts[scenario]}]

        async def call() -> None:
            if scenario == "fallback":
                with contextlib.suppress(ProviderError):
                    await fake.complete(endpoint, first, messages, params, 30.0)
                await fake.complete(endpoint, second, messages, params, 30.0)
            else:
                await fake.complete(endpoint, first, messages, params, 30.0)

        return call

    return Bench(
        config=config,
        router=router,
        fake=fake,
        log=router.log,
        otel=otel,
        calls={s: scenario_call(s) for s in SCENARIOS},
        provider_calls={s: provider_call(s) for s in SCENARIOS},
        made=made,
        models=(first, second),
        db=db,
    )


async def cpu_us_per_call(call: Callable[[], Awaitable[Any]], n: int, flush: Callable[[], bool]) -> float:
    """Process CPU per call over n calls, the flushes inside the window so that the threads' work for these calls
    is counted here, not in the next window."""
    cpu = time.process_time()
    for _ in range(n):
        await call()
    if not flush():
        raise RuntimeError("the attempt log or the span processor did not flush")
    return (time.process_time() - cpu) / n * 1e6


async def worker(config: Configuration, calls: int, windows: int, warmup: int) -> dict[str, Any]:
    """The timed worker: CPU per call over alternating windows of each scenario."""
    import app

    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        bench = build(config, Path(tmp))
        otel = bench.otel
        await bench.check()
        for scenario in SCENARIOS if warmup else ():
            await cpu_us_per_call(bench.calls[scenario], warmup, bench.flush)
            bench.fake.calls.clear()
        us: dict[str, list[float]] = {s: [] for s in SCENARIOS}
        spans: dict[str, int] = dict.fromkeys(SCENARIOS, 0)
        for w in range(windows):
            # clean, fallback, then fallback, clean: a drift within the process favours neither
            for scenario in SCENARIOS if w % 2 == 0 else SCENARIOS[::-1]:
                # The scripted provider records every call; forgotten between windows so that the heap, which each
                # of the garbage collector's full passes walks, stays the same size through the run.
                bench.fake.calls.clear()
                before = otel.spans if otel is not None else 0
                us[scenario].append(await cpu_us_per_call(bench.calls[scenario], calls, bench.flush))
                spans[scenario] += (otel.spans if otel is not None else 0) - before
        loaded = sorted(m for m in TELEMETRY_MODULES if m in sys.modules)
        collected = bench.verify()
        if config.traces and not all(spans.values()):
            raise RuntimeError(f"otel traces: no spans exported ({spans})")
        sdk = otel.sdk_costs(max(calls, 500)) if otel is not None else {}
        await bench.router.aclose()
    return {
        "config": config.name,
        "app_file": app.__file__,
        "us": {s: statistics.median(us[s]) for s in SCENARIOS},
        "windows": us,
        "spans_per_call": {s: spans[s] / (calls * windows) for s in SCENARIOS},
        "collect_us": collected,
        "sdk_us": sdk,
        "modules": loaded,
        "models": list(bench.models),
    }


def log_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


# -- the instruction-counting worker: one configuration and scenario, under callgrind ------------------------


class Windows:
    """Marks callgrind's parts: `start(label)` and `stop()` bracket a window; the parts between are "between"."""

    def __init__(self) -> None:
        self.labels: list[str] = []  # the label of the part each marker starts, in order

    def start(self, label: str) -> None:
        gc.collect()  # every window starts from the same heap: no full collection owed from before lands in it
        os.getppid()
        self.labels.append(label)

    def stop(self) -> None:
        os.getppid()
        self.labels.append("between")


def record_shapes(
    before: Mapping[tuple[str, frozenset[Any]], tuple[int, float]],
    after: Mapping[tuple[str, frozenset[Any]], tuple[int, float]],
    calls: int,
) -> list[tuple[float, RecordShape]]:
    """(records per call, shape) of the histograms' growth between two collections over `calls` calls."""
    shapes = []
    for key, (count, total) in after.items():
        count0, total0 = before.get(key, (0, 0.0))
        if count > count0:
            name, attributes = key
            shape = RecordShape(
                instrument=name,
                attributes=dict(attributes),
                value=(total - total0) / (count - count0),
            )
            shapes.append(((count - count0) / calls, shape))
    return shapes


def check_per_call(what: str, scenario: str, measured: float, expected: int) -> None:
    if abs(measured - expected) > 1e-9:
        raise RuntimeError(
            f"{scenario}: {measured:g} {what} per call exported, the bench counts {expected} from the code "
            "(SPANS_PER_CALL, RECORDS_PER_CALL): update them with what app/telemetry now does"
        )


def sdk_windows(
    otel: Otel | None,
    spans: Sequence[tuple[float, SpanShape]],
    records: Sequence[tuple[float, RecordShape]],
    marks: Windows,
    sizes: Sequence[int],
) -> None:
    """Windows of the SDK alone: a bare span like each the router drew, through the same processor (flushed in
    the window), and a bare record like each the router made, on a histogram of the same instrument."""
    if otel is None:
        return
    from opentelemetry import context, trace

    from app.telemetry.instruments import BY_NAME as INSTRUMENTS_BY_NAME

    if otel.tracer_provider is not None:
        from opentelemetry.trace import Status, StatusCode

        tracer = otel.tracer_provider.get_tracer("bench")
        parent_span = tracer.start_span("bench parent")
        for i, (_, span_shape) in enumerate(spans):
            name, kind, attributes = span_shape.name, trace.SpanKind[span_shape.kind], dict(span_shape.attributes)
            for n in sizes:
                marks.start(f"bare {i} {n}")
                for _ in range(n):
                    tracer.start_span(name, kind=kind, attributes=attributes).end()
                if not otel.flush():
                    raise RuntimeError("the span processor did not flush")
                marks.stop()
            # The router's request span goes under the context current at the request's start (here, none).
            parent = trace.set_span_in_context(parent_span) if span_shape.parented else context.get_current()
            error = span_shape.error
            start, end = time.time_ns(), time.time_ns() + 1_000_000
            for n in sizes:
                marks.start(f"span {i} {n}")
                for _ in range(n):
                    span = tracer.start_span(name, parent, kind, attributes, start_time=start)
                    if error is not None:
                        span.set_status(Status(StatusCode.ERROR, error))
                    span.end(end)
                if not otel.flush():
                    raise RuntimeError("the span processor did not flush")
                marks.stop()
        parent_span.end()
    if otel.meter_provider is not None:
        meter = otel.meter_provider.get_meter("bench")
        histograms: dict[str, Any] = {}
        for i, (_, shape) in enumerate(records):
            instrument = INSTRUMENTS_BY_NAME[shape.instrument]
            histogram = histograms.get(instrument.name)
            if histogram is None:
                histogram = histograms[instrument.name] = meter.create_histogram(
                    instrument.name,
                    instrument.unit,
                    instrument.description,
                    explicit_bucket_boundaries_advisory=list(instrument.buckets),
                )
            value = int(shape.value) if float(shape.value).is_integer() else shape.value
            attributes = dict(shape.attributes)
            for n in sizes:
                marks.start(f"record {i} {n}")
                for _ in range(n):
                    histogram.record(value, attributes)
                marks.stop()


async def instructions_worker(config: Configuration, scenario: str, n1: int, n2: int, warmup: int) -> dict[str, Any]:
    """The callgrind worker: windows of n1 and n2 calls of `scenario`, then of the scripted provider alone and of
    the SDK alone, each bracketed by markers; the parent reads the counts of the parts callgrind dumped."""
    import app

    # The writer commits a batch after lingering LINGER_SECONDS of wall time; valgrind slows a worker many times
    # over, by how much depending on the machine's load, so the number of commits per window (and its instructions)
    # would too. Past the run's length, the writer commits once per window, at its flush.
    import app.store.attempt_log as attempt_log_module

    attempt_log_module.LINGER_SECONDS = HOUR
    # The store's upkeep (rollups, pruning) first runs some minutes of wall time after a router starts: under
    # valgrind that lands inside some worker's windows and not others'. Past the run's length, it runs in none.
    from app.store import upkeep

    upkeep._UPKEEP.first_delay = 24 * HOUR
    marks = Windows()
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        # Likewise the marks' refresh from the database (every MODEL_STATUS_REFRESH_SECONDS): once, at the first
        # call; and the span processor's export (every schedule delay): once per full batch and at the flush.
        bench = build(config, Path(tmp), model_status_refresh_seconds=HOUR, schedule_delay_millis=HOUR * 1000)
        otel = bench.otel
        call = bench.calls[scenario]
        await bench.check()
        if not bench.flush():
            raise RuntimeError("the attempt log or the span processor did not flush")
        metrics = otel is not None and otel.reader is not None
        points = otel.histogram_points() if otel is not None and metrics else {}
        if otel is not None:
            otel.keep_shapes = True
        await cpu_us_per_call(call, warmup, bench.flush)
        spans: list[tuple[float, SpanShape]] = []
        records: list[tuple[float, RecordShape]] = []
        if otel is not None:
            otel.keep_shapes = False
            spans = [(count / warmup, shape) for count, shape in otel.span_shapes.values()]
            if metrics:
                warmed = otel.histogram_points()
                records = record_shapes(points, warmed, warmup)
                points = warmed
            exported = otel.spans
        for n in (n1, n2):
            bench.fake.calls.clear()
            marks.start(f"router {n}")
            for _ in range(n):
                await call()
            if not bench.flush():
                raise RuntimeError("the attempt log or the span processor did not flush")
            marks.stop()
        # What the code draws per call, in the warm-up and in the windows alike.
        if config.traces and otel is not None:
            check_per_call("spans", scenario, sum(k for k, _ in spans), SPANS_PER_CALL[scenario])
            check_per_call("spans", scenario, (otel.spans - exported) / (n1 + n2), SPANS_PER_CALL[scenario])
        if metrics and otel is not None:
            check_per_call("records", scenario, sum(k for k, _ in records), RECORDS_PER_CALL[scenario])
            windows = record_shapes(points, otel.histogram_points(), n1 + n2)
            check_per_call("records", scenario, sum(k for k, _ in windows), RECORDS_PER_CALL[scenario])
        for n in (n1, n2):
            bench.fake.calls.clear()
            marks.start(f"provider {n}")
            for _ in range(n):
                await bench.provider_calls[scenario]()
            marks.stop()
        sdk_windows(otel, spans, records, marks, (n1, n2))
        marks.start("exit")
        loaded = sorted(m for m in TELEMETRY_MODULES if m in sys.modules)
        bench.verify()
        await bench.router.aclose()
    return {
        "config": config.name,
        "scenario": scenario,
        "app_file": app.__file__,
        "labels": marks.labels,
        "spans": [{"per_call": k, "label": s.label} for k, s in spans],
        "records": [{"per_call": k, "label": s.label} for k, s in records],
        "modules": loaded,
        "models": list(bench.models),
    }


# -- the parent: the workers, the tables ------------------------------------------------------------------------


def worker_env() -> dict[str, str]:
    # PYTHONPATH replaced, not extended: this tree's `app`, ahead of any installed one.
    return dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")


def worker_result(name: str, done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    if done.returncode != 0:
        raise RuntimeError(f"{name} worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])  # warnings may precede it
    if not Path(result["app_file"]).resolve().is_relative_to(ROOT):
        raise RuntimeError(f"{name} worker imported {result['app_file']}, not {ROOT}'s app")
    return result


def run_worker(config: Configuration, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    cmd = [sys.executable, str(SCRIPT), "--worker", config.name]
    cmd += ["--calls", str(args.calls), "--windows", str(args.windows), "--warmup", str(args.warmup)]
    done = subprocess.run(cmd, cwd=scratch, env=worker_env(), capture_output=True, text=True)
    return worker_result(config.name, done)


def callgrind_command(prefix: Path) -> list[str]:
    """Valgrind's callgrind, dumping its counts before each call of MARKER into prefix.1, prefix.2, ..."""
    return ["valgrind", "--tool=callgrind", f"--dump-before={MARKER}", f"--callgrind-out-file={prefix}"]


def callgrind_parts(prefix: Path) -> list[int]:
    """Instructions of each part callgrind dumped, in order: prefix.1, prefix.2, ... (one per marker, each ending at
    it), then prefix itself (from the last marker to the exit)."""
    numbered = sorted(prefix.parent.glob(prefix.name + ".*"), key=lambda p: int(p.suffix[1:]))
    counts = []
    for path in [*numbered, prefix]:
        match = re.search(r"^totals:\s*(\d+)", path.read_text(errors="replace"), re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no totals in {path}")
        counts.append(int(match.group(1)))
    return counts


def per_call(windows: Mapping[str, int], what: str, n1: int, n2: int) -> float:
    """Instructions per operation: the difference of the n2 and n1 windows, each window's fixed cost cancelled."""
    return (windows[f"{what} {n2}"] - windows[f"{what} {n1}"]) / (n2 - n1)


def instructions_of(result: Mapping[str, Any], counts: Sequence[int], n1: int, n2: int) -> dict[str, Any]:
    """The figures of one callgrind worker from its parts' counts (the first part: start-up and warm-up)."""
    labels = result["labels"]
    if len(counts) != len(labels) + 1:
        raise RuntimeError(f"{len(counts)} parts dumped for {len(labels)} markers")
    windows = {label: count for label, count in zip(labels, counts[1:], strict=True) if label != "between"}
    spans = [
        {**s, "instructions": per_call(windows, f"span {i}", n1, n2), "bare": per_call(windows, f"bare {i}", n1, n2)}
        for i, s in enumerate(result["spans"])
    ]
    records = [{**r, "instructions": per_call(windows, f"record {i}", n1, n2)} for i, r in enumerate(result["records"])]
    total = per_call(windows, "router", n1, n2)
    provider = per_call(windows, "provider", n1, n2)
    sdk = sum(s["per_call"] * s["instructions"] for s in [*spans, *records])
    bare = sdk - sum(s["per_call"] * (s["instructions"] - s["bare"]) for s in spans)
    return {
        "sdk_bare": bare,
        "own_bare": total - provider - bare,
        "total": total,
        "provider": provider,
        "router": total - provider,
        "sdk": sdk,
        "own": total - provider - sdk,
        "spans": spans,
        "records": records,
        "windows": {k: windows[k] for k in (f"router {n1}", f"router {n2}", f"provider {n1}", f"provider {n2}")},
        "modules": result["modules"],
        "models": result["models"],
        "app_file": result["app_file"],
    }


def run_callgrind_worker(
    config: Configuration, scenario: str, args: argparse.Namespace, scratch: Path
) -> dict[str, Any]:
    prefix = scratch / f"cg_{config.name.replace(' ', '_')}_{scenario}"
    env = dict(worker_env(), PYTHONHASHSEED="0")
    cmd = [
        *callgrind_command(prefix),
        sys.executable,
        str(SCRIPT),
        "--worker",
        config.name,
        "--scenario",
        scenario,
        "--instructions",
    ]
    cmd += ["--n1", str(args.n1), "--n2", str(args.n2), "--warmup", str(args.warmup)]
    started = time.perf_counter()
    done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
    result = worker_result(f"{config.name} ({scenario})", done)
    figures = instructions_of(result, callgrind_parts(prefix), args.n1, args.n2)
    print(f"{config.name}, {scenario}: done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return figures


def versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{name} (absent)")
    return ", ".join(found)


def revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        return rev[:100] + (" + uncommitted changes in app/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "(not a git checkout)"


def header() -> list[str]:
    return [
        f"command: {shlex.join(['python', 'bench/telemetry.py', *sys.argv[1:]])}",
        f"machine: {cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {versions()}",
        f"revision: {revision()}",
    ]


def markdown(rows: Sequence[Sequence[str]], left: int = 2) -> list[str]:
    """A table, its first `left` columns aligned left and the rest right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [
        "| "
        + " | ".join(x.ljust(w) if i < left else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True)))
        + " |"
        for r in rows
    ]
    out.insert(
        1, "|" + "|".join(("-" * (w + 2)) if i < left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    )
    return out


def modules_check(loaded_by_config: Mapping[str, Iterable[str]]) -> tuple[list[str], bool]:
    lines, ok = [], True
    for name, modules in loaded_by_config.items():
        loaded = sorted(set(modules))
        if name == "off":
            ok = not loaded
            lines.append(
                f"{'PASS' if ok else 'FAIL'}: off (the defaults): after its calls, in sys.modules: "
                + ", ".join(f"{m} {'yes' if m in loaded else 'no'}" for m in TELEMETRY_MODULES)
            )
        else:
            lines.append(f"      {name}: in sys.modules: {', '.join(loaded) or 'neither'}")
    return lines, ok


def instructions_table(
    figures: Mapping[tuple[str, str], Mapping[str, Any]], configs: Sequence[Configuration], scenarios: Sequence[str]
) -> tuple[list[str], list[str], bool]:
    """(the tables and notes, the verdict lines, whether every verdict passed)."""
    head = (
        "scenario",
        "configuration",
        "instr/call",
        "provider",
        "router's",
        "ratio to off",
        "SDK's share",
        "router's own",
        "own ratio to off",
        f"verdict (<= {MAX_GROWTH:.2f})",
        "own ratio, bare spans",
    )
    rows: list[tuple[str, ...]] = [head]
    verdicts: list[str] = []
    ok = True
    for scenario in scenarios:
        off = figures[("off", scenario)]["router"]
        for config in configs:
            f = figures[(config.name, scenario)]
            whole, own = f["router"] / off, f["own"] / off
            verdict = "-"
            if config.name != "off":
                passed = own <= MAX_GROWTH
                ok &= passed
                verdict = "PASS" if passed else "FAIL"
                sdk = f" (with the SDK's share: {whole:.3f}x)" if f["sdk"] else ""
                verdicts.append(
                    f"{verdict}: {scenario}, {config.name}: the router's own instructions per call {own:.3f}x off's"
                    f"{sdk}; target <= {MAX_GROWTH:.2f}"
                )
            rows.append(
                (
                    scenario,
                    config.name,
                    f"{f['total']:,.0f}",
                    f"{f['provider']:,.0f}",
                    f"{f['router']:,.0f}",
                    "1" if config.name == "off" else f"{whole:.3f}",
                    f"{f['sdk']:,.0f}" if f["sdk"] else "-",
                    f"{f['own']:,.0f}",
                    "1" if config.name == "off" else f"{own:.3f}",
                    verdict,
                    f"{f['own_bare'] / off:.3f}" if f["spans"] else "-",
                )
            )
    out = markdown(rows)
    out += [
        "",
        "instr/call: instructions per call, every thread, = (window of N2 calls - window of N1) / (N2 - N1); "
        "provider: the scripted provider alone making the scenario's calls, counted the same way; router's = "
        "instr/call - provider; SDK's share: the OpenTelemetry SDK's own work for the spans and records the call "
        "made (below), each span drawn as the router draws it (after the fact, every attribute at its start, with "
        "given start and end times: the request's under the caller's context, a call's a child of the request's); "
        "router's own = "
        "router's - SDK's share; ratios over off's router's. Own ratio, bare spans: the same with the SDK's share "
        "taken from bare spans (started with every attribute, ended at once, no parent), which leaves the SDK's "
        "extra work for a parent and given times in the router's own.",
        "",
    ]
    for scenario in scenarios:
        for config in configs:
            f = figures[(config.name, scenario)]
            if f["spans"] or f["records"]:
                parts = [
                    f"{x['per_call']:g} x {x['label']} {x['instructions']:,.0f} (bare {x['bare']:,.0f})"
                    for x in f["spans"]
                ]
                parts += [f"{x['per_call']:g} x {x['label']} {x['instructions']:,.0f}" for x in f["records"]]
                out.append(
                    f"{config.name}, {scenario}: the SDK alone, instructions per call {f['sdk']:,.0f} = "
                    + " + ".join(parts)
                )
    out += ["", "Each window's own count (instructions; its fixed cost, the flushes, is what the difference cancels):"]
    window_rows: list[tuple[str, ...]] = [("scenario", "configuration", *next(iter(figures.values()))["windows"])]
    for scenario in scenarios:
        for config in configs:
            window_rows.append(
                (scenario, config.name, *(f"{v:,}" for v in figures[(config.name, scenario)]["windows"].values()))
            )
    out += ["", *markdown(window_rows)]
    return out, verdicts, ok


def instructions_parent(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit(
            "valgrind is not installed (apt-get install -y valgrind): --instructions counts with callgrind"
        )
    started = time.perf_counter()
    configs = [c for c in CONFIGURATIONS if c.name in args.configurations]
    # The heaviest first, so that two at a time finish together.
    jobs = [(c, s) for c in configs[::-1] for s in args.scenarios[::-1]]
    with (
        tempfile.TemporaryDirectory(prefix="bench-telemetry-") as scratch,
        ThreadPoolExecutor(max_workers=VALGRIND_JOBS) as pool,
    ):
        futures = {(c.name, s): pool.submit(run_callgrind_worker, c, s, args, Path(scratch)) for c, s in jobs}
        figures = {key: future.result() for key, future in futures.items()}
    first = figures[("off", args.scenarios[0])]
    lines = [
        *header(),
        f"--instructions: one worker per configuration and scenario under valgrind --tool=callgrind "
        f"(PYTHONHASHSEED=0), {VALGRIND_JOBS} at a time; per worker {args.warmup} warm-up calls, then windows of "
        f"N1={args.n1} and N2={args.n2} calls, concurrency 1; app.testing's scripted models in-process; attempt log "
        "on (SQLite)",
        "",
        f"app: {first['app_file']}; task {TASK!r}: clean = {first['models'][0]} answers; fallback = "
        f"{first['models'][0]} answers 413 (too large), {first['models'][1]} answers",
        "",
    ]
    rows, verdicts, growth_ok = instructions_table(figures, configs, args.scenarios)
    modules, modules_ok = modules_check(
        {c.name: [m for s in args.scenarios for m in figures[(c.name, s)]["modules"]] for c in configs}
    )
    print("\n".join([*lines, *rows, "", *verdicts, "", *modules]))
    ok = growth_ok and modules_ok
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; targets (off imports nothing; on, the router's own "
        f"instructions per call <= {MAX_GROWTH:.2f}x off's): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def timed_table(results: dict[str, list[dict[str, Any]]], rounds: int) -> list[str]:
    head = (
        "scenario",
        "configuration",
        "us/call min",
        "us/call median",
        "ratio to off min",
        "ratio to off median",
        f"rounds <= {MAX_GROWTH:.2f}",
        "spans/call",
    )
    rows: list[tuple[str, ...]] = [head]
    off = results["off"]
    configs = [c for c in CONFIGURATIONS if c.name in results]
    for scenario in SCENARIOS:
        for config in configs:
            us = [r["us"][scenario] for r in results[config.name]]
            ratios = [r["us"][scenario] / o["us"][scenario] for r, o in zip(results[config.name], off, strict=True)]
            spans = statistics.median(r["spans_per_call"][scenario] for r in results[config.name])
            under, ratio_min, ratio_median = "-", "1", "1"
            if config.name != "off":
                under = f"{sum(r <= MAX_GROWTH for r in ratios)}/{rounds}"
                ratio_min, ratio_median = f"{min(ratios):.3f}", f"{statistics.median(ratios):.3f}"
            rows.append(
                (
                    scenario,
                    config.name,
                    f"{min(us):,.1f}",
                    f"{statistics.median(us):,.1f}",
                    ratio_min,
                    ratio_median,
                    under,
                    f"{spans:.2f}" if config.traces else "-",
                )
            )
    out = markdown(rows)
    out += [
        "",
        "us/call: process CPU (every thread) per call, a worker's median over its windows; min and median over "
        "rounds. ratio: the configuration's us/call over off's in the same round. The growth's verdicts rest on "
        "--instructions: rounds of process time on a shared machine disagree by more than the 10 % line.",
        "",
    ]
    for config in configs:
        collected = [r["collect_us"] for r in results[config.name]]
        for kind in sorted({k for c in collected for k in c}):
            out.append(
                f"{config.name}: one {kind} (once per scrape or export interval, not per call) "
                f"{statistics.median(c[kind] for c in collected):,.0f} us CPU (median over rounds)"
            )
    for config in configs:
        sdk = [r["sdk_us"] for r in results[config.name]]
        if any(sdk):
            costs = ", ".join(f"{kind} {statistics.median(c[kind] for c in sdk):,.1f} us" for kind in sdk[0])
            out.append(f"{config.name}: the OpenTelemetry SDK alone, CPU per operation: {costs} (median over rounds)")
    return out


def timed_parent(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    configs = [c for c in CONFIGURATIONS if c.name in args.configurations]
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in configs}
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as scratch:
        for r in range(args.rounds):
            for config in configs if r % 2 == 0 else configs[::-1]:
                results[config.name].append(run_worker(config, args, Path(scratch)))
            print(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    first = results["off"][0]
    lines = [
        *header(),
        f"timed: {args.rounds} rounds of {len(configs)} workers (order reversed every other round); per worker "
        f"{args.warmup} warm-up calls per scenario, then {args.windows} windows of {args.calls} calls per scenario, "
        "concurrency 1; app.testing's scripted models in-process; attempt log on (SQLite)",
        "",
        f"app: {first['app_file']}; task {TASK!r}: clean = {first['models'][0]} answers; fallback = "
        f"{first['models'][0]} answers 413 (too large), {first['models'][1]} answers",
        "",
    ]
    rows = timed_table(results, args.rounds)
    modules, ok = modules_check({name: [m for r in rs for m in r["modules"]] for name, rs in results.items()})
    print("\n".join([*lines, *rows, "", *modules]))
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; target (off imports nothing): {'PASS' if ok else 'FAIL'}; "
        "the growth's verdicts: --instructions"
    )
    return 0 if ok else 1


def names(text: str, known: Sequence[str], what: str) -> list[str]:
    chosen = [x.strip() for x in text.split(",") if x.strip()]
    unknown = [x for x in chosen if x not in known]
    if unknown:
        raise SystemExit(f"--{what}: unknown {', '.join(map(repr, unknown))}; choose among {', '.join(known)}")
    return [x for x in known if x in chosen]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--instructions", action="store_true", help="count instructions under callgrind")
    parser.add_argument("--rounds", type=int, default=6, help="timed: workers per configuration, alternating (6)")
    parser.add_argument("--windows", type=int, default=20, help="timed: measured windows per scenario per worker (20)")
    parser.add_argument("--calls", type=int, default=200, help="timed: calls per window (200)")
    parser.add_argument("--n1", type=int, default=500, help="--instructions: calls in the shorter window (500)")
    parser.add_argument("--n2", type=int, default=2500, help="--instructions: calls in the longer window (2500)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured calls per scenario per worker (300)")
    parser.add_argument(
        "--configurations",
        default=",".join(BY_NAME),
        help="comma-separated, among: " + ", ".join(BY_NAME) + " (all; off is always run)",
    )
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="--instructions: comma-separated (all)")
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a tiny run: timed, 1 round of 2 windows of 20 calls, 20 warm-up; with --instructions, 10 warm-up "
        "calls and windows of 10 and 30",
    )
    parser.add_argument("--worker", choices=list(BY_NAME), help=argparse.SUPPRESS)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke and args.instructions:
        args.warmup, args.n1, args.n2 = 10, 10, 30
    elif args.smoke:
        args.rounds, args.windows, args.calls, args.warmup = 1, 2, 20, 20
    for name in ("rounds", "windows", "calls", "n1"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.n2 <= args.n1:
        parser.error("--n2 must be larger than --n1 (the difference of the two windows is what is counted)")
    if args.warmup < (1 if args.instructions else 0):
        parser.error("--warmup must be at least 1 with --instructions (the spans and records drawn are read from it)")
    args.configurations = ["off", *names(args.configurations, list(BY_NAME), "configurations")]
    args.scenarios = names(args.scenarios, SCENARIOS, "scenarios")
    if args.worker and args.instructions:
        if args.scenario is None:
            parser.error("--worker with --instructions needs --scenario")
        result = asyncio.run(instructions_worker(BY_NAME[args.worker], args.scenario, args.n1, args.n2, args.warmup))
        print(json.dumps(result))
        return 0
    if args.worker:
        print(json.dumps(asyncio.run(worker(BY_NAME[args.worker], args.calls, args.windows, args.warmup))))
        return 0
    return instructions_parent(args) if args.instructions else timed_parent(args)


if __name__ == "__main__":
    sys.exit(main())

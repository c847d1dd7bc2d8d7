"""What metrics and traces cost the router: its own CPU per call with telemetry off, with Prometheus metrics, with
OpenTelemetry traces, traces and metrics, and all of them, side by side in one run. By hand.

    python bench/telemetry.py             # 6 rounds of the 5 configurations (about 2 minutes)
    python bench/telemetry.py --smoke     # a tiny run: does every configuration work and print its row

The target (issue 24): off costs nothing (with the defaults neither `opentelemetry` nor `prometheus_client` is
imported, which each worker of "off" checks after its calls), and on, the router's own CPU per call grows by at most
10 % over off.

Each configuration runs in a worker process of its own (OpenTelemetry's global providers can be set once per
process), started from this script with `--worker NAME` and PYTHONPATH set to this tree:

- off: the defaults (PROMETHEUS_METRICS=false, OPENTELEMETRY=auto with no provider configured);
- prometheus: PROMETHEUS_METRICS=true (the metrics in prometheus_client's default registry, no server);
- otel traces: an OpenTelemetry SDK TracerProvider set globally, its BatchSpanProcessor feeding an exporter that
  counts the spans and drops them; OPENTELEMETRY=auto;
- otel traces+metrics: the same, and a global MeterProvider with an InMemoryMetricReader;
- all on: prometheus and otel traces+metrics.

A worker builds a `Router` on app.testing's scripted models (`FakeModels`, a provider passed to the router: no
socket, no simulator), so the CPU measured is the router's own: chain, gates, health, the attempt log (on, in a
temporary SQLite file, its writer thread's CPU counted) and the telemetry. After a warm-up it measures process CPU
(`time.process_time()`, every thread) over windows of calls to `Router.execute("fast", ...)`, alternating two
scenarios: clean (the chain's first model answers) and fallback (the first model answers 413, too large, which marks
nothing, and the second answers). Each window ends by flushing the attempt log and the span processor, so the
threads' work for the window's calls is counted in it. A worker's figure is the median over its windows.

Collecting the metrics is not per call but per scrape or export (Prometheus every 15 s or so, an OTLP reader every
60 s): a worker times it apart, once after its windows (a `generate_latest()` of the registry, a collection of the
in-memory reader), and checks what it collected: as many requests as it made. An OpenTelemetry worker also times
the SDK's own operations alone, with no router code (a span, a counter's add, a histogram's record): the share of
the growth that the SDK the application chose costs whatever the router does.

The machine is noisy, so the configurations alternate in rounds (off, prometheus, ..., all on, then the reverse)
and each ratio to off is taken within its round. The table shows the minimum and median over rounds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import re
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import cpu_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
TASK = "fast"
CLEAN_PROMPT = "Classify this ticket as billing, bug or question: my invoice is wrong"
FALLBACK_PROMPT = "Classify this ticket as billing, bug or question: the export button does nothing"
ANSWER = "billing"
MAX_TOKENS = 64
MAX_GROWTH = 1.10  # configuration's own CPU per call / off's
SCENARIOS = ("clean", "fallback")
TELEMETRY_MODULES = ("opentelemetry", "prometheus_client")
PACKAGES = ("opentelemetry-api", "opentelemetry-sdk", "prometheus-client", "groq", "pydantic")


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
    Configuration(name="otel traces+metrics", settings={"opentelemetry": "auto"}, traces=True, otel_metrics=True),
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


class Otel:
    """The OpenTelemetry SDK as an application configures it, with exporters that keep nothing: the spans are
    counted and dropped; the metrics wait in an in-memory reader until `collect()`."""

    def __init__(self, *, traces: bool, metrics: bool) -> None:
        from opentelemetry import metrics as otel_metrics
        from opentelemetry import trace
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        self.spans = 0
        outer = self

        class DropSpans(SpanExporter):
            def export(self, spans: Sequence[Any]) -> SpanExportResult:
                outer.spans += len(spans)
                return SpanExportResult.SUCCESS

        self.tracer_provider: Any = None
        self.reader: Any = None
        if traces:
            self.tracer_provider = TracerProvider()
            self.tracer_provider.add_span_processor(BatchSpanProcessor(DropSpans()))
            trace.set_tracer_provider(self.tracer_provider)
        if metrics:
            self.reader = InMemoryMetricReader()
            otel_metrics.set_meter_provider(MeterProvider(metric_readers=[self.reader]))

    def flush(self) -> bool:
        return self.tracer_provider is None or bool(self.tracer_provider.force_flush(30_000))

    def sdk_costs(self, n: int) -> dict[str, float]:
        """The SDK's own CPU per operation in this process, no taskrouter code involved: a span of as many attributes
        as a provider call's, started and ended through the same processor (flushed); a counter's add and a
        histogram's record of five attributes, inside a recording span as the router's are (so that the SDK's
        default exemplar filter samples them)."""
        from opentelemetry import context, trace

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
        if self.reader is not None:
            from opentelemetry import metrics

            meter = metrics.get_meter_provider().get_meter("bench")
            counter, histogram = meter.create_counter("bench.counter"), meter.create_histogram("bench.histogram")
            five = dict(list(attributes.items())[:5])
            outer = trace.get_tracer("bench").start_span("bench outer")
            token = context.attach(trace.set_span_in_context(outer))
            try:
                for name, operation in (("counter add", counter.add), ("histogram record", histogram.record)):
                    cpu = time.process_time()
                    for _ in range(n):
                        operation(1, five)
                    costs[name] = (time.process_time() - cpu) / n * 1e6
            finally:
                context.detach(token)
                outer.end()
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


async def cpu_us_per_call(call: Callable[[], Any], n: int, flush: Callable[[], bool]) -> float:
    """Process CPU per call over n calls, the flushes inside the window so that the threads' work for these calls
    is counted here, not in the next window."""
    cpu = time.process_time()
    for _ in range(n):
        await call()
    if not flush():
        raise RuntimeError("the attempt log or the span processor did not flush")
    return (time.process_time() - cpu) / n * 1e6


async def worker(config: Configuration, calls: int, windows: int, warmup: int) -> dict[str, Any]:
    import app
    from app.config import Settings, load_settings
    from app.core import ai_models
    from app.core.router import Router
    from app.testing import FakeModels, failure

    clean_environment(Settings.model_fields)
    otel = Otel(traces=config.traces, metrics=config.otel_metrics) if config.traces or config.otel_metrics else None
    chain = [*dict.fromkeys([*ai_models.MODEL_REGISTRY[TASK], *ai_models.MODEL_REGISTRY["fallback"]])]
    first, second = chain[0], chain[1]

    def first_model(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Any:
        # A fresh error each time: raising one instance again and again would grow its traceback.
        return failure("too_large") if messages[-1]["content"] == FALLBACK_PROMPT else ANSWER

    fake = FakeModels({first: first_model, "*": ANSWER})
    prompts = {"clean": CLEAN_PROMPT, "fallback": FALLBACK_PROMPT}
    expected = {"clean": (first, 1), "fallback": (second, 2)}  # (model that answers, attempt rows)
    made = dict.fromkeys(SCENARIOS, 0)
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as tmp:
        settings = load_settings(
            env_file=None,
            groq_api_key="gsk_bench_not_a_real_key",
            attempts_db_path=Path(tmp) / "attempts.db",
            attempts_db_url=None,
            alert_webhook_url=None,
            force_model=None,
            default_models={},
            daily_budget_usd=None,
            **config.settings,
        )
        router = Router(settings, providers={"groq": fake, "openai_compatible": fake})
        assert router.log is not None, "the attempt log is on by default"
        log = router.log

        def flush() -> bool:
            return log.flush(timeout=30) and (otel is None or otel.flush())

        def scenario_call(scenario: str) -> Callable[[], Any]:
            messages = [{"role": "user", "content": prompts[scenario]}]

            async def call() -> Any:
                made[scenario] += 1
                return await router.execute(TASK, messages, max_tokens=MAX_TOKENS)

            return call

        calls_of = {s: scenario_call(s) for s in SCENARIOS}
        for scenario in SCENARIOS:  # each scenario does what it says, or the comparison is meaningless
            response = await calls_of[scenario]()
            if (response.model_used, len(response.attempts)) != expected[scenario]:
                raise RuntimeError(f"{scenario}: {response.model_used} after {len(response.attempts)} attempts")
        for scenario in SCENARIOS if warmup else ():
            await cpu_us_per_call(calls_of[scenario], warmup, flush)
            fake.calls.clear()
        us: dict[str, list[float]] = {s: [] for s in SCENARIOS}
        spans: dict[str, int] = dict.fromkeys(SCENARIOS, 0)
        for w in range(windows):
            # clean, fallback, then fallback, clean: a drift within the process favours neither
            for scenario in SCENARIOS if w % 2 == 0 else SCENARIOS[::-1]:
                # The scripted provider records every call; forgotten between windows so that the heap, which each
                # of the garbage collector's full passes walks, stays the same size through the run.
                fake.calls.clear()
                before = otel.spans if otel is not None else 0
                us[scenario].append(await cpu_us_per_call(calls_of[scenario], calls, flush))
                spans[scenario] += (otel.spans if otel is not None else 0) - before
        loaded = sorted(m for m in TELEMETRY_MODULES if m in sys.modules)

        rows = log_rows(Path(tmp) / "attempts.db")
        rows_expected = sum(made[s] * expected[s][1] for s in SCENARIOS)
        if rows != rows_expected:
            raise RuntimeError(f"attempt log: {rows} rows for {rows_expected} attempts")
        requests = sum(made.values())
        collected: dict[str, float] = {}
        if config.settings.get("prometheus_metrics"):
            counted, collected["prometheus scrape"] = prometheus_requests()
            if counted != requests:
                raise RuntimeError(f"prometheus: taskrouter_requests_total {counted}, {requests} requests made")
        if otel is not None and otel.reader is not None:
            cpu = time.process_time()
            counted = otel.requests_counted()
            collected["otel collection"] = (time.process_time() - cpu) * 1e6
            if counted != requests:
                raise RuntimeError(f"otel metrics: taskrouter.requests {counted}, {requests} requests made")
        if config.traces and not all(spans.values()):
            raise RuntimeError(f"otel traces: no spans exported ({spans})")
        sdk = otel.sdk_costs(max(calls, 500)) if otel is not None else {}
        await router.aclose()
    return {
        "config": config.name,
        "app_file": app.__file__,
        "us": {s: statistics.median(us[s]) for s in SCENARIOS},
        "windows": us,
        "spans_per_call": {s: spans[s] / (calls * windows) for s in SCENARIOS},
        "collect_us": collected,
        "sdk_us": sdk,
        "modules": loaded,
        "models": [first, second],
    }


def log_rows(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


# -- the parent: rounds of workers, the table ---------------------------------------------------------------


def run_worker(config: Configuration, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    # PYTHONPATH replaced, not extended: this tree's `app`, ahead of any installed one.
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    cmd = [sys.executable, str(SCRIPT), "--worker", config.name]
    cmd += ["--calls", str(args.calls), "--windows", str(args.windows), "--warmup", str(args.warmup)]
    done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{config.name} worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])  # warnings may precede it
    if not Path(result["app_file"]).resolve().is_relative_to(ROOT):
        raise RuntimeError(f"{config.name} worker imported {result['app_file']}, not {ROOT}'s app")
    return result


def header(args: argparse.Namespace) -> list[str]:
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (absent)")
    try:
        rev = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        rev = rev[:100] + (" + uncommitted changes in app/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        rev = "(not a git checkout)"
    return [
        f"command: {shlex.join(['python', 'bench/telemetry.py', *sys.argv[1:]])}",
        f"machine: {cpu_name()}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {', '.join(versions)}",
        f"revision: {rev}",
        f"{args.rounds} rounds of {len(CONFIGURATIONS)} workers (order reversed every other round); per worker "
        f"{args.warmup} warm-up calls per scenario, then {args.windows} windows of {args.calls} calls per scenario, "
        f"concurrency 1; app.testing's scripted models in-process; attempt log on (SQLite)",
        "",
    ]


def table(results: dict[str, list[dict[str, Any]]], rounds: int) -> tuple[list[str], bool]:
    head = (
        "scenario",
        "configuration",
        "us/call min",
        "us/call median",
        "ratio to off min",
        "ratio to off median",
        f"verdict (<= {MAX_GROWTH:.2f})",
        "spans/call",
    )
    rows: list[tuple[str, ...]] = [head]
    verdicts: list[str] = []
    ok = True
    off = results["off"]
    for scenario in SCENARIOS:
        for config in CONFIGURATIONS:
            us = [r["us"][scenario] for r in results[config.name]]
            ratios = [r["us"][scenario] / o["us"][scenario] for r, o in zip(results[config.name], off, strict=True)]
            spans = statistics.median(r["spans_per_call"][scenario] for r in results[config.name])
            if config.name == "off":
                verdict, ratio_min, ratio_median = "-", "1", "1"
            else:
                median = statistics.median(ratios)
                under = sum(r <= MAX_GROWTH for r in ratios)
                passed = median <= MAX_GROWTH
                ok &= passed
                verdict = f"{'PASS' if passed else 'FAIL'} ({under}/{rounds} rounds under)"
                ratio_min, ratio_median = f"{min(ratios):.3f}", f"{median:.3f}"
                verdicts.append(
                    f"{'PASS' if passed else 'FAIL'}: {scenario}, {config.name}: own CPU per call {median:.3f}x off "
                    f"(median over rounds; target <= {MAX_GROWTH:.2f})"
                )
            rows.append(
                (
                    scenario,
                    config.name,
                    f"{min(us):,.1f}",
                    f"{statistics.median(us):,.1f}",
                    ratio_min,
                    ratio_median,
                    verdict,
                    f"{spans:.2f}" if config.traces else "-",
                )
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out = [
        "| "
        + " | ".join(x.ljust(w) if i < 2 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True)))
        + " |"
        for r in rows
    ]
    out.insert(
        1, "|" + "|".join(("-" * (w + 2)) if i < 2 else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    )
    out += [
        "",
        "us/call: process CPU (every thread) per call, a worker's median over its windows; min and median over "
        "rounds. ratio: the configuration's us/call over off's in the same round.",
        "",
    ]
    for config in CONFIGURATIONS:
        collected = [r["collect_us"] for r in results[config.name]]
        for kind in sorted({k for c in collected for k in c}):
            out.append(
                f"{config.name}: one {kind} (once per scrape or export interval, not per call) "
                f"{statistics.median(c[kind] for c in collected):,.0f} us CPU (median over rounds)"
            )
    for config in CONFIGURATIONS:
        sdk = [r["sdk_us"] for r in results[config.name]]
        if any(sdk):
            costs = ", ".join(f"{kind} {statistics.median(c[kind] for c in sdk):,.1f} us" for kind in sdk[0])
            out.append(f"{config.name}: the OpenTelemetry SDK alone, CPU per operation: {costs} (median over rounds)")
    out += ["", *verdicts]
    return out, ok


def modules_check(results: dict[str, list[dict[str, Any]]]) -> tuple[list[str], bool]:
    lines, ok = [], True
    for config in CONFIGURATIONS:
        loaded = sorted({m for r in results[config.name] for m in r["modules"]})
        if config.name == "off":
            ok = not loaded
            lines.append(
                f"{'PASS' if ok else 'FAIL'}: off (the defaults): after its calls, in sys.modules: "
                + ", ".join(f"{m} {'yes' if m in loaded else 'no'}" for m in TELEMETRY_MODULES)
            )
        else:
            lines.append(f"      {config.name}: in sys.modules: {', '.join(loaded) or 'neither'}")
    return lines, ok


def parent(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    results: dict[str, list[dict[str, Any]]] = {c.name: [] for c in CONFIGURATIONS}
    with tempfile.TemporaryDirectory(prefix="bench-telemetry-") as scratch:
        for r in range(args.rounds):
            for config in CONFIGURATIONS if r % 2 == 0 else CONFIGURATIONS[::-1]:
                results[config.name].append(run_worker(config, args, Path(scratch)))
            print(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    first = results["off"][0]
    lines = header(args)
    lines.append(
        f"app: {first['app_file']}; task {TASK!r}: clean = {first['models'][0]} answers; fallback = "
        f"{first['models'][0]} answers 413 (too large), {first['models'][1]} answers"
    )
    lines.append("")
    rows, growth_ok = table(results, args.rounds)
    modules, modules_ok = modules_check(results)
    print("\n".join([*lines, *rows, "", *modules]))
    ok = growth_ok and modules_ok
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; targets (off imports nothing; on, own CPU per call "
        f"<= {MAX_GROWTH:.2f}x off): {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=6, help="workers per configuration, alternating (6)")
    parser.add_argument("--windows", type=int, default=20, help="measured windows per scenario per worker (20)")
    parser.add_argument("--calls", type=int, default=200, help="calls per window (200)")
    parser.add_argument("--warmup", type=int, default=300, help="unmeasured calls per scenario per worker (300)")
    parser.add_argument("--smoke", action="store_true", help="a tiny run: 1 round, 2 windows of 20 calls, 20 warm-up")
    parser.add_argument("--worker", choices=list(BY_NAME), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.smoke:
        args.rounds, args.windows, args.calls, args.warmup = 1, 2, 20, 20
    for name in ("rounds", "windows", "calls"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")
    if args.warmup < 0:
        parser.error("--warmup must be 0 or more")
    if args.worker:
        print(json.dumps(asyncio.run(worker(BY_NAME[args.worker], args.calls, args.windows, args.warmup))))
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())

"""A real Prometheus server (Debian's prometheus package) scraping a router process's METRICS_PORT while the router
sends requests of mixed outcomes to the simulator: what Prometheus' HTTP API answers (requests by task, the provider
calls' error ratio and p99 latency by model, and more) is what the router's attempt log holds. The shipped board's
and alert rules' queries run on that server too."""

from __future__ import annotations

import json
import math
import os
import selectors
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from conftest import TEST_KEY, is_setting

from app.core import ai_models
from app.simulator import ModelProfile, Simulator
from app.telemetry.instruments import DURATION_BUCKETS

pytestmark = pytest.mark.slow

ROUTER_SCRIPT = Path(__file__).with_name("prometheus_router.py")
DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
REQUESTS = 300
CONCURRENCY = 12
BUDGET_USD = 1000.0
JOB = "taskrouter"

# The registry's models fail at different rates (fallbacks, retries, cooldowns); their latencies spread over several
# buckets. With two calls a request (LLM_MAX_ATTEMPTS), the fast task's one model fails some requests outright;
# streams are sometimes cut after their first chunk (an interrupted request).
PROFILES = {
    "openai/gpt-oss-20b": ModelProfile(
        latency_ms=20, latency_sigma=0.9, fault_rates={"server_error": 0.3, "stream_cut": 0.04}
    ),
    "openai/gpt-oss-120b": ModelProfile(
        latency_ms=35, latency_sigma=0.9, fault_rates={"server_error": 0.1, "bad_gateway": 0.05}
    ),
    "qwen/qwen3.8-27b": ModelProfile(
        latency_ms=50, latency_sigma=0.9, fault_rates={"server_error": 0.25, "rate_limit": 0.05}
    ),
}

# How the router process names a request's end (the error's class), and taskrouter_requests_total's ending.
ENDINGS = {
    "answered": "answered",
    "AllModelsFailedError": "failed",
    "StreamInterruptedError": "interrupted",
    "DeadlineExceededError": "deadline",
}

# Panels that this traffic must fill (no cache, no retired model, hedging off).
SHOWN = frozenset(
    {
        "Request rate by task",
        "Success ratio by task",
        "Requests by how they ended",
        "Provider-call latency p50 / p95 / p99 by model",
        "Time to first chunk p50 / p95 by model (streams)",
        "Provider-call error ratio by model",
        "Failed provider calls by error type",
        "Provider calls by model",
        "Circuit state by model",
        "Tokens per second by model",
        "Spend in range by task",
        "Budget used today",
        "Spent vs daily budget (USD)",
        "Spent today",
        "Daily budget",
    }
)


T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(what: str, probe: Callable[[], T | None], *, seconds: float, alive: Callable[[], None]) -> T:
    """`probe()` until it answers (not None), checking `alive()` between tries; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        alive()
        found = probe()
        if found is not None:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds:.0f} s waiting for {what}")
        time.sleep(0.1)


def tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


class Prometheus:
    """A Prometheus server of this test's own: a temp config and storage, a free port on 127.0.0.1."""

    def __init__(self, binary: str, workdir: Path, *, target: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "prometheus.log"
        config = workdir / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n"
            f"scrape_configs:\n  - job_name: {JOB}\n    static_configs:\n      - targets: [{target!r}]\n"
        )
        with self.log.open("w") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                cwd=workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.http = httpx.Client(base_url=self.url, timeout=10)

    def ready(self) -> bool | None:
        try:
            return self.http.get("/-/ready").status_code == 200 or None
        except httpx.TransportError:
            return None

    def running(self) -> None:
        if self.proc.poll() is not None:
            pytest.skip(f"Prometheus could not start (exit {self.proc.returncode}): {tail(self.log)}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's vector; an error in the expression fails the test."""
        answer = self.http.get("/api/v1/query", params={"query": expr}).json()
        assert answer["status"] == "success", (expr, answer)
        result = answer["data"]["result"]
        assert answer["data"]["resultType"] in ("vector", "scalar"), (expr, answer)
        return result if answer["data"]["resultType"] == "vector" else [{"metric": {}, "value": result}]

    def by(self, expr: str, *labels: str) -> dict[Any, float]:
        """The vector's values by their labels' values (one label: the value itself)."""
        out = {}
        for sample in self.query(expr):
            key = tuple(sample["metric"].get(label, "") for label in labels)
            out[key[0] if len(key) == 1 else key] = float(sample["value"][1])
        return out

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.access("/usr/bin/prometheus", os.X_OK) else None)
    if found is None:
        pytest.skip("prometheus not found: install Debian's prometheus package (.ci/run does)")
    return found


def start_router(sim: Simulator, workdir: Path, *, metrics_port: int, db: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not is_setting(k)}
    env.update(
        {
            "GROQ_API_KEY": TEST_KEY,
            "GROQ_BASE_URL": sim.base_url,
            "ATTEMPTS_DB_PATH": str(db),
            "METRICS_PORT": str(metrics_port),
            "DAILY_BUDGET_USD": str(BUDGET_USD),
            "LLM_TIMEOUT_SECONDS": "5",
            "LLM_MAX_ATTEMPTS": "2",
            "OPENTELEMETRY": "off",
        }
    )
    with (workdir / "router.log").open("w") as log:
        return subprocess.Popen(
            [sys.executable, str(ROUTER_SCRIPT), str(REQUESTS), str(CONCURRENCY)],
            env=env,
            cwd=workdir,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )


def stop_router(proc: subprocess.Popen[str]) -> None:
    """Closing its stdin ends it (its coverage data saved); killed only if it does not end."""
    if proc.stdin is not None and not proc.stdin.closed:
        proc.stdin.close()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def read_line(proc: subprocess.Popen[str], *, seconds: float, log: Path) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(seconds):
            raise AssertionError(f"the router process said nothing within {seconds:.0f} s: {tail(log)}")
    line = proc.stdout.readline()
    assert line, f"the router process ended (exit {proc.wait(5)}): {tail(log)}"
    return line


@pytest.fixture
def processes() -> Iterator[list[Callable[[], None]]]:
    """Stoppers of what the test started, each run at the end whatever happened."""
    stoppers: list[Callable[[], None]] = []
    yield stoppers
    for stop in reversed(stoppers):
        stop()


def attempt_rows(db: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM attempts ORDER BY id")]
    finally:
        conn.close()


def nearest_rank_bucket(values: list[float], q: float) -> tuple[float, float]:
    """The histogram bucket (lower, upper] that holds the q-quantile of `values` by nearest rank."""
    ranked = sorted(values)
    value = ranked[max(math.ceil(q * len(ranked)) - 1, 0)]
    bounds = (0.0, *DURATION_BUCKETS, math.inf)
    upper = next(i for i, bound in enumerate(bounds) if value <= bound)
    return bounds[upper - 1], bounds[upper]


def grafana_expr(expr: str) -> str:
    """A board query as Grafana sends it with every task and model chosen."""
    for variable, value in (("$__rate_interval", "1m"), ("$__range", "1h"), ("$task", ".*"), ("$model", ".*")):
        expr = expr.replace(variable, value)
    return expr


def test_prometheus_scraping_a_router_under_traffic_reports_what_its_attempt_log_holds(sim, tmp_path, processes):
    binary = prometheus_binary()
    for model, profile in PROFILES.items():
        sim.set_profile(model, profile)
    metrics_port = free_port()
    db = tmp_path / "attempts.db"

    prometheus = Prometheus(binary, tmp_path, target=f"127.0.0.1:{metrics_port}")
    processes.append(prometheus.stop)
    try:
        poll("Prometheus to be ready", prometheus.ready, seconds=30, alive=prometheus.running)
    except AssertionError as exc:
        pytest.skip(f"Prometheus did not start: {exc}: {tail(prometheus.log)}")

    router = start_router(sim, tmp_path, metrics_port=metrics_port, db=db)
    processes.append(lambda: stop_router(router))
    done = json.loads(read_line(router, seconds=180, log=tmp_path / "router.log"))
    finished = time.time()  # every counter is final: a scrape that starts after this shows the totals
    # Two such scrapes, so that the board's rate() and increase() have two samples of the final values to read.
    settled = finished + 1.5
    assert done["flushed"], done

    def scraped_after_traffic() -> bool | None:
        up = prometheus.by(f'timestamp(up{{job="{JOB}"}}) > {settled} and up{{job="{JOB}"}} == 1', "job")
        return bool(up) or None

    def router_alive() -> None:
        assert router.poll() is None, f"the router process ended: {tail(tmp_path / 'router.log')}"

    poll("a scrape of the router after its traffic", scraped_after_traffic, seconds=30, alive=router_alive)

    rows = attempt_rows(db)
    calls = [r for r in rows if r["outcome"] in ("success", "failure")]
    job = f'job="{JOB}"'

    # Requests by task: the attempt log's request ids, the router's own count, Prometheus' counter.
    logged_requests = Counter(task for task, _ in {(r["task_type"], r["request_id"]) for r in rows})
    sent: Counter[str] = Counter()
    ended: Counter[tuple[str, str]] = Counter()
    for key, count in done["ended"].items():
        task, how = key.split(" ")
        assert how in ENDINGS, f"a request ended as {how}, which this test does not map to an ending"
        sent[task] += count
        ended[(task, ENDINGS[how])] += count
    assert sum(sent.values()) == REQUESTS
    assert prometheus.by(f"sum by (taskrouter_task) (taskrouter_requests_total{{{job}}})", "taskrouter_task") == {
        task: float(n) for task, n in logged_requests.items()
    }
    assert logged_requests == sent
    by_ending = prometheus.by(
        f"sum by (taskrouter_task, taskrouter_ending) (taskrouter_requests_total{{{job}}})",
        "taskrouter_task",
        "taskrouter_ending",
    )
    assert by_ending == {key: float(n) for key, n in ended.items()}
    answered_in_log = Counter(
        task for task, _ in {(r["task_type"], r["request_id"]) for r in calls if r["outcome"] == "success"}
    )
    assert {task: n for (task, ending), n in by_ending.items() if ending == "answered"} == {
        task: float(n) for task, n in answered_in_log.items()
    }
    assert len(ended) > len(sent), f"every request of a task ended the same way: {dict(ended)}"  # mixed outcomes

    # Provider calls by model and error type, and the error ratio by model.
    per_kind = Counter((r["model"], r["error_kind"] or "") for r in calls)
    assert prometheus.by(
        f"sum by (gen_ai_request_model, error_type) (taskrouter_provider_calls_total{{{job}}})",
        "gen_ai_request_model",
        "error_type",
    ) == {key: float(n) for key, n in per_kind.items()}
    called = Counter(r["model"] for r in calls)
    failed = Counter(r["model"] for r in calls if r["outcome"] == "failure")
    ratio = prometheus.by(
        f'sum by (gen_ai_request_model) (taskrouter_provider_calls_total{{{job}, taskrouter_outcome="failure"}})'
        f" / sum by (gen_ai_request_model) (taskrouter_provider_calls_total{{{job}}})",
        "gen_ai_request_model",
    )
    assert ratio == {model: failed[model] / n for model, n in called.items()}
    assert set(called) == set(PROFILES) and all(0 < r < 1 for r in ratio.values()), ratio

    # Latency: each bucket's count, and p99 by model inside the bucket that holds the log's p99.
    seconds: dict[str, list[float]] = defaultdict(list)
    for r in calls:
        if r["latency_ms"] is not None:
            seconds[r["model"]].append(r["latency_ms"] / 1000.0)
    buckets = prometheus.by(
        f"sum by (gen_ai_request_model, le) (gen_ai_client_operation_duration_seconds_bucket{{{job}}})",
        "gen_ai_request_model",
        "le",
    )
    assert buckets == {
        (model, "+Inf" if math.isinf(bound) else repr(bound)): float(sum(v <= bound for v in values))
        for model, values in seconds.items()
        for bound in (*DURATION_BUCKETS, math.inf)
    }
    p99 = prometheus.by(
        "histogram_quantile(0.99, sum by (gen_ai_request_model, le) "
        f"(gen_ai_client_operation_duration_seconds_bucket{{{job}}}))",
        "gen_ai_request_model",
    )
    assert set(p99) == set(seconds)
    for model, values in seconds.items():
        lower, upper = nearest_rank_bucket(values, 0.99)
        assert lower <= p99[model] <= upper, (model, p99[model], lower, upper, sorted(values)[-5:])
    sums = prometheus.by(
        f"sum by (gen_ai_request_model) (gen_ai_client_operation_duration_seconds_sum{{{job}}})", "gen_ai_request_model"
    )
    assert sums == pytest.approx({model: sum(values) for model, values in seconds.items()}, rel=1e-9)

    # Streams' time to first chunk, and what the calls cost.
    first_chunks = Counter(r["model"] for r in calls if r["first_token_ms"] is not None)
    assert first_chunks, "no stream reached its first chunk"
    assert prometheus.by(
        f"sum by (gen_ai_request_model) (gen_ai_client_operation_time_to_first_chunk_seconds_count{{{job}}})",
        "gen_ai_request_model",
    ) == {model: float(n) for model, n in first_chunks.items()}
    cost: dict[str, float] = defaultdict(float)
    for r in calls:
        if r["cost_usd"]:
            cost[r["model"]] += r["cost_usd"]
    assert prometheus.by(
        f"sum by (gen_ai_request_model) (taskrouter_cost_usd_total{{{job}}})", "gen_ai_request_model"
    ) == pytest.approx(dict(cost), rel=1e-9)

    # The gauges: every registry model's circuit, the budget and what was spent of it.
    models = {model for chain in ai_models.MODEL_REGISTRY.values() for model in chain}
    circuits = prometheus.by(f"taskrouter_circuit_state{{{job}}}", "gen_ai_request_model")
    assert set(circuits) == models and set(circuits.values()) <= {0.0, 1.0, 2.0}, circuits
    assert prometheus.by(f"taskrouter_budget_limit_usd{{{job}}}", "job") == {JOB: BUDGET_USD}
    assert prometheus.by(f"taskrouter_budget_spent_usd{{{job}}}", "job") == {
        JOB: pytest.approx(sum(cost.values()), rel=1e-9)
    }

    # Every query the board and the alert rules ship runs on this server; the board's main panels show data.
    board = json.loads((DEPLOY / "grafana" / "taskrouter.json").read_text())
    empty = []
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            if not prometheus.query(grafana_expr(target["expr"])) and panel["title"] in SHOWN:
                empty.append(f"{panel['title']}: {target['expr']}")
    assert empty == []
    yaml = pytest.importorskip("yaml", reason="PyYAML reads the rule files (the docs extra installs it)")
    for group in yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            prometheus.query(rule["expr"])

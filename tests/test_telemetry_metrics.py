"""The metrics of real requests (issue 24): the router on scripted models (app.testing, through the `providers` seam)
reporting to a `Metrics` registered in a CollectorRegistry of the test's own, read back through prometheus_client's
own exposition and parser, and counted against the attempt log's rows; the same instruments through an OpenTelemetry
MeterProvider (the SDK's in-memory reader)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import logged_rows
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from app.config import load_settings
from app.core import ai_models
from app.core.router import Router
from app.errors import AllModelsFailedError
from app.telemetry import Metrics, Telemetry
from app.telemetry.instruments import BY_NAME, INSTRUMENTS, prometheus_labels
from app.testing import FakeClock, FakeModels, failure, reply

pytestmark = pytest.mark.anyio

A, B, C, S = "openai/gpt-oss-120b", "openai/gpt-oss-20b", "qwen/qwen3.8-27b", "openai/gpt-oss-safeguard-20b"
REGISTRY: dict[str, list[str]] = {
    "pair": [A, B],
    "solo": [A],
    "cached": [B],
    "streamed": [C],
    "broken": [S],
    "fallback": [],
}
MODELS = sorted({m for models in REGISTRY.values() for m in models})
USER = [{"role": "user", "content": "Summarise the quarter in one line"}]
ANSWER = reply("Sales rose 4 %", usage={"prompt_tokens": 11, "completion_tokens": 5, "total_tokens": 16})
LONG = reply("A longer answer", usage={"prompt_tokens": 300, "completion_tokens": 90, "total_tokens": 390})
CALLED = ("success", "failure")


class Streamed(FakeModels):
    """The scripted models, a stream's first chunk taking `first_chunk` seconds on the test's clock."""

    clock: FakeClock | None = None
    first_chunk = 0.0

    async def open_stream(self, *args: Any, **kwargs: Any) -> Any:
        stream = await super().open_stream(*args, **kwargs)
        assert self.clock is not None
        self.clock.advance(self.first_chunk)
        return stream


@dataclass
class Scene:
    router: Router
    clock: FakeClock
    db_path: Path

    async def rows(self) -> list[dict[str, Any]]:
        await self.router.aclose()
        return logged_rows(self.db_path)


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    routers: list[Router] = []

    def build(script: Mapping[str, Any], telemetry: Telemetry, *, first_chunk: float = 0.0, **settings: Any) -> Scene:
        clock = FakeClock()
        fake = Streamed(script)
        fake.clock, fake.first_chunk = clock, first_chunk
        db_path = tmp_path / f"attempts-{len(routers)}.db"
        loaded = load_settings(
            env_file=None,
            **{"groq_api_key": "gsk_metrics_test", "attempts_db_path": db_path, "alert_webhook_url": None, **settings},
        )
        router = Router(
            loaded,
            registry=lambda: REGISTRY,
            catalog=lambda: ai_models.MODEL_CATALOG,
            providers={"groq": fake, "openai_compatible": fake},
            clock=clock.clock,
            telemetry=telemetry,
        )
        routers.append(router)
        return Scene(router, clock, db_path)

    yield build


def scrape(registry: CollectorRegistry) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """The exposition as prometheus_client's parser reads it: {series name: {sorted labels: value}}."""
    series: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
    for family in text_string_to_metric_families(generate_latest(registry).decode()):
        for sample in family.samples:
            series[sample.name][tuple(sorted(sample.labels.items()))] = sample.value
    return series


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


def by(rows: Sequence[Mapping[str, Any]], *keys: str, where: Any = lambda r: True) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(r[k] if r[k] is not None else "" for k in keys) for r in rows if where(r))


def request_endings(rows: Sequence[Mapping[str, Any]]) -> Counter[tuple[str, str]]:
    """How each request ended, from its rows: a cache hit, an answer, else every model failed or was skipped."""
    grouped: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["request_id"]].append(row)
    endings: Counter[tuple[str, str]] = Counter()
    for mine in grouped.values():
        kinds = {r["outcome"] for r in mine}
        ending = "cache_hit" if "cache_hit" in kinds else "answered" if "success" in kinds else "failed"
        endings[(mine[0]["task_type"], ending)] += 1
    return endings


async def drive_the_mix(scene: Scene) -> None:
    """Answers, a retry, a 429's fallback, a skip while its model cools down, a miss and a hit of the response
    cache, a stream, and a request every model failed."""
    router, clock = scene.router, scene.clock
    await router.execute("pair", USER)  # A answers
    await router.execute("solo", USER)  # A: a server error, then its retry answers
    await router.execute("pair", USER)  # A: 429, B answers
    await router.execute("pair", USER)  # A cooling down: skipped; B answers
    clock.advance(10)  # A's wait is over
    await router.execute("cached", USER)
    hit = await router.execute("cached", USER)
    assert hit.cached
    stream = router.stream("streamed", USER)
    assert "".join([d async for d in stream]) == "A longer answer"
    with pytest.raises(AllModelsFailedError):
        await router.execute("broken", USER)


SCRIPT = {
    A: [ANSWER, failure("server_error"), ANSWER, failure("rate_limited", retry_after=5)],
    B: ANSWER,
    C: LONG,
    S: failure("not_found"),
}


async def test_the_prometheus_exposition_counts_what_the_attempt_log_holds(make):
    metrics = Metrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    scene = make(SCRIPT, Telemetry(metrics=metrics), first_chunk=0.25, response_cache_tasks="cached")
    await drive_the_mix(scene)
    rows = await scene.rows()
    got = scrape(registry)
    called = [r for r in rows if r["outcome"] in CALLED]
    # The mix produced what it is for: every kind of row, every way a request ends here.
    assert by(rows, "task_type", "model", "outcome", "error_kind") == Counter(
        {
            ("pair", A, "success", ""): 1,
            ("solo", A, "failure", "server_error"): 1,
            ("solo", A, "success", ""): 1,
            ("pair", A, "failure", "rate_limited"): 1,
            ("pair", B, "success", ""): 2,
            ("pair", A, "skipped", "cooling_down"): 1,
            ("cached", B, "success", ""): 1,
            ("cached", B, "cache_hit", ""): 1,
            ("streamed", C, "success", ""): 1,
            ("broken", S, "failure", "not_found"): 1,
        }
    )
    assert request_endings(rows) == Counter(
        {("pair", "answered"): 3, ("solo", "answered"): 1, ("cached", "answered"): 1}
        | {("cached", "cache_hit"): 1, ("streamed", "answered"): 1, ("broken", "failed"): 1}
    )

    assert got["taskrouter_requests_total"] == {
        labels(taskrouter_task=task, taskrouter_ending=ending): n for (task, ending), n in request_endings(rows).items()
    }
    assert got["taskrouter_request_duration_seconds_count"] == got["taskrouter_requests_total"]
    assert got["taskrouter_provider_calls_total"] == {
        labels(taskrouter_task=t, gen_ai_request_model=m, taskrouter_outcome=o, error_type=e): n
        for (t, m, o, e), n in by(called, "task_type", "model", "outcome", "error_kind").items()
    }
    assert got["taskrouter_skips_total"] == {
        labels(taskrouter_task=t, gen_ai_request_model=m, error_type=e): n
        for (t, m, e), n in by(
            rows, "task_type", "model", "error_kind", where=lambda r: r["outcome"] == "skipped"
        ).items()
    }
    answered_late = by(rows, "task_type", "model", where=lambda r: r["outcome"] == "success" and r["attempt"] > 1)
    assert answered_late == Counter({("pair", B): 2})
    assert got["taskrouter_fallbacks_total"] == {
        labels(taskrouter_task=t, gen_ai_request_model=m): n for (t, m), n in answered_late.items()
    }
    retried = by(called, "task_type", "model", where=lambda r: r["retry"] > 0)
    assert retried == Counter({("solo", A): 1})
    assert got["taskrouter_retries_total"] == {
        labels(taskrouter_task=t, gen_ai_request_model=m): n for (t, m), n in retried.items()
    }
    assert "taskrouter_hedges_total" not in got
    assert got["taskrouter_cache_hits_total"] == {labels(taskrouter_task="cached"): 1}
    (saved,) = [r["saved_usd"] for r in rows if r["outcome"] == "cache_hit"]
    assert saved > 0 and got["taskrouter_cache_saved_usd_total"] == {labels(taskrouter_task="cached"): saved}

    # Cost by task and model, as the rows add up.
    cost: dict[tuple[str, str], float] = defaultdict(float)
    for r in called:
        cost[(r["task_type"], r["model"])] += r["cost_usd"] or 0.0
    exported = got["taskrouter_cost_usd_total"]
    assert set(exported) == {labels(taskrouter_task=t, gen_ai_request_model=m) for (t, m), c in cost.items() if c}
    for (t, m), c in cost.items():
        assert exported.get(labels(taskrouter_task=t, gen_ai_request_model=m), 0.0) == pytest.approx(c, abs=1e-12)
    assert sum(exported.values()) == pytest.approx(sum(r["cost_usd"] or 0.0 for r in rows), abs=1e-12)

    # One duration observation per provider call: the rows' latency, by model, task and error kind.
    durations = got["gen_ai_client_operation_duration_seconds_count"]
    assert sum(durations.values()) == len(called) == 9
    assert durations == {
        labels(
            gen_ai_operation_name="chat",
            gen_ai_provider_name=p,
            gen_ai_request_model=m,
            taskrouter_task=t,
            error_type=e,
        ): n
        for (p, m, t, e), n in by(called, "provider", "model", "task_type", "error_kind").items()
    }
    total = sum(got["gen_ai_client_operation_duration_seconds_sum"].values())
    assert total == pytest.approx(sum(r["latency_ms"] for r in called) / 1000.0, abs=1e-12)

    # Tokens: one observation of each type per answered call, summing to the rows' tokens.
    tokens = got["gen_ai_client_token_usage_sum"]
    answered = [r for r in called if r["outcome"] == "success"]
    for kind, column in (("input", "prompt_tokens"), ("output", "completion_tokens")):
        mine = {k: v for k, v in tokens.items() if ("gen_ai_token_type", kind) in k}
        assert (
            sum(mine.values()) == sum(r[column] for r in answered) == (11 * 5 + 300 if kind == "input" else 5 * 5 + 90)
        )
        counted = got["gen_ai_client_token_usage_count"]
        assert sum(v for k, v in counted.items() if ("gen_ai_token_type", kind) in k) == len(answered)

    # The stream's time to its first chunk, on the router's clock.
    first = labels(
        gen_ai_operation_name="chat", gen_ai_provider_name="groq", gen_ai_request_model=C, taskrouter_task="streamed"
    )
    assert got["gen_ai_client_operation_time_to_first_chunk_seconds_count"] == {first: 1}
    assert got["gen_ai_client_operation_time_to_first_chunk_seconds_sum"] == {first: 0.25}
    (streamed,) = [r for r in rows if r["task_type"] == "streamed"]
    assert streamed["first_token_ms"] == 250.0
    buckets = got["gen_ai_client_operation_time_to_first_chunk_seconds_bucket"]
    assert buckets[(*first[:3], ("le", "0.16"), first[3])] == 0 and buckets[(*first[:3], ("le", "0.32"), first[3])] == 1

    # Every registry model's circuit, all closed; no budget series without DAILY_BUDGET_USD.
    assert got["taskrouter_circuit_state"] == {labels(gen_ai_request_model=m): 0 for m in MODELS}
    assert "taskrouter_budget_spent_usd" not in got and "taskrouter_budget_limit_usd" not in got
    # Every series shown is one the instrument table declares, with its labels.
    declared = {i.prometheus: set(prometheus_labels(i)) for i in INSTRUMENTS}
    for name, samples in got.items():
        base = next(p for p in declared if name in (p, f"{p}_bucket", f"{p}_sum", f"{p}_count"))
        for key in samples:
            assert {k for k, _ in key} - {"le"} == declared[base], (name, key)


async def test_the_circuit_gauge_shows_open_then_half_open_and_the_budget_gauges_its_spend(make):
    metrics = Metrics()
    registry = CollectorRegistry()
    registry.register(metrics)
    scene = make(
        {A: [failure("timeout"), ANSWER], B: ANSWER},
        Telemetry(metrics=metrics),
        breaker_open_after_timeouts=1,
        breaker_cooldown_seconds=30,
        daily_budget_usd=0.5,
    )
    router, clock = scene.router, scene.clock
    assert scrape(registry)["taskrouter_budget_spent_usd"] == {(): 0.0}
    await router.execute("pair", USER)  # A times out: its breaker opens; B answers
    got = scrape(registry)
    assert got["taskrouter_circuit_state"] == {labels(gen_ai_request_model=m): 2 if m == A else 0 for m in MODELS}
    clock.advance(29.9)
    assert scrape(registry)["taskrouter_circuit_state"][labels(gen_ai_request_model=A)] == 2
    clock.advance(0.1)  # the cooldown is over: one probe call allowed
    assert scrape(registry)["taskrouter_circuit_state"][labels(gen_ai_request_model=A)] == 1
    answer = await router.execute("pair", USER)  # the probe answers: closed
    assert answer.model_used == A
    got = scrape(registry)
    assert got["taskrouter_circuit_state"] == {labels(gen_ai_request_model=m): 0 for m in MODELS}
    rows = await scene.rows()
    spent = sum(r["cost_usd"] or 0.0 for r in rows)
    assert spent > 0
    assert got["taskrouter_budget_spent_usd"][()] == pytest.approx(spent, abs=1e-12)
    assert got["taskrouter_budget_limit_usd"] == {(): 0.5}


async def test_opentelemetry_metrics_carry_the_table_s_names_and_attributes(make):
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    try:
        scene = make(SCRIPT, Telemetry(meter_provider=provider), first_chunk=0.25, response_cache_tasks="cached")
        await drive_the_mix(scene)
        rows = await scene.rows()
        data = reader.get_metrics_data()
    finally:
        provider.shutdown()
    points: dict[str, list[Any]] = defaultdict(list)
    units: dict[str, str] = {}
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            assert scope.scope.name == "taskrouter"
            for metric in scope.metrics:
                points[metric.name] += list(metric.data.data_points)
                units[metric.name] = metric.unit
    shown = {name for name, found in points.items() if found}
    # The mix makes every instrument report but hedges and retired models (none in it); no budget without one.
    assert shown == set(BY_NAME) - {
        "taskrouter.hedges",
        "taskrouter.retired_model.calls",
        "taskrouter.budget.spent",
        "taskrouter.budget.limit",
    }
    for name in shown:
        instrument = BY_NAME[name]
        assert units[name] == instrument.unit
        for point in points[name]:
            keys = set(point.attributes)
            if name == "gen_ai.client.operation.duration" and "error.type" not in keys:
                keys.add("error.type")  # the conventions: error.type only on a failed call
            assert keys == set(instrument.attributes), (name, dict(point.attributes))
            if isinstance(point, HistogramDataPoint):
                assert tuple(point.explicit_bounds) == tuple(float(b) for b in instrument.buckets)

    def total(name: str, **attributes: Any) -> float:
        found = [p for p in points[name] if all(p.attributes.get(k) == v for k, v in attributes.items())]
        return sum(p.count if isinstance(p, HistogramDataPoint) else p.value for p in found)

    called = [r for r in rows if r["outcome"] in CALLED]
    for (t, m, o, e), n in by(called, "task_type", "model", "outcome", "error_kind").items():
        attributes = {"taskrouter.task": t, "gen_ai.request.model": m, "taskrouter.outcome": o, "error.type": e}
        assert total("taskrouter.provider.calls", **attributes) == n
    assert total("taskrouter.provider.calls") == total("gen_ai.client.operation.duration") == len(called)
    assert total("gen_ai.client.operation.duration", **{"error.type": "rate_limited"}) == 1
    for (task, ending), n in request_endings(rows).items():
        assert total("taskrouter.requests", **{"taskrouter.task": task, "taskrouter.ending": ending}) == n
    assert total("taskrouter.fallbacks", **{"gen_ai.request.model": B}) == 2
    assert total("taskrouter.retries", **{"taskrouter.task": "solo"}) == 1
    assert total("taskrouter.skips", **{"error.type": "cooling_down"}) == 1
    assert total("taskrouter.cache.hits", **{"taskrouter.task": "cached"}) == 1
    assert total("gen_ai.client.operation.time_to_first_chunk", **{"gen_ai.request.model": C}) == 1
    assert total("taskrouter.cost") == pytest.approx(sum(r["cost_usd"] or 0.0 for r in rows), abs=1e-12)
    circuit = {p.attributes["gen_ai.request.model"]: p.value for p in points["taskrouter.circuit.state"]}
    assert circuit == dict.fromkeys(MODELS, 0)

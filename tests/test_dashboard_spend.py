"""The Spend page on a known store (both backends): cost per task and tier, the tier mix, the escalation and cache hit
rates, the dollars saved and the single-model baseline, worked out by hand; its queries against brute force on random
traffic, and over the rollups the same totals as over the raw rows."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pytest
from stores import dashboard_db, insert_attempts
from test_dashboard import frame, metrics, read, run_page
from traffic import write_traffic

from app.core import ai_models
from app.registry.catalog import ModelInfo
from app.store import open_database
from app.store.retention import prune, rollup
from app.store.target import Target
from dashboard import charts, fmt, queries, registry
from dashboard.queries import Scope, Spend, ranges
from dashboard.timeframe import iso
from dashboard.views import spend

if TYPE_CHECKING:
    from app.store.backend import Connection

SMALL, BIG = "m/small", "m/big"
# USD per million tokens: round figures, so that every figure below is worked out by hand.
CATALOG = {
    SMALL: ModelInfo(input_price=1.0, output_price=2.0, cached_input_price=0.5),
    BIG: ModelInfo(input_price=10.0, output_price=20.0),
}
REGISTRY = {
    "fast": [SMALL],
    "reasoning": [SMALL, BIG],
    "reasoning:simple": [SMALL],
    "reasoning:medium": [BIG],
    "summarization": [SMALL],
    "fallback": [SMALL],
}


def _row(
    request: str,
    task: str,
    model: str,
    attempt: int,
    outcome: str,
    at: datetime,
    *,
    retry: int = 0,
    kind: str | None = None,
    prompt: int = 0,
    completion: int = 0,
    cached: int = 0,
    cost: float | None = 0.0,
    tier: str | None = None,
    saved: float | None = None,
) -> dict[str, Any]:
    return {
        "request_id": request,
        "task_type": task,
        "model": model,
        "provider": "groq",
        "attempt": attempt,
        "retry": retry,
        "outcome": outcome,
        "error_kind": kind,
        "status_code": None,
        "error_message": None,
        "is_fallback": 0,
        "forced": 0,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cached_tokens": cached,
        "latency_ms": 100.0,
        "cost_usd": cost,
        "created_at": iso(at),
        "tier": tier,
        "saved_usd": saved,
    }


def seed(store: Target, now: datetime) -> None:
    """In the last 24 hours:
    reasoning (baseline model m/big, the dearest of its list):
      a1 ran on the simple tier: m/small's answer was refused ($0.0012, saved 0), m/big answered on the medium tier
         (1,000 + 500 tokens: $0.02, saved $0.002 - $0.02 = -$0.018): escalated;
      a2 simple, m/small answered (2,000 + 1,000 tokens, 1,000 cached: $0.0035, saved 0);
      a3 simple, a cache hit of a2's answer (saved $0.0035).
      Cost $0.0247; baseline: 3,000 + 1,500 tokens at m/big, $0.06 (-58.8 %); escalation 1 of 3; cache 1 of 3.
    fast (baseline m/small, its only model), no tier:
      a4 m/small answered (100 + 100 tokens: $0.0003);
      a5 m/small's answer failed validation ($0.0003) and m/small answered on a retry ($0.0003): not an escalation,
         the same model answered.
      Cost $0.0009; baseline 200 + 200 tokens at m/small, $0.0006 (+50 %).
    30 hours ago, outside the default range: o1, reasoning on m/big ($1).
    """
    t = now - timedelta(minutes=30)
    insert_attempts(
        store,
        [
            _row(
                "a1",
                "reasoning",
                SMALL,
                1,
                "failure",
                t,
                kind="refused",
                prompt=1000,
                completion=100,
                cost=0.0012,
                tier="simple",
                saved=0.0,
            ),
            _row(
                "a1",
                "reasoning",
                BIG,
                2,
                "success",
                t,
                prompt=1000,
                completion=500,
                cost=0.02,
                tier="medium",
                saved=-0.018,
            ),
            _row(
                "a2",
                "reasoning",
                SMALL,
                1,
                "success",
                t,
                prompt=2000,
                completion=1000,
                cached=1000,
                cost=0.0035,
                tier="simple",
                saved=0.0,
            ),
            _row("a3", "reasoning", SMALL, 1, "cache_hit", t, tier="simple", saved=0.0035),
            _row("a4", "fast", SMALL, 1, "success", t, prompt=100, completion=100, cost=0.0003),
            _row("a5", "fast", SMALL, 1, "failure", t, kind="validation", prompt=100, completion=100, cost=0.0003),
            _row("a5", "fast", SMALL, 1, "success", t, retry=1, prompt=100, completion=100, cost=0.0003),
            _row(
                "o1",
                "reasoning",
                BIG,
                1,
                "success",
                now - timedelta(hours=30),
                prompt=50000,
                completion=25000,
                cost=1.0,
                tier="medium",
            ),
        ],
    )


@pytest.fixture
def spend_store(dashboard_store: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    seed(dashboard_store, datetime.now(UTC))
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", dashboard_db(dashboard_store))
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {k: list(v) for k, v in REGISTRY.items()})
    monkeypatch.setattr(ai_models, "MODEL_CATALOG", dict(CATALOG))
    return dashboard_store


def test_the_spend_page_shows_the_known_figures(spend_store: Target) -> None:
    at = run_page("Spend")
    shown = metrics(at)
    assert shown["Cost"] == "$0.0256"
    assert shown["Single-model baseline"] == "$0.0606"
    assert shown["Saved"] == "$-0.0145"
    assert (shown["Requests"], shown["Escalation rate"], shown["Cache hit rate"]) == ("5", "20.0%", "20.0%")
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Single-model baseline"] == "-57.8% cost against it"  # (0.0256 - 0.0606) / 0.0606
    assert deltas["Saved"] == "$0.0035 by the cache"

    tasks = frame(at, "Baseline $").set_index("Task")
    reasoning, fast = tasks.loc["reasoning"], tasks.loc["fast"]
    assert (reasoning["Requests"], reasoning["Answered"], reasoning["Cache hits"]) == (3, 2, 1)
    assert reasoning["Escalated"] == 1
    assert reasoning["Cost $"] == pytest.approx(0.0247)
    assert reasoning["Baseline $"] == pytest.approx(0.06)
    assert reasoning["vs baseline %"] == pytest.approx((0.0247 - 0.06) / 0.06 * 100)
    assert reasoning["Saved $"] == pytest.approx(-0.0145)
    assert reasoning["Escalation %"] == pytest.approx(100 / 3)
    assert reasoning["Cache hit %"] == pytest.approx(100 / 3)
    assert reasoning["Baseline model"] == BIG
    assert (fast["Requests"], fast["Answered"], fast["Escalated"], fast["Escalation %"]) == (2, 2, 0, 0.0)
    assert fast["Cost $"] == pytest.approx(0.0009)
    assert fast["Baseline $"] == pytest.approx(0.0006)
    assert fast["vs baseline %"] == pytest.approx(50.0)
    assert fast["Baseline model"] == SMALL

    tiers = frame(at, "Tier", "Share %")
    assert list(zip(tiers["Task"], tiers["Tier"], strict=True)) == [
        ("fast", "no tier"),
        ("reasoning", "simple"),
        ("reasoning", "medium"),
    ]
    by_tier = tiers.set_index(["Task", "Tier"])
    assert by_tier.loc[("reasoning", "simple"), "Answered"] == 1
    assert by_tier.loc[("reasoning", "simple"), "Share %"] == pytest.approx(50.0)
    assert by_tier.loc[("reasoning", "simple"), "Cost $"] == pytest.approx(0.0047)
    assert by_tier.loc[("reasoning", "simple"), "Saved $"] == pytest.approx(0.0035)
    assert by_tier.loc[("reasoning", "simple"), "Cache hits"] == 1
    assert by_tier.loc[("reasoning", "medium"), "Cost $"] == pytest.approx(0.02)
    assert by_tier.loc[("fast", "no tier"), "Share %"] == pytest.approx(100.0)


def test_the_tier_mix_keeps_the_tiers_in_order_and_colour() -> None:
    tiers = pd.DataFrame(
        {
            "Task": ["t", "t", "t", "u"],
            "Tier": ["not kept", "complex", "simple", "no tier"],
            "Share %": [10.0, 30.0, 60.0, 100.0],
        }
    )
    chart = charts.tier_mix(tiers, spend.TIER_ORDER).to_dict()
    scale = chart["encoding"]["color"]["scale"]
    assert scale["domain"] == ["simple", "complex", "no tier", "not kept"]  # weakest first, whatever the data
    assert scale["range"] == [charts.TIER_COLOURS[t] for t in scale["domain"]]


def test_the_range_and_the_task_filter_apply(spend_store: Target) -> None:
    at = run_page("Spend", range="All time")
    assert metrics(at)["Cost"] == "$1.0256"  # o1 too
    assert frame(at, "Baseline $").set_index("Task").loc["reasoning", "Requests"] == 4
    at = run_page("Spend", task="fast")
    assert list(frame(at, "Baseline $")["Task"]) == ["fast"]
    assert metrics(at)["Cost"] == "$0.0009"


def test_an_unpriced_strongest_model_leaves_the_task_out_of_the_comparison(
    spend_store: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(ai_models.MODEL_CATALOG, BIG, ModelInfo())  # no price: m/small is the dearest priced one
    tasks = frame(run_page("Spend"), "Baseline $").set_index("Task")
    # reasoning's answers at m/small: 3,000 - 1,000 cached at $1, 1,000 cached at $0.5, 1,500 at $2.
    assert tasks.loc["reasoning", "Baseline model"] == SMALL
    assert tasks.loc["reasoning", "Baseline $"] == pytest.approx((2000 + 500 + 3000) / 1e6)
    monkeypatch.setitem(ai_models.MODEL_REGISTRY, "fast", [BIG])
    at = run_page("Spend")
    tasks = frame(at, "Baseline $").set_index("Task")
    assert tasks.loc["fast", "Baseline model"] == "" and pd.isna(tasks.loc["fast", "Baseline $"])
    assert metrics(at)["Single-model baseline"] == fmt.usd((2000 + 500 + 3000) / 1e6)  # reasoning's alone


def test_a_catalog_file_that_does_not_load_is_said_escaped(
    spend_store: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hostile = tmp_path / "[Click](http:" / "x.toml"
    monkeypatch.setenv("MODEL_CATALOG_FILE", str(hostile))
    at = run_page("Spend")
    warning = " ".join(w.value for w in at.warning)
    assert "MODEL_CATALOG_FILE is left out, the shipped prices are used" in warning
    assert "[Click](" not in warning and str(hostile) in read(warning)
    assert metrics(at)["Single-model baseline"] == "$0.0606"  # the tables' own prices


def test_an_empty_range_says_so(spend_store: Target) -> None:
    at = run_page("Spend", task="summarization")  # a task of the registry without traffic
    assert [i.value for i in at.info] == ["No requests in this range."]


# -- the queries -------------------------------------------------------------------------------------------------

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
TIERS = ("simple", "medium", "complex", None)


def _random_traffic(seed: int = 7, requests: int = 300) -> list[dict[str, Any]]:
    """Tiered requests that escalate after refused answers, cache hits, unpriced answers, over three days."""
    rnd = random.Random(seed)
    rows = []
    for r in range(requests):
        at = NOW - timedelta(minutes=rnd.randint(1, 3 * 24 * 60))
        task = rnd.choice(["fast", "reasoning"])
        tier = rnd.choice(TIERS)
        if rnd.random() < 0.15:
            rows.append(_row(f"q{r}", task, "m/a", 1, "cache_hit", at, tier=tier, saved=rnd.uniform(0, 0.01)))
            continue
        for position, model in enumerate(rnd.sample(["m/a", "m/b", "m/c"], 3), 1):
            outcome = rnd.choice(["success", "failure"])
            kind = None if outcome == "success" else rnd.choice(["refused", "validation", "timeout"])
            rows.append(
                _row(
                    f"q{r}",
                    task,
                    model,
                    position,
                    outcome,
                    at + timedelta(milliseconds=position),
                    kind=kind,
                    prompt=rnd.randint(1, 900),
                    completion=rnd.randint(0, 400),
                    cached=rnd.randint(0, 1000),
                    cost=rnd.choice([None, rnd.uniform(0, 0.01)]),
                    tier=tier,
                    saved=rnd.choice([None, rnd.uniform(-0.01, 0.01)]),
                )
            )
            if outcome == "success":
                break
    return rows


@pytest.fixture(scope="module")
def traffic() -> list[dict[str, Any]]:
    return _random_traffic()


@pytest.fixture
def conn(dashboard_store: Target, traffic: list[dict[str, Any]]) -> Iterator[Connection]:
    insert_attempts(dashboard_store, traffic)
    connection = queries.connect(dashboard_store)
    assert connection is not None
    yield connection
    connection.close()


SCOPES = [
    Scope(None, None),
    Scope(iso(NOW - timedelta(days=1)), iso(NOW)),
    Scope(None, None, tasks=("fast",)),
    Scope(iso(NOW - timedelta(days=2)), iso(NOW - timedelta(hours=5)), models=("m/a", "m/b")),
]


def _in(row: dict[str, Any], scope: Scope) -> bool:
    return (
        (scope.start is None or row["created_at"] >= scope.start)
        and (scope.end is None or row["created_at"] < scope.end)
        and (not scope.tasks or row["task_type"] in scope.tasks)
        and (not scope.models or row["model"] in scope.models)
    )


def _brute_spend(rows: list[dict[str, Any]], scope: Scope) -> dict[tuple[str, str | None], Spend]:
    out: dict[tuple[str, str | None], Spend] = {}
    for r in rows:
        if not _in(r, scope):
            continue
        answer = r["outcome"] == "success"
        hit = r["outcome"] == "cache_hit"
        out[(r["task_type"], r["tier"])] = out.get((r["task_type"], r["tier"]), Spend()) + Spend(
            int(answer),
            int(hit),
            r["cost_usd"] or 0.0,
            int(answer and r["cost_usd"] is None),
            r["saved_usd"] or 0.0,
            (r["saved_usd"] or 0.0) if hit else 0.0,
            r["prompt_tokens"] if answer else 0,
            r["completion_tokens"] if answer else 0,
            min(r["cached_tokens"], r["prompt_tokens"]) if answer else 0,
        )
    return out


def _same(got: dict[Any, Spend], want: dict[Any, Spend]) -> None:
    assert set(got) == set(want)
    for key, theirs in want.items():
        mine = got[key]
        floats = ("cost", "saved", "cache_saved")
        assert replace(mine, **dict.fromkeys(floats, 0.0)) == replace(theirs, **dict.fromkeys(floats, 0.0)), key
        for name in floats:
            assert getattr(mine, name) == pytest.approx(getattr(theirs, name), abs=1e-12), (key, name)


@pytest.mark.parametrize("scope", SCOPES)
def test_spend_by_tier_matches_brute_force(conn: Connection, traffic: list[dict[str, Any]], scope: Scope) -> None:
    _same(ranges.spend_by_tier(conn, scope), _brute_spend(traffic, scope))


@pytest.mark.parametrize("scope", SCOPES)
def test_escalations_match_brute_force(conn: Connection, traffic: list[dict[str, Any]], scope: Scope) -> None:
    escalated: dict[str, set[str]] = {}
    answered_by = {r["request_id"]: r["model"] for r in traffic if r["outcome"] == "success"}
    for r in traffic:
        if (
            _in(r, scope)
            and r["outcome"] == "failure"
            and r["error_kind"] in ("refused", "validation")
            and answered_by.get(r["request_id"], r["model"]) != r["model"]
        ):
            escalated.setdefault(r["task_type"], set()).add(r["request_id"])
    want = {task: len(ids) for task, ids in escalated.items()}
    assert want and ranges.escalations(conn, scope) == want


def test_a_store_written_before_tiers_reads_as_untiered(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = open_database(path)
    with db.conn:
        # A file an older router wrote has neither column.
        db.conn.execute("ALTER TABLE attempts DROP COLUMN tier")
        db.conn.execute("ALTER TABLE attempts DROP COLUMN saved_usd")
        db.conn.execute(
            "INSERT INTO attempts (request_id, task_type, model, provider, attempt, outcome, "
            "prompt_tokens, completion_tokens, cost_usd, created_at) VALUES ('x', 'fast', 'm/a', 'groq', "
            "1, 'success', 10, 5, 0.5, ?)",
            (iso(NOW),),
        )
    db.conn.close()
    conn = queries.connect(path)
    assert conn is not None
    try:
        assert ranges.spend_by_tier(conn, Scope(None, None)) == {("fast", None): Spend(1, 0, 0.5, 0, 0.0, 0.0, 10, 5)}
    finally:
        conn.close()


# -- the rollups ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory, traffic: list[dict[str, Any]]) -> Path:
    """The random traffic's three days, rolled up to NOW."""
    path = tmp_path_factory.mktemp("spend_rollups") / "attempts.db"
    write_traffic(path, traffic)
    db = open_database(path)
    rollup(db.conn, now=NOW)
    db.conn.close()
    return path


def _per_task(cells: dict[tuple[str, str | None], Spend]) -> dict[str, Spend]:
    out: dict[str, Spend] = {}
    for (task, _), found in cells.items():
        out[task] = out.get(task, Spend()) + found
    return out


@pytest.mark.parametrize(
    "scope",
    [
        Scope(iso(NOW - timedelta(days=3, minutes=13)), iso(NOW)),
        Scope(None, None),
        Scope(None, None, tasks=("reasoning",), models=("m/a",)),
    ],
)
def test_the_rollups_give_the_raw_rows_spend_per_task(rolled: Path, scope: Scope) -> None:
    conn = queries.connect(rolled)
    assert conn is not None
    try:
        assert queries.reads_rollups(conn, scope)
        report = queries.spend(conn, scope)
        assert report.saved_known
        assert queries.ROLLED_UP in {tier for _, tier in report.by_tier}
        got, want = _per_task(report.by_tier), _per_task(ranges.spend_by_tier(conn, scope))
        assert set(got) == set(want)
        for task, theirs in want.items():
            mine = got[task]
            # The rollups keep no cached tokens: the rest adds up, the cache hits and the savings included.
            floats = dict.fromkeys(("cost", "saved", "cache_saved"), 0.0)
            assert replace(mine, cached_tokens=0, **floats) == replace(theirs, cached_tokens=0, **floats), task
            for name in floats:
                assert getattr(mine, name) == pytest.approx(getattr(theirs, name), abs=1e-12), (task, name)
            assert mine.cache_hits > 0 and mine.saved != 0.0
    finally:
        conn.close()


def test_rollups_without_saved_usd_say_so(tmp_path: Path, traffic: list[dict[str, Any]]) -> None:
    path = tmp_path / "attempts.db"
    write_traffic(path, traffic)
    db = open_database(path)
    rollup(db.conn, now=NOW)
    with db.conn:  # as an older router's rollups: no saved_usd
        for table in ("attempts_hourly", "attempts_daily"):
            db.conn.execute(f"ALTER TABLE {table} DROP COLUMN saved_usd")
    db.conn.close()
    conn = queries.connect(path)
    assert conn is not None
    try:
        report = queries.spend(conn, Scope(None, None))
        assert not report.saved_known
        rolled_saved = sum(s.saved for (_, tier), s in report.by_tier.items() if tier == queries.ROLLED_UP)
        assert rolled_saved == 0.0  # left out, not made up
        assert sum(s.answered for s in report.by_tier.values()) == sum(r["outcome"] == "success" for r in traffic)
    finally:
        conn.close()


def test_escalations_cover_the_raw_rows_kept(tmp_path: Path) -> None:
    path = tmp_path / "attempts.db"
    rows = _random_traffic(seed=11, requests=400)
    write_traffic(path, rows)
    report = prune(path, 1, now=NOW, sleep=lambda _: None)  # raw rows older than a day go; the rollups keep them
    assert report.rows_removed > 0
    conn = queries.connect(path)
    assert conn is not None
    try:
        whole = {"reasoning": 10**6}  # the whole range's requests, which the part kept does not have
        escalated, requests, kept = queries.escalations(conn, Scope(None, iso(NOW)), whole)
        assert kept.start is not None and kept.start > min(r["created_at"] for r in rows)
        assert escalated == ranges.escalations(conn, kept)
        assert sum(requests.values()) == sum(
            1 for r in rows if kept.start <= r["created_at"] < iso(NOW) and r["attempt"] == 1 and r["retry"] == 0
        )
        assert queries.escalations(conn, kept, whole) == (escalated, whole, kept)  # counted once by the caller
    finally:
        conn.close()


def test_the_strongest_model_is_the_dearest_priced_one_of_the_task_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"t": ["m/x", "m/y", "m/z", "m/free"]})
    models = {
        "m/x": ModelInfo(input_price=1.0, output_price=9.0),
        "m/y": ModelInfo(input_price=5.0, output_price=5.0),
        "m/z": ModelInfo(input_price=2.0, output_price=1.0),
        "m/free": ModelInfo(),
    }
    assert registry.strongest("t", models) == "m/x"  # 10 each: the first of a tie
    assert registry.strongest("t", {"m/free": ModelInfo()}) is None
    assert registry.strongest("unknown", models) is None

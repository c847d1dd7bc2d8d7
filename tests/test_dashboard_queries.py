"""The dashboard's SQL against brute force on random traffic, on SQLite and PostgreSQL alike: percentiles, request
counts under filters, trend buckets that add up, and query plans that stay on the indexes (what keeps a page fast
at a million rows)."""

from __future__ import annotations

import math
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from stores import insert_attempts

from app.store.dialect import dialect_of
from app.store.target import Target
from dashboard import queries
from dashboard.queries import Scope
from dashboard.timeframe import buckets, iso, resolve

if TYPE_CHECKING:
    from app.store.backend import Connection

MODELS = ["m/a", "m/b", "m/c", "m/d"]
TASKS = ["fast", "reasoning", "summarization"]
NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def _random_traffic(seed: int = 3, requests: int = 400) -> list[dict]:
    rnd = random.Random(seed)
    rows = []
    for r in range(requests):
        at = NOW - timedelta(minutes=rnd.randint(1, 3 * 24 * 60))
        chain = rnd.sample(MODELS, rnd.randint(1, 4))  # a request tries each model at most once
        task = rnd.choice(TASKS)
        for position, model in enumerate(chain, 1):
            outcome = rnd.choices(["success", "failure", "skipped"], [5, 3, 1])[0]
            called = outcome != "skipped"
            rows.append(
                {
                    "request_id": f"req{r}",
                    "task_type": task,
                    "model": model,
                    "provider": "groq",
                    "attempt": position,
                    "outcome": outcome,
                    "error_kind": None
                    if outcome == "success"
                    else rnd.choice(["timeout", "rate_limited", "hedge_lost"]),
                    "latency_ms": rnd.uniform(1, 3000) if called else None,
                    "total_tokens": rnd.randint(1, 500) if outcome == "success" else None,
                    "cost_usd": rnd.choice([None, rnd.uniform(0, 0.01)]) if outcome == "success" else 0.0,
                    "is_fallback": 0,
                    "forced": 0,
                    "created_at": iso(at + timedelta(milliseconds=position)),
                    # About a third of the answers were streamed: only those have a time to first token.
                    "first_token_ms": rnd.uniform(1, 900) if outcome == "success" and rnd.random() < 0.35 else None,
                }
            )
            if outcome == "success":
                break
    return rows


@pytest.fixture(scope="module")
def traffic() -> list[dict]:
    return _random_traffic()


@pytest.fixture
def conn(dashboard_store: Target, traffic: list[dict]) -> Iterator[Connection]:
    insert_attempts(dashboard_store, traffic)
    connection = queries.connect(dashboard_store)
    assert connection is not None
    yield connection
    connection.close()


def _in_scope(row: dict, scope: Scope) -> bool:
    return (
        (scope.start is None or row["created_at"] >= scope.start)
        and (scope.end is None or row["created_at"] < scope.end)
        and (not scope.tasks or row["task_type"] in scope.tasks)
        and (not scope.models or row["model"] in scope.models)
    )


def _nearest_rank(values: list[int], p: int) -> int:
    ordered = sorted(values)
    return ordered[math.ceil(p * len(ordered) / 100) - 1]


SCOPES = [
    Scope(None, None),
    Scope(iso(NOW - timedelta(days=1)), iso(NOW)),
    Scope(iso(NOW - timedelta(days=2)), iso(NOW - timedelta(days=1)), tasks=("reasoning",)),
    Scope(None, None, models=("m/b",)),
    Scope(iso(NOW - timedelta(hours=30)), iso(NOW), tasks=("fast", "summarization"), models=("m/a", "m/c")),
]


@pytest.mark.parametrize("scope", SCOPES)
def test_totals_match_brute_force(conn: Connection, traffic: list[dict], scope: Scope) -> None:
    rows = [r for r in traffic if _in_scope(r, scope)]
    answered = [r for r in rows if r["outcome"] == "success"]
    # Without a model filter a request counts at its attempt = 1 row; with one, once (each request's rows are
    # a millisecond apart here, never split by a range bound).
    expected_requests = (
        len({r["request_id"] for r in rows}) if scope.models else sum(1 for r in rows if r["attempt"] == 1)
    )
    got = queries.totals(conn, scope)
    assert got.attempts == len(rows)
    assert got.requests == expected_requests
    assert got.answered == len(answered)
    assert got.fallback_answers == sum(1 for r in answered if r["attempt"] > 1)
    assert got.failures == sum(
        1 for r in rows if r["outcome"] == "failure" and r["error_kind"] not in queries.CUT_SHORT
    )
    assert got.tokens == sum(r["total_tokens"] for r in answered)
    assert got.cost == pytest.approx(sum(r["cost_usd"] or 0 for r in rows))
    assert got.unpriced == sum(1 for r in answered if r["cost_usd"] is None)


@pytest.mark.parametrize("scope", SCOPES)
def test_time_to_first_token_per_model_matches_brute_force(conn: Connection, traffic: list[dict], scope: Scope) -> None:
    got = queries.first_token_by_model(conn, scope)
    expected: dict[str, list[int]] = {}
    for r in traffic:
        if _in_scope(r, scope) and r["outcome"] == "success" and r["first_token_ms"] is not None:
            expected.setdefault(r["model"], []).append(int(r["first_token_ms"]))
    assert set(got) == set(expected) and expected
    for model, values in expected.items():
        assert (got[model].count, got[model].p50, got[model].p95) == (
            len(values),
            _nearest_rank(values, 50),
            _nearest_rank(values, 95),
        )


def test_a_database_without_first_token_ms_shows_no_ttft(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE attempts (id INTEGER PRIMARY KEY, model TEXT, outcome TEXT, created_at TEXT)")
    old.commit()
    old.close()
    assert queries.first_token_by_model(queries.connect(path), Scope(None, None)) == {}


def test_requests_under_a_model_filter_equal_distinct_request_ids(conn: Connection, traffic: list[dict]) -> None:
    scope = Scope(None, None, models=("m/a", "m/b"))
    distinct = conn.execute("SELECT COUNT(DISTINCT request_id) FROM attempts WHERE model IN ('m/a', 'm/b')")
    assert queries.totals(conn, scope).requests == distinct.fetchone()[0]


def test_a_request_across_midnight_counts_once_under_several_models(dashboard_store: Target) -> None:
    """Its rows land in two days (PostgreSQL: two partitions): the lookup of its earlier row still finds it."""
    midnight = datetime(2026, 11, 22, tzinfo=UTC)
    row = {"task_type": "fast", "provider": "groq", "is_fallback": 0, "forced": 0, "latency_ms": 10.0}
    insert_attempts(
        dashboard_store,
        [
            {
                **row,
                "request_id": "late",
                "model": "m/a",
                "attempt": 1,
                "outcome": "failure",
                "error_kind": "timeout",
                "created_at": iso(midnight - timedelta(milliseconds=100)),
            },
            {
                **row,
                "request_id": "late",
                "model": "m/b",
                "attempt": 2,
                "outcome": "success",
                "created_at": iso(midnight + timedelta(milliseconds=100)),
            },
            {
                **row,
                "request_id": "next",
                "model": "m/b",
                "attempt": 2,
                "outcome": "success",
                "created_at": iso(midnight + timedelta(days=1, hours=12)),
            },  # its m/a row is not in the table
        ],
    )
    conn = queries.connect(dashboard_store)
    assert conn is not None
    try:
        days = [(iso(midnight - timedelta(days=1)), iso(midnight)), (iso(midnight), iso(midnight + timedelta(days=2)))]
        got = [t.requests for t in queries.trend(conn, Scope(None, None, models=("m/a", "m/b")), days)]
        assert got == [1, 1]  # "late" at its first row, the day before midnight; "next" at its only one
    finally:
        conn.close()


@pytest.mark.parametrize("scope", SCOPES)
def test_latency_percentiles_are_nearest_rank_to_the_millisecond(
    conn: Connection, traffic: list[dict], scope: Scope
) -> None:
    values = [int(r["latency_ms"]) for r in traffic if _in_scope(r, scope) and r["outcome"] == "success"]
    got = queries.latency(conn, scope)
    assert got.count == len(values)
    assert (got.p50, got.p95, got.p99) == tuple(_nearest_rank(values, p) for p in (50, 95, 99))
    per_model = queries.answers_by_model(conn, scope)
    for model, answers in per_model.items():
        mine = [
            int(r["latency_ms"])
            for r in traffic
            if _in_scope(r, scope) and r["outcome"] == "success" and r["model"] == model
        ]
        assert answers.latency.count == len(mine)
        assert answers.latency.p95 == _nearest_rank(mine, 95)


def test_trend_buckets_add_up_to_the_range(conn: Connection) -> None:
    window = resolve("Last 7 days", NOW)
    scope = Scope(window.start_iso, window.end_iso)
    parts = buckets(window.start, window.end)  # type: ignore[arg-type]
    assert len(parts) == 8  # daily, the first and last clipped to the range
    assert parts[0][1] == window.start and parts[-1][2] == window.end
    assert all(a[2] == b[1] for a, b in pairwise(parts))
    per_bucket = queries.trend(conn, scope, [(iso(lo), iso(hi)) for _, lo, hi in parts])
    added, whole = sum(per_bucket, queries.Totals()), queries.totals(conn, scope)
    assert added.cost == pytest.approx(whole.cost)
    assert replace(added, cost=0.0) == replace(whole, cost=0.0)
    assert whole.requests > 0


@pytest.mark.parametrize(
    ("label", "size", "count"),
    [
        ("Last hour", timedelta(minutes=1), 61),
        ("Last 6 hours", timedelta(minutes=5), 73),
        ("Last 24 hours", timedelta(hours=1), 25),
    ],
)
def test_short_ranges_have_minute_buckets(conn: Connection, label: str, size: timedelta, count: int) -> None:
    now = NOW + timedelta(minutes=7, seconds=30)  # not on a boundary: the first and last buckets are clipped
    window = resolve(label, now)
    parts = buckets(window.start, window.end)  # type: ignore[arg-type]
    assert len(parts) == count
    assert parts[1][0] - parts[0][0] == size
    assert all(label.second == 0 and (label.minute * 60) % min(size.seconds, 3600) == 0 for label, _, _ in parts)
    assert parts[0][1] == window.start and parts[-1][2] == window.end
    assert all(a[2] == b[1] for a, b in pairwise(parts))
    scope = Scope(window.start_iso, window.end_iso)
    added = sum(queries.trend(conn, scope, [(iso(lo), iso(hi)) for _, lo, hi in parts]), queries.Totals())
    assert replace(added, cost=0.0) == replace(queries.totals(conn, scope), cost=0.0)


def test_task_depths_and_failures(conn: Connection, traffic: list[dict]) -> None:
    depths = queries.task_depths(conn, Scope(None, None), positions=3)
    for task in TASKS:
        answered = [r for r in traffic if r["task_type"] == task and r["outcome"] == "success"]
        expected = (
            sum(1 for r in answered if r["attempt"] == 1),
            sum(1 for r in answered if r["attempt"] == 2),
            sum(1 for r in answered if r["attempt"] >= 3),
        )
        assert depths[task].by_position == expected
    kinds = queries.failure_kinds(conn, Scope(None, None), ("failure",))
    assert sum(kinds.values()) == sum(1 for r in traffic if r["outcome"] == "failure")
    newest = queries.recent_failures(conn, Scope(None, None), ("failure",), ("timeout",), 5)
    assert [r["created_at"] for r in newest] == sorted(
        (r["created_at"] for r in traffic if r["outcome"] == "failure" and r["error_kind"] == "timeout"), reverse=True
    )[:5]


def test_distinct_values_skip_through_the_index(conn: Connection) -> None:
    assert queries.distinct_values(conn, "model") == sorted(MODELS)
    assert queries.distinct_values(conn, "task_type") == sorted(TASKS)
    with pytest.raises(ValueError):
        queries.distinct_values(conn, "error_message")


def test_the_connection_is_read_only(conn: Connection) -> None:
    refused: type[Exception] = sqlite3.OperationalError
    if dialect_of(conn).name == "postgresql":
        import psycopg

        refused = psycopg.errors.ReadOnlySqlTransaction
    with pytest.raises(refused, match=r"readonly|read-only|query_only"):
        conn.execute("DELETE FROM attempts")


class Recorder:
    """A connection that notes each statement it runs, so that a test can ask the store how it would run them."""

    def __init__(self, real: Connection) -> None:
        self.real = real
        self.dialect = getattr(real, "dialect", "sqlite")
        self.seen: list[tuple[str, list]] = []

    def execute(self, sql: str, params: list | tuple = ()) -> object:
        self.seen.append((sql, list(params)))
        return self.real.execute(sql, params)


def assert_read_through_an_index(conn: Connection, recorder: Recorder) -> None:
    """Every statement on the attempts table reads an index, never the whole table. PostgreSQL is asked with
    sequential scans priced out: a tiny test table is cheapest to scan whole, yet a plan that still scans one has
    no index to use."""
    statements = [(sql, params) for sql, params in recorder.seen if "FROM attempts" in sql]
    assert statements
    if dialect_of(conn).name == "postgresql":
        conn.execute("SET enable_seqscan = off")
        try:
            for sql, params in statements:
                plan = "\n".join(r[0] for r in conn.execute(f"EXPLAIN {sql}", params))
                assert "Seq Scan" not in plan and "Index" in plan, (sql, plan)
        finally:
            conn.execute("RESET enable_seqscan")
        return
    for sql, params in statements:
        plan = " | ".join(r[3] for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
        assert "SCAN attempts" not in plan.replace("SCAN attempts USING", ""), (sql, plan)
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (sql, plan)


def test_scoped_queries_search_an_index_instead_of_scanning(conn: Connection) -> None:
    """Every query of a time-bounded page reads through a (column, created_at) index, never a full table scan:
    what keeps the last 24 hours fast whatever the size of the table."""
    recorder = Recorder(conn)
    for scope in (
        Scope(iso(NOW - timedelta(days=1)), iso(NOW)),
        Scope(iso(NOW - timedelta(days=1)), iso(NOW), models=("m/a",)),
        Scope(iso(NOW - timedelta(days=1)), iso(NOW), tasks=("fast",)),
    ):
        queries.totals(recorder, scope)  # type: ignore[arg-type]
        queries.latency(recorder, scope)  # type: ignore[arg-type]
        queries.answers_by_model(recorder, scope)  # type: ignore[arg-type]
        queries.not_answered_by_model(recorder, scope)  # type: ignore[arg-type]
        queries.task_depths(recorder, scope, 3)  # type: ignore[arg-type]
        queries.recent_failures(recorder, scope, ("failure",), (), 10)  # type: ignore[arg-type]
        queries.deprecation_evidence(recorder, scope)  # type: ignore[arg-type]
    assert_read_through_an_index(conn, recorder)


# -- right now and one request -------------------------------------------------------------------------------


def test_health_cells_match_brute_force(conn: Connection, traffic: list[dict]) -> None:
    start, end = iso(NOW - timedelta(hours=20)), iso(NOW - timedelta(hours=2))
    got = queries.health_cells(conn, start, end)
    rows = [r for r in traffic if start <= r["created_at"] < end]
    assert set(got) == {(r["task_type"], r["model"]) for r in rows}
    for (task, model), health in got.items():
        mine = [r for r in rows if r["task_type"] == task and r["model"] == model]
        failed = [r for r in mine if r["outcome"] == "failure" and r["error_kind"] not in queries.CUT_SHORT]
        answered = [r for r in mine if r["outcome"] == "success"]
        assert health == queries.Health(
            sum(1 for r in mine if r["attempt"] == 1),
            len(answered),
            len(answered) + len(failed),
            len(failed),
            sum(1 for r in mine if r["outcome"] == "skipped"),
        )


def test_request_attempts_in_chain_order(conn: Connection, traffic: list[dict]) -> None:
    longest = max({r["request_id"] for r in traffic}, key=lambda q: sum(1 for r in traffic if r["request_id"] == q))
    got = queries.request_attempts(conn, longest)
    assert [r["attempt"] for r in got] == sorted(r["attempt"] for r in traffic if r["request_id"] == longest)
    assert len(got) > 1 and set(got[0]) == set(queries.REQUEST_COLUMNS)
    assert queries.request_attempts(conn, "no-such-request") == []
    assert queries.request_ids_starting(conn, "req1", limit=3) == ["req1", "req10", "req100"]


def test_live_queries_read_through_an_index(conn: Connection) -> None:
    """The drill-down walks the request_id index, the verdicts and the override evidence a stretch of the
    created_at index: never the whole table."""
    recorder = Recorder(conn)
    queries.request_attempts(recorder, "req7")  # type: ignore[arg-type]
    queries.request_ids_starting(recorder, "req7")  # type: ignore[arg-type]
    queries.health_cells(recorder, iso(NOW - timedelta(minutes=15)), iso(NOW))  # type: ignore[arg-type]
    queries.override_uses(recorder, iso(NOW - timedelta(minutes=15)))  # type: ignore[arg-type]
    assert_read_through_an_index(conn, recorder)

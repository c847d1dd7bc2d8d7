"""What a row saved and the response cache's hits in the rollups and on the dashboard, on SQLite and PostgreSQL:
the hourly and daily rollups add up saved_usd and count the cache hits exactly as the raw rows do, and every page
counts a cache hit as an answered request, never as a model's call, failure or latency."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from traffic import make_traffic, write_traffic

from app.store import AttemptRow, backend_for, get_attempt_log
from app.store.model_status import query_read_only
from app.store.target import PostgresTarget, Target
from dashboard import queries
from dashboard.queries import ranges
from dashboard.queries.live import health_cells
from dashboard.timeframe import iso

NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
HOURS = 72


def with_savings(rows: list[dict], *, seed: int = 23) -> list[dict]:
    """The traffic with what tiers and the cache add: about a fifth of the requests answered from the cache (one
    cache_hit row at position 1, no tokens, no cost, the original answer's cost saved), and a saving (positive or
    negative) or none on the other answers."""
    rnd = random.Random(seed)
    by_request: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_request[row["request_id"]].append(row)
    out = []
    for request_rows in by_request.values():
        first = request_rows[0]
        if rnd.random() < 0.2:
            out.append(
                {
                    **first,
                    "model": "m/a",
                    "attempt": 1,
                    "retry": 0,
                    "outcome": "cache_hit",
                    "error_kind": None,
                    "prompt_tokens": 0,
                    "completion_tokens": 0,
                    "total_tokens": 0,
                    "cost_usd": 0.0,
                    "latency_ms": rnd.uniform(0.01, 0.5),
                    "first_token_ms": None,
                    "hedged": 0,
                    "saved_usd": rnd.choice([None, rnd.uniform(0.001, 0.01)]),
                    "tier": "simple",
                }
            )
            continue
        for row in request_rows:
            saved = rnd.choice([None, rnd.uniform(-0.002, 0.01)]) if row["outcome"] == "success" else None
            out.append({**row, "saved_usd": saved, "tier": rnd.choice([None, "simple", "complex"])})
    out.sort(key=lambda row: row["created_at"])
    return out


@pytest.fixture(scope="module")
def traffic() -> list[dict]:
    rows = with_savings(make_traffic(NOW, HOURS))
    assert sum(r["outcome"] == "cache_hit" for r in rows) > 50
    return rows


def write(store: Target, rows: list[dict]) -> None:
    if not isinstance(store, PostgresTarget):
        write_traffic(store, rows)
        return
    log = get_attempt_log(store)
    for row in rows:
        log.record(AttemptRow(**{**AttemptRow._field_defaults, "status_code": None, "error_message": None, **row}))
    assert log.flush(timeout=30) and log.problem is None


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path, traffic: list[dict]) -> Iterator[Target]:
    """A store holding the traffic, rolled up to the last closed hour."""
    where: Target = (
        tmp_path / "store.db"
        if request.param == "sqlite"
        else PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db")
    )
    write(where, traffic)
    backend_for(where).rollup(now=NOW)
    yield where
    if request.param == "postgres":
        from app.store.postgres.reader import close_readers

        close_readers()


def test_the_rollups_add_up_the_savings_and_count_the_cache_hits(store: Target, traffic: list[dict]) -> None:
    closed = [r for r in traffic if r["created_at"] < "2026-11-22T12"]
    for table, period, width in (("attempts_hourly", "hour", 13), ("attempts_daily", "day", 10)):
        want: dict[tuple, list] = defaultdict(lambda: [0.0, 0])
        for r in closed:
            sums = want[(r["created_at"][:width], r["task_type"], r["model"], r["attempt"], r["outcome"])]
            sums[0] += r["saved_usd"] or 0.0
            sums[1] += r["outcome"] == "cache_hit"
        got = {
            (r[period], r["task_type"], r["model"], r["attempt"], r["outcome"]): r
            for r in query_read_only(
                store,
                f"SELECT {period}, task_type, model, attempt, outcome, SUM(saved_usd) AS saved, "
                f"SUM(cache_hits) AS hits FROM {table} GROUP BY 1, 2, 3, 4, 5",
            )
        }
        assert set(got) == set(want), table
        for key, (saved, hits) in want.items():
            assert (got[key]["saved"], got[key]["hits"]) == (pytest.approx(saved, abs=1e-12), hits), (table, key)
    assert (
        sum(r["outcome"] == "cache_hit" for r in closed)
        == query_read_only(store, "SELECT SUM(cache_hits) AS n FROM attempts_daily")[0]["n"]
        > 0
    )


def test_rollup_rows_of_an_older_router_read_zero_savings_and_hits_once_migrated(tmp_path: Path) -> None:
    from sqlite_utils import Database

    from app.store.sqlite.migrations import MIGRATIONS

    path = tmp_path / "older.db"
    db = Database(path)
    for fn in MIGRATIONS:
        if fn.__name__ < "m011":  # the schema as a router before the rollups' savings left it
            fn(db)
            db.table("_taskrouter_migrations").insert({"name": fn.__name__, "applied_at": "2026-01-01"})
    db.execute(
        "INSERT INTO attempts_hourly VALUES ('2026-11-22T10', 'fast', 'm/a', 1, 'success', '', 3, 3, 30, "
        "30, 60, 0.03, 3, 300.0, 3, NULL, 0, NULL, '2026-11-22T10:00:00.000Z', '2026-11-22T10:59:00.000Z')"
    )
    db.conn.commit()
    db.conn.close()
    conn = backend_for(path).open().conn  # a newer router opens it: m011 is applied
    try:
        assert conn.execute("SELECT row_count, saved_usd, cache_hits FROM attempts_hourly").fetchall() == [(3, 0.0, 0)]
    finally:
        conn.close()


@pytest.fixture
def conn(store: Target) -> Iterator[object]:
    connection = queries.connect(store)
    assert connection is not None
    yield connection
    connection.close()  # type: ignore[attr-defined]


def test_a_cache_hit_is_an_answer_but_no_models_call_failure_or_latency(conn, traffic: list[dict]) -> None:
    scope = queries.Scope(None, iso(NOW))
    rows = [r for r in traffic if r["created_at"] < scope.end]
    hits = [r for r in rows if r["outcome"] == "cache_hit"]
    totals = ranges.totals(conn, scope)
    assert totals.answered == sum(r["outcome"] in ("success", "cache_hit") for r in rows)
    assert totals.requests == sum(r["attempt"] == 1 and r["retry"] == 0 for r in rows)
    assert totals.failures == sum(r["outcome"] == "failure" and r["error_kind"] != "hedge_lost" for r in rows)
    assert totals.fallback_answers == sum(r["outcome"] == "success" and r["attempt"] > 1 for r in rows)
    latency = ranges.latency(conn, scope)
    assert latency.count == sum(r["outcome"] == "success" and r["latency_ms"] is not None for r in rows)
    assert "m/a" in ranges.answers_by_model(conn, scope)
    assert sum(a.latency.count for a in ranges.answers_by_model(conn, scope).values()) == latency.count
    assert not any(outcome == "cache_hit" for _, outcome, _, _ in ranges.not_answered_by_model(conn, scope))
    depths = ranges.task_depths(conn, scope, 3)
    assert sum(d.answered for d in depths.values()) == totals.answered
    assert all(sum(d.by_position) == d.answered for d in depths.values())
    cells = health_cells(conn, iso(NOW - timedelta(hours=HOURS)), iso(NOW))
    assert sum(c.answered for c in cells.values()) == totals.answered
    assert sum(c.calls for c in cells.values()) == sum(
        r["outcome"] == "success" or (r["outcome"] == "failure" and r["error_kind"] != "hedge_lost") for r in rows
    )
    assert len(hits) > 0


def test_the_rollups_count_cache_hits_as_the_raw_rows_do(conn) -> None:
    for scope in (
        queries.Scope(None, None),
        queries.Scope(iso(NOW - timedelta(days=3)), iso(NOW)),
        queries.Scope(None, iso(NOW), tasks=("fast",)),
    ):
        assert queries.reads_rollups(conn, scope)
        got, want = queries.totals(conn, scope), ranges.totals(conn, scope)
        assert replace(got, cost=0.0) == replace(want, cost=0.0)
        assert got.cost == pytest.approx(want.cost)
        assert queries.task_depths(conn, scope, 3) == ranges.task_depths(conn, scope, 3)
        assert queries.latency(conn, scope).count == ranges.latency(conn, scope).count

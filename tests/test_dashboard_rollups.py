"""The dashboard over the rollups: before a prune the same totals as the raw rows (latency percentiles within the
buckets' 2 %), after it the same totals for the pruned hours; which ranges read them, and how a range is split."""

from __future__ import annotations

import sqlite3
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_dashboard_queries import Recorder
from traffic import make_traffic, write_traffic

from app.store import open_database
from app.store.retention import prune, rollup
from dashboard import queries
from dashboard.queries import ranges
from dashboard.queries.rollups import DAILY, HOURLY, Coverage, Part, Split, split
from dashboard.timeframe import iso

NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
DAYS = 10
MODELS = ("m/a", "m/b", "m/c", "m/d")


@pytest.fixture(scope="module")
def rolled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Ten days of traffic, rolled up to 12:00 (the hour from 12:00 is still open at 12:30)."""
    path = tmp_path_factory.mktemp("rollups") / "attempts.db"
    write_traffic(path, make_traffic(NOW, DAYS * 24, requests=3000))
    db = open_database(path)
    rollup(db.conn, now=NOW)
    db.conn.close()
    return path


@pytest.fixture
def conn(rolled: Path) -> sqlite3.Connection:
    connection = queries.connect(rolled)
    assert connection is not None
    return connection


def _at(days: float = 0, hours: float = 0, minutes: float = 0) -> str:
    return iso(NOW - timedelta(days=days, hours=hours, minutes=minutes))


# Ranges that read the rollups: all time, long ones, one reaching into the open hour, ragged starts, filters.
SCOPES = [
    queries.Scope(None, None),
    queries.Scope(None, iso(NOW)),
    queries.Scope(_at(days=7), iso(NOW)),
    queries.Scope(_at(days=7, minutes=17), _at(days=1, minutes=43)),
    queries.Scope(_at(days=3), _at(hours=5), tasks=("fast",)),
    queries.Scope(None, iso(NOW), models=("m/b",)),
    queries.Scope(_at(days=9, hours=3, minutes=1), iso(NOW), models=("m/a", "m/b")),
    queries.Scope(None, None, tasks=("fast", "summarization"), models=("m/a", "m/c", "m/d")),
]


def _close(got: int | None, want: int | None) -> bool:
    """Within the buckets' precision (2 %), or 1 ms (the raw queries' truncation)."""
    if got is None or want is None:
        return got == want
    return abs(got - want) <= max(1, want * 0.021)


@pytest.mark.parametrize("scope", SCOPES)
def test_the_rollups_give_the_raw_rows_totals(conn: sqlite3.Connection, scope: queries.Scope) -> None:
    assert queries.reads_rollups(conn, scope)
    got, want = queries.totals(conn, scope), ranges.totals(conn, scope)
    assert got.cost == pytest.approx(want.cost)
    assert replace(got, cost=0.0) == replace(want, cost=0.0)
    assert want.requests > 0


@pytest.mark.parametrize("scope", SCOPES)
def test_the_rollups_give_the_raw_rows_breakdowns(conn: sqlite3.Connection, scope: queries.Scope) -> None:
    assert Counter({r[:3]: r[3] for r in queries.not_answered_by_model(conn, scope)}) == Counter(
        {r[:3]: r[3] for r in ranges.not_answered_by_model(conn, scope)}
    )
    for outcomes in (("failure",), ("failure", "skipped")):
        assert queries.failure_kinds(conn, scope, outcomes) == ranges.failure_kinds(conn, scope, outcomes)
    assert queries.task_depths(conn, scope, 3) == ranges.task_depths(conn, scope, 3)
    assert queries.deprecation_evidence(conn, scope) == ranges.deprecation_evidence(conn, scope)


@pytest.mark.parametrize("scope", SCOPES)
def test_latency_from_the_rollups_is_within_the_buckets_precision(
    conn: sqlite3.Connection, scope: queries.Scope
) -> None:
    got, want = queries.latency(conn, scope), ranges.latency(conn, scope)
    assert got.count == want.count > 0
    for p in ("p50", "p95", "p99"):
        assert _close(getattr(got, p), getattr(want, p)), (p, got, want)
    by_model, raw = queries.answers_by_model(conn, scope), ranges.answers_by_model(conn, scope)
    assert set(by_model) == set(raw)
    for model, answers in by_model.items():
        assert (answers.latency.count, answers.tokens, answers.unpriced) == (
            raw[model].latency.count,
            raw[model].tokens,
            raw[model].unpriced,
        )
        assert answers.cost == pytest.approx(raw[model].cost)
        assert _close(answers.latency.p95, raw[model].latency.p95)
    first_token, raw_first = queries.first_token_by_model(conn, scope), ranges.first_token_by_model(conn, scope)
    assert {m: t.count for m, t in first_token.items()} == {m: t.count for m, t in raw_first.items()}
    assert all(_close(first_token[m].p50, raw_first[m].p50) for m in raw_first)


def test_a_trend_reads_each_bucket_the_way_the_range_reads(conn: sqlite3.Connection) -> None:
    scope = queries.Scope(None, iso(NOW))
    days = [(_at(days=d + 1), _at(days=d)) for d in range(DAYS)]
    recorder = Recorder(conn)
    got, want = queries.trend(recorder, scope, days), ranges.trend(conn, scope, days)  # type: ignore[arg-type]
    assert [replace(t, cost=0.0) for t in got] == [replace(t, cost=0.0) for t in want]
    # The same numbers, read from the rollups.
    assert any("attempts_daily" in sql or "attempts_hourly" in sql for sql, _ in recorder.seen)


def test_short_ranges_stay_on_the_raw_rows(conn: sqlite3.Connection) -> None:
    for scope in (queries.Scope(_at(hours=24), iso(NOW)), queries.Scope(_at(days=2), iso(NOW))):
        assert not queries.reads_rollups(conn, scope)


def test_a_database_never_rolled_up_reads_raw_rows(tmp_path: Path) -> None:
    path = tmp_path / "plain.db"
    write_traffic(path, make_traffic(NOW, 48, requests=100))
    conn = queries.connect(path)
    assert conn is not None
    assert not queries.reads_rollups(conn, queries.Scope(None, None))
    assert queries.totals(conn, queries.Scope(None, None)) == ranges.totals(conn, queries.Scope(None, None))


def test_an_older_database_without_rollup_tables_reads_raw_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = sqlite3.connect(path)
    old.execute(
        "CREATE TABLE attempts (id INTEGER PRIMARY KEY, task_type TEXT, model TEXT, attempt INTEGER, "
        "outcome TEXT, error_kind TEXT, total_tokens INTEGER, cost_usd REAL, latency_ms REAL, "
        "created_at TEXT)"
    )
    old.execute("INSERT INTO attempts VALUES (1, 'fast', 'm/a', 1, 'success', NULL, 10, NULL, 12.5, ?)", (_at(1),))
    old.commit()
    conn = queries.connect(path)
    assert conn is not None
    assert queries.totals(conn, queries.Scope(None, None)).answered == 1
    assert queries.first_and_last(conn) == (_at(1), _at(1))
    assert queries.distinct_values(conn, "model") == ["m/a"]


def test_after_a_prune_the_pruned_hours_still_show(tmp_path: Path) -> None:
    path = tmp_path / "pruned.db"
    traffic = make_traffic(NOW, DAYS * 24, requests=1500)
    traffic.insert(1, dict(traffic[0], model="m/retired", created_at=traffic[0]["created_at"][:19] + ".999Z"))
    write_traffic(path, traffic)
    conn = queries.connect(path)
    assert conn is not None
    scopes = [
        queries.Scope(None, iso(NOW)),
        queries.Scope(_at(days=8, minutes=30), iso(NOW), models=("m/a", "m/b")),
        queries.Scope(_at(days=8, minutes=30), _at(days=2), tasks=("reasoning",)),
    ]  # whole hours
    before = [
        (ranges.totals(conn, s), ranges.task_depths(conn, s, 3), ranges.failure_kinds(conn, s, ("failure",)))
        for s in scopes
    ]
    first = ranges.first_and_last(conn)[0]
    report = prune(path, 3, now=NOW, sleep=lambda _: None)
    assert report.rows_removed > 0
    for scope, (totals, depths, kinds) in zip(scopes, before, strict=True):
        assert queries.reads_rollups(conn, scope)
        got = queries.totals(conn, scope)
        assert replace(got, cost=0.0) == replace(totals, cost=0.0) and got.cost == pytest.approx(totals.cost)
        assert queries.task_depths(conn, scope, 3) == depths
        assert queries.failure_kinds(conn, scope, ("failure",)) == kinds
    assert queries.first_and_last(conn)[0] == first  # "All time" still starts at the first attempt
    assert "m/retired" in queries.distinct_values(conn, "model")  # its only row was pruned
    assert ranges.first_and_last(conn)[0] >= report.cutoff


# -- how a range is split ------------------------------------------------------------------------------------

ROLLED = Coverage("2026-11-22T11", pruned_before=None)


def test_all_time_is_whole_days_then_hours_then_the_raw_rows_since() -> None:
    got = split(queries.Scope(None, "2026-11-22T12:30:00.000Z"), ROLLED)
    assert got == Split(
        (queries.Scope("2026-11-22T11:00:00.000Z", "2026-11-22T12:30:00.000Z"),),
        (Part(*DAILY, None, "2026-11-22"), Part(*HOURLY, "2026-11-22T00", "2026-11-22T11")),
    )


def test_a_ragged_range_reads_its_edges_from_the_raw_rows() -> None:
    scope = queries.Scope("2026-11-12T09:17:00.000Z", "2026-11-20T22:43:00.000Z", tasks=("fast",))
    got = split(scope, ROLLED)
    assert got.raw == (replace(scope, end="2026-11-12T10:00:00.000Z"), replace(scope, start="2026-11-20T22:00:00.000Z"))
    assert got.rolled == (
        Part(*HOURLY, "2026-11-12T10", "2026-11-13T00"),
        Part(*DAILY, "2026-11-13", "2026-11-20"),
        Part(*HOURLY, "2026-11-20T00", "2026-11-20T22"),
    )


def test_a_range_within_a_day_reads_hours_and_one_on_the_hour_has_no_raw_edge() -> None:
    scope = queries.Scope("2026-11-20T03:00:00.000Z", "2026-11-20T09:00:00.000Z")
    assert split(scope, ROLLED) == Split((), (Part(*HOURLY, "2026-11-20T03", "2026-11-20T09"),))


def test_a_range_past_the_rollups_is_read_raw() -> None:
    scope = queries.Scope("2026-11-22T11:10:00.000Z", "2026-11-22T12:30:00.000Z")
    assert split(scope, ROLLED) == Split((scope,), ())


def test_an_edge_inside_a_pruned_hour_takes_the_whole_hour_from_the_rollups() -> None:
    scope = queries.Scope("2026-11-12T09:17:00.000Z", "2026-11-14T05:10:00.000Z")
    got = split(scope, Coverage("2026-11-22T11", pruned_before="2026-11-19T12"))
    assert got == Split(
        (),
        (
            Part(*HOURLY, "2026-11-12T09", "2026-11-13T00"),
            Part(*DAILY, "2026-11-13", "2026-11-14"),
            Part(*HOURLY, "2026-11-14T00", "2026-11-14T06"),
        ),
    )
    kept = queries.Scope("2026-11-19T12:17:00.000Z", "2026-11-22T05:10:00.000Z")  # raw rows still there: exact
    assert split(kept, Coverage("2026-11-22T11", pruned_before="2026-11-19T12")).raw[0] == replace(
        kept, end="2026-11-19T13:00:00.000Z"
    )


@pytest.mark.parametrize("models", [(), ("m/a",), ("m/a", "m/b"), ("m/b", "m/c", "m/d")])
def test_the_raw_rows_count_a_retried_request_once(rolled: Path, models: tuple[str, ...]) -> None:
    conn = sqlite3.connect(rolled)
    retried = conn.execute("SELECT COUNT(*) FROM attempts WHERE retry > 0").fetchone()[0]
    where = f"model IN ({', '.join('?' for _ in models)})" if models else "TRUE"
    distinct = conn.execute(f"SELECT COUNT(DISTINCT request_id) FROM attempts WHERE {where}", models).fetchone()[0]
    assert retried > 0
    read = queries.connect(rolled)
    assert read is not None
    scope = queries.Scope(_at(days=1), iso(NOW), models=models)
    in_range = conn.execute(
        f"SELECT COUNT(DISTINCT request_id) FROM attempts WHERE {where} AND created_at >= ? AND created_at < ?",
        (*models, scope.start, scope.end),
    ).fetchone()[0]
    assert ranges.totals(read, scope).requests == in_range
    assert ranges.totals(read, queries.Scope(None, None, models=models)).requests == distinct


@pytest.mark.parametrize("page", ["Overview", "Models", "Tasks"])
def test_pages_say_when_the_range_comes_from_the_rollups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, page: str
) -> None:
    from test_dashboard import read, run_page, texts

    path = tmp_path / "ops.db"
    now = datetime.now(UTC)
    write_traffic(path, make_traffic(now, DAYS * 24, requests=400))
    db = open_database(path)
    rollup(db.conn, now=now)
    db.conn.close()
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", str(path))
    note = queries.ROLLUPS_NOTE.split(":")[0]
    assert note in read(texts(run_page(page, range="All time")))
    assert note not in read(texts(run_page(page, range="Last 24 hours")))

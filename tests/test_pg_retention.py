"""Retention on PostgreSQL: the rollups count every row once (late rows and concurrent writers included), and a
prune drops whole days the rollups hold, leaving the totals the dashboard reads unchanged."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from app.clock import iso_millis
from app.store import AttemptRow, get_attempt_log, open_database
from app.store.model_status import query_read_only
from app.store.postgres.migrations import ensure_partitions, partition_name
from app.store.retention import prune, rollup
from app.store.target import PostgresTarget

NOW = datetime(2026, 12, 1, 12, 30, tzinfo=UTC)


def row(i: int, at: datetime, *, model: str = "m1", outcome: str = "success") -> AttemptRow:
    return AttemptRow(
        f"r{i}",
        "fast",
        model,
        "groq",
        1,
        outcome,
        None if outcome == "success" else "server_error",
        None,
        None,
        False,
        False,
        10,
        5,
        15,
        100.0 + i % 50,
        0.001,
        iso_millis(at.timestamp()),
    )


@pytest.fixture
def store(pg_url, tmp_path) -> PostgresTarget:
    target = PostgresTarget(pg_url, tmp_path / "spill.db")
    db = open_database(target)
    try:
        for n in range(10, -1, -1):  # a store that has run for ten days made each day's partition as it went
            ensure_partitions(db.conn, NOW.date() - timedelta(days=n), ahead=0)
    finally:
        db.conn.close()
    return target


def write(store: PostgresTarget, rows: list[AttemptRow]) -> None:
    log = get_attempt_log(store)
    for r in rows:
        log.record(r)
    assert log.flush(timeout=30)


def totals(store: PostgresTarget) -> tuple[int, float]:
    got = query_read_only(store, "SELECT SUM(row_count) AS n, SUM(cost_usd) AS c FROM attempts_daily")[0]
    return int(got["n"] or 0), float(got["c"] or 0.0)


def ten_days(count: int = 1000) -> list[AttemptRow]:
    start = NOW - timedelta(days=10)
    return [
        row(i, start + timedelta(minutes=i * 14.4), outcome="failure" if i % 10 == 0 else "success")
        for i in range(count)
    ]


def test_a_prune_drops_the_days_before_the_cutoff_and_the_rollups_keep_their_totals(store):
    rows = ten_days()
    write(store, rows)
    raw_closed = sum(r.created_at < "2026-12-01T12" for r in rows)
    report = prune(store, 3, now=NOW)
    assert report.cutoff == "2026-11-28T12:00:00.000Z"
    # Whole days before the cutoff's day are dropped; that day's rows before the cutoff are deleted.
    gone = [r for r in rows if r.created_at < report.cutoff]
    # One drop per day from 2026-11-20 (the partition made the day before the first row; empty) to 2026-11-27,
    # then one batch of the cutoff's day.
    assert report.rows_removed == len(gone) and report.batches == 9
    assert (report.removed_from, report.removed_to) == (gone[0].created_at, gone[-1].created_at)
    left = query_read_only(store, "SELECT COUNT(*) AS n, MIN(created_at) AS first FROM attempts")[0]
    assert left["n"] == len(rows) - len(gone) and left["first"] == report.oldest_kept >= report.cutoff
    assert totals(store) == (raw_closed, pytest.approx(0.001 * raw_closed))
    parts = {
        r["relname"]
        for r in query_read_only(
            store, "SELECT relname FROM pg_class WHERE relname LIKE 'attempts\\_2%' AND relkind = 'r'"
        )
    }
    assert partition_name(date(2026, 11, 27)) not in parts and partition_name(date(2026, 11, 28)) in parts
    state = query_read_only(store, "SELECT pruned_before, through_hour FROM rollup_state")[0]
    assert state == {"pruned_before": "2026-11-28T12", "through_hour": "2026-12-01T12"}
    assert report.size_after < report.size_before


def test_a_dry_run_says_what_would_go_and_changes_nothing(store):
    write(store, ten_days(200))
    report = prune(store, 3, now=NOW, dry_run=True)
    assert report.dry_run and report.rows_removed == sum(r.created_at < report.cutoff for r in ten_days(200))
    assert query_read_only(store, "SELECT COUNT(*) AS n FROM attempts")[0]["n"] == 200
    assert query_read_only(store, "SELECT COUNT(*) AS n FROM attempts_hourly")[0]["n"] == 0


@pytest.mark.slow
def test_no_row_older_than_the_retention_is_left_in_the_default_partition_or_the_cutoffs_day(store):
    # Fifty rows from a day with no partition of its own (the default one holds them), and rows either side of
    # the cutoff on the cutoff's day.
    august = [row(i, datetime(2026, 8, 1, 6, tzinfo=UTC) + timedelta(minutes=10 * i)) for i in range(50)]
    cutoff_day = [row(100 + i, datetime(2026, 11, 28, tzinfo=UTC) + timedelta(minutes=30 * i)) for i in range(48)]
    write(store, august + cutoff_day)
    report = prune(store, 3, now=NOW)
    before_cutoff = [r for r in cutoff_day if r.created_at < report.cutoff]
    assert len(before_cutoff) == 24 and report.rows_removed == 50 + 24
    left = query_read_only(store, "SELECT created_at FROM attempts ORDER BY created_at")
    assert [r["created_at"] for r in left] == [r.created_at for r in cutoff_day[24:]]
    assert report.oldest_kept == "2026-11-28T12:00:00.000Z"
    assert totals(store)[0] == 50 + 48  # every row in the rollups: those removed and those kept
    again = prune(store, 3, now=NOW)
    assert (again.rows_removed, again.oldest_kept) == (0, report.oldest_kept)


def test_rows_written_late_for_hours_already_rolled_up_are_added_once(store):
    write(store, ten_days(300))
    db = open_database(store)
    try:
        rollup(db.conn, now=NOW)
        before = totals(store)[0]
        write(store, [row(10_000 + i, NOW - timedelta(days=5)) for i in range(7)])  # a spill file imported late
        again = rollup(db.conn, now=NOW)
        assert (again.late_rows, totals(store)[0]) == (7, before + 7)
        assert rollup(db.conn, now=NOW).rows == 0  # idempotent
    finally:
        db.conn.close()


def test_rollups_racing_writers_on_other_connections_count_every_row_exactly_once(store):
    stop = threading.Event()
    written = []

    def writer() -> None:
        log = get_attempt_log(PostgresTarget(store.url + "?application_name=other-host", store.spill_to))
        i = 0
        while not stop.is_set():
            batch = [row(20_000 + i + k, NOW - timedelta(hours=2, minutes=k % 50)) for k in range(50)]
            for r in batch:
                log.record(r)
            written.extend(batch)
            i += 50
            log.flush(timeout=30)
        log.close(timeout=30)

    thread = threading.Thread(target=writer)
    thread.start()
    db = open_database(store)
    try:
        for _ in range(20):
            rollup(db.conn, now=NOW)
    finally:
        stop.set()
        thread.join()
        rollup(db.conn, now=NOW)
        db.conn.close()
    assert len(written) > 0
    assert totals(store)[0] == len(written)


def test_taskrouter_prune_works_on_postgresql_and_names_the_server_without_its_password(store, monkeypatch, capsys):
    from app.cli import main

    write(store, ten_days(100))
    secret_url = store.url.replace("postgres@", "postgres:hunter2@")  # trust auth: any password is accepted
    monkeypatch.setenv("ATTEMPTS_DB_URL", secret_url)
    assert main(["prune", "--days", "3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "postgres:***@" in out and "would remove" in out
    assert main(["prune", "--days", "3", "--vacuum"]) == 2
    assert "--vacuum rewrites a SQLite file" in capsys.readouterr().err


def test_the_hourly_upkeep_rolls_up_and_prunes_a_postgresql_store_once_between_hosts(store):
    from app.store.retention import PruneReport
    from app.store.upkeep import maintain

    write(store, ten_days(100))
    first = maintain(store, 3, now=NOW)
    assert isinstance(first, PruneReport) and first.rows_removed > 0
    assert maintain(store, 3, now=NOW + timedelta(minutes=1)) is None  # another host's turn was just taken


def test_the_dashboard_reads_the_same_numbers_from_postgresqls_rollups_as_from_sqlites(store, tmp_path):
    from traffic import make_traffic, write_traffic

    from dashboard import queries

    traffic = make_traffic(NOW, 9 * 24, requests=800)
    sqlite_path = tmp_path / "same.db"
    write_traffic(sqlite_path, traffic)
    write(
        store,
        [
            AttemptRow(**{name: r.get(name, AttemptRow._field_defaults.get(name)) for name in AttemptRow._fields})
            for r in traffic
        ],
    )
    for target in (sqlite_path, store):
        db = open_database(target)
        try:
            from app.store.retention import rollup

            rollup(db.conn, now=NOW)
        finally:
            db.conn.close()
    results = []
    for target in (sqlite_path, store):
        conn = queries.connect(target)
        assert conn is not None
        try:
            scopes = [
                queries.Scope(None, None),
                queries.Scope("2026-11-23T07:17:00.000Z", "2026-11-30T00:00:00.000Z", models=("m/a", "m/b")),
            ]
            # Costs rounded: the two servers add the same floats in another order.
            results.append(
                [
                    (
                        replace(queries.totals(conn, s), cost=round(queries.totals(conn, s).cost, 9)),
                        queries.latency(conn, s),
                    )
                    for s in scopes
                ]
            )
        finally:
            conn.close()
    assert results[0] == results[1]
    assert results[0][0][0].requests == 800

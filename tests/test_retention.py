"""Rollups against the raw rows they add up, exactly once however often and by however many processes they run;
prune's cutoff, batches, dry run and the space it gives back; a writer that keeps writing through a prune."""

from __future__ import annotations

import math
import sqlite3
import threading
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import count_rows
from traffic import make_traffic, write_traffic

from app.clock import iso_millis
from app.store import AttemptRow, get_attempt_log, histogram, open_database
from app.store.retention import GRACE, cutoff_for, prune, read_state, rollup, vacuum

NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)
HOURS = 72


@pytest.fixture
def traffic() -> list[dict]:
    return make_traffic(NOW, HOURS)


@pytest.fixture
def path(tmp_path: Path, traffic: list[dict]) -> Path:
    path = tmp_path / "attempts.db"
    write_traffic(path, traffic)
    return path


def _connect(path: Path) -> sqlite3.Connection:
    return open_database(path).conn


def _expected(rows: list[dict], width: int) -> dict[tuple, dict]:
    """What a rollup row must hold, from the raw rows, per (period of `width` characters of created_at, key)."""
    out: dict[tuple, dict] = {}
    for r in rows:
        key = (r["created_at"][:width], r["task_type"], r["model"], r["attempt"], r["outcome"], r["error_kind"] or "")
        e = out.setdefault(key, defaultdict(int, latency=Counter(), first_token=Counter(), at=[]))
        e["row_count"] += 1
        e["first_calls"] += r["retry"] == 0
        for column in ("prompt_tokens", "completion_tokens", "total_tokens"):
            e[column] += r[column] or 0
        e["cost_usd"] += r["cost_usd"] or 0
        e["priced_rows"] += r["cost_usd"] is not None
        if r["latency_ms"] is not None:
            e["latency_ms_sum"] += r["latency_ms"]
            e["latency_count"] += 1
            e["latency"][histogram.bucket_of(int(r["latency_ms"]))] += 1
        if r["first_token_ms"] is not None:
            e["first_token_count"] += 1
            e["first_token"][histogram.bucket_of(int(r["first_token_ms"]))] += 1
        e["at"].append(r["created_at"])
    return out


def _stored(conn: sqlite3.Connection, table: str) -> dict[tuple, sqlite3.Row]:
    conn.row_factory = sqlite3.Row
    try:
        return {tuple(r)[:6]: r for r in conn.execute(f"SELECT * FROM {table}")}
    finally:
        conn.row_factory = None


def _assert_rollups_equal_raw(conn: sqlite3.Connection, rows: list[dict]) -> None:
    for table, width in (("attempts_hourly", 13), ("attempts_daily", 10)):
        expected, stored = _expected(rows, width), _stored(conn, table)
        assert set(stored) == set(expected), table
        for key, e in expected.items():
            got = stored[key]
            for column in (
                "row_count",
                "first_calls",
                "prompt_tokens",
                "completion_tokens",
                "total_tokens",
                "priced_rows",
                "latency_count",
                "first_token_count",
            ):
                assert got[column] == e[column], (table, key, column)
            assert got["cost_usd"] == pytest.approx(e["cost_usd"])
            assert got["latency_ms_sum"] == pytest.approx(e["latency_ms_sum"])
            assert histogram.decode(got["latency_hist"]) == e["latency"]
            assert histogram.decode(got["first_token_hist"]) == e["first_token"]
            assert (got["first_at"], got["last_at"]) == (min(e["at"]), max(e["at"]))


def test_rollups_hold_exactly_what_the_closed_hours_raw_rows_add_up_to(path: Path, traffic: list[dict]) -> None:
    conn = _connect(path)
    report = rollup(conn, now=NOW + GRACE)
    closed = [r for r in traffic if r["created_at"] < "2026-11-22T12"]  # 12:xx is still open at 12:35
    assert len(closed) < len(traffic)
    assert report.through_hour == "2026-11-22T12"
    assert report.hours == HOURS  # from the first row's hour, 3 days earlier, to 12:00
    assert (report.rows, report.late_rows) == (len(closed), 0)
    _assert_rollups_equal_raw(conn, closed)
    assert read_state(conn) == ("2026-11-22T12", len(traffic))  # every id seen: the open hour's come by time


def test_an_hour_is_closed_only_a_grace_period_after_its_end(path: Path) -> None:
    conn = _connect(path)
    assert rollup(conn, now=NOW.replace(minute=0) + GRACE - timedelta(seconds=1)).through_hour == "2026-11-22T11"
    assert rollup(conn, now=NOW.replace(minute=0) + GRACE).through_hour == "2026-11-22T12"


def test_rolling_up_again_adds_nothing(path: Path, traffic: list[dict]) -> None:
    conn = _connect(path)
    rollup(conn, now=NOW + GRACE)
    before = {t: _stored(conn, t) for t in ("attempts_hourly", "attempts_daily")}
    again = rollup(conn, now=NOW + GRACE)
    assert (again.hours, again.rows, again.late_rows) == (0, 0, 0)
    assert {t: _stored(conn, t) for t in before} == before
    later = rollup(conn, now=NOW + timedelta(hours=2))  # the open hour closes: only it is added
    assert (later.hours, later.rows) == (2, sum(1 for r in traffic if r["created_at"] >= "2026-11-22T12"))
    _assert_rollups_equal_raw(conn, traffic)


def test_small_steps_give_the_same_rollups(path: Path, traffic: list[dict]) -> None:
    conn = _connect(path)
    assert rollup(conn, now=NOW + timedelta(hours=1), hours_per_step=5).hours == HOURS + 1
    _assert_rollups_equal_raw(conn, traffic)


def test_a_row_written_late_for_a_rolled_up_hour_is_added_once(path: Path, traffic: list[dict]) -> None:
    conn = _connect(path)
    rollup(conn, now=NOW + timedelta(hours=1))
    late = dict(traffic[5], request_id="late", created_at=traffic[5]["created_at"][:13] + ":59:59.999Z")
    write_traffic(path, [late])  # e.g. a spill file imported hours after
    report = rollup(conn, now=NOW + timedelta(hours=1))
    assert (report.hours, report.rows, report.late_rows) == (0, 1, 1)
    assert rollup(conn, now=NOW + timedelta(hours=1)).rows == 0
    _assert_rollups_equal_raw(conn, [*traffic, late])


def test_two_processes_rolling_up_at_once_count_every_row_once(path: Path, traffic: list[dict]) -> None:
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def run() -> None:
        conn = _connect(path)
        try:
            start.wait()
            rollup(conn, now=NOW + timedelta(hours=1), hours_per_step=3)
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    _assert_rollups_equal_raw(_connect(path), traffic)


def test_an_empty_log_rolls_up_nothing(tmp_path: Path) -> None:
    conn = _connect(tmp_path / "empty.db")
    assert rollup(conn, now=NOW) == rollup(conn, now=NOW, dry_run=True)
    assert rollup(conn, now=NOW).hours == 0 and read_state(conn) == (None, 0)


# -- prune ---------------------------------------------------------------------------------------------------


def test_prune_removes_the_rows_before_the_cutoff_in_batches_after_rolling_them_up(
    path: Path, traffic: list[dict]
) -> None:
    pauses: list[float] = []
    old = [r for r in traffic if r["created_at"] < "2026-11-21T12"]  # the start of the hour a day before NOW
    report = prune(path, 1, now=NOW, batch_rows=40, batch_seconds=None, pause=0.5, sleep=pauses.append)
    assert report.cutoff == "2026-11-21T12:00:00.000Z"
    assert report.rows_removed == len(old) > 40
    assert report.batches == math.ceil(len(old) / 40)
    assert pauses.count(0.5) >= report.batches  # a pause after every batch (and every vacuum step)
    assert (report.removed_from, report.removed_to) == (old[0]["created_at"], old[-1]["created_at"])
    assert report.oldest_kept == min(r["created_at"] for r in traffic if r["created_at"] >= report.cutoff)
    assert count_rows(path) == len(traffic) - len(old)
    assert report.hours_rolled_up == HOURS and report.rolled_up_through == "2026-11-22T12"
    pruned_before = sqlite3.connect(path).execute("SELECT pruned_before FROM rollup_state").fetchone()[0]
    assert pruned_before == "2026-11-21T12"  # readers take the hours before it from the rollups
    # The rollups still hold every closed hour, the pruned ones included.
    _assert_rollups_equal_raw(_connect(path), [r for r in traffic if r["created_at"] < "2026-11-22T12"])
    again = prune(path, 1, now=NOW)
    assert (again.rows_removed, again.hours_rolled_up, again.batches) == (0, 0, 0)


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


class SlowClock:
    """Each reading a second after the last: every write seems to take a second."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_batches_shrink_until_one_holds_the_lock_no_longer_than_asked(path: Path, traffic: list[dict]) -> None:
    old = sum(1 for r in traffic if r["created_at"] < "2026-11-21T12")
    report = prune(path, 1, now=NOW, batch_rows=200, batch_seconds=0.05, sleep=lambda _: None, clock=SlowClock())
    assert report.rows_removed == old > 300
    assert report.batches == 1 + math.ceil((old - 200) / 100)  # 200, then the smallest batch: 100 rows
    assert report.longest_batch_ms == 1000.0


def test_batches_grow_while_they_are_quick(path: Path, traffic: list[dict]) -> None:
    old = sum(1 for r in traffic if r["created_at"] < "2026-11-21T12")
    report = prune(path, 1, now=NOW, batch_rows=100, batch_seconds=1e9, sleep=lambda _: None)
    assert report.rows_removed == old
    assert report.batches == math.ceil(math.log2(old / 100 + 1))  # 100, 200, 400, ...


def test_a_dry_run_removes_nothing_and_says_what_would_go(path: Path, traffic: list[dict]) -> None:
    before = _dump(path)
    dry = prune(path, 1, now=NOW, dry_run=True)
    assert _dump(path) == before  # no row removed, and no rollup written either
    assert count_rows(path) == len(traffic)
    assert dry.dry_run and dry.hours_rolled_up == HOURS and dry.batches == 0
    real = prune(path, 1, now=NOW)
    assert (dry.rows_removed, dry.removed_from, dry.removed_to, dry.oldest_kept) == (
        real.rows_removed,
        real.removed_from,
        real.removed_to,
        real.oldest_kept,
    )
    assert dry.freed > 0


def test_every_row_past_the_retention_goes_the_newest_too_and_rows_written_after_are_rolled_up(
    path: Path, traffic: list[dict]
) -> None:
    later = NOW + timedelta(days=30)
    report = prune(path, 1, now=later)
    assert (report.rows_removed, report.removed_to, report.oldest_kept) == (
        len(traffic),
        traffic[-1]["created_at"],
        None,
    )
    assert count_rows(path) == 0
    conn = _connect(path)
    assert read_state(conn) == ("2026-12-22T12", 0)  # the watermark came down with the ids SQLite hands out again
    # The table is empty: SQLite gives the next rows ids from 1 again. One written late for an hour already
    # rolled up (a spill file imported) and one of a new hour are both counted, once.
    late = dict(traffic[5], request_id="late")
    fresh = dict(traffic[5], request_id="fresh", created_at=iso_millis((later + timedelta(minutes=1)).timestamp()))
    write_traffic(path, [late, fresh])
    assert [r[0] for r in conn.execute("SELECT id FROM attempts ORDER BY id")] == [1, 2]
    report = rollup(conn, now=later + timedelta(hours=2))
    assert (report.rows, report.late_rows) == (2, 1)
    assert rollup(conn, now=later + timedelta(hours=2)).rows == 0
    _assert_rollups_equal_raw(conn, [*traffic, late, fresh])


def test_a_prune_that_leaves_the_newest_rows_keeps_the_watermark(path: Path, traffic: list[dict]) -> None:
    prune(path, 1, now=NOW)
    conn = _connect(path)
    assert read_state(conn)[1] == len(traffic)  # rows kept up to the last id: ids are not handed out again


@pytest.mark.parametrize("days", [0, -1, 36_501])
def test_prune_refuses_a_retention_it_cannot_mean(path: Path, days: int) -> None:
    with pytest.raises(ValueError, match="retention_days must be a whole number of days from 1 to 36500"):
        prune(path, days, now=NOW)
    assert count_rows(path) > 0


def _bulk(path: Path, rows: int, end: datetime) -> None:
    traffic = make_traffic(end, 24 * 8, requests=rows)
    for row in traffic:
        row["error_message"] = "x" * 300  # bigger rows: enough pages for the file sizes to tell
    write_traffic(path, traffic)


@pytest.mark.slow
def test_a_new_file_gives_the_freed_pages_back_to_the_disk(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    _bulk(path, 3000, NOW)
    report = prune(path, 2, now=NOW, pause=0, sleep=lambda _: None)
    assert report.auto_vacuum == "incremental"
    assert report.freed > 0 and report.returned >= report.freed  # the rollup's own free pages too, if any
    assert report.size_after < report.size_before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0


@pytest.mark.slow
def test_an_older_file_keeps_its_size_until_one_vacuum(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE made_before (x)").connection.close()  # auto_vacuum is off for good
    _bulk(path, 3000, NOW)
    report = prune(path, 2, now=NOW, pause=0, sleep=lambda _: None)
    assert report.auto_vacuum == "none"
    assert report.freed > 0 and report.returned == 0
    before, after = vacuum(path)
    assert after < before
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental from now on


@pytest.mark.slow
def test_a_writer_writing_through_a_prune_loses_no_row(tmp_path: Path) -> None:
    path = tmp_path / "busy.db"
    now = datetime.now(UTC)
    _bulk(path, 4000, now)
    kept = count_rows(path, "created_at >= ?", cutoff_for(2, now))
    log = get_attempt_log(path)
    written = 0
    stop = threading.Event()

    def write() -> None:
        nonlocal written
        while not stop.is_set():
            log.record(
                AttemptRow(
                    f"live{written}",
                    "fast",
                    "m/a",
                    "groq",
                    1,
                    "success",
                    None,
                    None,
                    None,
                    False,
                    False,
                    10,
                    5,
                    15,
                    120.0,
                    0.001,
                    iso_millis(datetime.now(UTC).timestamp()),
                )
            )
            written += 1
            if written % 50 == 0:
                log.flush(10)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        report = prune(path, 2, now=now, batch_rows=100, batch_seconds=None, pause=0.001)
    finally:
        stop.set()
        writer.join(30)
    assert not writer.is_alive() and log.close(30)  # every row written, and the log's thread ended
    assert report.rows_removed > 1000 and report.batches > 10
    assert written > 0 and log.problem is None and log.dropped == 0 and log.spilled == 0
    assert count_rows(path, "request_id LIKE 'live%'") == written
    assert count_rows(path) == kept + written

"""Retention of the attempt log: raw rows are rolled up into hourly and daily totals, then the raw rows older than
ATTEMPTS_RETENTION_DAYS are deleted in small batches and the freed pages handed back to the disk.

`rollup(conn)` adds every closed hour (and every row written late, for an hour already rolled up) to
`attempts_hourly` and `attempts_daily`, exactly once: `rollup_state` keeps how far it went, as an hour and as the
highest row id, and each step re-checks both under the write lock before it writes, so two processes rolling up
the same file never count a row twice. `prune(path, days)` runs it first, then deletes only rows the rollups
hold. Neither holds SQLite's write lock for longer than one batch, so the attempt log's writer (another thread or
process) waits for at most that, and the dashboard never waits (readers do not take the lock).

The statements keep to SQL that PostgreSQL reads too (`?` placeholders aside): CASE sums, COUNT(column),
ON CONFLICT upserts, CASE for the smaller of two values. Two things are SQLite's own and stay here: that a later
row has a higher id (a single writer at a time hands them out in commit order; PostgreSQL's sequences do not), and
the page-level size and vacuum PRAGMAs.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from app.store import histogram
from app.store.clock import iso_millis

STATE = "attempts"  # rollup_state's row for the attempts table
GRACE = timedelta(minutes=5)  # an hour counts as closed this long after its end: rows reach the file within ms
HOURS_PER_STEP = 24  # hours added per write: a backlog (a first run on a big file) goes in bounded steps
BATCH_ROWS = 2_000  # raw rows deleted per transaction: tens of milliseconds of the write lock
VACUUM_PAGES = 2_048  # free pages handed back to the disk per transaction (8 MB at the default page size)
PAUSE_SECONDS = 0.02  # between two writes, so that the attempt log's writer gets the lock in between
MAX_RETENTION_DAYS = 36_500

_KEY = "task_type, model, attempt, outcome, error_kind"
_SUMS = ("row_count", "first_calls", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd",
         "priced_rows", "latency_ms_sum", "latency_count", "first_token_count")
_GROUP = ("SUBSTR(created_at, 1, 13), COALESCE(task_type, ''), COALESCE(model, ''), COALESCE(attempt, 0), "
          "COALESCE(outcome, ''), COALESCE(error_kind, '')")
_AGGREGATE = f"""
    SELECT {_GROUP}, COUNT(*), SUM(CASE WHEN COALESCE(retry, 0) = 0 THEN 1 ELSE 0 END),
           COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0),
           COALESCE(SUM(cost_usd), 0), COUNT(cost_usd), COALESCE(SUM(latency_ms), 0), COUNT(latency_ms),
           COUNT(first_token_ms), MIN(created_at), MAX(created_at)
    FROM attempts WHERE {{where}} GROUP BY 1, 2, 3, 4, 5, 6"""
# Whole milliseconds, as the dashboard's raw percentiles take them (CAST truncates in SQLite; PostgreSQL's rounds,
# so a port uses FLOOR). The buckets are applied in Python: every reader and writer then agrees on their edges.
_HISTOGRAM = f"""
    SELECT {_GROUP}, CAST({{column}} AS INTEGER), COUNT(*) FROM attempts
    WHERE {{where}} AND {{column}} IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7"""


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def _hour_start(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return iso_millis(moment.timestamp())


class _Group:
    """One rollup row being built: the sums in _SUMS order, the first and last created_at, two histograms."""

    __slots__ = ("first_at", "first_token", "last_at", "latency", "sums")

    def __init__(self) -> None:
        self.sums = [0] * len(_SUMS)
        self.first_at = self.last_at = ""
        self.latency: Counter[int] = Counter()
        self.first_token: Counter[int] = Counter()

    def add(self, sums: Iterable[Any], first_at: str, last_at: str) -> None:
        self.sums = [a + b for a, b in zip(self.sums, sums, strict=True)]
        self.first_at = min(self.first_at or first_at, first_at)
        self.last_at = max(self.last_at, last_at)

    def absorb(self, other: _Group) -> None:
        self.add(other.sums, other.first_at, other.last_at)
        self.latency.update(other.latency)
        self.first_token.update(other.first_token)


Key = tuple[str, str, str, int, str, str]  # (period, task_type, model, attempt, outcome, error_kind)


def _aggregate(conn: sqlite3.Connection, where: str, params: tuple[Any, ...], groups: dict[Key, _Group]) -> int:
    """Add the rows matching `where` to `groups`, per hour; returns how many rows that was."""
    rows = 0
    for r in conn.execute(_AGGREGATE.format(where=where), params):
        key: Key = tuple(r[:6])  # type: ignore[assignment]
        groups.setdefault(key, _Group()).add(r[6:16], r[16], r[17])
        rows += r[6]
    for column, attr in (("latency_ms", "latency"), ("first_token_ms", "first_token")):
        for r in conn.execute(_HISTOGRAM.format(where=where, column=column), params):
            getattr(groups[tuple(r[:6])], attr)[histogram.bucket_of(r[6])] += r[7]  # type: ignore[index]
    return rows


# -- the state -------------------------------------------------------------------------------------------------


def read_state(conn: sqlite3.Connection) -> tuple[str | None, int]:
    """(through_hour, max_id): every hour before through_hour and every row up to max_id is rolled up. (None, 0)
    before the first rollup."""
    row = conn.execute("SELECT through_hour, max_id FROM rollup_state WHERE name = ?", (STATE,)).fetchone()
    return (row[0], row[1]) if row else (None, 0)


def _write_state(conn: sqlite3.Connection, through: str, max_id: int, now: datetime) -> None:
    conn.execute("""INSERT INTO rollup_state (name, through_hour, max_id, rolled_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET through_hour = excluded.through_hour,
                                                     max_id = excluded.max_id, rolled_at = excluded.rolled_at""",
                 (STATE, through, max_id, _iso(now)))


# -- rollup ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollupReport:
    hours: int  # closed hours newly rolled up
    rows: int  # raw rows added to the rollups, late ones included
    late_rows: int  # of which rows written after their hour had been rolled up
    through_hour: str | None  # every hour before this one is in the rollups


def rollup(conn: sqlite3.Connection, *, now: datetime | None = None, hours_per_step: int = HOURS_PER_STEP,
           dry_run: bool = False) -> RollupReport:
    """Bring the rollups up to date with every closed hour. Idempotent: what is rolled up is never added again.
    `conn` must not be inside a transaction. `dry_run`: what it would add, writing nothing."""
    now = now or datetime.now(UTC)
    closed = _hour(now - GRACE)  # hours before this one are closed
    if dry_run:
        return _pending(conn, closed)
    hours = rows = late = 0
    while (step := _step(conn, closed, hours_per_step, now)) is not None:
        hours, rows, late = hours + step[0], rows + step[1], late + step[2]
    return RollupReport(hours, rows, late, read_state(conn)[0])


def _start_of(conn: sqlite3.Connection, through: str | None) -> str | None:
    if through is not None:
        return through
    first = conn.execute("SELECT MIN(created_at) FROM attempts").fetchone()[0]
    return first[:13] if first else None


def _pending(conn: sqlite3.Connection, closed: str) -> RollupReport:
    through, max_id = read_state(conn)
    start = _start_of(conn, through)
    if start is None or start >= closed:
        return RollupReport(0, 0, 0, through)
    hours = int((_hour_start(closed) - _hour_start(start)).total_seconds() // 3600)
    rows = conn.execute("SELECT COUNT(*) FROM attempts WHERE created_at >= ? AND created_at < ?",
                        (start, closed)).fetchone()[0]
    late = conn.execute("SELECT COUNT(*) FROM attempts WHERE id > ? AND created_at < ?",
                        (max_id, through)).fetchone()[0] if through else 0
    return RollupReport(hours, rows + late, late, closed)


def _step(conn: sqlite3.Connection, closed: str, max_hours: int, now: datetime) -> tuple[int, int, int] | None:
    """Read up to `max_hours` closed hours and the late rows in one snapshot, then write them under the lock if
    nobody else did meanwhile. (hours, rows, late rows), or None when there is nothing to do."""
    groups: dict[Key, _Group] = {}
    conn.execute("BEGIN")  # one snapshot for every read below; readers never block the writer
    try:
        through, max_id = read_state(conn)
        newest = conn.execute("SELECT MAX(id) FROM attempts").fetchone()[0] or 0
        start = _start_of(conn, through)
        if start is None:
            return None
        end = min(closed, _hour(_hour_start(start) + timedelta(hours=max_hours)))
        late_due = through is not None and newest > max_id
        if start >= end and not late_due:
            return None
        rows = _aggregate(conn, "created_at >= ? AND created_at < ?", (start, end), groups) if start < end else 0
        # Rows with an id the last rollup had not seen, for hours it had already done: a spill file imported, a
        # writer held back by a lock. The id range keeps this to the rows written since.
        late = _aggregate(conn, "id > ? AND id <= ? AND created_at < ?", (max_id, newest, through),
                          groups) if late_due else 0
    finally:
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if read_state(conn) != (through, max_id):  # another process rolled up meanwhile: start over from its state
            conn.execute("ROLLBACK")
            return 0, 0, 0
        days: dict[Key, _Group] = {}
        for key, group in groups.items():
            days.setdefault((key[0][:10], *key[1:]), _Group()).absorb(group)  # type: ignore[arg-type]
        _upsert(conn, "attempts_hourly", "hour", groups)
        _upsert(conn, "attempts_daily", "day", days)
        _write_state(conn, max(end, start), max(newest, max_id), now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    hours = int((_hour_start(end) - _hour_start(start)).total_seconds() // 3600) if start < end else 0
    return hours, rows + late, late


def _upsert(conn: sqlite3.Connection, table: str, period: str, groups: dict[Key, _Group]) -> None:
    """Add the groups to the table: sums add up in SQL; histograms are merged here with the stored ones."""
    if not groups:
        return
    stored: dict[Key, tuple[str | None, str | None]] = {}
    periods = sorted({key[0] for key in groups})
    for i in range(0, len(periods), 500):
        chunk = periods[i:i + 500]
        for r in conn.execute(f"SELECT {period}, {_KEY}, latency_hist, first_token_hist FROM {table} "
                              f"WHERE {period} IN ({', '.join('?' for _ in chunk)})", chunk):
            stored[tuple(r[:6])] = (r[6], r[7])  # type: ignore[index]
    params = []
    for key, group in groups.items():
        latency, first_token = stored.get(key, (None, None))
        histogram.merge_into(group.latency, latency)
        histogram.merge_into(group.first_token, first_token)
        params.append((*key, *group.sums, histogram.encode(group.latency), histogram.encode(group.first_token),
                       group.first_at, group.last_at))
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _SUMS)
    conn.executemany(
        f"""INSERT INTO {table} ({period}, {_KEY}, {', '.join(_SUMS)}, latency_hist, first_token_hist, first_at,
                                 last_at)
            VALUES ({', '.join('?' for _ in range(6 + len(_SUMS) + 4))})
            ON CONFLICT ({period}, {_KEY}) DO UPDATE SET {added},
                latency_hist = excluded.latency_hist, first_token_hist = excluded.first_token_hist,
                first_at = CASE WHEN excluded.first_at < {table}.first_at THEN excluded.first_at
                                ELSE {table}.first_at END,
                last_at = CASE WHEN excluded.last_at > {table}.last_at THEN excluded.last_at
                               ELSE {table}.last_at END""",
        params)


# -- prune -----------------------------------------------------------------------------------------------------

AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}


@dataclass(frozen=True, slots=True)
class PruneReport:
    path: str
    dry_run: bool
    retention_days: int
    cutoff: str  # raw rows created before this are removed (the start of the hour `retention_days` ago)
    rows_removed: int  # or, dry run, that would be
    removed_from: str | None  # created_at of the oldest and newest row removed
    removed_to: str | None
    oldest_kept: str | None  # the oldest raw row left
    hours_rolled_up: int  # closed hours added to the rollups first
    rolled_up_through: str | None
    batches: int
    longest_batch_ms: float  # the longest the write lock was held for one batch: what a writer may have waited
    size_before: int  # the database's size in bytes (its pages)
    size_after: int
    freed: int  # bytes of pages the removed rows occupied (dry run: an estimate from the average row)
    returned: int  # of which handed back to the disk (auto_vacuum = incremental); the rest is reused by new rows
    auto_vacuum: str  # incremental, or none (full: every delete shrinks the file at once)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _sizes(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(page size, pages, free pages)."""
    return tuple(conn.execute(f"PRAGMA {name}").fetchone()[0]  # type: ignore[return-value]
                 for name in ("page_size", "page_count", "freelist_count"))


def cutoff_for(retention_days: int, now: datetime) -> str:
    """The start of the hour `retention_days` ago: raw rows from whole hours only, so a range starting after it
    finds every raw row it needs."""
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise ValueError(f"retention_days must be a whole number of days from 1 to {MAX_RETENTION_DAYS} (got "
                         f"{retention_days}); to keep raw rows for ever, do not prune")
    return _iso(_hour_start(_hour(now - timedelta(days=retention_days))))


def prune(path: Path | str, retention_days: int, *, dry_run: bool = False, now: datetime | None = None,
          batch_rows: int = BATCH_ROWS, pause: float = PAUSE_SECONDS,
          sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.perf_counter,
          vacuum_pages: int = VACUUM_PAGES) -> PruneReport:
    """Roll up every closed hour, then delete the raw rows from before the cutoff that the rollups hold, in
    batches of `batch_rows` with `pause` between them, then hand the freed pages back to the disk when the file
    allows it (auto_vacuum = incremental). Raises ValueError for a bad `retention_days`, StoreProblem for a file
    that cannot be opened."""
    from app.store.database import open_database

    now = now or datetime.now(UTC)
    cutoff = cutoff_for(retention_days, now)
    db = open_database(path)
    conn = db.conn
    try:
        page, pages, free = _sizes(conn)
        mode = AUTO_VACUUM.get(conn.execute("PRAGMA auto_vacuum").fetchone()[0], "none")
        rolled = rollup(conn, now=now, dry_run=dry_run)
        if dry_run:
            count, first, last = conn.execute("SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM attempts "
                                              "WHERE created_at < ?", (cutoff,)).fetchone()
            total = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
            freed = int((pages - free) * page * count / total) if total else 0
            kept = conn.execute("SELECT MIN(created_at) FROM attempts WHERE created_at >= ?", (cutoff,)).fetchone()[0]
            returned = freed if mode == "incremental" else 0
            return PruneReport(str(path), True, retention_days, cutoff, count, first, last, kept, rolled.hours,
                               rolled.through_hour, 0, 0.0, pages * page, pages * page - returned, freed, returned,
                               mode)
        free_before = _sizes(conn)[2]  # after the rollup, which may have taken free pages
        removed, first, last, batches, longest = _delete(conn, cutoff, batch_rows, pause, sleep, clock)
        free_after = _sizes(conn)[2]
        if mode == "incremental":
            while _sizes(conn)[2]:
                conn.executescript(f"PRAGMA incremental_vacuum({vacuum_pages});")  # steps the pragma to its end
                sleep(pause)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")  # never waits: the file shrinks now or at a later checkpoint
        oldest = conn.execute("SELECT MIN(created_at) FROM attempts").fetchone()[0]
        left = _sizes(conn)[2]
        return PruneReport(str(path), False, retention_days, cutoff, removed, first, last, oldest, rolled.hours,
                           rolled.through_hour, batches, longest * 1000, pages * page, _sizes(conn)[1] * page,
                           max(free_after - free_before, 0) * page, max(free_after - left, 0) * page, mode)
    finally:
        conn.close()


def _delete(conn: sqlite3.Connection, cutoff: str, batch_rows: int, pause: float, sleep: Callable[[float], None],
            clock: Callable[[], float]) -> tuple[int, str | None, str | None, int, float]:
    """(rows, first and last created_at removed, batches, longest batch in seconds)."""
    through, max_id = read_state(conn)
    if through is None:
        return 0, None, None, 0, 0.0
    limit = min(cutoff, through)  # only rows the rollups hold: before the rolled-up hours, with an id they saw
    # The newest row stays whatever its age: were the table emptied, SQLite would hand out ids from 1 again, and a
    # row written late would then hide below max_id.
    newest = conn.execute("SELECT MAX(id) FROM attempts").fetchone()[0] or 0
    with conn:  # said before the first batch: from then on, readers take those hours from the rollups
        conn.execute("UPDATE rollup_state SET pruned_before = ? WHERE name = ? AND "
                     "(pruned_before IS NULL OR pruned_before < ?)", (limit[:13], STATE, limit[:13]))
    removed = batches = 0
    first = last = None
    longest = 0.0
    while True:
        started = clock()
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute("SELECT id, created_at FROM attempts WHERE created_at < ? AND id <= ? AND id < ? "
                                "ORDER BY created_at LIMIT ?", (limit, max_id, newest, batch_rows)).fetchall()
            conn.executemany("DELETE FROM attempts WHERE id = ?", [(r[0],) for r in rows])
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        if not rows:
            return removed, first, last, batches, longest
        longest = max(longest, clock() - started)
        removed += len(rows)
        batches += 1
        first = first or rows[0][1]
        last = rows[-1][1]
        sleep(pause)


def vacuum(path: Path | str) -> tuple[int, int]:
    """Rewrite the file once with auto_vacuum = incremental (for a file created before it was set), so that later
    prunes give space back to the disk. Holds the write lock throughout: the attempt log's rows wait in memory
    meanwhile (none are lost). Returns the file's size in bytes before and after."""
    from app.store.database import open_database

    db = open_database(path)
    conn = db.conn
    try:
        before = os.path.getsize(path)
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.executescript("VACUUM;")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, os.path.getsize(path)
    finally:
        conn.close()

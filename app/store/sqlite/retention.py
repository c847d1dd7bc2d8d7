"""Retention of a SQLite file: the raw rows older than the retention are deleted, once the rollups hold them, and
the freed pages are handed back to the disk (app/store/retention.py says the whole of it).

`prune` rolls up first, then deletes only rows the rollups hold, in batches sized to hold SQLite's write lock about
BATCH_SECONDS each, then vacuums in steps of VACUUM_PAGES, with a pause after each write: the attempt log's writer
(another thread or process) waits for at most one step, and the dashboard never waits (readers do not take the
lock). `vacuum` converts a file made before auto_vacuum was set. The page-level PRAGMAs (sizes,
incremental_vacuum, checkpoints) are SQLite's own; the statements on rows are plain SQL.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.store.reports import PruneReport, cutoff_for
from app.store.rollup import STATE, read_state, run_rollup
from app.store.sqlite.database import open_file
from app.store.sqlite.dialect import SQLITE

BATCH_ROWS = 1_000  # raw rows deleted by the first transaction; later ones are sized to take BATCH_SECONDS
BATCH_SECONDS = 0.05  # how long one batch may hold the write lock: what the attempt log's writer may wait
VACUUM_PAGES = 256  # free pages handed back to the disk per transaction: short ones, so writers never wait long
PAUSE_SECONDS = 0.02  # between two writes, so that the attempt log's writer gets the lock in between

AUTO_VACUUM = {0: "none", 1: "full", 2: "incremental"}


def _sizes(conn: sqlite3.Connection) -> tuple[int, int, int]:
    """(page size, pages, free pages)."""
    return tuple(conn.execute(f"PRAGMA {name}").fetchone()[0] for name in ("page_size", "page_count", "freelist_count"))


class _Pace:
    """Times each write, checkpoints after it and pauses: the write lock is held one short step at a time."""

    def __init__(
        self, conn: sqlite3.Connection, pause: float, sleep: Callable[[float], None], clock: Callable[[], float]
    ) -> None:
        self.conn, self.pause, self.sleep, self.clock = conn, pause, sleep, clock
        self.longest = 0.0

    def write(self, step: Callable[[], Any]) -> tuple[Any, float]:
        started = self.clock()
        result = step()
        took = self.clock() - started
        self.longest = max(self.longest, took)
        # Copying the WAL's pages into the file here, where nobody waits for it (a checkpoint never blocks a writer),
        # leaves none for the attempt log's next commit to do.
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        self.sleep(self.pause)
        return result, took


def prune(
    path: Path,
    retention_days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
    batch_seconds: float | None = BATCH_SECONDS,
    pause: float = PAUSE_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    vacuum_pages: int = VACUUM_PAGES,
) -> PruneReport:
    """Roll up every closed hour, then delete the raw rows from before the cutoff that the rollups hold, in
    batches (the first of `batch_rows`, then halved or doubled to take about `batch_seconds`; None keeps
    `batch_rows`) with `pause` between them, then hand the freed pages back to the disk when the file allows it
    (auto_vacuum = incremental). Raises ValueError for a bad `retention_days`, StoreProblem for a file that cannot
    be opened."""
    now = now or datetime.now(UTC)
    cutoff = cutoff_for(retention_days, now)
    conn = open_file(path).conn
    try:
        page, pages, free = _sizes(conn)
        mode = AUTO_VACUUM.get(conn.execute("PRAGMA auto_vacuum").fetchone()[0], "none")
        rolled = run_rollup(conn, SQLITE.rollup_step, now=now, dry_run=dry_run)
        if dry_run:
            count, first, last = conn.execute(
                "SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM attempts WHERE created_at < ?", (cutoff,)
            ).fetchone()
            total = conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0]
            freed = int((pages - free) * page * count / total) if total else 0
            kept = conn.execute("SELECT MIN(created_at) FROM attempts WHERE created_at >= ?", (cutoff,)).fetchone()[0]
            returned = freed if mode == "incremental" else 0
            return PruneReport(
                str(path),
                True,
                retention_days,
                cutoff,
                count,
                first,
                last,
                kept,
                rolled.hours,
                rolled.through_hour,
                0,
                0.0,
                pages * page,
                pages * page - returned,
                freed,
                returned,
                mode,
            )
        pace = _Pace(conn, pause, sleep, clock)
        free_before = _sizes(conn)[2]  # after the rollup, which may have taken free pages
        removed, first, last, batches = _delete(conn, cutoff, pace, batch_rows, batch_seconds)
        free_after = _sizes(conn)[2]
        if mode == "incremental":
            while conn.execute("PRAGMA freelist_count").fetchone()[0]:
                pace.write(lambda: conn.executescript(f"PRAGMA incremental_vacuum({vacuum_pages});"))
        oldest = conn.execute("SELECT MIN(created_at) FROM attempts").fetchone()[0]
        _, pages_after, left = _sizes(conn)
        return PruneReport(
            str(path),
            False,
            retention_days,
            cutoff,
            removed,
            first,
            last,
            oldest,
            rolled.hours,
            rolled.through_hour,
            batches,
            pace.longest * 1000,
            pages * page,
            pages_after * page,
            max(free_after - free_before, 0) * page,
            max(free_after - left, 0) * page,
            mode,
        )
    finally:
        conn.close()


# With the newest rows removed, SQLite hands their ids out again (a table without AUTOINCREMENT gives a new row the
# highest id left plus one, 1 when it is empty), below the rollups' watermark, where a row written late for a
# rolled-up hour would never be counted. The watermark comes down with them, in the same transaction: every row
# left is at or below it and was rolled up, and every row written after is above it.
_LOWER_MAX_ID = """UPDATE rollup_state SET max_id = (SELECT COALESCE(MAX(id), 0) FROM attempts)
                   WHERE name = ? AND max_id > (SELECT COALESCE(MAX(id), 0) FROM attempts)"""


def _delete(
    conn: sqlite3.Connection, cutoff: str, pace: _Pace, size: int, batch_seconds: float | None
) -> tuple[int, str | None, str | None, int]:
    """(rows, first and last created_at removed, batches)."""
    through, max_id = read_state(conn)
    if through is None:
        return 0, None, None, 0
    limit = min(cutoff, through)  # only rows the rollups hold: before the rolled-up hours, with an id they saw
    with conn:  # said before the first batch: from then on, readers take those hours from the rollups
        conn.execute(
            "UPDATE rollup_state SET pruned_before = ? WHERE name = ? AND (pruned_before IS NULL OR pruned_before < ?)",
            (limit[:13], STATE, limit[:13]),
        )

    def batch() -> list[tuple[int, str]]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            rows = conn.execute(
                "SELECT id, created_at FROM attempts WHERE created_at < ? AND id <= ? ORDER BY created_at LIMIT ?",
                (limit, max_id, size),
            ).fetchall()
            conn.executemany("DELETE FROM attempts WHERE id = ?", [(r[0],) for r in rows])
            conn.execute(_LOWER_MAX_ID, (STATE,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return rows

    removed = batches = 0
    first = last = None
    while True:
        rows, took = pace.write(batch)
        if not rows:
            return removed, first, last, batches
        removed += len(rows)
        batches += 1
        first = first or rows[0][1]
        last = rows[-1][1]
        if batch_seconds is not None:  # a machine's speed and its load decide how many rows fit the time
            if took > batch_seconds:
                size = max(100, size // 2)
            elif took < batch_seconds / 2:
                size = min(20_000, size * 2)


def vacuum(path: Path) -> tuple[int, int]:
    """Rewrite the file once with auto_vacuum = incremental (for a file created before it was set), so that later
    prunes give space back to the disk. Holds the write lock throughout: the attempt log's rows wait in memory
    meanwhile (none are lost). Returns the file's size in bytes before and after."""
    conn = open_file(path).conn
    try:
        before = os.path.getsize(path)
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        conn.executescript("VACUUM;")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return before, os.path.getsize(path)
    finally:
        conn.close()

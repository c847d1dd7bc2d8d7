"""A rollup step on SQLite (app/store/rollup.py drives it): one writer at a time hands row ids out in commit order,
so "every row up to max_id" is settled the moment it is read, and a step needs no lock but SQLite's own."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import datetime

from app.store.rollup import Group, Key, aggregate, hour_start, read_state, step_span, write_step


def step(
    conn: sqlite3.Connection, closed: str, max_hours: int, now: datetime, *, whole_ms: Callable[[str], str]
) -> tuple[int, int, int] | None:
    """Read up to `max_hours` closed hours and the late rows in one snapshot, then write them under the lock if
    nobody else did meanwhile. (hours, rows, late rows), or None when there is nothing to do."""
    groups: dict[Key, Group] = {}
    conn.execute("BEGIN")  # one snapshot for every read below; readers never block the writer
    try:
        through, max_id = read_state(conn)
        newest = conn.execute("SELECT MAX(id) FROM attempts").fetchone()[0] or 0
        span = step_span(conn, through, max_id, newest, closed, max_hours)
        if span is None:
            return None
        start, end, late_due = span
        rows = (
            aggregate(conn, "created_at >= ? AND created_at < ?", (start, end), groups, whole_ms=whole_ms)
            if start < end
            else 0
        )
        # Rows with an id the last rollup had not seen, for hours it had already done: a spill file imported, a
        # writer held back by a lock. The id range keeps this to the rows written since.
        late = (
            aggregate(
                conn, "id > ? AND id <= ? AND created_at < ?", (max_id, newest, through), groups, whole_ms=whole_ms
            )
            if late_due
            else 0
        )
    finally:
        conn.execute("COMMIT")
    conn.execute("BEGIN IMMEDIATE")
    try:
        if read_state(conn) != (through, max_id):  # another process rolled up meanwhile: start over from its state
            conn.execute("ROLLBACK")
            return 0, 0, 0
        write_step(conn, groups, max(end, start), max(newest, max_id), now)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    hours = int((hour_start(end) - hour_start(start)).total_seconds() // 3600) if start < end else 0
    return hours, rows + late, late

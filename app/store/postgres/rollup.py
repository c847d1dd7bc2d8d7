"""The rollups (app/store/rollup.py) on PostgreSQL: the same driver, tables, groups, histograms and upserts; what
differs is how a step knows which rows it may count.

SQLite hands out row ids in commit order, so "every row up to max_id" is settled the moment it is read.
PostgreSQL hands them out at insert: a batch with lower ids may commit after one with higher ids. So a step first
takes IDS_SETTLED_LOCK exclusively, for an instant (writers hold it shared for each batch): once it has it, every
id up to the sequence's last value is committed or never will be, and that value is the step's `newest`. It then
reads, in one snapshot, the closed hours' rows and the late rows (ids the last step had not seen, for hours it had
done) up to `newest`, and writes under a transaction-level advisory lock of its own after re-checking the state,
so two hosts rolling up at once never count a row twice.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from app.store.postgres.connection import PgConnection
from app.store.postgres.migrations import IDS_SETTLED_LOCK
from app.store.rollup import Group, Key, aggregate, hour_start, read_state, step_span, write_step

_WRITE_LOCK = 0x77726974  # "writ": one rollup writer at a time, across hosts


def settled_id(conn: PgConnection) -> int:
    """The highest attempt id below which every row is committed (or will never be)."""
    with conn:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (IDS_SETTLED_LOCK,))
        row = conn.execute("SELECT last_value, is_called FROM attempts_id_seq").fetchone()
    return int(row[0]) if row is not None and row[1] else 0


def step(
    conn: PgConnection, closed: str, max_hours: int, now: datetime, *, whole_ms: Callable[[str], str]
) -> tuple[int, int, int] | None:
    """`rollup`'s step on PostgreSQL: the rows up to the settled id, read in one repeatable-read snapshot, then
    written under an advisory lock shared by every host."""
    groups: dict[Key, Group] = {}
    newest = settled_id(conn)
    with conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot for every read below
        through, max_id = read_state(conn)
        span = step_span(conn, through, max_id, newest, closed, max_hours)
        if span is None:
            return None
        start, end, late_due = span
        rows = (
            aggregate(
                conn, "created_at >= ? AND created_at < ? AND id <= ?", (start, end, newest), groups, whole_ms=whole_ms
            )
            if start < end
            else 0
        )
        late = (
            aggregate(
                conn, "id > ? AND id <= ? AND created_at < ?", (max_id, newest, through), groups, whole_ms=whole_ms
            )
            if late_due
            else 0
        )
    with conn:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))
        if tuple(read_state(conn)) != (through, max_id):
            return 0, 0, 0  # another host rolled up meanwhile: start over from its state
        write_step(conn, groups, max(end, start), max(newest, max_id), now)
    hours = int((hour_start(end) - hour_start(start)).total_seconds() // 3600) if start < end else 0
    return hours, rows + late, late

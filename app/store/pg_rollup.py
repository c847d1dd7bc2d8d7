"""The rollups (app/store/rollup.py) on PostgreSQL: the same tables, groups, histograms and upserts; what differs
is how a step knows which rows it may count.

SQLite hands out row ids in commit order, so "every row up to max_id" is settled the moment it is read.
PostgreSQL hands them out at insert: a batch with lower ids may commit after one with higher ids. So a step first
takes IDS_SETTLED_LOCK exclusively, for an instant (writers hold it shared for each batch): once it has it, every
id up to the sequence's last value is committed or never will be, and that value is the step's `newest`. It then
reads, in one snapshot, the closed hours' rows and the late rows (ids the last step had not seen, for hours it had
done) up to `newest`, and writes under a transaction-level advisory lock of its own after re-checking the state,
so two hosts rolling up at once never count a row twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.store.pg_connection import PgConnection
from app.store.pg_migrations import IDS_SETTLED_LOCK
from app.store.rollup import (
    GRACE,
    HOURS_PER_STEP,
    Key,
    RollupReport,
    _aggregate,
    _Group,
    _start_of,
    hour_key,
    hour_start,
    read_state,
    write_step,
)

_WRITE_LOCK = 0x77726974  # "writ": one rollup writer at a time, across hosts


def rollup_pg(conn: PgConnection, *, now: datetime | None = None, hours_per_step: int = HOURS_PER_STEP,
              dry_run: bool = False) -> RollupReport:
    """`rollup` for PostgreSQL (see the module docstring). `conn` in autocommit, outside a transaction."""
    now = now or datetime.now(UTC)
    closed = hour_key(now - GRACE)
    if dry_run:
        through, max_id = read_state(conn)  # type: ignore[arg-type]
        start = _start_of(conn, through)  # type: ignore[arg-type]
        if start is None or start >= closed:
            return RollupReport(0, 0, 0, through)
        rows = conn.execute("SELECT COUNT(*) FROM attempts WHERE created_at >= ? AND created_at < ?",
                            (start, closed)).fetchone()[0]  # type: ignore[index]
        late = conn.execute("SELECT COUNT(*) FROM attempts WHERE id > ? AND created_at < ?",
                            (max_id, through)).fetchone()[0] if through else 0  # type: ignore[index]
        hours = int((hour_start(closed) - hour_start(start)).total_seconds() // 3600)
        return RollupReport(hours, rows + late, late, closed)
    hours = rows = late = 0
    while (step := _step(conn, closed, hours_per_step, now)) is not None:
        hours, rows, late = hours + step[0], rows + step[1], late + step[2]
        if step[0] == 0:
            # Only late rows (or another process's step) this time: more may keep coming (a host whose clock runs
            # behind writes into closed hours all the time), so they wait for the next run instead of holding
            # this one for ever.
            break
    return RollupReport(hours, rows, late, read_state(conn)[0])  # type: ignore[arg-type]


def settled_id(conn: PgConnection) -> int:
    """The highest attempt id below which every row is committed (or will never be)."""
    with conn:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (IDS_SETTLED_LOCK,))
        row = conn.execute("SELECT last_value, is_called FROM attempts_id_seq").fetchone()
    return int(row[0]) if row is not None and row[1] else 0  # type: ignore[index]


def _step(conn: PgConnection, closed: str, max_hours: int, now: datetime) -> tuple[int, int, int] | None:
    groups: dict[Key, _Group] = {}
    newest = settled_id(conn)
    with conn:
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot for every read below
        through, max_id = read_state(conn)  # type: ignore[arg-type]
        start = _start_of(conn, through)  # type: ignore[arg-type]
        if start is None:
            return None
        end = min(closed, hour_key(hour_start(start) + timedelta(hours=max_hours)))
        late_due = through is not None and newest > max_id
        if start >= end and not late_due:
            return None
        rows = _aggregate(conn, "created_at >= ? AND created_at < ? AND id <= ?", (start, end, newest),  # type: ignore[arg-type]
                          groups) if start < end else 0
        late = _aggregate(conn, "id > ? AND id <= ? AND created_at < ?", (max_id, newest, through),  # type: ignore[arg-type]
                          groups) if late_due else 0
    with conn:
        conn.execute("SELECT pg_advisory_xact_lock(?)", (_WRITE_LOCK,))
        if tuple(read_state(conn)) != (through, max_id):  # type: ignore[arg-type]
            return 0, 0, 0  # another host rolled up meanwhile: start over from its state
        write_step(conn, groups, max(end, start), max(newest, max_id), now)  # type: ignore[arg-type]
    hours = int((hour_start(end) - hour_start(start)).total_seconds() // 3600) if start < end else 0
    return hours, rows + late, late

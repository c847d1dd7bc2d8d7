"""Pruning on PostgreSQL: roll up first, then drop whole days.

Each UTC day of `attempts` is a partition (app/store/postgres/migrations.py): a day older than the cutoff whose rows
the rollups hold is dropped, which gives its space back to the disk at once, with no vacuum and no delete. The
drop needs the table's exclusive lock for the milliseconds a catalog change takes; it waits for it at most
LOCK_TIMEOUT (a dashboard query in progress), so writers queued behind it wait no longer than that, and a day not
dropped is tried again a moment later, then at the next prune. (A detach CONCURRENTLY would need no such lock,
but PostgreSQL refuses it while a default partition exists.) Rows in the default partition (imports of old rows)
and the rows of the day holding the cutoff that are older than it are deleted in small batches: no raw row outlives
ATTEMPTS_RETENTION_DAYS (with LOG_CONTENT=true, rows hold prompts), and that day's partition is dropped whole once
the whole day is past the cutoff.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from app.store.postgres.connection import PgConnection
from app.store.postgres.dialect import POSTGRES
from app.store.postgres.migrations import daily_partitions
from app.store.reports import PruneReport, cutoff_for
from app.store.rollup import STATE, read_state, run_rollup

logger = logging.getLogger("taskrouter.store")

BATCH_ROWS = 5_000  # rows of the default partition deleted per transaction
LOCK_TIMEOUT = "200ms"  # how long a drop waits for its brief lock; writers queued behind it wait no longer


def _size(conn: PgConnection) -> int:
    row = conn.execute(
        "SELECT COALESCE(SUM(pg_total_relation_size(i.inhrelid)), 0) FROM pg_inherits i "
        "WHERE i.inhparent = 'attempts'::regclass"
    ).fetchone()
    return int(row[0]) if row else 0


def prune(
    open_store: Callable[[], PgConnection],
    label: str,
    retention_days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    batch_rows: int = BATCH_ROWS,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
) -> PruneReport:
    """`prune` for PostgreSQL (see the module docstring), on a connection `open_store` opens migrated. `label`: how
    the report names the store. Raises ValueError for a bad `retention_days`, StoreProblem for a server that
    cannot be used."""
    now = now or datetime.now(UTC)
    cutoff = cutoff_for(retention_days, now)
    conn = open_store()
    try:
        size_before = _size(conn)
        rolled = run_rollup(conn, POSTGRES.rollup_step, now=now, dry_run=dry_run)
        through, max_id = read_state(conn)
        # Rows before the cutoff, and only what the rollups hold: hours before `through`, ids up to max_id.
        limit = min(cutoff, (rolled.through_hour if dry_run else through) or "")  # a dry run: as if rolled up
        partitions = daily_partitions(conn)
        doomed = [(name, day) for name, day in partitions if (day + timedelta(days=1)).isoformat() <= limit]
        # The day the limit falls in: its older rows go row by row (the default partition's too, below).
        split = [name for name, day in partitions if day.isoformat() < limit < (day + timedelta(days=1)).isoformat()]
        if dry_run:
            counted = conn.execute(
                "SELECT COUNT(*), MIN(created_at), MAX(created_at) FROM attempts WHERE created_at < ?", (limit,)
            ).fetchone()
            kept = conn.execute("SELECT MIN(created_at) FROM attempts WHERE created_at >= ?", (limit,)).fetchone()
            freed = sum(_relation_size(conn, name) for name, _ in doomed)
            return PruneReport(
                label,
                True,
                retention_days,
                cutoff,
                int(counted[0]),
                counted[1],
                counted[2],
                kept[0],
                rolled.hours,
                rolled.through_hour,
                0,
                0.0,
                size_before,
                size_before - freed,
                freed,
                freed,
                "partitions",
            )
        if limit:
            with conn:  # said before the first drop: from then on, readers take those hours from the rollups
                conn.execute(
                    "UPDATE rollup_state SET pruned_before = ? WHERE name = ? AND "
                    "(pruned_before IS NULL OR pruned_before < ?)",
                    (limit[:13], STATE, limit[:13]),
                )
        removed, first, last, batches, longest = 0, None, None, 0, 0.0
        for name, _day in doomed:
            started = clock()
            count, low, high, top = conn.execute(
                f"SELECT COUNT(*), MIN(created_at), MAX(created_at), MAX(id) FROM {name}"
            ).fetchone()
            if top is not None and top > max_id:  # a row the rollups have not seen: keep the day for now
                logger.warning("prune: %s holds rows newer than the rollups; kept until the next prune", name)
                continue
            if not _drop(conn, name, sleep):
                continue
            longest = max(longest, clock() - started)
            removed, batches = removed + int(count), batches + 1
            first = first or low
            last = high or last
        for table in ["attempts_default", *split]:
            count, low, high, steps, took = _delete_rows(conn, table, limit, max_id, batch_rows, sleep, clock)
            removed, batches, longest = removed + count, batches + steps, max(longest, took)
            first = min(x for x in (first, low) if x) if (first or low) else None
            last = max(x for x in (last, high) if x) if (last or high) else None
        oldest = conn.execute("SELECT MIN(created_at) FROM attempts").fetchone()[0]
        size_after = _size(conn)
        return PruneReport(
            label,
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
            longest * 1000,
            size_before,
            size_after,
            max(size_before - size_after, 0),
            max(size_before - size_after, 0),
            "partitions",
        )
    finally:
        conn.close()


def _drop(conn: PgConnection, name: str, sleep: Callable[[float], None], tries: int = 5) -> bool:
    import psycopg

    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
    try:
        for _ in range(tries):
            try:
                conn.execute(f"DROP TABLE {name}")
                return True
            except psycopg.errors.LockNotAvailable:
                sleep(0.2)  # a long dashboard query holds the table: let the writers queued behind us through
        logger.warning("prune: could not drop %s now (the table stayed busy); tried again at the next prune", name)
        return False
    finally:
        conn.execute("RESET lock_timeout")


def _relation_size(conn: PgConnection, name: str) -> int:
    row = conn.execute("SELECT pg_total_relation_size(?::regclass)", (name,)).fetchone()
    return int(row[0]) if row else 0


def _delete_rows(
    conn: PgConnection,
    table: str,
    limit: str,
    max_id: int,
    batch_rows: int,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> tuple[int, str | None, str | None, int, float]:
    """The rows of one partition older than `limit` that the rollups hold, in batches: (rows, first and last
    created_at, batches, longest s)."""
    removed = batches = 0
    first = last = None
    longest = 0.0
    while True:
        started = clock()
        rows = conn.execute(
            f"DELETE FROM {table} WHERE ctid IN (SELECT ctid FROM {table} WHERE created_at < ? "
            "AND id <= ? LIMIT ?) RETURNING created_at",
            (limit, max_id, batch_rows),
        ).fetchall()
        if not rows:
            return removed, first, last, batches, longest
        longest = max(longest, clock() - started)
        stamps = sorted(r[0] for r in rows)
        first = min(first or stamps[0], stamps[0])
        last = max(last or stamps[-1], stamps[-1])
        removed, batches = removed + len(rows), batches + 1
        sleep(0.01)

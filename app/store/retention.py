"""Retention of the attempt log: the raw rows older than ATTEMPTS_RETENTION_DAYS are removed, once the rollups hold
them (app/store/rollup.py), and the space goes back to the disk.

`prune(where, days)` and `vacuum(where)` are the store's backend object (app/store/backend.py) behind a function:
a SQLite file deletes rows in short batches and vacuums in steps (app/store/sqlite/retention.py); PostgreSQL
drops whole days (app/store/postgres/retention.py). `rollup(conn)` brings the rollups up to date on an open
connection of either.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.store.backend import backend_for
from app.store.dialect import dialect_of
from app.store.reports import MAX_RETENTION_DAYS, PruneReport, RollupReport, cutoff_for
from app.store.rollup import GRACE, HOURS_PER_STEP, read_state, run_rollup
from app.store.sqlite.retention import BATCH_SECONDS
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.connection import Connection

__all__ = [
    "BATCH_SECONDS",
    "GRACE",
    "MAX_RETENTION_DAYS",
    "PruneReport",
    "RollupReport",
    "cutoff_for",
    "prune",
    "read_state",
    "rollup",
    "vacuum",
]


def rollup(
    conn: Connection, *, now: datetime | None = None, hours_per_step: int = HOURS_PER_STEP, dry_run: bool = False
) -> RollupReport:
    """Bring the rollups up to date with every closed hour, on an open connection of either backend (its dialect's
    step). Idempotent. `conn` must not be inside a transaction. `dry_run`: what it would add, writing nothing."""
    return run_rollup(conn, dialect_of(conn).rollup_step, now=now, hours_per_step=hours_per_step, dry_run=dry_run)


def prune(
    where: Target | str | Path,
    retention_days: int,
    *,
    dry_run: bool = False,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.perf_counter,
    **tuning: Any,
) -> PruneReport:
    """Roll up every closed hour, then remove the raw rows from before the cutoff that the rollups hold, and give
    the space back (StoreBackend.prune; `tuning`: a backend's batch sizes and pauses). Raises ValueError for a bad
    `retention_days`, StoreProblem for a store that cannot be opened."""
    return backend_for(where).prune(retention_days, dry_run=dry_run, now=now, sleep=sleep, clock=clock, **tuning)


def vacuum(where: Target | str | Path) -> tuple[int, int]:
    """Rewrite a SQLite file once so that later prunes shrink it (StoreBackend.vacuum); its size before and after."""
    return backend_for(where).vacuum()

"""`SqliteStore`: the store in a SQLite file, shared by every process on this host that names it."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.store import response_cache
from app.store.problem import StoreProblem
from app.store.rollup import run_rollup
from app.store.sqlite import database, reads, retention
from app.store.sqlite.dialect import SQLITE

if TYPE_CHECKING:
    from sqlite_utils import Database

    from app.store.reports import PruneReport, RollupReport
    from app.store.rows import CacheEntry
    from app.store.sqlite.database import SqliteDatabase


@dataclass(frozen=True, slots=True)
class SqliteStore:
    """See app/store/backend.py's StoreBackend for what each member promises."""

    path: Path

    # A SQLite file keeps no shared ledger and pushes no changes: each host reads spend, marks and overrides.
    spend_ledger = None
    why_no_vacuum = None
    write_errors = (StoreProblem, sqlite3.Error, OSError)
    upkeep_errors = ()  # sqlite3's errors are reported as they are

    @property
    def target(self) -> Path:
        return self.path

    @property
    def label(self) -> str:
        return str(self.path)

    @property
    def locator(self) -> str:
        return str(self.path)

    @property
    def key(self) -> Path:
        return Path(os.path.abspath(self.path))

    @property
    def spill_base(self) -> Path:
        return self.path.absolute()

    def absolute(self) -> SqliteStore:
        return SqliteStore(self.path.absolute())

    def resolved(self) -> SqliteStore:
        return SqliteStore(self.path.expanduser().resolve())

    def load_driver(self) -> None:
        """sqlite3 is loaded with the package; sqlite-utils only when a migration is due (open_file_for_rows)."""

    def missing(self) -> bool:
        return not self.path.is_file()

    def diagnose(self, *, thorough: bool = True) -> str | None:
        return database.diagnose(self.path, thorough=thorough)

    def glance(self) -> str | None:
        return database.diagnose(self.path, thorough=False)

    def problem_of(self, exc: BaseException) -> StoreProblem:
        return database.as_problem(self.path, exc)

    def open(self, *, quick_check: bool = False) -> Database:
        return database.open_file(self.path, quick_check=quick_check)

    def open_for_rows(self) -> SqliteDatabase:
        return database.open_file_for_rows(self.path)

    def read(self, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
        return reads.read(self.path, queries)

    def open_reader(self, *, application: str) -> sqlite3.Connection | None:
        return reads.open_reader(self.path)

    def state_feed(self, every: float) -> None:
        return None

    def spent_on(self, day: str, after_id: int = 0) -> tuple[float, int]:
        return reads.spent_on(self.path, day, after_id)

    def rollup(self, *, now: datetime | None = None, dry_run: bool = False) -> RollupReport:
        conn = self.open().conn
        try:
            return run_rollup(conn, SQLITE.rollup_step, now=now, dry_run=dry_run)
        finally:
            conn.close()

    def prune(
        self,
        retention_days: int,
        *,
        dry_run: bool = False,
        now: datetime | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.perf_counter,
        **tuning: Any,
    ) -> PruneReport:
        return retention.prune(self.path, retention_days, dry_run=dry_run, now=now, sleep=sleep, clock=clock, **tuning)

    def vacuum(self) -> tuple[int, int]:
        return retention.vacuum(self.path)

    def cache_read(self, key: str, now: float) -> CacheEntry | None:
        rows = reads.read(self.path, [response_cache.read_query(key, now)])[0]
        return response_cache.entry_of(rows[0]) if rows else None

    def cache_prune(self, max_entries: int, now: float) -> int:
        conn = self.open().conn
        try:
            return response_cache.prune(conn, max_entries, now)
        finally:
            conn.close()

"""`PostgresStore`: the store in a PostgreSQL database, shared by every host whose routers name it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from app.store import response_cache
from app.store.postgres.connection import PgConnection, as_problem, connect
from app.store.postgres.database import PgDatabase, diagnose, open_server
from app.store.postgres.dialect import POSTGRES
from app.store.postgres.reader import queries_on_server
from app.store.postgres.retention import prune
from app.store.postgres.spend import SpendLedger
from app.store.postgres.watch import StateWatch, acquire_watch
from app.store.problem import StoreProblem
from app.store.reports import PruneReport, RollupReport
from app.store.rollup import run_rollup
from app.store.rows import CacheEntry
from app.store.target import PostgresTarget, require_psycopg


@dataclass(frozen=True, slots=True)
class PostgresStore:
    """See app/store/backend.py's StoreBackend for what each member promises."""

    target: PostgresTarget

    why_no_vacuum = "PostgreSQL, where a prune drops whole days and their space goes back to the disk at once"
    upkeep_errors = (Exception,)  # psycopg's errors, in the words the attempt log's writer uses

    @property
    def label(self) -> str:
        return self.target.label

    @property
    def locator(self) -> str:
        return self.target.url

    @property
    def key(self) -> str:
        return self.target.url

    @property
    def spill_base(self) -> Path:
        return self.target.spill_to.absolute()

    @property
    def spend_ledger(self) -> SpendLedger:
        return SpendLedger(self.target)

    @property
    def write_errors(self) -> tuple[type[BaseException], ...]:
        import psycopg

        # Everything but a row the server can never take (DataError, IntegrityError) may pass: a server that
        # restarts, fails over to a read-only replica, or lost a grant or a table takes rows again once mended.
        return (
            StoreProblem,
            psycopg.OperationalError,
            psycopg.InterfaceError,
            psycopg.InternalError,
            psycopg.ProgrammingError,
            psycopg.NotSupportedError,
            OSError,
        )

    def absolute(self) -> PostgresStore:
        return self

    def resolved(self) -> PostgresStore:
        require_psycopg()
        return self

    def load_driver(self) -> None:
        import psycopg  # noqa: F401

    def missing(self) -> bool:
        return False

    def diagnose(self, *, thorough: bool = True) -> str | None:
        return diagnose(self.target)

    def glance(self) -> None:
        return None

    def problem_of(self, exc: BaseException) -> StoreProblem:
        return as_problem(self.target, exc)

    def open(self, *, quick_check: bool = False) -> PgDatabase:
        return open_server(self.target)

    def open_for_rows(self) -> PgDatabase:
        return open_server(self.target)

    def read(self, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
        return queries_on_server(self.target, queries)

    def open_reader(self, *, application: str) -> PgConnection:
        conn = connect(self.target, read_only=True, application=application)
        # The server would compile each of the pages' bigger aggregates to machine code before running it, which
        # takes longer than running it: the statements are many, each run once.
        conn.execute("SET jit = off")
        return conn

    def state_feed(self, every: float) -> StateWatch:
        return acquire_watch(self.target, every)

    def spent_on(self, day: str, after_id: int = 0) -> tuple[float, int]:
        """The day's `spend` row, whatever after_id (the id returned stays after_id, so the caller reads totals)."""
        rows = queries_on_server(self.target, [("SELECT spent FROM spend WHERE day = ?", (day,))])[0]
        return (float(rows[0]["spent"]) if rows else 0.0), after_id

    def rollup(self, *, now: datetime | None = None, dry_run: bool = False) -> RollupReport:
        conn = open_server(self.target).conn
        try:
            return run_rollup(conn, POSTGRES.rollup_step, now=now, dry_run=dry_run)
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
        return prune(
            lambda: open_server(self.target).conn,
            self.label,
            retention_days,
            dry_run=dry_run,
            now=now,
            sleep=sleep,
            clock=clock,
            **tuning,
        )

    def vacuum(self) -> tuple[int, int]:
        raise ValueError(f"{self.label} is {self.why_no_vacuum}: there is nothing to vacuum")

    def cache_read(self, key: str, now: float) -> CacheEntry | None:
        rows = queries_on_server(self.target, [response_cache.read_query(key, now)])[0]
        return response_cache.entry_of(rows[0]) if rows else None

    def cache_prune(self, max_entries: int, now: float) -> int:
        conn = open_server(self.target).conn
        try:
            return response_cache.prune(conn, max_entries, now)
        finally:
            conn.close()

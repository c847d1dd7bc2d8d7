"""Retention without cron: while a router of this process logs to a store (a SQLite file or a PostgreSQL database),
it is rolled up and pruned (app/store/retention.py) about once an hour, by one daemon thread per process.

Nothing of it runs on the event loop or on the attempt log's writer thread: the writer only waits for SQLite's
lock while one batch is deleted (sized to take BATCH_SECONDS), and calls never wait at all. The first run comes
FIRST_DELAY_SECONDS after a router starts, so that a short-lived process (a CLI call, a cron job, a test) never
spends its life pruning; after that every INTERVAL_SECONDS. Several processes on one file share the work: each
run first claims `rollup_state.upkeep_at`, and a process that finds it claimed less than an interval ago skips
its turn. A file is watched for as long as a router that logs to it is alive (a weak reference), and never
created: a missing file is left to the writer. The same run prunes the response cache's table: its expired
entries, then those beyond RESPONSE_CACHE_MAX_ENTRIES that are worth least (app/store/response_cache.py).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from app.clock import iso_millis
from app.store.backend import StoreBackend, backend_for
from app.store.problem import StoreProblem
from app.store.reports import PruneReport, RollupReport
from app.store.retention import rollup
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.connection import Connection

logger = logging.getLogger("taskrouter.store")

INTERVAL_SECONDS = 3600.0
FIRST_DELAY_SECONDS = 300.0
CACHE_MAX_ENTRIES = 10_000  # RESPONSE_CACHE_MAX_ENTRIES's default, for a caller that does not say


def maintain(
    path: Target | str,
    retention_days: int,
    *,
    now: datetime | None = None,
    min_gap: float = INTERVAL_SECONDS,
    cache_max_entries: int = CACHE_MAX_ENTRIES,
) -> PruneReport | RollupReport | None:
    """One automatic run: claim the file's turn, roll up, prune when `retention_days` > 0 (0 keeps raw rows for
    ever; they are still rolled up, for the dashboard), and bring the response cache down to `cache_max_entries`.
    None when the file does not exist or a process claimed a run less than `min_gap` seconds ago. Raises
    StoreProblem or sqlite3.Error."""
    store = backend_for(path)
    if store.missing():
        return None
    try:
        return _maintain(store, retention_days, now, min_gap, cache_max_entries)
    except store.upkeep_errors as exc:
        raise store.problem_of(exc) from None


def _maintain(
    store: StoreBackend, retention_days: int, now: datetime | None, min_gap: float, cache_max_entries: int
) -> PruneReport | RollupReport | None:
    now = now or datetime.now(UTC)
    conn = store.open().conn
    report: PruneReport | RollupReport | None = None
    try:
        if not _claim(conn, now, min_gap):
            return None
        if retention_days <= 0:
            report = rollup(conn, now=now)
    finally:
        conn.close()
    if report is None:
        report = store.prune(retention_days, now=now)
    removed = store.cache_prune(cache_max_entries, now.timestamp())
    if removed:
        logger.info(
            "response cache: %s: removed %d entries (expired, or worth the least beyond %d)",
            store.label,
            removed,
            cache_max_entries,
        )
    return report


def _claim(conn: Connection, now: datetime, min_gap: float) -> bool:
    with conn:
        conn.execute("INSERT INTO rollup_state (name) VALUES ('attempts') ON CONFLICT (name) DO NOTHING")
        claimed = conn.execute(
            "UPDATE rollup_state SET upkeep_at = ? WHERE name = 'attempts' AND (upkeep_at IS NULL OR upkeep_at <= ?)",
            (iso_millis(now.timestamp()), iso_millis((now - timedelta(seconds=min_gap)).timestamp())),
        )
    return claimed.rowcount == 1


@dataclass
class _Job:
    retention_days: int
    due: float
    owners: weakref.WeakSet[object] = field(default_factory=weakref.WeakSet)
    cache_max_entries: int = CACHE_MAX_ENTRIES


Runner = Callable[[Target, int], object]


class Upkeep:
    """The files to maintain and when each is next due; `run_due` does what is due on the calling thread, and the
    daemon thread calls it when the earliest job comes due."""

    def __init__(
        self,
        *,
        interval: float = INTERVAL_SECONDS,
        first_delay: float = FIRST_DELAY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        run: Runner | None = None,
    ) -> None:
        self.interval = interval
        self.first_delay = first_delay
        self._clock = clock
        # A little less than the interval: this process's own next turn may come a few ms short of a full interval
        # after its last claim, and must not be taken for another process's.
        self._run: Runner = run or (
            lambda path, days: maintain(
                path, days, min_gap=interval * 0.9, cache_max_entries=self._cache_max_entries(path)
            )
        )
        self._jobs: dict[Target, _Job] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._problems: dict[Target, str] = {}  # the last problem logged per store: said once, not every hour

    def watch(
        self, path: Target | str, retention_days: int, owner: object, *, cache_max_entries: int = CACHE_MAX_ENTRIES
    ) -> None:
        """Maintain `path` while `owner` (a router logging to it) lives; the latest retention and response cache
        bound asked for win."""
        key = backend_for(path).absolute().target
        with self._lock:
            job = self._jobs.get(key)
            if job is None:
                job = self._jobs[key] = _Job(retention_days, self._clock() + self.first_delay)
            job.retention_days = retention_days
            job.cache_max_entries = cache_max_entries
            job.owners.add(owner)
        self._wake.set()

    def _cache_max_entries(self, path: Target) -> int:
        with self._lock:
            job = self._jobs.get(path)
            return CACHE_MAX_ENTRIES if job is None else job.cache_max_entries

    def watched(self) -> dict[Target, int]:
        with self._lock:
            return {path: job.retention_days for path, job in self._jobs.items() if len(job.owners)}

    def run_due(self) -> list[Target]:
        """Run every job that is due (forgetting those no router needs any more); returns the files run."""
        now = self._clock()
        with self._lock:
            for path in [p for p, job in self._jobs.items() if not len(job.owners)]:
                del self._jobs[path]
            due = [(path, job) for path, job in self._jobs.items() if job.due <= now]
            for _, job in due:
                job.due = now + self.interval
        for path, job in due:
            self._run_one(path, job.retention_days)
        return [path for path, _ in due]

    def _run_one(self, path: Target, retention_days: int) -> None:
        try:
            result = self._run(path, retention_days)
        except (StoreProblem, sqlite3.Error, OSError) as exc:  # a server's errors are StoreProblems already
            if self._problems.get(path) != str(exc):
                self._problems[path] = str(exc)
                logger.warning(
                    "retention: %s could not be rolled up or pruned (%s); trying again in %g s",
                    path,
                    exc,
                    self.interval,
                )
            return
        except Exception:  # never let one bad run end the thread: every later hour would be lost with it
            logger.exception("retention: rolling up or pruning %s failed", path)
            return
        self._problems.pop(path, None)
        if isinstance(result, PruneReport) and (result.rows_removed or result.hours_rolled_up):
            logger.info(
                "retention: %s: rolled up %d hours, removed %d rows older than %s (%d bytes freed)",
                path,
                result.hours_rolled_up,
                result.rows_removed,
                result.cutoff,
                result.freed,
            )

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="taskrouter-retention", daemon=True)
                self._thread.start()

    def _next_wait(self) -> float | None:
        with self._lock:
            if not self._jobs:
                return None
            return max(min(job.due for job in self._jobs.values()) - self._clock(), 0.0)

    def stop(self, timeout: float = 10.0) -> None:
        """End the thread (after the run in progress, if any); `start` makes a new one."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping = True
        self._wake.set()
        if thread is not None:
            thread.join(timeout)
        self._stopping = False

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._next_wait())
            self._wake.clear()
            if self._stopping:
                return
            self.run_due()


_UPKEEP = Upkeep()


def watch_retention(
    path: Target | str, retention_days: int, owner: object, *, cache_max_entries: int = CACHE_MAX_ENTRIES
) -> None:
    """The process-wide upkeep: maintain `path` while `owner` lives (started on first use), its response cache kept
    to `cache_max_entries` (RESPONSE_CACHE_MAX_ENTRIES)."""
    _UPKEEP.watch(path, retention_days, owner, cache_max_entries=cache_max_entries)
    _UPKEEP.start()

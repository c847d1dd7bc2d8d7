"""A store backend is an object: which one serves a store is decided once, here, from where the store lives.

`backend_for(where)` turns a target (a SQLite file's path, a `PostgresTarget`, or the text of either) into a
`StoreBackend`: `SqliteStore` (app/store/sqlite/) or `PostgresStore` (app/store/postgres/). Everything outside
app/store asks that object, never which kind it is; a new backend is a subpackage that implements the protocol
and one more line in `backend_for`. The store's functions that take a target (`open_database`, `prune`,
`read_model_status`, ...) are this object's methods behind a function.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.store.target import PostgresTarget, Target, locate

if TYPE_CHECKING:
    from app.store.connection import Connection as Connection
    from app.store.problem import StoreProblem
    from app.store.reports import PruneReport, RollupReport
    from app.store.rows import CacheEntry
    from app.store.state import State


class Opened(Protocol):
    """An open, migrated store (sqlite-utils' Database for SQLite): its connection, which the caller closes."""

    @property
    def conn(self) -> Connection: ...


class RowWriter(Protocol):
    """The attempt log writer's open store: one `write` per batch, whatever the rows."""

    @property
    def conn(self) -> Connection: ...

    def write(self, items: Iterable[object], *, skip_known: bool = False, costs_reserved: bool = False) -> int:
        """Write the rows among `items` in one transaction; returns the attempts written. `skip_known`: leave out
        attempts already stored (an import of spilled rows). `costs_reserved`: the calls reserved their cost in a
        shared ledger (`spend_ledger`), which each attempt's cost then leaves."""
        ...


class StateFeed(Protocol):
    """Marks and overrides pushed by the store as they change (`latest`, a new object at each change)."""

    @property
    def latest(self) -> State | None: ...

    def wait_first(self, timeout: float) -> State | None:
        """The first state read, waiting up to `timeout` for it."""
        ...

    def release(self) -> None:
        """Done with it: the feed stops once its last user releases it."""
        ...


class SpendSession(Protocol):
    def lease(self, day: str, want: float, estimate: float, limit: float) -> tuple[float, float, float]:
        """Take up to `want` of the day's budget, atomically against every host: (granted, spent, reserved)."""
        ...

    def close(self) -> None: ...


class SpendLedger(Protocol):
    """A store that keeps each day's spend and every host's reservations itself, so that hosts share one budget."""

    def open(self) -> SpendSession:
        """A session for leases, on a connection whose statements give up quickly. Raises StoreProblem."""
        ...


class StoreBackend(Protocol):
    """One store, of whichever kind. No I/O until a method is called."""

    @property
    def target(self) -> Target: ...

    @property
    def label(self) -> str:
        """How messages name the store: the path, or the URL without its password."""
        ...

    @property
    def locator(self) -> str:
        """What names the store to another process of ours (the path, or the URL with its password): for an
        environment variable, never for a message."""
        ...

    @property
    def key(self) -> Path | str:
        """The same for every name of the same store: one writer, one upkeep job per store per process."""
        ...

    @property
    def spill_base(self) -> Path:
        """The file whose `.unwritten.jsonl` sibling keeps the rows the store could not take."""
        ...

    @property
    def spend_ledger(self) -> SpendLedger | None:
        """The shared budget ledger, or None when each host counts the spend it reads from the rows."""
        ...

    @property
    def why_no_vacuum(self) -> str | None:
        """None when `vacuum` applies; else why it does not (the store gives space back by itself)."""
        ...

    @property
    def write_errors(self) -> tuple[type[BaseException], ...]:
        """What a write may raise that retrying (or spilling) can get past."""
        ...

    @property
    def upkeep_errors(self) -> tuple[type[BaseException], ...]:
        """Errors the hourly upkeep reports as a StoreProblem (`problem_of`) rather than as they are."""
        ...

    def absolute(self) -> StoreBackend:
        """The same store, a SQLite path made absolute (the process may change its working directory)."""
        ...

    def resolved(self) -> StoreBackend:
        """The same store named so that another process finds it (a SQLite path made absolute). Raises
        ConfigError when the store's driver is not installed."""
        ...

    def load_driver(self) -> None:
        """Import the store's driver now (a router's build), not on the writer thread while calls run."""
        ...

    def missing(self) -> bool:
        """True when nothing was ever written there (a SQLite file that does not exist). A server is never
        missing here: whether it answers is `diagnose`'s to say."""
        ...

    def diagnose(self, *, thorough: bool = True) -> str | None:
        """What is wrong with the store, or None when it is usable; reads only, creates nothing."""
        ...

    def glance(self) -> str | None:
        """What a look tells without opening a connection (a page load's check); None for a server, which only
        a connection can tell about."""
        ...

    def problem_of(self, exc: BaseException) -> StoreProblem:
        """An error of this store in words that say what to do (never a password)."""
        ...

    def open(self, *, quick_check: bool = False) -> Opened:
        """Open, creating and migrating what is missing. Raises StoreProblem only."""
        ...

    def open_for_rows(self) -> RowWriter:
        """The attempt log writer's open: checked and migrated as `open` is, as lean as the store allows."""
        ...

    def read(self, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
        """The rows of each query, read-only; each empty when the store does not exist, cannot be read, or lacks
        the table (what is wrong is the attempt log's writer's to report)."""
        ...

    def open_reader(self, *, application: str) -> Connection | None:
        """A read-only connection for many one-off reads (the dashboard's pages); None when the store does not
        exist. Raises StoreProblem when a server cannot be reached."""
        ...

    def state_feed(self, every: float) -> StateFeed | None:
        """Marks and overrides pushed as they change (read again every `every` s as a safety net), or None when
        the store cannot push: the caller then reads them (`read`) at its own pace."""
        ...

    def spent_on(self, day: str, after_id: int = 0) -> tuple[float, int]:
        """(logged cost for the UTC day 'YYYY-MM-DD', in rows with id > after_id where the store reads it from the
        rows; the highest id seen, or after_id)."""
        ...

    def rollup(self, *, now: datetime | None = None, dry_run: bool = False) -> RollupReport:
        """Bring the hourly and daily rollups up to date (app/store/rollup.py)."""
        ...

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
        """Roll up, then remove the raw rows older than `retention_days` that the rollups hold, and give the
        space back. `tuning`: the backend's batch sizes and pauses (tests, benchmarks)."""
        ...

    def vacuum(self) -> tuple[int, int]:
        """Rewrite the store once so that later prunes give space back (see `why_no_vacuum`); its size in bytes
        before and after."""
        ...

    def cache_read(self, key: str, now: float) -> CacheEntry | None:
        """The response cache's entry for `key` unless it expired by `now` (epoch seconds); None too when the store
        cannot be read. Blocking: the core calls it through asyncio.to_thread (app/store/response_cache.py)."""
        ...

    def cache_prune(self, max_entries: int, now: float) -> int:
        """Remove the response cache's expired entries, then the lowest-weighted beyond `max_entries`; returns how
        many went (app/store/response_cache.py)."""
        ...


def backend_for(where: Target | str) -> StoreBackend:
    """The backend of the store at `where` (a path, a postgresql:// URL, or a target): the one place that asks
    which kind a store is."""
    target = locate(where)
    if isinstance(target, PostgresTarget):
        from app.store.postgres import PostgresStore  # psycopg and the server's modules load with such a store

        return PostgresStore(target)
    from app.store.sqlite import SqliteStore

    return SqliteStore(target)


def store_missing(where: Target | str) -> bool:
    """True when `where` is a store nothing was ever written to (StoreBackend.missing)."""
    return backend_for(where).missing()

"""Opening the store, whichever the backend: `open_database` opens and migrates it, `diagnose` says what is wrong
without writing anything (for `taskrouter status` and the dashboard), and every problem is a `StoreProblem` whose
message names the file or the server (never its password), what is wrong and what to do. Each is the store's
backend object (app/store/backend.py) behind a function that takes where the store lives."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from app.store.backend import backend_for
from app.store.problem import StoreProblem
from app.store.sqlite.database import BUSY_TIMEOUT_SECONDS, SqliteDatabase
from app.store.sqlite.rows import write_rows
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.backend import Opened, RowWriter

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "SqliteDatabase",
    "StoreProblem",
    "diagnose",
    "open_database",
    "open_for_rows",
    "problem_of",
    "write_batch",
]


def open_database(where: Target | str, *, quick_check: bool = False) -> Opened:
    """Open (creating a SQLite file and its folder if needed) and migrate. `quick_check`: refuse a SQLite file that
    fails quick_check (it reads every page). Raises StoreProblem only."""
    return backend_for(where).open(quick_check=quick_check)


def open_for_rows(where: Target | str) -> RowWriter:
    """The attempt log's writer's open (StoreBackend.open_for_rows). Raises StoreProblem only."""
    return backend_for(where).open_for_rows()


def write_batch(
    db: Opened | RowWriter, items: Iterable[object], *, skip_known: bool = False, costs_reserved: bool = False
) -> int:
    """The attempt log's write into an open store: a writer's own (`open_for_rows`), or sqlite-utils' Database that
    `open_database` gives for a SQLite file."""
    write = getattr(db, "write", None)
    if write is not None:
        return int(write(items, skip_known=skip_known, costs_reserved=costs_reserved))
    return write_rows(db, items, skip_known=skip_known)  # type: ignore[arg-type]


def problem_of(where: Target | str, exc: BaseException) -> StoreProblem:
    """The error in words that say what to do (StoreBackend.problem_of)."""
    return backend_for(where).problem_of(exc)


def diagnose(where: Target | str, *, thorough: bool = True) -> str | None:
    """What is wrong with the store, or None when it is usable; reads only, creates nothing. A SQLite file that
    does not exist yet is fine (the first router creates it) as long as its folder can be made. `thorough`: also
    run SQLite's quick_check, which reads every page (`taskrouter status`); without it, only what a glance tells.
    A PostgreSQL store: whether the server answers a read-only login."""
    return backend_for(where).diagnose(thorough=thorough)

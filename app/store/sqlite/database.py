"""A SQLite file: opened checked, migrated safely by many processes at once, and every problem said plainly.

A problem is a `StoreProblem` whose message names the file, what is wrong and what to do; nothing else
(sqlite3's errors, OSError) leaves `open_file`. `diagnose` tells the same without writing anything, for
`taskrouter status` and the dashboard.
"""

from __future__ import annotations

import errno
import os
import random
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Literal, overload
from urllib.parse import quote

from app.store.problem import StoreProblem
from app.store.sqlite.migrations import MIGRATIONS, applied_migrations, migrate
from app.store.sqlite.rows import write_rows

if TYPE_CHECKING:
    from sqlite_utils import Database

BUSY_TIMEOUT_SECONDS = 10.0  # how long a statement waits for another process's lock before it fails


class SqliteDatabase:
    """An open SQLite store as the attempt log's writer holds it: its connection alone, without sqlite-utils'
    Database, which loads pandas when pandas is installed (the dashboard's streamlit brings it): a cost a
    short-lived process would pay on every run, on a thread that shares the GIL with its first calls."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def write(self, items: Iterable[object], *, skip_known: bool = False, costs_reserved: bool = False) -> int:
        """StoreBackend's RowWriter.write (`costs_reserved` has no meaning here: SQLite keeps no shared ledger)."""
        return write_rows(self, items, skip_known=skip_known)


def open_file(path: Path, *, quick_check: bool = False) -> Database:
    """Open (creating it and its folder if needed) and migrate. `quick_check`: refuse a file that fails SQLite's
    quick_check (it reads every page: the attempt log's writer does it once per open, off the callers' path).
    Raises StoreProblem only."""
    return _open_retrying(path, quick_check, lean=False)


def open_file_for_rows(path: Path) -> SqliteDatabase:
    """The attempt log's writer's open: checked (quick_check too) and migrated as open_file does, but the file
    comes back as its bare connection, and sqlite-utils loads only when a migration is due (a new file, or one a
    newer version of taskrouter opens first). Raises StoreProblem only."""
    return _open_retrying(path, True, lean=True)


@overload
def _open_retrying(path: Path, quick_check: bool, *, lean: Literal[False]) -> Database: ...


@overload
def _open_retrying(path: Path, quick_check: bool, *, lean: Literal[True]) -> SqliteDatabase: ...


def _open_retrying(path: Path, quick_check: bool, *, lean: bool) -> Database | SqliteDatabase:
    _check_path(path)
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            return _open(path, quick_check, lean)
        except sqlite3.OperationalError as exc:
            # A brand-new file opened by several processes at once: switching it to WAL and the first migration
            # can answer "locked" without waiting on the busy timeout. Migrations are idempotent: try again.
            if not _is_busy(exc) or time.monotonic() > deadline:
                raise as_problem(path, exc) from None
            time.sleep(random.uniform(0.01, 0.05))
        except (sqlite3.Error, OSError) as exc:
            raise as_problem(path, exc) from None


def _open(path: Path, quick_check: bool, lean: bool) -> Database | SqliteDatabase:
    conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_SECONDS, check_same_thread=False)
    try:
        if quick_check:
            verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
            if verdict != "ok":
                raise StoreProblem(
                    path, f"the file is damaged (SQLite's quick_check: {verdict})", _CORRUPT_FIX, corrupt=True
                )
        # Only a file with no table yet takes it (before WAL, which writes the header): pages the retention frees
        # can then be handed back to the disk (PRAGMA incremental_vacuum). An older file keeps its mode until one
        # VACUUM (`taskrouter prune --vacuum`).
        conn.execute("PRAGMA auto_vacuum = INCREMENTAL")
        if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        due = len(applied_migrations(conn)) < len(MIGRATIONS)
        if lean and not due:
            return SqliteDatabase(conn)
        from sqlite_utils import Database  # loaded with the store, not with `import app`

        db = Database(conn)
        if due:
            migrate(db)
        return SqliteDatabase(conn) if lean else db
    except BaseException:
        conn.close()
        raise


_CORRUPT_FIX = (
    "Nothing is written to it: new rows go to the .unwritten.jsonl file beside it. Move the damaged "
    "file aside (or restore a backup); the next process creates a fresh one and imports those rows"
)


def _check_path(path: Path) -> None:
    """The mistakes SQLite would only report as 'unable to open database file'; then the folder is made."""
    _check_shape(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise as_problem(path, exc) from None


def _check_shape(path: Path) -> None:
    """A folder at the path, or a file where one of its folders should be. Reads only."""
    if path.is_dir():
        raise StoreProblem(
            path,
            "this is a folder, not a database file",
            "Set ATTEMPTS_DB_PATH to a file path (e.g. taskrouter.db), not a folder",
        )
    folder = _nearest_existing(path)
    if folder is not None and not folder.is_dir():
        raise StoreProblem(
            path,
            f"{folder} is a file, so no database can be created inside it",
            "Set ATTEMPTS_DB_PATH to a path whose folders are folders",
        )


def _nearest_existing(path: Path) -> Path | None:
    return next((parent for parent in path.parents if parent.exists()), None)


def _is_busy(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def as_problem(path: Path, exc: BaseException) -> StoreProblem:
    """What went wrong, in words that say what to do."""
    if isinstance(exc, StoreProblem):
        return exc
    text = str(exc)
    lowered = text.lower()
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "disk is full" in lowered or ("disk i/o" in lowered and _disk_full(path)):
        return StoreProblem(
            path,
            f"the disk is full ({text})",
            "Free some space; rows wait in memory meanwhile and are written once it succeeds",
        )
    if (
        code in (errno.EACCES, errno.EPERM, errno.EROFS)
        or "readonly" in lowered
        or "read-only" in lowered
        or ("unable to open" in lowered and not os.access(path.parent, os.W_OK))
    ):
        return StoreProblem(
            path,
            f"no permission to write it or its folder ({text})",
            "Give this process write access to the file and its folder (SQLite also writes "
            "-wal and -shm files beside it), or set ATTEMPTS_DB_PATH elsewhere",
        )
    if "not a database" in lowered or "malformed" in lowered or "encrypted" in lowered:
        return StoreProblem(
            path, f"this is not a SQLite database, or it is damaged ({text})", _CORRUPT_FIX, corrupt=True
        )
    if _is_busy(exc):  # type: ignore[arg-type]
        return StoreProblem(
            path,
            f"another process holds its lock ({text})",
            f"Rows wait in memory and are written once the lock is released (each write waits "
            f"{BUSY_TIMEOUT_SECONDS:g} s for it)",
        )
    return StoreProblem(
        path,
        f"it cannot be opened ({type(exc).__name__}: {text})",
        "Check the path and its permissions, or set ATTEMPTS_DB_PATH elsewhere",
    )


def _disk_full(path: Path) -> bool:
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 1 << 20


def diagnose(path: Path, *, thorough: bool = True) -> str | None:
    """What is wrong with the file, or None when it is usable; reads only, creates nothing. A file that does not
    exist yet is fine (the first router creates it) as long as its folder can be made. `thorough`: also run
    SQLite's quick_check, which reads every page (`taskrouter status`); without it, only what a glance tells (the
    dashboard, on every page load)."""
    try:
        _check_shape(path)
        if not path.exists():
            folder = _nearest_existing(path)
            if folder is not None and not os.access(folder, os.W_OK):
                raise StoreProblem(
                    path,
                    f"the file does not exist and {folder} is not writable",
                    "Give this process write access to the folder, or set ATTEMPTS_DB_PATH elsewhere",
                )
            return None
        if not thorough:
            with path.open("rb") as file:
                header = file.read(16)
            if header and header != b"SQLite format 3\0":
                raise StoreProblem(path, "this is not a SQLite database", _CORRUPT_FIX, corrupt=True)
            return None
        _check_readable(path)
    except StoreProblem as problem:
        return str(problem)
    except OSError as exc:
        return str(as_problem(path, exc))
    return None


def _check_readable(path: Path) -> None:
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=BUSY_TIMEOUT_SECONDS)
    except sqlite3.Error as exc:
        raise as_problem(path, exc) from None
    try:
        verdict = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if verdict != "ok":
            raise StoreProblem(
                path, f"the file is damaged (SQLite's quick_check: {verdict})", _CORRUPT_FIX, corrupt=True
            )
        if not os.access(path, os.W_OK) or not os.access(path.parent, os.W_OK):
            raise StoreProblem(
                path,
                "it is not writable by this user (the file or its folder)",
                "Routers need write access to the file and its folder (for the -wal and -shm "
                "files); readers such as the dashboard do not",
            )
    except sqlite3.Error as exc:
        raise as_problem(path, exc) from None
    finally:
        conn.close()


def read_only_uri(path: Path | str) -> str:
    """A `file:` URI opening the database read-only. Quoted: a path with `?`, `#` or `%` would otherwise be
    parsed as the URI's query or fragment and open (or create) a different file."""
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"

"""The dashboard's read-only connection to either store, and the few spots where its SQL must differ between
SQLite and PostgreSQL.

Every statement in dashboard/queries is written once, with sqlite3's `?` placeholders (app/store/pg_connection.py
translates them for PostgreSQL), in SQL both read: a conditional count is `count_if(...)`, never SQLite's
SUM(boolean); the empty condition is TRUE, not 1; no PRAGMA, no SQLite date function. What cannot be written once
is a function here, with the reason.
"""

from __future__ import annotations

import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from app.store import read_only_uri
from app.store.target import PostgresTarget, Target, locate

if TYPE_CHECKING:
    from app.store.target import Connection

POSTGRESQL = "postgresql"
_UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a relation that does not exist


def connect(where: Target | str) -> Connection | None:
    """Read-only. SQLite: mode=ro (SQLite refuses every write and never creates the file), None when the file does
    not exist. PostgreSQL: a session whose transactions are read-only (the server refuses every write); raises
    StoreProblem, which names the server without its password, when it cannot be reached."""
    target = locate(where)
    if isinstance(target, PostgresTarget):
        from app.store.pg_connection import connect as pg_connect

        conn = pg_connect(target, read_only=True, application="taskrouter-dashboard")
        # The server would compile each of the pages' bigger aggregates to machine code before running it, which
        # takes longer than running it: the statements are many, each run once.
        conn.execute("SET jit = off")
        return conn
    path = Path(target)
    if not path.is_file():
        return None
    conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")
    # Map the file instead of copying pages through read(): ~10% off the full-range pages at 1M rows. Address
    # space only; WAL frames are still read from the -wal file, so a live writer is safe.
    conn.execute("PRAGMA mmap_size = 1073741824")
    return conn


def is_postgres(conn: Connection) -> bool:
    return getattr(conn, "dialect", None) == POSTGRESQL


# The columns of the last few connections, kept with the connection itself (so that no other can take its id):
# a page asks for them in many of its queries, and on PostgreSQL each read is a round trip.
_COLUMNS: list[tuple[Connection, frozenset[str]]] = []


def attempt_columns(conn: Connection) -> frozenset[str]:
    """The attempts table's columns: a database written by an older router lacks the newer ones, and the dashboard
    opens it read-only (it never migrates). Read once per connection."""
    for known, columns in _COLUMNS:
        if known is conn:
            return columns
    if is_postgres(conn):
        # The catalog rather than information_schema: one indexed read, and to_regclass resolves `attempts` on the
        # search path exactly as the dashboard's own statements do.
        rows = conn.execute("SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('attempts') "
                            "AND attnum > 0 AND NOT attisdropped")
        columns = frozenset(r[0] for r in rows)
    else:
        columns = frozenset(r[1] for r in conn.execute("PRAGMA table_info(attempts)"))
    _COLUMNS[:] = [(conn, columns), *_COLUMNS[:3]]
    return columns


def in_list(column: str, values: Sequence[str]) -> str:
    """`column IN (?, ?, ...)`, one placeholder per value."""
    return f"{column} IN ({', '.join('?' for _ in values)})"


def count_if(condition: str) -> str:
    """The rows where `condition` holds. SQLite would sum the boolean itself; PostgreSQL has no SUM(boolean)."""
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def whole_ms(conn: Connection, column: str) -> str:
    """A duration in whole milliseconds, cut down as the percentiles need (exact to 1 ms, never rounded up).
    SQLite's CAST to INTEGER truncates; PostgreSQL's rounds to nearest, so it floors first."""
    if is_postgres(conn):
        return f"CAST(FLOOR({column}) AS INTEGER)"
    return f"CAST({column} AS INTEGER)"


def bytewise(conn: Connection, column: str) -> str:
    """A text column compared byte by byte, as SQLite always compares. PostgreSQL compares by the database's
    collation, in which a range such as [prefix, prefix + U+10FFFF) need not hold exactly the values that start
    with the prefix; "C" is the byte order, and a migration gives request_id an index in it."""
    if is_postgres(conn):
        return f'{column} COLLATE "C"'
    return column


def same_request_days(conn: Connection, other: str, row: str) -> str:
    """A condition for a correlated subquery that looks up `row`'s request by request_id in `other`: `other`'s row
    lies between the day before `row`'s and the day after (a request lasts its deadline, an hour at most).
    PostgreSQL keeps an index per day's partition, and without it each lookup would descend every day's; with it
    the server prunes all but those days. SQLite's one request_id index gains nothing from it."""
    if not is_postgres(conn):
        return ""
    day = f"CAST(SUBSTR({row}.created_at, 1, 10) AS date)"
    return (f" AND {other}.created_at >= to_char({day} - 1, 'YYYY-MM-DD')"
            f" AND {other}.created_at < to_char({day} + 2, 'YYYY-MM-DD')")


def missing_table(exc: BaseException) -> bool:
    """Whether a read failed because its table is not there (a store no router has migrated that far)."""
    if isinstance(exc, sqlite3.OperationalError):
        return "no such table" in str(exc)
    return getattr(exc, "sqlstate", None) == _UNDEFINED_TABLE


def is_database_error(exc: BaseException) -> bool:
    """An error of the store's driver (sqlite3's or psycopg's), as opposed to a bug in the dashboard."""
    if isinstance(exc, sqlite3.Error):
        return True
    psycopg = sys.modules.get("psycopg")  # loaded by then if the store is PostgreSQL; never imported for SQLite
    return psycopg is not None and isinstance(exc, psycopg.Error)

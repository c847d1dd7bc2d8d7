"""The dashboard's read-only connection to either store, and the few spots where its SQL must differ between
SQLite and PostgreSQL.

Every statement in dashboard/queries is written once, with sqlite3's `?` placeholders (PostgreSQL's connection
translates them), in SQL both read: a conditional count is `count_if(...)`, never SQLite's SUM(boolean); the empty
condition is TRUE, not 1; no PRAGMA, no SQLite date function. What cannot be written once is the store's dialect's
to say (app/store/dialect.py): each function here asks the connection's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from app.store import backend_for
from app.store.dialect import dialect_of, is_store_error
from app.store.dialect import missing_table as _missing_table
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.backend import Connection


def connect(where: Target | str) -> Connection | None:
    """Read-only. SQLite: mode=ro (SQLite refuses every write and never creates the file), None when the file does
    not exist. PostgreSQL: a session whose transactions are read-only (the server refuses every write); raises
    StoreProblem, which names the server without its password, when it cannot be reached."""
    return backend_for(where).open_reader(application="taskrouter-dashboard")


# The columns of the last few connections, kept with the connection itself (so that no other can take its id):
# a page asks for them in many of its queries, and on PostgreSQL each read is a round trip.
_COLUMNS: list[tuple[Connection, frozenset[str]]] = []


def attempt_columns(conn: Connection) -> frozenset[str]:
    """The attempts table's columns: a database written by an older router lacks the newer ones, and the dashboard
    opens it read-only (it never migrates). Read once per connection."""
    for known, columns in _COLUMNS:
        if known is conn:
            return columns
    columns = dialect_of(conn).attempt_columns(conn)
    _COLUMNS[:] = [(conn, columns), *_COLUMNS[:3]]
    return columns


def in_list(column: str, values: Sequence[str]) -> str:
    """`column IN (?, ?, ...)`, one placeholder per value."""
    return f"{column} IN ({', '.join('?' for _ in values)})"


def count_if(condition: str) -> str:
    """The rows where `condition` holds. SQLite would sum the boolean itself; PostgreSQL has no SUM(boolean)."""
    return f"SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"


def whole_ms(conn: Connection, column: str) -> str:
    """A duration in whole milliseconds, cut down as the percentiles need (exact to 1 ms, never rounded up)."""
    return dialect_of(conn).whole_ms(column)


def bytewise(conn: Connection, column: str) -> str:
    """A text column compared byte by byte, as SQLite always compares: a range such as [prefix, prefix + U+10FFFF)
    then holds exactly the values that start with the prefix."""
    return dialect_of(conn).bytewise(column)


def same_request_days(conn: Connection, other: str, row: str) -> str:
    """A condition for a correlated subquery that looks up `row`'s request by request_id in `other`, when the store
    needs one to find it fast (PostgreSQL's daily partitions); else ''."""
    return dialect_of(conn).same_request_days(other, row)


def missing_table(exc: BaseException) -> bool:
    """Whether a read failed because its table is not there (a store no router has migrated that far)."""
    return _missing_table(exc)


def is_database_error(exc: BaseException) -> bool:
    """An error of the store's driver (sqlite3's or psycopg's), as opposed to a bug in the dashboard."""
    return is_store_error(exc)

"""Where SQL cannot be written once for both backends, the connection's dialect says it.

The store's and the dashboard's statements are written once, with sqlite3's `?` placeholders (PostgreSQL's
connection translates them), in SQL both read. What differs is a `Dialect`: SQLite's (app/store/sqlite/dialect.py)
or PostgreSQL's (app/store/postgres/dialect.py), found from an open connection by `dialect_of`.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from app.store.sqlite.dialect import SQLITE

if TYPE_CHECKING:
    from app.store.connection import Connection


class Dialect(Protocol):
    @property
    def name(self) -> str: ...

    def whole_ms(self, column: str) -> str:
        """A duration in whole milliseconds, cut down as the percentiles need (exact to 1 ms, never rounded up)."""
        ...

    def bytewise(self, column: str) -> str:
        """A text column compared byte by byte (a prefix as a range), as an index in byte order serves it."""
        ...

    def same_request_days(self, other: str, row: str) -> str:
        """A condition to add to a correlated subquery that looks up `row`'s request by request_id in `other`,
        when the backend needs one to find it fast; else ''."""
        ...

    def attempt_columns(self, conn: Any) -> frozenset[str]:
        """The attempts table's columns (a store written by an older router lacks the newer ones)."""
        ...

    def missing_table(self, exc: BaseException) -> bool:
        """Whether a read failed because its table is not there."""
        ...

    def is_driver_error(self, exc: BaseException) -> bool:
        """An error of this backend's driver, as opposed to a bug of ours."""
        ...

    def rollup_step(self, conn: Any, closed: str, max_hours: int, now: datetime) -> tuple[int, int, int] | None:
        """One step of the rollups on this backend (app/store/rollup.py)."""
        ...


def dialect_of(conn: Connection) -> Dialect:
    """The dialect of an open connection: PostgreSQL's connection says so (PgConnection.dialect); any other is a
    sqlite3 one."""
    if getattr(conn, "dialect", None) == "postgresql":
        from app.store.postgres.dialect import POSTGRES  # loaded only with a PostgreSQL store

        return POSTGRES
    return SQLITE


def missing_table(exc: BaseException) -> bool:
    """Whether a read failed because its table is not there (a store no router has migrated that far)."""
    return SQLITE.missing_table(exc) or _postgres().missing_table(exc)


def is_store_error(exc: BaseException) -> bool:
    """An error of either store's driver (sqlite3's or psycopg's), as opposed to a bug of ours."""
    return SQLITE.is_driver_error(exc) or _postgres().is_driver_error(exc)


def _postgres() -> Dialect:
    from app.store.postgres.dialect import POSTGRES  # a module of plain functions: psycopg is not imported

    return POSTGRES

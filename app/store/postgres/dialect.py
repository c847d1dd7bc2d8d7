"""PostgreSQL's words where the store's and the dashboard's SQL cannot be written once (app/store/dialect.py)."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from app.store.postgres.rollup import step

if TYPE_CHECKING:
    from app.store.postgres.connection import PgConnection

_UNDEFINED_TABLE = "42P01"  # PostgreSQL's SQLSTATE for a relation that does not exist


class PostgresDialect:
    name = "postgresql"

    @staticmethod
    def whole_ms(column: str) -> str:
        """A duration in whole milliseconds, truncated: PostgreSQL's CAST rounds to nearest, so it floors first."""
        return f"CAST(FLOOR({column}) AS INTEGER)"

    @staticmethod
    def bytewise(column: str) -> str:
        """A text column compared byte by byte, as SQLite always compares. PostgreSQL compares by the database's
        collation, in which a range such as [prefix, prefix + U+10FFFF) need not hold exactly the values that start
        with the prefix; "C" is the byte order, and a migration gives request_id an index in it."""
        return f'{column} COLLATE "C"'

    @staticmethod
    def same_request_days(other: str, row: str) -> str:
        """`other`'s row lies between the day before `row`'s and the day after (a request lasts its deadline, an
        hour at most). The server keeps an index per day's partition, and without it each lookup would descend
        every day's; with it the server prunes all but those days."""
        day = f"CAST(SUBSTR({row}.created_at, 1, 10) AS date)"
        return (
            f" AND {other}.created_at >= to_char({day} - 1, 'YYYY-MM-DD')"
            f" AND {other}.created_at < to_char({day} + 2, 'YYYY-MM-DD')"
        )

    @staticmethod
    def attempt_columns(conn: Any) -> frozenset[str]:
        # The catalog rather than information_schema: one indexed read, and to_regclass resolves `attempts` on the
        # search path exactly as the dashboard's own statements do.
        rows = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass('attempts') "
            "AND attnum > 0 AND NOT attisdropped"
        )
        return frozenset(r[0] for r in rows)

    @staticmethod
    def missing_table(exc: BaseException) -> bool:
        return getattr(exc, "sqlstate", None) == _UNDEFINED_TABLE

    def rollup_step(
        self, conn: PgConnection, closed: str, max_hours: int, now: datetime
    ) -> tuple[int, int, int] | None:
        # Ids are handed out at insert, not in commit order: the step first waits for them to settle.
        return step(conn, closed, max_hours, now, whole_ms=self.whole_ms)

    @staticmethod
    def is_driver_error(exc: BaseException) -> bool:
        psycopg = sys.modules.get("psycopg")  # loaded by then if the store is PostgreSQL
        return psycopg is not None and isinstance(exc, psycopg.Error)


POSTGRES = PostgresDialect()

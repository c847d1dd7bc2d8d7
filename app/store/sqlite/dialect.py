"""SQLite's words where the store's and the dashboard's SQL cannot be written once (app/store/dialect.py)."""

from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any

from app.store.sqlite.rollup import step


class SqliteDialect:
    name = "sqlite"

    @staticmethod
    def whole_ms(column: str) -> str:
        """A duration in whole milliseconds, truncated: SQLite's CAST to INTEGER truncates."""
        return f"CAST({column} AS INTEGER)"

    @staticmethod
    def bytewise(column: str) -> str:
        """A text column compared byte by byte: SQLite always compares so."""
        return column

    @staticmethod
    def same_request_days(other: str, row: str) -> str:
        """Nothing: the one request_id index serves the lookup whatever the day."""
        return ""

    @staticmethod
    def attempt_columns(conn: Any) -> frozenset[str]:
        return frozenset(r[1] for r in conn.execute("PRAGMA table_info(attempts)"))

    @staticmethod
    def missing_table(exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)

    def rollup_step(
        self, conn: sqlite3.Connection, closed: str, max_hours: int, now: datetime
    ) -> tuple[int, int, int] | None:
        return step(conn, closed, max_hours, now, whole_ms=self.whole_ms)

    @staticmethod
    def is_driver_error(exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.Error)


SQLITE = SqliteDialect()

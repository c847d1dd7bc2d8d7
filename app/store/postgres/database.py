"""Opening a PostgreSQL store: connected, migrated (app/store/postgres/migrations.py) and the days ahead
partitioned; any problem a `StoreProblem` naming the server without its password."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from app.store.postgres.connection import PgConnection, as_problem, connect
from app.store.postgres.migrations import ensure_partitions, migrate
from app.store.postgres.rows import write_rows
from app.store.problem import StoreProblem
from app.store.target import PostgresTarget


class PgDatabase:
    """An open PostgreSQL store: its connection (StoreBackend's Opened and RowWriter)."""

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def write(self, items: Iterable[object], *, skip_known: bool = False, costs_reserved: bool = False) -> int:
        return write_rows(self.conn, items, skip_known=skip_known, costs_reserved=costs_reserved)


def open_server(target: PostgresTarget) -> PgDatabase:
    """Connect, migrate and make today's partitions. Raises StoreProblem only."""
    conn = connect(target)
    try:
        migrate(conn)
        ensure_partitions(conn, datetime.now(UTC).date())
    except Exception as exc:
        conn.close()
        raise as_problem(target, exc) from None
    return PgDatabase(conn)


def diagnose(target: PostgresTarget) -> str | None:
    """Whether the server answers a read-only login: None when it does, else what is wrong."""
    try:
        conn = connect(target, read_only=True)
    except StoreProblem as problem:
        return str(problem)
    try:
        conn.execute("SELECT 1")
    except Exception as exc:
        return str(as_problem(target, exc))
    finally:
        conn.close()
    return None

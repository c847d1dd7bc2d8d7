"""The dashboard tests' rows, written the same way into either store: a SQLite file (a Path) or a PostgreSQL
database (a PostgresTarget). Attempts go into PostgreSQL through the attempt log's own batch write, so that the
day's `spend` row the budget reads there holds what SQLite sums from the rows themselves."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from app.store import AttemptRow, open_database
from app.store.database import write_batch
from app.store.postgres.database import PgDatabase
from app.store.target import PostgresTarget, Target

# The columns an AttemptRow cannot leave out; a test's row may (NULL in the table, as sqlite-utils leaves them).
_REQUIRED = AttemptRow._fields[: AttemptRow._fields.index("cached_tokens")]
# Every table a store holds: what `digest` reads of a PostgreSQL database.
_TABLES = ("attempts", "model_status", "checks", "overrides", "audit", "operators", "spend", "_taskrouter_migrations")


def dashboard_db(store: Target) -> str:
    """The value of TASKROUTER_DASHBOARD_DB (what `taskrouter dashboard` hands the Streamlit process)."""
    return store.url if isinstance(store, PostgresTarget) else str(store)


def insert_attempts(store: Target, rows: Iterable[dict[str, Any]]) -> None:
    db = open_database(store)
    try:
        if isinstance(db, PgDatabase):
            write_batch(db, [AttemptRow(**{**dict.fromkeys(_REQUIRED), **row}) for row in rows])
        else:
            with db.conn:
                db["attempts"].insert_all(rows)
    finally:
        db.conn.close()


def insert(store: Target, table: str, row: dict[str, Any]) -> None:
    execute(
        store, f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join('?' for _ in row)})", tuple(row.values())
    )


def execute(store: Target, sql: str, params: tuple[Any, ...] = ()) -> None:
    """One write, committed."""
    db = open_database(store)
    try:
        with db.conn:
            db.conn.execute(sql, params)
    finally:
        db.conn.close()


def digest(store: Target) -> str:
    """What a write would change: a SQLite file's bytes; a PostgreSQL database's tables, row for row."""
    if not isinstance(store, PostgresTarget):
        return hashlib.sha256(store.read_bytes()).hexdigest()
    from app.store.postgres.connection import connect

    conn = connect(store, read_only=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND "
                "relnamespace = 'public'::regnamespace ORDER BY relname"
            )
        ]
        content = {t: [list(r) for r in conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2")] for t in _TABLES}
    finally:
        conn.close()
    return hashlib.sha256(json.dumps([tables, content], default=str).encode()).hexdigest()

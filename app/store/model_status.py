"""The `model_status` table: which models the router leaves alone and why, shared by every process on the store.

Routers write it through the attempt log's writer (deprecated / not_found / cooling_down); ops clear a mark with
`taskrouter status --clear MODEL`, which writes a `cleared` row that every router drops its own mark for.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from app.store.backend import backend_for
from app.store.rows import CLEARED, CLOSED, UPSERT_STATUS, ModelStatusRow
from app.store.sqlite.database import read_only_uri
from app.store.state import MODEL_STATUS_SQL
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.connection import Connection

__all__ = [
    "CLEARED",
    "CLOSED",
    "MODEL_STATUS_SQL",
    "UPSERT_STATUS",
    "ModelStatusRow",
    "clear_model_status",
    "queries_read_only",
    "query_read_only",
    "read_model_status",
    "read_only_uri",
]


def read_model_status(path: Target | str) -> list[dict[str, Any]]:
    """The `model_status` table as dicts; empty when the database does not exist yet.

    Empty too when the store cannot be read: the attempt log's writer reports what is wrong with it, and a router
    must answer calls whatever the store's state."""
    return query_read_only(path, MODEL_STATUS_SQL)


def query_read_only(path: Target | str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of one query on a read-only connection; none when the store does not exist or cannot be read (what
    is wrong with it is the attempt log's writer's to report)."""
    return queries_read_only(path, [(sql, params)])[0]


def queries_read_only(path: Target | str, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
    """The rows of each query, read-only (StoreBackend.read)."""
    return backend_for(path).read(queries)


def clear_model_status(conn: Connection, models: list[str], seen_at: str) -> dict[str, dict[str, Any]]:
    """Mark each model `cleared` (in one transaction): routers drop their own older marks for it at their next
    refresh, and a later failure marks it again. Returns the rows it replaced; models without a mark, already
    cleared or with a closed circuit, are left out and untouched."""
    conn.row_factory = sqlite3.Row
    current = {
        r["model"]: dict(r)
        for r in conn.execute(f"SELECT * FROM model_status WHERE model IN ({', '.join('?' for _ in models)})", models)
    }
    replaced = {m: row for m, row in current.items() if row["status"] not in (CLEARED, CLOSED)}
    with conn:
        for model, row in replaced.items():
            was = f"{row['status']}: {row['detail']}" if row["detail"] else row["status"]
            conn.execute(
                UPSERT_STATUS,
                asdict(ModelStatusRow(model, CLEARED, f"cleared by hand; was {was}"[:500], None, seen_at)),
            )
    return replaced

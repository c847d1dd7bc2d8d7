"""The `model_status` table: which models the router leaves alone and why, shared by every process on the file.

Routers write it through the attempt log's writer (deprecated / not_found / cooling_down); ops clear a mark with
`taskrouter status --clear MODEL`, which writes a `cleared` row that every router drops its own mark for.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from app.store.target import PostgresTarget, Target, locate

if TYPE_CHECKING:
    from app.store.target import Connection

CLEARED = "cleared"
CLOSED = "closed"  # a circuit breaker's probe answered: every router drops its older circuit_open mark


@dataclass(frozen=True, slots=True)
class ModelStatusRow:
    model: str
    status: str  # deprecated | not_found | cooling_down | circuit_open | closed | cleared
    detail: str
    until: str | None
    seen_at: str


UPSERT_STATUS = """
INSERT INTO model_status (model, status, detail, until, first_seen, last_seen, hits)
VALUES (:model, :status, :detail, :until, :seen_at, :seen_at, 1)
ON CONFLICT(model) DO UPDATE SET
    first_seen = CASE WHEN model_status.status = excluded.status THEN model_status.first_seen
                      ELSE excluded.first_seen END,
    hits = CASE WHEN model_status.status = excluded.status THEN model_status.hits + 1 ELSE 1 END,
    status = excluded.status, detail = excluded.detail, until = excluded.until, last_seen = excluded.last_seen
"""


def read_only_uri(path: Path | str) -> str:
    """A `file:` URI opening the database read-only. Quoted: a path with `?`, `#` or `%` would otherwise be
    parsed as the URI's query or fragment and open (or create) a different file."""
    return f"file:{quote(str(Path(path).resolve()))}?mode=ro"


MODEL_STATUS_SQL = "SELECT * FROM model_status ORDER BY model"


def read_model_status(path: Target | str) -> list[dict[str, Any]]:
    """The `model_status` table as dicts; empty when the database does not exist yet.

    Empty too when the file cannot be read: the attempt log's writer reports what is wrong with it, and a router
    must answer calls whatever the file's state."""
    return query_read_only(path, MODEL_STATUS_SQL)


def query_read_only(path: Target | str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of one query on a read-only connection; none when the file does not exist or cannot be read (what
    is wrong with it is the attempt log's writer's to report)."""
    return queries_read_only(path, [(sql, params)])[0]


def queries_read_only(path: Target | str, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
    """The rows of each query, on one read-only connection (one open, one schema read); each empty when the file
    does not exist or cannot be read, or when its table is not there."""
    empty: list[list[dict[str, Any]]] = [[] for _ in queries]
    target = locate(path)
    if isinstance(target, PostgresTarget):
        from app.store.pg_reader import queries_on_server

        return queries_on_server(target, queries)
    try:
        if not Path(path).is_file():
            return empty
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=5)
    except (sqlite3.Error, OSError):
        return empty
    try:
        conn.row_factory = sqlite3.Row
        return [_rows(conn, sql, params) for sql, params in queries]
    finally:
        conn.close()


def _rows(conn: Connection, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    try:  # each on its own: a table a newer migration adds may not be in this file yet
        return [dict(r) for r in conn.execute(sql, params)]
    except sqlite3.Error:
        return []


def clear_model_status(conn: Connection, models: list[str], seen_at: str) -> dict[str, dict[str, Any]]:
    """Mark each model `cleared` (in one transaction): routers drop their own older marks for it at their next
    refresh, and a later failure marks it again. Returns the rows it replaced; models without a mark, already
    cleared or with a closed circuit, are left out and untouched."""
    conn.row_factory = sqlite3.Row
    current = {r["model"]: dict(r) for r in conn.execute(
        f"SELECT * FROM model_status WHERE model IN ({', '.join('?' for _ in models)})", models)}
    replaced = {m: row for m, row in current.items() if row["status"] not in (CLEARED, CLOSED)}
    with conn:
        for model, row in replaced.items():
            was = f"{row['status']}: {row['detail']}" if row["detail"] else row["status"]
            conn.execute(UPSERT_STATUS, asdict(ModelStatusRow(model, CLEARED, f"cleared by hand; was {was}"[:500],
                                                              None, seen_at)))
    return replaced

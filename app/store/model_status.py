"""The `model_status` table: which models the router leaves alone and why, shared by every process on the file.

Routers write it through the attempt log's writer (deprecated / not_found / cooling_down); ops clear a mark with
`taskrouter status --clear MODEL`, which writes a `cleared` row that every router drops its own mark for.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

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


def read_model_status(path: Path | str) -> list[dict[str, Any]]:
    """The `model_status` table as dicts; empty when the database does not exist yet.

    Empty too when the file cannot be read: the attempt log's writer reports what is wrong with it, and a router
    must answer calls whatever the file's state."""
    return query_read_only(path, "SELECT * FROM model_status ORDER BY model")


def query_read_only(path: Path | str, sql: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Rows of one query on a read-only connection; none when the file does not exist or cannot be read (what
    is wrong with it is the attempt log's writer's to report)."""
    try:
        if not Path(path).is_file():
            return []
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=5)
    except (sqlite3.Error, OSError):
        return []
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute(sql, params)]
    except sqlite3.Error:
        return []
    finally:
        conn.close()


def clear_model_status(conn: sqlite3.Connection, models: list[str], seen_at: str) -> dict[str, dict[str, Any]]:
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

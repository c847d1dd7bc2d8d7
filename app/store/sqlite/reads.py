"""Reads from a SQLite file, on read-only connections: SQLite refuses every write on them and never creates the file.
What is wrong with a file that cannot be read is the attempt log's writer's to report: reads here come back empty."""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from app.store.sqlite.database import read_only_uri

logger = logging.getLogger("taskrouter.store")


def read(path: Path, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
    """The rows of each query, on one read-only connection (one open, one schema read); each empty when the file
    does not exist or cannot be read, or when its table is not there."""
    empty: list[list[dict[str, Any]]] = [[] for _ in queries]
    try:
        if not path.is_file():
            return empty
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=5)
    except (sqlite3.Error, OSError):
        return empty
    try:
        conn.row_factory = sqlite3.Row
        return [_rows(conn, sql, params) for sql, params in queries]
    finally:
        conn.close()


def _rows(conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    try:  # each on its own: a table a newer migration adds may not be in this file yet
        return [dict(r) for r in conn.execute(sql, params)]
    except sqlite3.Error:
        return []


def spent_on(path: Path, day: str, after_id: int = 0) -> tuple[float, int]:
    """(the sum of `cost_usd` for one UTC day 'YYYY-MM-DD' in rows with id > after_id, the highest id seen or
    after_id). With after_id, only the rows appended since are read, by rowid: the budget re-syncs on the event
    loop, where summing a busy day through the created_at index would take as long as many calls."""
    if not path.exists():
        return 0.0, after_id
    next_day = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    try:
        conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=5)
        try:
            # NOT INDEXED: walk the rowid range (the new rows), never the created_at index over the whole day.
            source = "attempts NOT INDEXED" if after_id else "attempts"
            # One statement, one snapshot: a row committed in between is either summed or above `last`.
            spent, last = conn.execute(
                f"SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM {source} "
                "WHERE id > ? AND created_at >= ? AND created_at < ?), (SELECT MAX(id) FROM attempts)",
                (after_id, day, next_day),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        logger.error("budget: could not read today's spend from %s (%s); counting from 0", path, exc)
        return 0.0, after_id
    return float(spent), max(after_id, int(last or 0))


def open_reader(path: Path) -> sqlite3.Connection | None:
    """A read-only connection for many one-off reads (the dashboard's pages), rows by name; None when the file does
    not exist."""
    if not path.is_file():
        return None
    conn = sqlite3.connect(read_only_uri(path), uri=True, timeout=5)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only = ON")
    # Map the file instead of copying pages through read(): the full-range pages read faster. Address space only; WAL
    # frames are still read from the -wal file, so a live writer is safe.
    conn.execute("PRAGMA mmap_size = 1073741824")
    return conn

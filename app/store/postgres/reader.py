"""Reads from a PostgreSQL store for routers, the CLI and the dashboard: one read-only connection per server per
process, kept open (a login costs milliseconds; a query on an open connection, a fraction of one), opened again
after the server drops it."""

from __future__ import annotations

import logging
import threading
from typing import Any

from app.store.postgres.connection import PgConnection, connect
from app.store.target import PostgresTarget

logger = logging.getLogger("taskrouter.store")

_READERS: dict[str, PgConnection] = {}
_LOCK = threading.Lock()


def queries_on_server(target: PostgresTarget, queries: list[tuple[str, tuple[Any, ...]]]) -> list[list[dict[str, Any]]]:
    """The rows of each query; each empty when the server cannot be reached or its table is not there (what is
    wrong is the attempt log's writer's to report)."""
    import psycopg

    results: list[list[dict[str, Any]]] = []
    with _LOCK:
        for sql, params in queries:
            try:
                conn = _reader(target)
                results.append([dict(r) for r in conn.execute(sql, params)])
            except psycopg.errors.UndefinedTable:
                results.append([])  # a table a newer migration adds, on a server no router has migrated yet
            except Exception as exc:  # the server is down or went away: the next read opens a new connection
                logger.debug("store: read from %s failed (%s)", target.label, type(exc).__name__)
                _drop(target)
                results.append([])
    return results


def _reader(target: PostgresTarget) -> PgConnection:
    conn = _READERS.get(target.url)
    if conn is None or conn.closed:
        conn = _READERS[target.url] = connect(target, read_only=True, application="taskrouter-reader")
    return conn


def _drop(target: PostgresTarget) -> None:
    conn = _READERS.pop(target.url, None)
    if conn is not None:
        try:
            conn.close()
        except Exception:  # already broken
            logger.debug("store: closing a broken reader failed", exc_info=True)


def close_readers() -> None:
    with _LOCK:
        for url in list(_READERS):
            conn = _READERS.pop(url)
            conn.close()

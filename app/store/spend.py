"""Each UTC day's spend, as the daily budget (app/core/budget.py) and the dashboard read it.

SQLite: the sum of `cost_usd` in the attempt log, read incrementally by id. PostgreSQL: the `spend` row of the
day: `spent`, kept by the writers in the transactions that log the rows, and `reserved`, what the hosts hold for
calls they are making or about to make; `lease` takes a share for one host atomically, so hosts together never
reserve past the limit.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

from app.store.model_status import query_read_only, read_only_uri
from app.store.pg_connection import PgConnection
from app.store.target import PostgresTarget, Target, locate

logger = logging.getLogger("taskrouter.store")


def spent_on(where: Target | str | None, day: str, after_id: int = 0) -> tuple[float, int]:
    """(logged cost for one UTC day 'YYYY-MM-DD' in rows with id > after_id, the highest id seen or after_id).

    SQLite, with after_id: only the rows appended since are read, by rowid: the budget re-syncs on the event
    loop, and summing a busy day through the created_at index costs ~200 ms at a million rows. PostgreSQL: the
    day's `spend` row, whatever after_id (the id returned stays after_id, so the caller reads totals)."""
    if where is None:
        return 0.0, after_id
    target = locate(where)
    if isinstance(target, PostgresTarget):
        rows = query_read_only(target, "SELECT spent FROM spend WHERE day = ?", (day,))
        return (float(rows[0]["spent"]) if rows else 0.0), after_id
    if not Path(target).exists():
        return 0.0, after_id
    next_day = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    try:
        conn = sqlite3.connect(read_only_uri(target), uri=True, timeout=5)
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
        logger.error("budget: could not read today's spend from %s (%s); counting from 0", target, exc)
        return 0.0, after_id
    return float(spent), max(after_id, int(last or 0))


def lease(conn: PgConnection, day: str, want: float, estimate: float, limit: float) -> tuple[float, float, float]:
    """Take up to `want` of the day's budget for this host, atomically against every host: nothing when spend plus
    reservations already reach `limit`; otherwise `want`, or what is left if less, but at least `estimate` (a call
    is let through while anything is left, as on one host). Returns (granted, spent, reserved by every host after).
    One transaction with the day's row locked: hosts asking at once are served one after the other."""
    with conn:
        conn.execute("INSERT INTO spend (day) VALUES (?) ON CONFLICT (day) DO NOTHING", (day,))
        row = conn.execute("SELECT spent, reserved FROM spend WHERE day = ? FOR UPDATE", (day,)).fetchone()
        spent, reserved = (float(row[0]), float(row[1])) if row is not None else (0.0, 0.0)
        left = limit - spent - reserved
        if left <= 0:
            return 0.0, spent, reserved
        granted = max(min(want, left), estimate)
        conn.execute("UPDATE spend SET reserved = reserved + ? WHERE day = ?", (granted, day))
    return granted, spent, reserved + granted

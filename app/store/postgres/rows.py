"""How the attempt log's writer puts a batch into PostgreSQL: one transaction, attempts by COPY, each UTC day's
spend added to `spend` in the same transaction (so the budget and the log never disagree), model status upserts
(whose trigger notifies every other router at commit), released budget reservations, and the response cache's
entries and hits (app/store/response_cache.py)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from app.store import response_cache
from app.store.postgres.connection import PgConnection
from app.store.postgres.migrations import IDS_SETTLED_LOCK, ensure_partitions
from app.store.rows import UPSERT_STATUS, AttemptRow, CacheEntry, CacheHit, ModelStatusRow, Release

_COLUMNS = ", ".join(AttemptRow._fields)
_FLAGS = [AttemptRow._fields.index(name) for name in ("is_fallback", "forced", "hedged")]
_TEXTS = [
    i
    for i, name in enumerate(AttemptRow._fields)
    if getattr(AttemptRow.__annotations__[name], "__forward_arg__", None) in ("str", "str | None")
]
_SAME_ATTEMPT = ("request_id", "attempt", "retry", "model", "created_at")


def write_rows(
    conn: PgConnection, items: Iterable[object], *, skip_known: bool = False, costs_reserved: bool = False
) -> int:
    """Write the rows among `items` in one transaction; returns the attempts written. `skip_known`: leave out
    attempts already in the table (an import of spilled rows). `costs_reserved`: this process's calls reserve
    their budget, so an attempt's cost also leaves `spend.reserved` (see app.store.rows.Release)."""
    attempts: list[AttemptRow] = []
    statuses: list[ModelStatusRow] = []
    released: dict[str, float] = defaultdict(float)
    cached: list[CacheEntry | CacheHit] = []
    for item in items:
        if isinstance(item, AttemptRow):
            attempts.append(item)
        elif isinstance(item, ModelStatusRow):
            statuses.append(item)
        elif isinstance(item, Release):
            released[item.day] += item.amount
        elif isinstance(item, (CacheEntry, CacheHit)):
            cached.append(item)
    today = datetime.now(UTC).date()
    if conn.partitions_through != today:
        ensure_partitions(conn, today)
    with conn:
        conn.execute("SELECT pg_advisory_xact_lock_shared(?)", (IDS_SETTLED_LOCK,))
        costs = _import(conn, attempts) if skip_known else _copy(conn, attempts)
        spent: dict[str, float] = defaultdict(float)
        for created_at, cost in costs:
            if cost:
                spent[created_at[:10]] += cost
        for day in sorted(set(spent) | set(released)):
            conn.execute(
                "INSERT INTO spend (day, spent, reserved) VALUES (?, ?, 0) ON CONFLICT (day) DO UPDATE "
                "SET spent = spend.spent + excluded.spent, "
                "reserved = GREATEST(spend.reserved - ?, 0)",
                (day, spent.get(day, 0.0), released.get(day, 0.0) + (spent.get(day, 0.0) if costs_reserved else 0.0)),
            )
        for status in statuses:
            conn.execute(UPSERT_STATUS, asdict(status))
        if cached:
            response_cache.write(conn, cached)
    return len(costs)


def _values(row: AttemptRow) -> list[Any]:
    values: list[Any] = list(row)
    for i in _FLAGS:
        values[i] = int(values[i])
    for i in _TEXTS:
        value = values[i]
        if value is not None and "\x00" in value:  # PostgreSQL's text cannot hold NUL; SQLite's can
            values[i] = value.replace("\x00", "\ufffd")
    return values


def _copy(conn: PgConnection, attempts: list[AttemptRow]) -> list[tuple[str, float | None]]:
    """(created_at, cost) of each attempt written."""
    if attempts:
        with conn.raw.cursor() as cursor, cursor.copy(f"COPY attempts ({_COLUMNS}) FROM STDIN") as copy:
            for row in attempts:
                copy.write_row(_values(row))
    return [(row.created_at, row.cost_usd) for row in attempts]


def _import(conn: PgConnection, attempts: list[AttemptRow]) -> list[tuple[str, float | None]]:
    """Through a temporary table, so that one statement skips the attempts already there."""
    if not attempts:
        return []
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS import_attempts (LIKE attempts INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with conn.raw.cursor() as cursor, cursor.copy(f"COPY import_attempts ({_COLUMNS}) FROM STDIN") as copy:
        for row in attempts:
            copy.write_row(_values(row))
    same = " AND ".join(f"a.{c} IS NOT DISTINCT FROM i.{c}" for c in _SAME_ATTEMPT)
    # DISTINCT ON: a row spilled twice into the same file is one attempt too.
    batch = f"SELECT DISTINCT ON ({', '.join(_SAME_ATTEMPT)}) * FROM import_attempts"
    columns = ", ".join("i." + c for c in AttemptRow._fields)
    inserted = conn.execute(
        f"INSERT INTO attempts ({_COLUMNS}) SELECT {columns} FROM ({batch}) i "
        f"WHERE NOT EXISTS (SELECT 1 FROM attempts a WHERE {same}) RETURNING created_at, cost_usd"
    )
    return [(r[0], r[1]) for r in inserted.fetchall()]

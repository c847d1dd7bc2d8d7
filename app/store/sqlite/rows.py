"""How the attempt log's writer puts a batch into a SQLite file: prepared multi-row INSERTs, in one transaction."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from typing import Protocol

from app.store import response_cache
from app.store.rows import UPSERT_STATUS, AttemptRow, CacheEntry, CacheHit, ModelStatusRow

# Rows per INSERT statement: each statement costs a cursor and a step on the writer thread, so fewer and larger
# ones are cheaper, up to the parameters a statement may bind (32766 since SQLite 3.32, 999 before).
_CHUNK = 128
_ATTEMPT_COLUMNS = ", ".join(AttemptRow._fields)
_ROW_PLACEHOLDERS = "(" + ", ".join("?" for _ in AttemptRow._fields) + ")"
_INSERTS: dict[int, str] = {}
_CACHE_ROWS = frozenset((CacheEntry, CacheHit))
# A row identical in these columns is the same attempt: importing a file twice (a crash between the import's
# commit and the file's removal) must not log it twice. request_id is indexed, so each check is one lookup.
_SAME_ATTEMPT = ("request_id", "attempt", "retry", "model", "created_at")
_INSERT_IF_NEW = (
    f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) SELECT {', '.join('?' for _ in AttemptRow._fields)} "
    f"WHERE NOT EXISTS (SELECT 1 FROM attempts WHERE "
    f"{' AND '.join(f'{c} = ?' for c in _SAME_ATTEMPT)})"
)
_SAME_INDEXES = [AttemptRow._fields.index(c) for c in _SAME_ATTEMPT]


# Most rows leave the last columns at their defaults (no retry, not hedged, not streamed, no override): their
# chunks name only the columns before, so SQLite fills the rest without binding four parameters a row.
_LEAN = AttemptRow._fields.index("retry")
_LEAN_TAIL = tuple(AttemptRow._field_defaults[name] for name in AttemptRow._fields[_LEAN:])
_LEAN_COLUMNS = ", ".join(AttemptRow._fields[:_LEAN])
_LEAN_PLACEHOLDERS = "(" + ", ".join("?" for _ in AttemptRow._fields[:_LEAN]) + ")"
_LEAN_INSERTS: dict[int, str] = {}


def _insert_sql(rows: int, lean: bool = False) -> str:
    cache = _LEAN_INSERTS if lean else _INSERTS
    sql = cache.get(rows)
    if sql is None:
        columns, placeholders = (_LEAN_COLUMNS, _LEAN_PLACEHOLDERS) if lean else (_ATTEMPT_COLUMNS, _ROW_PLACEHOLDERS)
        sql = cache[rows] = f"INSERT INTO attempts ({columns}) VALUES " + ", ".join(
            itertools.repeat(placeholders, rows)
        )
    return sql


class _Opened(Protocol):
    conn: sqlite3.Connection


def write_rows(db: _Opened, items: Iterable[object], *, skip_known: bool = False) -> int:
    """Write the rows among `items` (the response cache's too) in one transaction; returns the attempts written.
    `skip_known`: leave out attempts already in the table (an import), one statement per row instead of one per
    chunk."""
    # The schema comes from sqlite-utils (migrations); rows go in through prepared multi-row INSERTs, which cost
    # a fraction of insert_all's per-row Python work and one SQLite step per chunk on the writer thread.
    attempts = [item for item in items if isinstance(item, AttemptRow)]
    statuses = [asdict(item) for item in items if isinstance(item, ModelStatusRow)]
    # The response cache's rows, looked for only when the batch holds rows of other kinds: a failing isinstance
    # costs several times a matching one, on every row of every batch.
    others = len(items) - len(attempts) - len(statuses)  # type: ignore[arg-type]  # a list: it is read thrice
    cached = [item for item in items if type(item) in _CACHE_ROWS] if others else []
    written = len(attempts)
    with db.conn:
        if skip_known:
            before = db.conn.total_changes
            db.conn.executemany(_INSERT_IF_NEW, [(*row, *(row[i] for i in _SAME_INDEXES)) for row in attempts])
            written = db.conn.total_changes - before
        else:
            for chunk in _chunks(attempts, _chunk_rows(db.conn)):
                if all(row[_LEAN:] == _LEAN_TAIL for row in chunk):
                    values = list(itertools.chain.from_iterable(row[:_LEAN] for row in chunk))
                    db.conn.execute(_insert_sql(len(chunk), lean=True), values)
                else:
                    db.conn.execute(_insert_sql(len(chunk)), list(itertools.chain.from_iterable(chunk)))
        for status in statuses:
            db.conn.execute(UPSERT_STATUS, status)
        if cached:
            response_cache.write(db.conn, cached)
    return written


def _chunk_rows(conn: sqlite3.Connection) -> int:
    return max(1, min(_CHUNK, conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // len(AttemptRow._fields)))


def _chunks(rows: list[AttemptRow], size: int) -> Iterator[list[AttemptRow]]:
    """Full chunks of `size`, then the rest in chunks of falling powers of two: a few statement shapes in all, so
    the sqlite3 module's statement cache keeps every one prepared (a prepare costs more than the rows it saves)."""
    start, end = 0, len(rows)
    while end - start >= size:
        yield rows[start : start + size]
        start += size
    step = 1 << (size.bit_length() - 1)
    while start < end:
        while step > end - start:
            step >>= 1
        yield rows[start : start + step]
        start += step

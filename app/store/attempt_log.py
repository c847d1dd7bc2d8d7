"""The attempt log: every attempt and skip, and model status changes, written to SQLite off the event loop.

The executor only appends a tuple to a deque; one writer thread per database file wakes once per batch (not per
row), lingers briefly so rows gather, and writes them with one multi-row INSERT per chunk (one SQLite step, so
one release of the GIL, per chunk rather than per row). A locked or full database is logged and retried, never
raised into a call; rows wait in memory (bounded) until the write succeeds. `flush()` runs at interpreter exit
so a normal exit loses nothing.
"""

from __future__ import annotations

import atexit
import itertools
import logging
import math
import sqlite3
import threading
import time
from collections import deque
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from sqlite_utils import Database

from app.store.migrations import migrate
from app.store.model_status import UPSERT_STATUS, ModelStatusRow

logger = logging.getLogger("taskrouter.store")

MAX_PENDING_ROWS = 200_000  # beyond this, while the disk refuses writes, the oldest rows are dropped (logged)
_BATCH = 2_000  # rows per transaction
_CHUNK = 32  # rows per INSERT statement: 32 x 27 parameters stays under SQLite's oldest limit of 999
LINGER_SECONDS = 0.05  # how long the writer gathers rows after the first one arrives, before a commit


_second: tuple[int, str] = (-1, "")  # the last whole second formatted: strftime once a second, not once a row


def utc_now_iso() -> str:
    """Now as `2026-11-22T06:26:55.123Z` (what `created_at` holds), in well under a microsecond."""
    return iso_millis(time.time())


def iso_millis(epoch: float) -> str:
    """`iso_from_epoch`, to the same character, at a fraction of datetime's cost."""
    global _second
    frac, seconds = math.modf(epoch)  # split, then round, exactly as datetime.fromtimestamp does
    whole, micros = int(seconds), round(frac * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    cached, prefix = _second
    if whole != cached:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, prefix)
    return f"{prefix}.{micros // 1000:03d}Z"


def iso_from_epoch(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_from_iso(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class AttemptRow(NamedTuple):
    """One row of the `attempts` table, exactly as written, in column order.

    A NamedTuple rather than a frozen dataclass: it is built on the event loop once per attempt (a tuple costs a
    fifth of a frozen dataclass's __init__) and it already is the parameter tuple the INSERT takes.
    """

    request_id: str
    task_type: str
    model: str
    provider: str
    attempt: int
    outcome: str
    error_kind: str | None
    status_code: int | None
    error_message: str | None
    is_fallback: bool
    forced: bool
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_ms: float | None
    cost_usd: float | None
    created_at: str
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    variant: str | None = None
    finish_reason: str | None = None
    provider_request_id: str | None = None
    prompt: str | None = None
    response: str | None = None
    retry: int = 0  # 0: the request's first call to this model; n: its n-th retry
    hedged: bool = False  # started in parallel with a slower call (HEDGE_AFTER_MS)
    first_token_ms: float | None = None  # streamed attempts: from the call's start to its first text or tool call


class _Flush:
    """A marker in the row stream: set once every row recorded before it is written (or dropped)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_Item = AttemptRow | ModelStatusRow | _Flush

def open_database(path: Path | str) -> Database:
    """Open (creating if needed) and migrate. Every connection waits for locks instead of failing at once."""
    conn = sqlite3.connect(str(path), timeout=10, check_same_thread=False)
    db = Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    migrate(db)
    return db


class AttemptLog:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        open_database(self.path).conn.close()  # fail at start, naming the file, rather than on first write
        self._items: deque[_Item] = deque()  # append and popleft are atomic: no lock between loop and writer
        self._wake = threading.Event()  # set by record() only while the writer sleeps, and by flush()
        self._hurry = threading.Event()  # a flush is waiting: cut the linger short
        self._writer_idle = False
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.dropped = 0

    def record(self, row: AttemptRow | ModelStatusRow) -> None:
        self._items.append(row)
        # The writer publishes that it sleeps before it looks at the deque a last time, and this looks at that
        # flag after appending: one of the two sees the other, so a row never waits for a wake-up that never comes.
        if self._writer_idle:
            self._wake.set()
        elif self._thread is None:
            self._start()

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything recorded so far is written (or dropped). False if the timeout ran out."""
        if self._thread is None:
            return True
        marker = _Flush()
        self._items.append(marker)
        self._hurry.set()
        self._wake.set()
        return marker.done.wait(timeout)

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name=f"taskrouter-log:{self.path.name}", daemon=True)
                thread.start()
                self._thread = thread

    def _gather(self, pending: list[_Item]) -> None:
        """Sleep until there is a row, linger so more arrive (unless a flush hurries), then take what is there."""
        items = self._items
        if not items and not pending:
            self._wake.clear()
            self._writer_idle = True
            if not items:
                self._wake.wait()
            self._writer_idle = False
        if not pending and len(items) < _BATCH:
            # Under steady load too, not only after a wake-up: otherwise the writer commits every row or two as
            # they trickle in, and a commit costs as much CPU as fifty rows.
            self._hurry.wait(LINGER_SECONDS)
        self._hurry.clear()
        for _ in range(len(items)):
            pending.append(items.popleft())

    def _run(self) -> None:
        db: Database | None = None
        pending: list[_Item] = []
        backoff = 0.05
        while True:
            self._gather(pending)
            try:
                if db is None:
                    db = open_database(self.path)
                while pending:  # committed chunks leave `pending` at once: a retry never writes a row twice
                    chunk = pending[:_BATCH]
                    _write(db, chunk)
                    del pending[:_BATCH]
                    _settle(chunk)
            except (sqlite3.Error, OSError) as exc:
                logger.error("attempt log: writing %d rows to %s failed (%s); retrying", _rows_in(pending),
                             self.path, exc)
                db = None
                self._drop_beyond_limit(pending)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except Exception:  # a row SQLite can never take: retrying would wedge the log for good
                chunk = pending[:_BATCH]
                del pending[:_BATCH]
                self.dropped += _rows_in(chunk)
                logger.exception("attempt log: dropped %d rows that cannot be written", _rows_in(chunk))
                _settle(chunk)
            backoff = 0.05

    def _drop_beyond_limit(self, pending: list[_Item]) -> None:
        excess = _rows_in(pending) - MAX_PENDING_ROWS
        if excess <= 0:
            return
        kept: list[_Item] = []
        for item in pending:  # oldest first; flush markers stay, each set once the rows before it are settled
            if excess > 0 and not isinstance(item, _Flush):
                excess -= 1
                self.dropped += 1
            else:
                kept.append(item)
        logger.error("attempt log: dropped %d rows, the database refused them", len(pending) - len(kept))
        pending[:] = kept


def _rows_in(items: list[_Item]) -> int:
    return sum(not isinstance(item, _Flush) for item in items)


def _settle(items: list[_Item]) -> None:
    for item in items:
        if isinstance(item, _Flush):
            item.done.set()


_ATTEMPT_COLUMNS = ", ".join(AttemptRow._fields)
_ROW_PLACEHOLDERS = "(" + ", ".join("?" for _ in AttemptRow._fields) + ")"
_INSERTS: dict[int, str] = {}


def _insert_sql(rows: int) -> str:
    sql = _INSERTS.get(rows)
    if sql is None:
        sql = _INSERTS[rows] = f"INSERT INTO attempts ({_ATTEMPT_COLUMNS}) VALUES " + ", ".join(
            itertools.repeat(_ROW_PLACEHOLDERS, rows))
    return sql


def _write(db: Database, items: list[_Item]) -> None:
    # The schema comes from sqlite-utils (migrations); rows go in through prepared multi-row INSERTs, which cost
    # a fraction of insert_all's per-row Python work and one SQLite step per chunk on the writer thread.
    attempts = [item for item in items if isinstance(item, AttemptRow)]
    statuses = [asdict(item) for item in items if isinstance(item, ModelStatusRow)]
    with db.conn:
        for start in range(0, len(attempts), _CHUNK):
            chunk = attempts[start:start + _CHUNK]
            db.conn.execute(_insert_sql(len(chunk)), list(itertools.chain.from_iterable(chunk)))
        for status in statuses:
            db.conn.execute(UPSERT_STATUS, status)


_LOGS: dict[Path, AttemptLog] = {}
_LOGS_LOCK = threading.Lock()


def get_attempt_log(path: Path | str) -> AttemptLog:
    """One writer per database file per process: writers of one file would only contend for its lock."""
    key = Path(path).resolve()
    with _LOGS_LOCK:
        log = _LOGS.get(key)
        if log is None:
            log = _LOGS[key] = AttemptLog(key)
        return log


@atexit.register
def _flush_all_at_exit() -> None:
    for log in list(_LOGS.values()):
        if not log.flush(timeout=10):
            logger.error("attempt log: %s not fully written at exit", log.path)

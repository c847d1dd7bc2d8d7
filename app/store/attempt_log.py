"""The attempt log: every attempt and skip, and model status changes, written to SQLite off the event loop.

The executor only enqueues (a few hundred nanoseconds); one writer thread per database file batches rows into
transactions. A locked or full database is logged and retried, never raised into a call; rows wait in memory
(bounded) until the write succeeds. `flush()` runs at interpreter exit so a normal exit loses nothing.
"""

from __future__ import annotations

import atexit
import logging
import queue
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from operator import attrgetter
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from app.store.migrations import migrate

logger = logging.getLogger("taskrouter.store")

MAX_PENDING_ROWS = 200_000  # beyond this, while the disk refuses writes, the oldest rows are dropped (logged)
_BATCH = 2_000
LINGER_SECONDS = 0.05  # how long the writer gathers rows before a commit
_FLUSH = object()


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_from_epoch(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_from_iso(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True, slots=True)
class AttemptRow:
    """One row of the `attempts` table, exactly as written."""

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


@dataclass(frozen=True, slots=True)
class ModelStatusRow:
    model: str
    status: str  # deprecated | not_found | cooling_down
    detail: str
    until: str | None
    seen_at: str


_UPSERT_STATUS = """
INSERT INTO model_status (model, status, detail, until, first_seen, last_seen, hits)
VALUES (:model, :status, :detail, :until, :seen_at, :seen_at, 1)
ON CONFLICT(model) DO UPDATE SET
    first_seen = CASE WHEN model_status.status = excluded.status THEN model_status.first_seen
                      ELSE excluded.first_seen END,
    hits = CASE WHEN model_status.status = excluded.status THEN model_status.hits + 1 ELSE 1 END,
    status = excluded.status, detail = excluded.detail, until = excluded.until, last_seen = excluded.last_seen
"""


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
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        open_database(self.path).conn.close()  # fail at start, naming the file, rather than on first write
        self._queue: queue.SimpleQueue[AttemptRow | ModelStatusRow | object] = queue.SimpleQueue()
        self._count_lock = threading.Lock()
        self._written = threading.Condition()
        self._enqueued = 0
        self._settled = 0  # written or dropped
        self.dropped = 0
        self._thread: threading.Thread | None = None

    def record(self, row: AttemptRow | ModelStatusRow) -> None:
        with self._count_lock:
            self._enqueued += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"taskrouter-log:{self.path.name}",
                                                daemon=True)
                self._thread.start()
        self._queue.put(row)

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything recorded so far is written (or dropped). False if the timeout ran out."""
        with self._count_lock:
            target = self._enqueued
            started = self._thread is not None
        if started:
            self._queue.put(_FLUSH)  # cut the writer's linger short
        with self._written:
            return self._written.wait_for(lambda: self._settled >= target, timeout=timeout)

    def _collect(self, pending: list[AttemptRow | ModelStatusRow]) -> None:
        """Wait for a first row, then linger briefly for more: one commit per batch, not per row, is what keeps
        the writer from competing with the event loop for the GIL under load."""
        deadline = None
        while len(pending) < _BATCH:
            if not pending:
                item = self._queue.get()
            else:
                if deadline is None:
                    deadline = time.monotonic() + LINGER_SECONDS
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    item = self._queue.get(timeout=remaining)
                except queue.Empty:
                    return
            if item is _FLUSH:
                if pending:
                    return
                continue
            pending.append(item)  # type: ignore[arg-type]

    def _run(self) -> None:
        db: Database | None = None
        pending: list[AttemptRow | ModelStatusRow] = []
        backoff = 0.05
        while True:
            self._collect(pending)
            try:
                if db is None:
                    db = open_database(self.path)
                _write(db, pending)
            except (sqlite3.Error, OSError) as exc:
                logger.error("attempt log: writing %d rows to %s failed (%s); retrying", len(pending),
                             self.path, exc)
                db = None
                if len(pending) > MAX_PENDING_ROWS:
                    excess = len(pending) - MAX_PENDING_ROWS
                    del pending[:excess]
                    self.dropped += excess
                    logger.error("attempt log: dropped %d rows, the database refused them", excess)
                    self._settle(excess)
                time.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
                continue
            except Exception:  # a row SQLite can never take: retrying would wedge the log for good
                logger.exception("attempt log: dropped %d rows that cannot be written", len(pending))
                self.dropped += len(pending)
            backoff = 0.05
            self._settle(len(pending))
            pending = []

    def _settle(self, count: int) -> None:
        with self._written:
            self._settled += count
            self._written.notify_all()


_ATTEMPT_FIELDS = [f.name for f in fields(AttemptRow)]
_attempt_values = attrgetter(*_ATTEMPT_FIELDS)
_INSERT_ATTEMPTS = (
    f"INSERT INTO attempts ({', '.join(_ATTEMPT_FIELDS)}) VALUES ({', '.join('?' for _ in _ATTEMPT_FIELDS)})"
)


def _write(db: Database, rows: list[AttemptRow | ModelStatusRow]) -> None:
    # The schema comes from sqlite-utils (migrations); rows go in through one prepared executemany, which costs
    # a fraction of insert_all's per-row Python work on the writer thread.
    attempts = [_attempt_values(r) for r in rows if isinstance(r, AttemptRow)]
    statuses = [asdict(r) for r in rows if isinstance(r, ModelStatusRow)]
    with db.conn:
        if attempts:
            db.conn.executemany(_INSERT_ATTEMPTS, attempts)
        for status in statuses:
            db.conn.execute(_UPSERT_STATUS, status)


def read_model_status(path: Path | str) -> list[dict[str, Any]]:
    """The `model_status` table as dicts; empty when the database does not exist yet."""
    if not Path(path).exists():
        return []
    conn = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=5)
    try:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM model_status")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


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

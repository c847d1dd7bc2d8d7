"""The attempt log: every attempt and skip, and model status changes, written to the store off the event loop.

A request only appends a row to a deque; one writer thread per database file wakes once per batch (not per
row), lingers briefly so rows gather, and writes them with one multi-row INSERT per chunk (one SQLite step, so
one release of the GIL, per chunk rather than per row); on PostgreSQL, one COPY per batch
(app/store/postgres/rows.py). The store's backend object (app/store/backend.py), chosen when the log is made, opens
the store and writes each batch: one method call per batch, none per row.
A model status change hurries the batch out: other routers, on other hosts too, learn of it within milliseconds.

Nothing here can fail a call, or wait for the store. The file is opened (and migrated, and quick-checked) by the
writer thread, started when a router is built, not by the router: whatever is wrong with it is logged once, naming
the file, what is wrong and what to do
(`StoreProblem`), and `problem` says it until it is fixed. Meanwhile rows wait in memory and the writer tries
again with a backoff; beyond MAX_PENDING_ROWS, and for a damaged file from the start, they go to the spill file
beside the database (`spill.py`), which the next healthy open imports. At interpreter exit the log gets
ATTEMPT_LOG_EXIT_SECONDS to write what is pending (longer than the busy timeout, so a lock held a little longer
at exit delays rows rather than losing them); what is still unwritten then is spilled, and one line says how
many rows went where.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from pathlib import Path

from app.store.backend import RowWriter, StoreBackend, backend_for
from app.store.problem import StoreProblem
from app.store.rows import AttemptRow, CacheEntry, CacheHit, ModelStatusRow, Release
from app.store.spill import import_spilled, spill, spill_path
from app.store.sqlite.database import BUSY_TIMEOUT_SECONDS
from app.store.target import Target

logger = logging.getLogger("taskrouter.store")

MAX_PENDING_ROWS = 200_000  # beyond this, while the database refuses rows, the oldest go to the spill file
_BATCH = 2_000  # rows per transaction
# How long the writer gathers rows after the first one arrives, before a commit. Each commit and wake-up costs the
# process more CPU (the writer's, and the event loop's GIL hand-offs to it) than the rows it carries, so under load
# fewer, larger commits lower every call's cost; the price is the window a kill -9 can take with it.
LINGER_SECONDS = 0.1
DEFAULT_EXIT_SECONDS = 3 * BUSY_TIMEOUT_SECONDS
_MAX_BACKOFF = 2.0


class _Flush:
    """A marker in the row stream: set once every row recorded before it is written (or spilled, or dropped)."""

    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_Item = AttemptRow | ModelStatusRow | Release | CacheEntry | CacheHit | _Flush


class AttemptLog:
    def __init__(self, where: Target | str, *, exit_seconds: float = DEFAULT_EXIT_SECONDS) -> None:
        # No I/O here: the router is built even when the store is unusable.
        self.store: StoreBackend = backend_for(where).absolute()  # the process may change its working directory
        self.target: Target = self.store.target
        self.path = self.store.spill_base  # the spill file's base: rows the store could not take
        self.label = self.store.label
        self.exit_seconds = exit_seconds
        self._items: deque[_Item] = deque()  # append and popleft are atomic: no lock between loop and writer
        self._wake = threading.Event()  # set by record() only while the writer sleeps, and by flush()
        self._hurry = threading.Event()  # a flush is waiting: cut the linger short
        self._writer_idle = False
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._opened = threading.Event()  # the writer's first open has succeeded or failed
        self._closing = False  # at exit: a failed write spills at once instead of waiting to retry
        self._stop = False  # closed: the writer ends once the deque is empty
        self._pending: list[_Item] = []  # taken from the deque, not yet written: the writer's own
        self.problem: str | None = None  # what is wrong with the file right now, as logged
        self.dropped = 0  # rows neither written nor spilled (the spill file failed too)
        self.spilled = 0  # rows this process put in the spill file
        self.costs_reserved = False  # a shared budget reserves each call's cost before it is logged (spend_ledger)

    def prepare(self) -> None:
        """Start the writer, which opens the store at once, before rows need it; wait for nothing. Building a router
        calls this, and the build is part of a process's first call, inside its deadline: rows recorded before the
        open ends wait in memory and go out with the writer's first batch after it. Opened at the first row under
        a busy event loop instead, each of the open's statements would wait for the loop to hand back the GIL, with
        every row of that time only in memory; so the open is early, and small: a file already migrated is
        opened with the sqlite3 module alone (open_for_rows). A server's driver loads here, so that the writer
        does not import it, holding the GIL, while the first calls run."""
        self.store.load_driver()
        self._start()

    def wait_opened(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for the writer's first open of the store (after `prepare`); True once it
        has been tried: the store opened, or its problem logged (`problem`). For tools and tests: a call never
        waits for it."""
        return self._opened.wait(timeout)

    def record(self, row: AttemptRow | ModelStatusRow | Release | CacheEntry | CacheHit) -> None:
        """Queue a row for the writer: never waits. The response cache's entries and hits go out with the batch they
        fall in, but never to the spill file (app/store/response_cache.py says why)."""
        self._items.append(row)
        # The writer publishes that it sleeps before it looks at the deque a last time, and this looks at that
        # flag after appending: one of the two sees the other, so a row never waits for a wake-up that never comes.
        if self._writer_idle:
            self._wake.set()
        elif self._thread is None:
            self._start()

    def record_now(self, row: ModelStatusRow | Release) -> None:
        """Record, and cut the writer's linger short: other processes should see a mark at once. The hurry comes
        after the row is in: a writer it woke then takes the row in this batch."""
        self.record(row)
        self._hurry.set()

    def flush(self, timeout: float = 30.0) -> bool:
        """Block until everything recorded so far is written (or spilled). False if the timeout ran out."""
        if self._thread is None:
            return True
        marker = _Flush()
        self._items.append(marker)
        self._hurry.set()
        self._wake.set()
        return marker.done.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Write what is pending within `timeout` (default: exit_seconds), spill what could not be written, and
        say so in one line. True when every row reached the database."""
        if self._thread is None:
            return True
        spilled_before, dropped_before = self.spilled, self.dropped
        self._closing = True
        written = self.flush(self.exit_seconds if timeout is None else timeout)
        if not written:
            # The writer is stuck in a write past the deadline (its transaction dies with the process, so its rows
            # are spilled too; an import skips any that made it after all) and rows it has not taken yet.
            self._save([*self._pending, *_drain(self._items)], "still unwritten at exit")
        thread = self._thread
        self._stop = True
        self._wake.set()
        if written:
            thread.join(timeout=5)
        self._thread = None
        self._closing = self._stop = False  # a row recorded after this starts a new writer
        spilled, dropped = self.spilled - spilled_before, self.dropped - dropped_before
        if spilled or dropped:
            where = (
                f"{spilled} saved to {spill_path(self.path)} (the next process that opens the database imports them)"
                if spilled
                else ""
            )
            lost = f"{dropped} lost (the spill file could not be written either)" if dropped else ""
            logger.error(
                "attempt log: %d rows could not be written to %s at exit (%s): %s",
                spilled + dropped,
                self.label,
                self.problem or "the write did not finish in time",
                "; ".join(x for x in (where, lost) if x),
            )
        return written and not spilled and not dropped

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
            if not items and not self._stop:
                self._wake.wait()
            self._writer_idle = False
        if not pending and len(items) < _BATCH and not self._closing:
            # Under steady load too, not only after a wake-up: otherwise the writer commits every row or two as
            # they trickle in, and a commit costs as much CPU as fifty rows.
            self._hurry.wait(LINGER_SECONDS)
        self._hurry.clear()
        for _ in range(len(items)):
            pending.append(items.popleft())

    def _run(self) -> None:
        pending = self._pending
        backoff = 0.05
        store = self.store
        errors = store.write_errors
        db = self._open_first(errors)
        while True:
            self._gather(pending)
            if self._stop and not pending and not self._items:
                if db is not None:
                    db.conn.close()
                return
            try:
                if db is None:
                    db = self._open()
                while pending:  # committed chunks leave `pending` at once: a retry never writes a row twice
                    chunk = pending[:_BATCH]
                    db.write(chunk, costs_reserved=self.costs_reserved)
                    del pending[:_BATCH]
                    if self.problem is not None:  # said after a write, not an open: a full disk opens fine
                        logger.warning("attempt log: %s takes rows again; the waiting rows are written", self.label)
                        self.problem = None
                    _settle(chunk)
            except errors as exc:
                problem = store.problem_of(exc)
                self._report(problem)
                if db is not None:
                    _close_quietly(db)
                    db = None
                if problem.corrupt or self._closing:
                    self._save(pending, "not written")  # a damaged file gets nothing; at exit, no retries
                    pending.clear()
                else:
                    self._save_beyond_limit(pending)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            except Exception:  # a row SQLite can never take: retrying (or spilling) would wedge the log for good
                chunk = pending[:_BATCH]
                del pending[:_BATCH]
                self.dropped += _rows_in(chunk)
                logger.exception(
                    "attempt log: dropped %d rows that cannot be written to %s", _rows_in(chunk), self.label
                )
                _settle(chunk)
            backoff = 0.05

    def _open_first(self, errors: tuple[type[BaseException], ...]) -> RowWriter | None:
        """The store opened as the writer starts, before rows need it. A failure is logged here; the open is tried
        again, and its failure handled, once there are rows."""
        try:
            return self._open()
        except errors as exc:
            self._report(self.store.problem_of(exc))
        except Exception:
            logger.exception("attempt log: opening %s failed; it is tried again with the first rows", self.label)
        finally:
            self._opened.set()
        return None

    def _open(self) -> RowWriter:
        db = self.store.open_for_rows()
        try:
            written, _ = import_spilled(db, self.path)
        except Exception as exc:  # whatever stops the import, the file is kept: no row in it is lost
            logger.error(
                "attempt log: could not import %s (%s); it is kept for the next open", spill_path(self.path), exc
            )
        else:
            if written:
                logger.warning("attempt log: imported %d rows from %s", written, spill_path(self.path))
        return db

    def _report(self, problem: StoreProblem) -> None:
        """Once per distinct problem: a file that stays unusable does not flood the log."""
        if str(problem) != self.problem:
            self.problem = str(problem)
            logger.error("attempt log: %s", problem)

    def _save(self, items: list[_Item], why: str) -> None:
        """Spill the rows among `items` (or count them dropped if that fails too), then release their markers."""
        rows = _rows_in(items)
        if rows:
            try:
                self.spilled += spill(self.path, items)
            except OSError as exc:
                self.dropped += rows
                logger.error(
                    "attempt log: %d rows %s and could not be saved to %s (%s): lost",
                    rows,
                    why,
                    spill_path(self.path),
                    exc,
                )
        _settle(items)

    def _save_beyond_limit(self, pending: list[_Item]) -> None:
        excess = _rows_in(pending) - MAX_PENDING_ROWS
        if excess <= 0:
            return
        oldest: list[_Item] = []
        kept: list[_Item] = []
        for item in pending:  # oldest first; flush markers stay, each set once the rows before it are settled
            if excess > 0 and not isinstance(item, _Flush):
                excess -= 1
                oldest.append(item)
            else:
                kept.append(item)
        self._save(oldest, f"beyond the {MAX_PENDING_ROWS} kept in memory")
        pending[:] = kept


def _rows_in(items: list[_Item]) -> int:
    return sum(isinstance(item, (AttemptRow, ModelStatusRow)) for item in items)


def _close_quietly(db: RowWriter) -> None:
    try:
        db.conn.close()
    except Exception:  # a connection the server already dropped
        logger.debug("attempt log: closing a broken connection failed", exc_info=True)


def _settle(items: list[_Item]) -> None:
    for item in items:
        if isinstance(item, _Flush):
            item.done.set()


def _drain(items: deque[_Item]) -> list[_Item]:
    taken = []
    while items:
        taken.append(items.popleft())
    return taken


_LOGS: dict[Path | str, AttemptLog] = {}
_LOGS_LOCK = threading.Lock()


def get_attempt_log(where: Target | str, *, exit_seconds: float = DEFAULT_EXIT_SECONDS) -> AttemptLog:
    """One writer per store per process: writers of one file would only contend for its lock."""
    store = backend_for(where)
    with _LOGS_LOCK:
        log = _LOGS.get(store.key)
        if log is None:
            log = _LOGS[store.key] = AttemptLog(store.target, exit_seconds=exit_seconds)
        else:
            log.exit_seconds = max(log.exit_seconds, exit_seconds)
        return log


def flush_all(timeout: float | None = None) -> bool:
    """Flush every attempt log of this process, each within `timeout` (default: its exit_seconds)."""
    return all([log.flush(log.exit_seconds if timeout is None else timeout) for log in list(_LOGS.values())])


@atexit.register
def _close_all_at_exit() -> None:
    for log in list(_LOGS.values()):
        log.close()

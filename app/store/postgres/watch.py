"""Marks and overrides pushed to routers by PostgreSQL, instead of read on their event loops.

One thread per server per process LISTENs on `taskrouter_state` (a trigger notifies it at the commit of every
change to `model_status` or `overrides`, from any host), reads both tables when told, and publishes them as one
new `State`. A router compares that object with the one it applied last: no I/O, no lock on the hot path. The
thread also reads every `every` seconds, the safety net for a notification lost while it reconnected.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time

from app.clock import utc_now_iso
from app.store.postgres.connection import PgConnection
from app.store.postgres.database import open_server
from app.store.postgres.migrations import NOTIFY_CHANNEL
from app.store.state import ACTIVE_SQL, MODEL_STATUS_SQL, State, override_from_row
from app.store.target import PostgresTarget

logger = logging.getLogger("taskrouter.store")

_TICK = 0.2  # how often the thread looks up from waiting: how long stop() may take


class StateWatch:
    def __init__(self, target: PostgresTarget, every: float) -> None:
        self.target = target
        self.every = max(every, _TICK)
        self.latest: State | None = None
        self.users = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._problem: str | None = None
        self._first = threading.Event()

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="taskrouter-watch", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)

    def _run(self) -> None:
        backoff = 0.05
        while not self._stop.is_set():
            try:
                self._listen()
                backoff = 0.05
            except Exception as exc:  # the server went away: read again once it is back
                what = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
                if what != self._problem:
                    self._problem = what
                    logger.warning(
                        "store: lost the change feed from %s (%s); marks and overrides are re-read when it is back",
                        self.target.label,
                        what,
                    )
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def _listen(self) -> None:
        conn = open_server(self.target).conn  # migrated: a router may start before any other opened the store
        try:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._read(conn)  # after LISTEN: a change committed from here on is notified, and none is missed
            if self._problem is not None:
                logger.warning("store: the change feed from %s is back", self.target.label)
                self._problem = None
            next_read = time.monotonic() + self.every
            while not self._stop.is_set():
                told = False
                for _ in conn.raw.notifies(timeout=_TICK):
                    told = True  # drain what arrived together: one read answers them all
                    break
                if told or time.monotonic() >= next_read:
                    self._read(conn)
                    next_read = time.monotonic() + self.every
        finally:
            conn.close()

    def _read(self, conn: PgConnection) -> None:
        # The connection was opened migrated, so both tables exist: an error here is the server's, and the feed is
        # read again once it answers (an empty list would say every override ended).
        marks = [dict(r) for r in conn.execute(MODEL_STATUS_SQL)]
        active = [override_from_row(r) for r in conn.execute(ACTIVE_SQL, (utc_now_iso(),))]
        self.latest = State(marks, active, time.monotonic())
        self._first.set()

    def release(self) -> None:
        release_watch(self)

    def wait_first(self, timeout: float) -> State | None:
        """The first state read, waiting for it up to `timeout` (a router's first call must not run blind to marks
        set before it started)."""
        self._first.wait(timeout)
        return self.latest


_WATCHES: dict[str, StateWatch] = {}
_LOCK = threading.Lock()


def acquire_watch(target: PostgresTarget, every: float) -> StateWatch:
    """The process's watch of this server, started; `release_watch` when done."""
    with _LOCK:
        watch = _WATCHES.get(target.url)
        if watch is None:
            watch = _WATCHES[target.url] = StateWatch(target, every)
        watch.users += 1
        watch.start()
        return watch


def release_watch(watch: StateWatch) -> None:
    with _LOCK:
        watch.users -= 1
        if watch.users > 0:
            return
        _WATCHES.pop(watch.target.url, None)
    watch.stop()


@atexit.register
def stop_all_watches() -> None:
    with _LOCK:
        watches = list(_WATCHES.values())
        _WATCHES.clear()
    for watch in watches:
        watch.stop()

"""Sign-in attempts, throttled per client: a guesser waits longer after each failure, then is locked out.

Pure and time-injected (the caller passes `now`, seconds on any monotonic clock), so the rules are tested
without waiting. One instance per dashboard process (`SIGN_INS`): Streamlit runs every session's script in its
own thread of one process, so a lock guards the table.

The rule, for one client: the first FREE_FAILURES failures cost nothing (a typo); each further one doubles the
wait, from BASE_DELAY_SECONDS up to MAX_DELAY_SECONDS; at LOCKOUT_FAILURES failures the client is locked out for
LOCKOUT_SECONDS, and each failure after that locks it out again. A success clears the client's count. While
`check` says to wait, the caller refuses the attempt without looking at the secret (and calls nothing else):
a right secret then waits like a wrong one, so a guesser cannot tell a hit during a lockout. A client quiet for
FORGET_AFTER_SECONDS past its last wait starts afresh.

The caller's sequence: `wait = SIGN_INS.check(client, now)`; if wait > 0, say how long and stop; else compare
the secret, then `SIGN_INS.failed(client, now)` or `SIGN_INS.succeeded(client)`.

Every failure is logged at WARNING with the client and its count, never the text that was entered.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

log = logging.getLogger("taskrouter.dashboard.sign_in")

FREE_FAILURES = 3
BASE_DELAY_SECONDS = 1.0
MAX_DELAY_SECONDS = 60.0
LOCKOUT_FAILURES = 10
LOCKOUT_SECONDS = 900.0
FORGET_AFTER_SECONDS = 3600.0
# Clients remembered at once: past it the one quiet longest is forgotten, so a flood of addresses cannot grow
# the table without bound.
MAX_CLIENTS = 10_000
# Streamlit gives no address for a browser on this machine (st.context.ip_address is None for loopback).
LOCAL_CLIENT = "this machine"


def client_of(ip_address: str | None) -> str:
    """The throttle's key for a session: its address, or LOCAL_CLIENT for a browser on this machine."""
    return ip_address or LOCAL_CLIENT


@dataclass(frozen=True)
class _Record:
    failures: int
    last_failure: float
    allowed_at: float


def wait_after(failures: int) -> float:
    """Seconds a client waits after its `failures`-th failure in a row."""
    if failures >= LOCKOUT_FAILURES:
        return LOCKOUT_SECONDS
    if failures <= FREE_FAILURES:
        return 0.0
    return min(MAX_DELAY_SECONDS, BASE_DELAY_SECONDS * 2 ** (failures - FREE_FAILURES - 1))


class Throttle:
    """Per-client sign-in throttle. `check` before comparing a secret; then `failed` or `succeeded`."""

    def __init__(self) -> None:
        self._records: dict[str, _Record] = {}
        self._lock = threading.Lock()

    def check(self, client: str, now: float) -> float:
        """Seconds this client must wait before an attempt is looked at; 0.0: go ahead."""
        with self._lock:
            record = self._current(client, now)
            return max(0.0, record.allowed_at - now) if record else 0.0

    def failed(self, client: str, now: float) -> float:
        """Count a wrong secret from an attempt `check` allowed; returns the seconds the client now waits."""
        with self._lock:
            record = self._current(client, now)
            failures = (record.failures if record else 0) + 1
            wait = wait_after(failures)
            allowed_at = max(now + wait, record.allowed_at if record else now)
            self._records.pop(client, None)  # re-inserted last: the dict's order is the order of last failure
            self._records[client] = _Record(failures, now, allowed_at)
            while len(self._records) > MAX_CLIENTS:
                del self._records[next(iter(self._records))]
        if failures >= LOCKOUT_FAILURES:
            log.warning("dashboard sign-in failed from %s (%d in a row): locked out for %.0f s", client, failures, wait)
        else:
            log.warning(
                "dashboard sign-in failed from %s (%d in a row): next attempt in %.0f s", client, failures, wait
            )
        return max(0.0, allowed_at - now)

    def succeeded(self, client: str) -> None:
        """A right secret from an attempt `check` allowed: the client's failures are forgotten."""
        with self._lock:
            self._records.pop(client, None)

    def failures(self, client: str, now: float) -> int:
        """Failures in a row counted for this client (0 once forgotten)."""
        with self._lock:
            record = self._current(client, now)
            return record.failures if record else 0

    def _current(self, client: str, now: float) -> _Record | None:
        record = self._records.get(client)
        if record is not None and now - max(record.last_failure, record.allowed_at) >= FORGET_AFTER_SECONDS:
            del self._records[client]
            return None
        return record


SIGN_INS = Throttle()

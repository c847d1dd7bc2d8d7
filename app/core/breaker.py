"""The circuit breaker's counting, per model: when to open, how long to stay open, who may probe.

Closed: every call's outcome goes into a sliding window of the model's last BREAKER_WINDOW_CALLS calls; the
breaker opens when, with at least BREAKER_MIN_CALLS in the window, failures reach BREAKER_FAILURE_RATE, or on a run:
BREAKER_OPEN_AFTER_TIMEOUTS requests in a row saw the model time out, or BREAKER_OPEN_AFTER_CONNECTION_ERRORS saw
its connection refused, reset or dropped, with no answer in between (counted once per request, so fifty concurrent
calls caught by one hang do not count fifty times, and a model that does not answer at all is benched after its
first timeout rather than after a window's worth; a dropped connection is mostly a transient, so it takes a run).
Open: ModelHealth keeps the model out (a `circuit_open` mark in `model_status`, seen by every process).
Half-open: once the mark expires, one call is let through as a probe; others still skip. Success closes the
breaker; a failure re-opens it for twice as long as before, up to BREAKER_MAX_COOLDOWN_SECONDS.

Which failures count is the failure table's (`Policy.breaker`, `Policy.trips`): rate limits, capacity, invalid
output, the caller's errors, hedges lost and the deadline never do.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.clock import SYSTEM_CLOCK, Clock
from app.core.failures import Trip

if TYPE_CHECKING:
    from app.config import Settings


@dataclass(slots=True)
class _Circuit:
    outcomes: deque[bool]  # True = a counted failure, newest last
    failures: int = 0
    run: int = 0  # requests in a row whose call timed out or lost its connection
    run_request: str | None = None  # the request that last added to `run`
    opens: int = 0  # times opened since it last closed: the next cooldown doubles with each
    probe_since: float | None = None  # half-open: when the probe call started


@dataclass(frozen=True, slots=True)
class Opened:
    cooldown: float
    reason: str


class Breaker:
    def __init__(self, settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._s = settings
        self.clock = clock  # whose `wall` a probe's start is read from when the caller gives no `now`
        self.circuits: dict[str, _Circuit] = {}  # the models with a counted failure in their window
        # A probe whose call never reported (it cannot outlive its request) must not hold the model forever.
        self._probe_timeout = max(settings.llm_timeout_seconds, settings.llm_request_deadline_seconds)

    def _circuit(self, model: str) -> _Circuit:
        circuit = self.circuits.get(model)
        if circuit is None:
            circuit = self.circuits[model] = _Circuit(deque(maxlen=self._s.breaker_window_calls))
        return circuit

    def success(self, model: str) -> bool:
        """Record an answer. True when it closes a breaker that had opened (the probe succeeded).

        A model is tracked from its first counted failure until its window holds none again: a window of
        successes alone can open nothing, so the answers of a healthy model cost no bookkeeping at all. The
        window therefore starts at a failure, which is the stricter reading of the failure rate."""
        circuit = self.circuits.get(model)
        if circuit is None:
            return False
        self._push(circuit, False)
        circuit.run = 0
        if circuit.opens or circuit.probe_since is not None:
            circuit.opens = 0
            circuit.probe_since = None
            return True
        if circuit.failures == 0:
            del self.circuits[model]
        return False

    def failure(self, model: str, *, trips: Trip | None, request_id: str) -> Opened | None:
        """Record a counted failure; an `Opened` when the breaker must open now. `trips`: the run this failure
        adds to (the failure table's `Policy.trips`), or None."""
        s = self._s
        circuit = self._circuit(model)
        self._push(circuit, True)
        if trips is not None and circuit.run_request != request_id:
            circuit.run += 1
            circuit.run_request = request_id
        reason = None
        if circuit.probe_since is not None:
            reason = "the half-open probe failed"
        elif trips is not None and circuit.run >= self._run_length(trips):
            what = "time out" if trips is Trip.TIMEOUTS else "lose its connection"
            reason = (
                f"{circuit.run} request{'s' if circuit.run > 1 else ''} in a row saw it {what} "
                f"({trips.value}={self._run_length(trips)})"
            )
        elif len(circuit.outcomes) >= s.breaker_min_calls and circuit.failures >= s.breaker_failure_rate * len(
            circuit.outcomes
        ):
            reason = (
                f"{circuit.failures} of its last {len(circuit.outcomes)} calls failed "
                f"(BREAKER_FAILURE_RATE={s.breaker_failure_rate})"
            )
        if reason is None:
            return None
        cooldown = min(s.breaker_cooldown_seconds * 2**circuit.opens, s.breaker_max_cooldown_seconds)
        circuit.opens += 1
        circuit.probe_since = None
        circuit.outcomes.clear()
        circuit.failures = 0
        circuit.run = 0
        return Opened(cooldown, reason)

    def _run_length(self, run: Trip) -> int:
        if run is Trip.TIMEOUTS:
            return self._s.breaker_open_after_timeouts
        return self._s.breaker_open_after_connection_errors

    def release_probe(self, model: str) -> None:
        """The probe ended without telling anything (rate limited, cancelled...): the next call probes again."""
        circuit = self.circuits.get(model)
        if circuit is not None:
            circuit.probe_since = None

    def claim_probe(self, model: str, now: float | None = None) -> bool:
        """Half-open: whether this call may be the probe. At most one probe in flight per model and process.
        `now`: the caller's reading of the clock's wall (the request path has one); else the clock is read."""
        if now is None:
            now = self.clock.wall()
        circuit = self._circuit(model)
        if circuit.probe_since is not None and now - circuit.probe_since < self._probe_timeout:
            return False
        circuit.probe_since = now
        return True

    def forget(self, model: str) -> None:
        self.circuits.pop(model, None)

    @staticmethod
    def _push(circuit: _Circuit, failed: bool) -> None:
        outcomes = circuit.outcomes
        if len(outcomes) == outcomes.maxlen and outcomes[0]:
            circuit.failures -= 1
        outcomes.append(failed)
        if failed:
            circuit.failures += 1

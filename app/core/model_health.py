"""Which models to leave alone right now, and until when; shared with other processes through `model_status`.

State lives in memory (the hot path reads a dict) and is persisted through the attempt log's writer. Other
processes' marks are merged in at most every MODEL_STATUS_REFRESH_SECONDS; on PostgreSQL the server pushes them
within milliseconds (StoreBackend.state_feed), other hosts' included. What a failure does here is the
failure table's (`app/core/failures.py`): its mark, and whether it counts for the circuit breaker.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from app.clock import SYSTEM_CLOCK, Clock, iso_millis
from app.core.alerts import circuit_text, mark_text, override_text
from app.core.breaker import Breaker
from app.core.failures import Mark, policy, rate_limit_wait
from app.errors import ProviderError
from app.store import (
    CLEARED,
    CLOSED,
    AttemptLog,
    ModelStatusRow,
    epoch_from_iso,
    iso_from_epoch,
)
from app.store.backend import StateFeed
from app.store.overrides import DISABLE, Override, read_marks_and_overrides
from app.store.state import State
from app.types import ErrorKind

if TYPE_CHECKING:
    from app.config import Settings
    from app.core.alerts import Alerts

logger = logging.getLogger("taskrouter")

DEPRECATED = "deprecated"
NOT_FOUND = "not_found"
COOLING_DOWN = "cooling_down"
CIRCUIT_OPEN = "circuit_open"
DISABLED = "disabled"
# A router's first refresh on PostgreSQL waits this long for the marks and overrides already stored, once.
FIRST_READ_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class ModelState:
    status: str
    detail: str
    until: float | None  # epoch seconds; None = for good
    since: float = 0.0  # epoch seconds when marked: a `cleared` row written after it removes it

    def active(self, now: float) -> bool:
        return self.until is None or self.until > now

    def describe(self) -> str:
        if self.until is None:
            return f"{self.status}: {self.detail}"
        return f"{self.status} until {iso_from_epoch(self.until)}: {self.detail}"


class ModelHealth:
    def __init__(
        self, settings: Settings, log: AttemptLog | None, alerts: Alerts | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._settings = settings
        # The methods that decide take the caller's `now` (read from this clock); the clock itself dates the rows
        # written to `model_status`, gives the daily checks their first day, and is the breaker's.
        self.clock = clock
        self._log = log
        self.alerts = alerts
        # Alerts only: when each circuit first opened since it last closed, and the once-a-day check's job.
        self._opened_at: dict[str, float] = {}
        self._daily: Callable[[date], None] | None = None
        self._day: date | None = None
        self._overrides_read = False
        self.marks: dict[str, ModelState] = {}  # the models' marks, active or expired: read, not written, outside
        self.breaker = Breaker(settings, clock=clock)
        # The models whose answer has something to update (a failure in the breaker's window): the request's owner
        # looks here before calling on_success, as it looks at `marks` and `disabled` before calling blocked.
        self.failing = self.breaker.circuits
        self._lock = threading.Lock()
        self._next_refresh = 0.0
        # Runtime overrides in effect (app/store/overrides.py), read with the marks. A new tuple only when they
        # change: the chain cache rebuilds on a new one.
        self.overrides: tuple[Override, ...] = ()
        self.disabled: dict[str, ModelState] = {}  # taken out of rotation by ops (runtime overrides)
        # A store that pushes marks and overrides (PostgreSQL) does so through a feed; the State applied last.
        self._watch: StateFeed | None = None
        self._applied: State | None = None

    def close(self) -> None:
        """Stop listening to the store's change feed (a later refresh starts it again)."""
        watch, self._watch = self._watch, None
        if watch is not None:
            watch.release()

    def blocked(self, model: str, now: float) -> ModelState | None:
        """The mark that keeps the model out now, or None. An expired circuit_open mark is the half-open state:
        the first caller gets None (its call is the probe), the others a mark saying a probe is in flight."""
        state = self.marks.get(model)
        if state is None:
            if self.disabled:
                disabled = self.disabled.get(model)
                if disabled is not None and disabled.active(now):
                    return disabled
            return None
        if state.active(now):
            return state
        if state.status == CIRCUIT_OPEN:
            with self._lock:
                if self.breaker.claim_probe(model, now):
                    return None
            return ModelState(CIRCUIT_OPEN, "half-open: one probe call is in flight", None, state.since)
        self.marks.pop(model, None)
        if self.alerts is not None:  # the mark expired: if the model fails the same way again, say it again
            self.alerts.resolve(f"{state.status}:{model}")
        return None

    def mark(self, model: str) -> ModelState | None:
        """The model's current mark as it stands, expired or not, without claiming a half-open probe."""
        return self.marks.get(model)

    def refresh_if_due(self, now: float) -> None:
        watch = self._watch
        if watch is not None and watch.latest is not self._applied:
            self._applied = state = watch.latest
            if state is not None:
                self._apply(state.marks, state.overrides, now)
        if now < self._next_refresh:
            return
        self._next_refresh = now + self._settings.model_status_refresh_seconds
        if self.alerts is not None:
            self._alert_checks(now)
        if self._log is None:
            return
        if self._watch is None:
            self._watch = self._log.store.state_feed(self._settings.model_status_refresh_seconds)
            if self._watch is not None:
                state = self._watch.wait_first(FIRST_READ_SECONDS)
                if state is not None:
                    self._applied = state
                    self._apply(state.marks, state.overrides, now)
        if self._watch is not None:  # the store pushes changes: nothing to read here
            return
        marks, overrides = read_marks_and_overrides(self._log.target, iso_from_epoch(now) or "")
        self._apply(marks, overrides, now)

    def refresh_now(self) -> None:
        """Read the marks and overrides now, whenever the last refresh was: this process just changed them (the
        gateway's levers), and its next request must route by the change."""
        self._next_refresh = 0.0
        self.refresh_if_due(self.clock.wall())

    def _apply(self, marks: list[dict[str, Any]], overrides: list[Override], now: float) -> None:
        self._refresh_overrides(tuple(overrides))
        for row in marks:
            if row["status"] in (CLEARED, CLOSED):
                self._cleared(row["model"], epoch_from_iso(row["last_seen"]) or 0.0, row["status"])
                continue
            state = ModelState(
                row["status"],
                row["detail"] or "",
                epoch_from_iso(row["until"]),
                epoch_from_iso(row["last_seen"]) or 0.0,
            )
            if not state.active(now):
                continue
            with self._lock:
                mine = self.marks.get(row["model"])
                if mine is None or _outlasts(state, mine):
                    self.marks[row["model"]] = state

    def _refresh_overrides(self, active: tuple[Override, ...]) -> None:
        # What is in effect when the process starts is no change: alerts post what changes while it runs.
        first, self._overrides_read = not self._overrides_read, True
        if active == self.overrides:
            return
        for override in set(active) ^ set(self.overrides):
            logger.warning("Override %s: %s", "in effect" if override in active else "ended", override.describe())
            if self.alerts is not None and not first:
                started = override in active
                self.alerts.notify(
                    f"override:{override.id}:{'set' if started else 'ended'}", override_text(override, started)
                )
        self.overrides = active
        self.disabled = {o.model: _disabled_state(o) for o in active if o.kind == DISABLE}

    def _cleared(self, model: str, cleared_at: float, how: str = CLEARED) -> None:
        """Ops cleared the model (`taskrouter status --clear`), or another process's probe closed its breaker:
        forget a mark made before that, not one after (a `closed` row lifts only a circuit_open mark)."""
        with self._lock:
            mine = self.marks.get(model)
            if mine is None or mine.since > cleared_at or (how == CLOSED and mine.status != CIRCUIT_OPEN):
                return
            del self.marks[model]
            self.breaker.forget(model)
        self._alert_cleared(model)
        if how == CLEARED:
            logger.warning("Model mark cleared model=%s was=%s", model, mine.describe())

    def on_success(self, model: str) -> None:
        if model not in self.failing:  # no failure in the window: nothing to update
            return
        with self._lock:
            closed = self.breaker.success(model)
            if closed and self.marks.get(model, _NO_STATE).status == CIRCUIT_OPEN:
                del self.marks[model]
            else:
                closed = False
        if closed:
            self._alert_cleared(model, CIRCUIT_OPEN)
            if self._log is not None:
                self._log.record_now(
                    ModelStatusRow(
                        model, CLOSED, "circuit closed: the probe call answered", None, iso_millis(self.clock.wall())
                    )
                )
            logger.warning("Circuit closed model=%s: the probe call answered", model)

    def on_failure(
        self, model: str, kind: ErrorKind, error: ProviderError, now: float, request_id: str = "", task: str = ""
    ) -> ModelState | None:
        """Apply what the failure table says this failure means for the model; returns the new mark, if any."""
        rule = policy(kind)
        state = self._marked(model, rule.mark, error, now, task) if rule.mark is not None else None
        if rule.breaker or rule.trips is not None:
            with self._lock:
                opened = self.breaker.failure(model, trips=rule.trips, request_id=request_id)
            if opened is not None:
                detail = f"circuit open for {opened.cooldown:g}s: {opened.reason}; last: {error.message}"
                state = self._mark(model, ModelState(CIRCUIT_OPEN, detail, now + opened.cooldown), now)
        else:
            self.breaker.release_probe(model)
        return state

    def on_no_verdict(self, model: str) -> None:
        """The call ended without telling whether the model works (cancelled, hedge lost, deadline)."""
        self.breaker.release_probe(model)

    def _marked(self, model: str, mark: Mark, error: ProviderError, now: float, task: str = "") -> ModelState:
        s = self._settings
        if mark is Mark.FOR_GOOD:
            return self._mark(model, ModelState(DEPRECATED, error.message, None), now, task)
        if mark is Mark.NOT_FOUND_TTL:
            return self._mark(model, ModelState(NOT_FOUND, error.message, now + s.not_found_ttl_seconds), now, task)
        if mark is Mark.PROVIDER_WAIT:
            wait = rate_limit_wait(error.headers, error.message)
            wait = s.rate_limit_default_cooldown_seconds if wait is None else wait
            wait = min(wait, s.max_rate_limit_cooldown_seconds)
            return self._mark(model, ModelState(COOLING_DOWN, f"rate limited: {error.message}", now + wait), now)
        detail = f"capacity: {error.message}"
        return self._mark(model, ModelState(COOLING_DOWN, detail, now + s.capacity_cooldown_seconds), now)

    def mark_deprecated(self, model: str, detail: str, now: float, task: str = "") -> ModelState:
        return self._mark(model, ModelState(DEPRECATED, detail, None), now, task)

    def _mark(self, model: str, state: ModelState, now: float, task: str = "") -> ModelState:
        state = ModelState(state.status, state.detail, state.until, now)
        with self._lock:
            current = self.marks.get(model)
            if current is not None and current.active(now) and _outlasts(current, state):
                return current
            self.marks[model] = state
        if self._log is not None:
            self._log.record_now(
                ModelStatusRow(
                    model, state.status, state.detail[:500], iso_from_epoch(state.until), iso_millis(self.clock.wall())
                )
            )
        logger.warning("Model marked model=%s status=%s", model, state.describe())
        if self.alerts is not None:
            if state.status == CIRCUIT_OPEN:
                self._opened_at.setdefault(model, now)  # a failed probe re-opens it: still the same outage
            elif state.status in (DEPRECATED, NOT_FOUND):
                self.alerts.notify(
                    f"{state.status}:{model}",
                    mark_text(model, state.status == DEPRECATED, state.detail, task, state.until),
                )
        return state

    # -- alerts (app/core/alerts.py): checked at refreshes, never per call ------------------------------------

    def every_day(self, job: Callable[[date], None], today: date) -> None:
        """Run `job(today)` now, and again at the first refresh of each later UTC day."""
        self._daily, self._day = job, today
        job(today)

    def _alert_checks(self, now: float) -> None:
        assert self.alerts is not None
        if self._daily is not None:
            day = datetime.fromtimestamp(now, UTC).date()
            if day != self._day:
                self._day = day
                self._daily(day)
        threshold = self._settings.alert_circuit_open_seconds
        for model, since in list(self._opened_at.items()):
            state = self.marks.get(model)
            if state is None or state.status != CIRCUIT_OPEN:
                self._alert_cleared(model, CIRCUIT_OPEN)
            elif now - since >= threshold and state.active(now):
                self.alerts.notify(f"{CIRCUIT_OPEN}:{model}", circuit_text(model, now - since, state.detail))

    def _alert_cleared(self, model: str, *statuses: str) -> None:
        """The model's mark (of these statuses; none given: any) is gone: the next one is a new event."""
        if self.alerts is None:
            return
        self._opened_at.pop(model, None)
        for status in statuses or (CIRCUIT_OPEN, DEPRECATED, NOT_FOUND):
            self.alerts.resolve(f"{status}:{model}")


_NO_STATE = ModelState("", "", None)


def _disabled_state(o: Override) -> ModelState:
    detail = f"disabled by {o.set_by}" + (f": {o.reason}" if o.reason else "")
    return ModelState(DISABLED, detail, epoch_from_iso(o.expires_at), epoch_from_iso(o.set_at) or 0.0)


def _outlasts(a: ModelState, b: ModelState) -> bool:
    """Whether `a` keeps the model out at least as long as `b` (a permanent mark outlasts any cooldown)."""
    if a.until is None:
        return True
    if b.until is None:
        return False
    return a.until >= b.until

"""Which models to leave alone right now, and until when; shared with other processes through `model_status`.

State lives in memory (the hot path reads a dict) and is persisted through the attempt log's writer. Other
processes' marks are merged in at most every MODEL_STATUS_REFRESH_SECONDS.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from app.config import Settings
from app.core.failures import rate_limit_wait
from app.core.types import ErrorKind
from app.errors import ProviderError
from app.store import (
    CLEARED,
    AttemptLog,
    ModelStatusRow,
    epoch_from_iso,
    iso_from_epoch,
    read_model_status,
    utc_now_iso,
)

logger = logging.getLogger("taskrouter")

DEPRECATED = "deprecated"
NOT_FOUND = "not_found"
COOLING_DOWN = "cooling_down"


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
    def __init__(self, settings: Settings, log: AttemptLog | None) -> None:
        self._settings = settings
        self._log = log
        self._states: dict[str, ModelState] = {}
        self._server_errors: dict[str, int] = {}
        self._lock = threading.Lock()
        self._next_refresh = 0.0

    def blocked(self, model: str, now: float) -> ModelState | None:
        state = self._states.get(model)
        if state is None:
            return None
        if state.active(now):
            return state
        self._states.pop(model, None)
        return None

    def refresh_if_due(self, now: float) -> None:
        if self._log is None or now < self._next_refresh:
            return
        self._next_refresh = now + self._settings.model_status_refresh_seconds
        for row in read_model_status(self._log.path):
            if row["status"] == CLEARED:
                self._cleared(row["model"], epoch_from_iso(row["last_seen"]) or 0.0)
                continue
            state = ModelState(row["status"], row["detail"] or "", epoch_from_iso(row["until"]),
                               epoch_from_iso(row["last_seen"]) or 0.0)
            if not state.active(now):
                continue
            with self._lock:
                mine = self._states.get(row["model"])
                if mine is None or _outlasts(state, mine):
                    self._states[row["model"]] = state

    def _cleared(self, model: str, cleared_at: float) -> None:
        """Ops cleared the model (`taskrouter status --clear`): forget a mark made before that, not one after."""
        with self._lock:
            mine = self._states.get(model)
            if mine is not None and mine.since <= cleared_at:
                del self._states[model]
                self._server_errors.pop(model, None)
                logger.warning("Model mark cleared model=%s was=%s", model, mine.describe())

    def on_success(self, model: str) -> None:
        if self._server_errors:
            self._server_errors.pop(model, None)

    def on_failure(self, model: str, kind: ErrorKind, error: ProviderError, now: float) -> ModelState | None:
        """Apply what this failure says about the model's near future; returns the new state, if any."""
        s = self._settings
        if kind is ErrorKind.DEPRECATED:
            return self._mark(model, ModelState(DEPRECATED, error.message, None), now)
        if kind is ErrorKind.NOT_FOUND:
            return self._mark(model, ModelState(NOT_FOUND, error.message, now + s.not_found_ttl_seconds), now)
        if kind is ErrorKind.RATE_LIMITED:
            wait = rate_limit_wait(error.headers, error.message)
            wait = s.rate_limit_default_cooldown_seconds if wait is None else wait
            wait = min(wait, s.max_rate_limit_cooldown_seconds)
            return self._mark(model, ModelState(COOLING_DOWN, f"rate limited: {error.message}", now + wait), now)
        if kind is ErrorKind.CAPACITY:
            detail = f"capacity: {error.message}"
            return self._mark(model, ModelState(COOLING_DOWN, detail, now + s.capacity_cooldown_seconds), now)
        if kind is ErrorKind.SERVER_ERROR:
            count = self._server_errors.get(model, 0) + 1
            self._server_errors[model] = count
            if count >= s.server_error_threshold:
                self._server_errors.pop(model, None)
                detail = f"{count} consecutive server errors, last: {error.message}"
                return self._mark(
                    model, ModelState(COOLING_DOWN, detail, now + s.server_error_cooldown_seconds), now
                )
        return None

    def mark_deprecated(self, model: str, detail: str, now: float) -> ModelState:
        return self._mark(model, ModelState(DEPRECATED, detail, None), now)

    def _mark(self, model: str, state: ModelState, now: float) -> ModelState:
        state = ModelState(state.status, state.detail, state.until, now)
        with self._lock:
            current = self._states.get(model)
            if current is not None and current.active(now) and _outlasts(current, state):
                return current
            self._states[model] = state
        if self._log is not None:
            self._log.record(ModelStatusRow(model, state.status, state.detail[:500], iso_from_epoch(state.until),
                                            utc_now_iso()))
        logger.warning("Model marked model=%s status=%s", model, state.describe())
        return state


def _outlasts(a: ModelState, b: ModelState) -> bool:
    """Whether `a` keeps the model out at least as long as `b` (a permanent mark outlasts any cooldown)."""
    if a.until is None:
        return True
    if b.until is None:
        return False
    return a.until >= b.until


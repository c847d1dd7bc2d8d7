"""One request's course through its chain: the deadline, the calls made, and which model to retry next.

The first pass calls each usable model of the chain once, in order. When transient failures (the failure
table's `retry` column) leave no untried usable model, the request retries the model most likely to answer
soonest, after an exponential backoff with full jitter, until one answers, the deadline passes or
LLM_MAX_ATTEMPTS calls are spent. "Soonest": a model that is free now (after the backoff) before one cooling
down until later; a model whose circuit breaker is open only as a last resort, and once per request.
"""

from __future__ import annotations

import random
import time
from typing import NamedTuple

from app.core.model_health import CIRCUIT_OPEN, COOLING_DOWN, ModelState
from app.registry.catalog import ModelInfo
from app.registry.chain import Candidate, Chain

# Below this much time left, an attempt could not get an answer back: the request ends instead.
MIN_ATTEMPT_SECONDS = 0.005
# While untried models remain, one call may use at most this part of the time left, so that a hung model leaves the
# next a real chance within the deadline. Two thirds, not an equal split: with the default timeout and deadline a
# hang still gets more than half its model's timeout (a fair test, which benches it), and a slow but good answer is
# not cut at half the deadline.
SHARE_WITH_UNTRIED = 2 / 3


class Pick(NamedTuple):
    """One call to make: the candidate, its place in the chain, and how many times this request called it.
    A NamedTuple: one is built per call on the hot path, at a fraction of a frozen dataclass's cost."""

    position: int
    candidate: Candidate
    info: ModelInfo | None
    retry: int = 0
    hedged: bool = False


class Run:
    """The request's mutable course. A plain class: its __init__ runs once per call, without a dataclass's
    default factories."""

    __slots__ = ("calls", "calls_to", "chain", "deadline", "deadline_seconds", "hedge_after", "index", "max_calls",
                 "not_tried", "retries", "retryable", "stopped")

    def __init__(self, *, chain: Chain, deadline: float, deadline_seconds: float, max_calls: int,
                 hedge_after: float | None) -> None:
        self.chain = chain
        self.deadline = deadline  # time.perf_counter() value
        self.deadline_seconds = deadline_seconds
        self.max_calls = max_calls
        self.hedge_after = hedge_after  # seconds; None: no hedging
        self.index = 0  # next chain position (0-based) of the first pass
        self.calls = 0
        self.calls_to: dict[str, int] = {}
        # Models worth another call in this request: position -> its Pick (the last transient failure or skip).
        self.retryable: dict[int, Pick] = {}
        self.retries = 0
        self.not_tried: list[str] = []
        self.stopped: str | None = None  # why the retries ended, for the error's summary

    @property
    def started(self) -> float:
        return self.deadline - self.deadline_seconds

    def remaining(self) -> float:
        return self.deadline - time.perf_counter()

    def pick(self, position: int, candidate: Candidate, info: ModelInfo | None, hedged: bool = False) -> Pick:
        return Pick(position, candidate, info, self.calls_to.get(candidate.model, 0), hedged)


def share_of(run: Run, remaining: float) -> float:
    """The time the next call may take: all that is left once every model has had its first call, else
    SHARE_WITH_UNTRIED of it."""
    return remaining * SHARE_WITH_UNTRIED if run.index < len(run.chain.candidates) else remaining


def backoff(retries: int, base: float, cap: float) -> float:
    """Full jitter: uniform over [0, min(cap, base * 2**retries)], so that requests failing together spread out."""
    return random.uniform(0.0, min(cap, base * 2 ** min(retries, 30)))


def choose_retry(run: Run, states: dict[str, ModelState | None], delay: float, now_wall: float,
                 forced: bool) -> tuple[Pick, float] | None:
    """The retry to make and how many seconds to wait first, or None when no model can be called again
    before the deadline. `states` holds each retryable model's current mark (None when it has none)."""
    best: tuple[tuple[bool, float, int], Pick] | None = None
    for position, pick in run.retryable.items():
        model = pick.candidate.model
        state = None if forced else states.get(model)
        wait = delay
        last_resort = False
        if state is not None and state.status == CIRCUIT_OPEN:
            if run.calls_to.get(model):
                continue  # already called once in this request while its breaker said no
            last_resort = True
        elif state is not None and state.status == COOLING_DOWN and state.until is not None:
            wait = max(delay, state.until - now_wall)
        elif state is not None and state.active(now_wall):
            continue  # deprecated or not found since: no retry can help
        key = (last_resort, wait, position)
        if best is None or key < best[0]:
            best = (key, pick)
    if best is None:
        run.stopped = "no model left worth another call"
        return None
    wait = best[0][1]
    if wait > run.remaining() - MIN_ATTEMPT_SECONDS:
        run.stopped = (f"the next retry ({best[1].candidate.model}, in {wait:.1f}s) would start after the "
                       f"request's deadline ({run.deadline_seconds:g}s)")
        return None
    return run.pick(best[1].position, best[1].candidate, best[1].info), wait

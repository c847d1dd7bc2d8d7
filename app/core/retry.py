"""The retry policy: which model a request calls again, and after how long (the request's owner asks it).

The first pass calls each usable model of the chain once, in order. When transient failures (the failure
table's `retry` column) leave no untried usable model, the request retries the model most likely to answer
soonest, after an exponential backoff with full jitter, until one answers, the deadline passes or
LLM_MAX_ATTEMPTS calls are spent. "Soonest": a model that is free now (after the backoff) before one cooling
down until later; a model whose circuit breaker is open only as a last resort, and once per request.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING

from app.core.model_health import CIRCUIT_OPEN, COOLING_DOWN, ModelState

if TYPE_CHECKING:
    from app.core.request import Pick

# Below this much time left, an attempt could not get an answer back: the request ends instead.
MIN_ATTEMPT_SECONDS = 0.005
# While untried models remain, one call may use at most this part of the time left, so that a hung model leaves the
# next a real chance within the deadline. Two thirds, not an equal split: with the default timeout and deadline a
# hang still gets more than half its model's timeout (a fair test, which benches it), and a slow but good answer is
# not cut at half the deadline.
SHARE_WITH_UNTRIED = 2 / 3


def backoff(retries: int, base: float, cap: float) -> float:
    """Full jitter: uniform over [0, min(cap, base * 2**retries)], so that requests failing together spread out."""
    return random.uniform(0.0, min(cap, base * 2 ** min(retries, 30)))


def choose_retry(
    retryable: Mapping[int, Pick],
    calls_to: Mapping[str, int],
    states: Mapping[str, ModelState | None],
    delay: float,
    now_wall: float,
    forced: bool,
    remaining: float,
    deadline_seconds: float,
) -> tuple[tuple[Pick, float] | None, str]:
    """The retry to make and how many seconds to wait first, or None and why no model can be called again before
    the deadline. `retryable`: the request's models worth another call, by chain position; `calls_to`: the calls
    it made to each model; `states`: each retryable model's current mark (None when it has none)."""
    best: tuple[tuple[bool, float, int], Pick] | None = None
    for position, pick in retryable.items():
        model = pick.candidate.model
        state = None if forced else states.get(model)
        wait = delay
        last_resort = False
        if state is not None and state.status == CIRCUIT_OPEN:
            if calls_to.get(model):
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
        return None, "no model left worth another call"
    wait, pick = best[0][1], best[1]
    if wait > remaining - MIN_ATTEMPT_SECONDS:
        return None, (
            f"the next retry ({pick.candidate.model}, in {wait:.1f}s) would start after the request's "
            f"deadline ({deadline_seconds:g}s)"
        )
    return (pick._replace(retry=calls_to.get(pick.candidate.model, 0), hedged=False), wait), ""

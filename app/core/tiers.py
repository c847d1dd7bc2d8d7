"""Tiers inside a task, what they remember between requests, and the cascade's check of an answer.

A task may have tier lists, `MODEL_REGISTRY["<task>:simple"]`, `":medium"`, `":complex"`. A tiered request starts on
one tier (the caller's `tier=`, or the complexity scorer's for `tier="auto"` and COMPLEXITY_ROUTING) and its chain
is that tier's list, the higher tiers' lists, the task's own list, then `fallback`. When a tier's answer is refused
(the caller's validate= / required_fields=, or `cascade_refusal` below), the request moves to the next tier.

What is shared between requests lives on the Router:
- `SessionTiers`: an agent conversation (`session_id=`) never starts below the highest tier it reached, so a hard
  thread does not drop to a weak model mid-way.
- `Learning` (CASCADE_LEARN): per task, tier and model, whether its recent answers were refused, read from the
  attempt log when the router is built and kept up by its own requests; a model refused more often than
  CASCADE_LEARN_REFUSED_RATIO over its last CASCADE_LEARN_WINDOW answers is skipped on that tier (the request
  starts one tier up, and the skip row says why).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict, deque

from app.clock import iso_millis
from app.providers import ProviderResponse
from app.store.model_status import query_read_only
from app.store.target import Target
from app.types import TIERS

# The openings of a model declining to answer. Anchored at the start: a refusal leads with it, an answer that
# quotes one later does not count.
_REFUSAL = re.compile(
    r"^\s*(?:i'?m sorry,? but |sorry,? but |unfortunately,? )?(?:i|we)\s*(?:can(?:'|no)?t|cannot|am unable to|"
    r"am not able to|won'?t be able to|must decline to)\s+(?:help|assist|provide|answer|do|comply|complete)",
    re.IGNORECASE,
)


# Each (task, tier, model)'s latest answers, oldest first: accepted, or refused by the caller's checks or the cascade.
_RECENT_TIER_ANSWERS = """
SELECT task_type, tier, model, refused FROM (
    SELECT id, task_type, tier, model, CASE WHEN outcome = 'failure' THEN 1 ELSE 0 END AS refused,
           ROW_NUMBER() OVER (PARTITION BY task_type, tier, model ORDER BY id DESC) AS n
    FROM attempts
    WHERE created_at >= ? AND tier IS NOT NULL
      AND (outcome = 'success' OR (outcome = 'failure' AND error_kind IN ('refused', 'validation')))
) recent WHERE n <= ? ORDER BY id
"""


def cascade_refusal(result: ProviderResponse) -> str | None:
    """Why a tiered request's cascade refuses this answer, or None to accept it: cut at its length limit, empty,
    or a refusal. The caller's own checks (validate=, required_fields=) run before this, with their own kind."""
    if result.finish_reason == "length":
        return "escalated: the answer was cut at its length limit (finish_reason length)"
    content = result.content
    if not result.tool_calls and (content is None or not content.strip()):
        return "escalated: the answer is empty"
    if content is not None and _REFUSAL.match(content[:200]):
        return "escalated: the model declined to answer"
    return None


def higher(a: str, b: str) -> str:
    """The higher of two tiers."""
    return a if TIERS.index(a) >= TIERS.index(b) else b


class SessionTiers:
    """The highest tier each recent session reached, for at most `kept` sessions (the least recent go first)."""

    def __init__(self, kept: int) -> None:
        self._kept = kept
        self._tiers: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()  # execute_task_sync's loop thread and the caller's may share the router

    def at_least(self, session_id: str, tier: str) -> str:
        """`tier`, raised to the highest this session reached."""
        with self._lock:
            reached = self._tiers.get(session_id)
        return tier if reached is None else higher(tier, reached)

    def reached(self, session_id: str, tier: str) -> None:
        if self._kept <= 0:
            return
        with self._lock:
            before = self._tiers.pop(session_id, None)
            self._tiers[session_id] = tier if before is None else higher(tier, before)
            while len(self._tiers) > self._kept:
                self._tiers.popitem(last=False)


class Learning:
    """CASCADE_LEARN: each (task, tier, model)'s last `window` answers, refused or not. Off (`enabled` False), it
    keeps nothing."""

    def __init__(self, *, enabled: bool, window: int, refused_ratio: float) -> None:
        self.enabled = enabled
        self._window = window
        self._ratio = refused_ratio
        self._answers: dict[tuple[str, str, str], deque[bool]] = {}
        self._lock = threading.Lock()
        self.seeded = threading.Event()  # set once `seed` has read the attempt log (or failed to)

    def answered(self, task_type: str, tier: str, model: str, *, refused: bool) -> None:
        if not self.enabled:
            return
        with self._lock:
            answers = self._answers.get((task_type, tier, model))
            if answers is None:
                answers = self._answers[(task_type, tier, model)] = deque(maxlen=self._window)
            answers.append(refused)

    def seed(self, target: Target | str, now: float, days: float = 7.0) -> int:
        """Start from the attempt log: each (task, tier, model)'s last answers of the past `days` days, as the
        windows would hold them had this process seen them. Returns how many answers it read."""
        try:
            rows = query_read_only(target, _RECENT_TIER_ANSWERS, (iso_millis(now - days * 86_400), self._window))
        finally:
            self.seeded.set()
        with self._lock:
            for row in rows:
                key = (row["task_type"], row["tier"], row["model"])
                answers = self._answers.get(key)
                if answers is None:
                    answers = self._answers[key] = deque(maxlen=self._window)
                answers.append(bool(row["refused"]))
        return len(rows)

    def too_often_refused(self, task_type: str, tier: str, model: str) -> str | None:
        """Why to start this tier's requests past `model` (the skip row's message), or None. Only a full window
        decides: a few early refusals are not a pattern."""
        if not self.enabled:
            return None
        with self._lock:
            answers = self._answers.get((task_type, tier, model))
            if answers is None or len(answers) < self._window:
                return None
            refused = sum(answers)
        if refused <= self._ratio * self._window:
            return None
        return (
            f"learned (CASCADE_LEARN): {refused} of its last {self._window} answers on the {tier} tier were "
            f"refused, above CASCADE_LEARN_REFUSED_RATIO={self._ratio:g}; starting one tier up"
        )

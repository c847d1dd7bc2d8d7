"""The simulator's mutable state — profiles, scripts, request log, seeded draws — behind one lock.

Tests change it from their own thread while the server thread reads it, so every access goes through
the lock; the critical sections are a few dict operations, so the server never waits long.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from app.simulator.completions import max_tokens_reason
from app.simulator.faults import NO_STATUS, OK, STREAM_FAULTS, check_options, status_of
from app.simulator.profiles import ModelProfile
from app.simulator.quality import DIFFICULTY_FIELD, acceptable

DEFAULT_HANG_SECONDS = 3600.0


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One chat request as received. The Authorization header is deliberately not kept."""

    model: str
    path: str
    body: dict[str, Any]
    outcome: str  # a fault name or "ok" (also for a stream fault drawn by a request without `stream: true`)
    status: int | None  # None when nothing was sent at decision time (hang, disconnect)
    # time.time() when the request was decided, for tests that compare it across processes; not part of what
    # the request was, so records compare equal without it.
    received_at: float = field(default=0.0, compare=False)


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: str
    options: dict[str, Any]
    profile: ModelProfile | None
    delay: float  # seconds to wait before answering: the simulated time to first byte
    sequence: int  # how many chat requests this model had received before this one
    acceptable: bool = True  # the quality model's verdict on the answer (app/simulator/quality.py)


def normalize_outcome(outcome: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """`"rate_limit"` or `{"fault": "rate_limit", "retry_after": 7}` -> ("rate_limit", options)."""
    if isinstance(outcome, str):
        name, options = outcome, {}
    elif isinstance(outcome, dict):
        if "fault" not in outcome:
            raise ValueError(f"scripted outcome {outcome!r} needs a 'fault' key")
        name, options = str(outcome["fault"]), {k: v for k, v in outcome.items() if k != "fault"}
    else:
        raise TypeError(f"scripted outcome must be a str or dict, got {type(outcome).__name__}")
    check_options(name, options)
    return name, options


class SimState:
    def __init__(
        self,
        profiles: dict[str, ModelProfile],
        default_profile: ModelProfile | None,
        seed: int,
        max_records: int | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._seed = seed
        # A long benchmark would otherwise grow the log without bound; None keeps everything.
        self._max_records = max_records
        self._initial = {name: profile.copy() for name, profile in profiles.items()}
        self._default = default_profile.copy() if default_profile else None
        self._profiles: dict[str, ModelProfile] = {}
        self._scripts: dict[str, deque[tuple[str, dict[str, Any]]]] = {}
        self._records: deque[RequestRecord] = deque()
        self._calls: Counter[str] = Counter()
        self._served: Counter[str] = Counter()
        self._rngs: dict[str, tuple[random.Random, random.Random]] = {}
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._profiles = {name: profile.copy() for name, profile in self._initial.items()}
            self._scripts = {}
            self._records = deque(maxlen=self._max_records)
            self._calls = Counter()
            self._served = Counter()
            # Fresh generators, so a reset run repeats the same draws as the first one.
            self._rngs = {}

    def set_profile(self, model: str, profile: ModelProfile) -> None:
        profile.validate()
        with self._lock:
            self._profiles[model] = profile.copy()

    def remove_profile(self, model: str) -> None:
        with self._lock:
            self._profiles.pop(model, None)

    def script(self, model: str, outcomes: tuple[str | dict[str, Any], ...]) -> None:
        # Validate every outcome before queueing any, so a typo leaves the queue untouched.
        parsed = [normalize_outcome(outcome) for outcome in outcomes]
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(parsed)

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def calls(self, model: str) -> int:
        with self._lock:
            return self._calls[model]

    def listed(self) -> list[tuple[str, ModelProfile]]:
        with self._lock:
            return [(name, profile) for name, profile in self._profiles.items() if profile.listed]

    def decide(
        self,
        *,
        model: str,
        path: str,
        body: dict[str, Any],
        rejection: tuple[str, dict[str, Any]] | None,
        prompt_tokens: int,
        max_tokens: int | None,
    ) -> Decision:
        """Pick this request's outcome and log it. Order: request checks (auth, body), then the model's
        script, then retirement, context window and completion limit, then the seeded fault draw."""
        with self._lock:
            sequence = self._calls[model]
            self._calls[model] = sequence + 1
            profile = self._profiles.get(model, self._default)
            options: dict[str, Any] = {}
            if rejection is not None:
                outcome, options = rejection
                profile = None  # rejected before reaching a model: no model latency
            else:
                served = self._served[model]
                self._served[model] = served + 1
                queue = self._scripts.get(model)
                if queue:
                    outcome, options = queue.popleft()
                else:
                    outcome, options = self._unscripted(model, profile, served, prompt_tokens, max_tokens)
                if outcome in STREAM_FAULTS and body.get("stream") is not True:
                    # Only a stream can break half-way; a plain request gets the answer the fault's options shape,
                    # and the log says what it got.
                    outcome = OK
            delay = self._delay(model, profile, options)
            status = None if outcome in NO_STATUS else status_of(outcome, options)
            self._records.append(RequestRecord(model, path, body, outcome, status, time.time()))
        # Outside the lock: the verdict is a pure function of the request (a hash and a draw).
        good = profile is None or acceptable(
            capability=profile.capability,
            noise=profile.capability_noise,
            difficulty=body.get(DIFFICULTY_FIELD),
            seed=self._seed,
            model=model,
            messages=body.get("messages"),
        )
        return Decision(outcome, options, profile, delay, sequence, good)

    def _unscripted(
        self,
        model: str,
        profile: ModelProfile | None,
        served: int,
        prompt_tokens: int,
        max_tokens: int | None,
    ) -> tuple[str, dict[str, Any]]:
        if profile is None:
            return "not_found", {}
        retired = profile.retired_kind(served)
        if retired is not None:
            return retired, {}
        if prompt_tokens + (max_tokens or 0) > profile.context_window:
            return "context_length", {}
        reason = max_tokens_reason(max_tokens, profile)
        if reason is not None:
            return "invalid_request", {"message": reason, "param": "max_tokens"}
        if profile.fault_rates:
            draw = self._rng(model)[0].random()
            cumulative = 0.0
            for fault, rate in profile.fault_rates.items():
                cumulative += rate
                if draw < cumulative:
                    return fault, {}
        return OK, {}

    def _delay(self, model: str, profile: ModelProfile | None, options: dict[str, Any]) -> float:
        if options.get("latency_ms") is not None:
            return max(0.0, float(options["latency_ms"])) / 1000
        if profile is None or profile.latency_ms <= 0:
            return 0.0
        # Log-normal around the median: most answers near it, a long tail of slow ones, as in production.
        return profile.latency_ms / 1000 * math.exp(profile.latency_sigma * self._rng(model)[1].gauss(0.0, 1.0))

    def _rng(self, model: str) -> tuple[random.Random, random.Random]:
        # One generator pair per model: the draws for one model do not depend on how requests to other
        # models interleave with it, and latency draws never shift the fault sequence.
        rngs = self._rngs.get(model)
        if rngs is None:
            rngs = (random.Random(f"{self._seed}:{model}:faults"), random.Random(f"{self._seed}:{model}:latency"))
            self._rngs[model] = rngs
        return rngs

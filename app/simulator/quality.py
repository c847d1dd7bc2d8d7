"""The quality model: whether a model's answer to a request is good enough, for benchmarks of routing by cost.

A profile's `capability` (a number in [0, 1], or None) says how hard a request the model can answer; a request's
difficulty (a number in [0, 1]) comes in its body's `x_bench_difficulty` field, which a client sends through
`extra_body={"x_bench_difficulty": 0.42}` (the groq SDK and the router pass `extra_body` on as it is). The answer
is acceptable when

    capability + noise >= difficulty,    noise ~ Normal(0, capability_noise)   (capability_noise: 0.05 by default)

A profile without a capability (None, the default) answers every request acceptably, and so does any model for a
request without a difficulty: the simulator's behaviour before the quality model. An acceptable answer is the
ordinary one. An unacceptable one is the same answer (same usage, same finish reason, so the call costs what it
would have) whose content starts with `UNACCEPTABLE` ("[unacceptable]"), which a caller's validator sees:

    validate=lambda r: "unacceptable" if (r.content or "").startswith("[unacceptable]") else None

The noise is drawn from a generator seeded by the simulator's seed, the model and the request (its messages and
difficulty), not from a running sequence: the same request to the same model gets the same verdict whatever order
requests arrive in and however many the simulator served before, so two routing policies compared side by side are
judged alike, and asking the same model again does not turn a refused answer into an accepted one by luck. Scripted
content and tool calls are returned as scripted, never marked.

`x_bench_completion_tokens` (a positive integer) sets the answer's completion tokens for that request, in place of
the profile's `completion_tokens`, so that a workload can give a proof a longer (dearer) answer than a greeting;
`max_tokens` still caps it (finish reason "length"). Neither field is Groq's: Groq knows no such field, and only
the simulator reads them. A value of the wrong type or out of range is a 400 that names the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from typing import Any

DIFFICULTY_FIELD = "x_bench_difficulty"
COMPLETION_TOKENS_FIELD = "x_bench_completion_tokens"
UNACCEPTABLE = "[unacceptable]"
DEFAULT_NOISE = 0.05


def field_problem(body: dict[str, Any]) -> tuple[str, str] | None:
    """(message, param) for a quality field the simulator could not act on, or None."""
    difficulty = body.get(DIFFICULTY_FIELD)
    if difficulty is not None and not _unit_number(difficulty):
        return (
            f"'{DIFFICULTY_FIELD}' must be a number within [0, 1] (the request's difficulty), got {difficulty!r}",
            DIFFICULTY_FIELD,
        )
    tokens = body.get(COMPLETION_TOKENS_FIELD)
    if tokens is not None and not (type(tokens) is int and tokens > 0):
        return (
            f"'{COMPLETION_TOKENS_FIELD}' must be a positive integer (the answer's completion tokens), got {tokens!r}",
            COMPLETION_TOKENS_FIELD,
        )
    return None


def _unit_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0.0 <= value <= 1.0


def acceptable(
    *, capability: float | None, noise: float, difficulty: Any, seed: int, model: str, messages: Any
) -> bool:
    """Whether `model` (of this capability and noise) answers a request of this difficulty acceptably."""
    if capability is None or difficulty is None:
        return True
    return (
        capability + draw(seed=seed, model=model, difficulty=float(difficulty), messages=messages, sd=noise)
        >= difficulty
    )


def draw(*, seed: int, model: str, difficulty: float, messages: Any, sd: float) -> float:
    """The request's noise for this model: Normal(0, sd), a function of the seed, the model and the request."""
    if sd == 0.0:
        return 0.0
    request = json.dumps([messages, difficulty], sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(request.encode()).hexdigest()
    return random.Random(f"{seed}:{model}:{digest}").gauss(0.0, sd)


def mark(content: str) -> str:
    """The content of an unacceptable answer."""
    return f"{UNACCEPTABLE} {content}"


def valid_capability(value: float | None) -> bool:
    return value is None or (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0.0 <= value <= 1.0
    )

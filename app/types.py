"""What a caller receives: the response and one record per attempt. Frozen: they are facts, not state."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from enum import StrEnum
from typing import Any, TypedDict


class Outcome(StrEnum):
    SUCCESS = "success"
    FAILURE = "failure"
    SKIPPED = "skipped"
    CACHE_HIT = "cache_hit"  # answered from the response cache: no provider call


class ErrorKind(StrEnum):
    """Why an attempt failed or a model was skipped; the values are what the attempt log stores."""

    DEPRECATED = "deprecated"
    NOT_FOUND = "not_found"
    RATE_LIMITED = "rate_limited"
    TOO_LARGE = "too_large"
    CONTEXT_LENGTH = "context_length"
    CAPACITY = "capacity"
    SERVER_ERROR = "server_error"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    INVALID_RESPONSE = "invalid_response"
    UNEXPECTED_STATUS = "unexpected_status"
    SETUP = "setup"
    CANCELLED = "cancelled"
    # The model's output failed Groq's JSON-mode or tool-call check: the model's fault, another may answer.
    INVALID_OUTPUT = "invalid_output"
    # The request's deadline was too near for this attempt to be a fair test of the model.
    DEADLINE = "deadline"
    # A hedged request's slower call, cancelled once the other answered: not a failure of the model.
    HEDGE_LOST = "hedge_lost"
    # A stream failed after its first token was shown: it cannot move to another model without showing the
    # user two different answers.
    STREAM_INTERRUPTED = "stream_interrupted"
    # Skip-only reasons: the model was not called.
    COOLING_DOWN = "cooling_down"
    CIRCUIT_OPEN = "circuit_open"
    DISABLED = "disabled"  # taken out of rotation by ops (`taskrouter model disable`)
    BUDGET = "budget"
    CAPABILITY = "capability"
    # The answer arrived but did not pass the caller's checks.
    VALIDATION = "validation"
    # The answer arrived but a tiered request's cascade refused it (cut at its length limit, empty, or a refusal):
    # the next tier answers.
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Usage(Mapping[str, int]):
    """Token counts. An object (`usage.total_tokens`) and a read-only mapping (`usage["total_tokens"]`,
    `usage.get(...)`, `dict(usage)`), so code written against the OpenAI-style dict keeps working."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0

    def __getitem__(self, key: str) -> int:
        if key not in _USAGE_KEYS:
            raise KeyError(key)
        return getattr(self, key)  # type: ignore[no-any-return]

    def __iter__(self) -> Iterator[str]:
        return iter(_USAGE_KEYS)

    def __len__(self) -> int:
        return len(_USAGE_KEYS)

    @classmethod
    def of(cls, value: Usage | Mapping[str, Any] | None) -> Usage:
        """A Usage from a Usage, a dict of its fields (missing ones 0), or None."""
        if isinstance(value, Usage):
            return value
        if value is None:
            return cls()
        if not isinstance(value, Mapping):
            raise TypeError(f"usage must be a Usage or a dict of token counts, got {type(value).__name__}")
        unknown = set(value) - set(_USAGE_KEYS)
        if unknown:
            raise TypeError(f"usage has unknown fields {sorted(unknown)}; known: {', '.join(_USAGE_KEYS)}")
        return cls(**{k: int(v or 0) for k, v in value.items()})


_USAGE_KEYS = tuple(f.name for f in fields(Usage))


TIERS: tuple[str, ...] = ("simple", "medium", "complex")  # a task's tier lists, `<task>:<tier>`, weakest first


@dataclass(frozen=True, slots=True, kw_only=True)
class Complexity:
    """How demanding a request looks (`app.score_complexity`): the tier it starts on, a score from 0 to 1, and the
    features that made the score, as short phrases."""

    tier: str  # "simple", "medium" or "complex"
    score: float
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    model: str
    outcome: Outcome
    attempt: int  # 1-based position in the request's chain, counting skips
    error_kind: ErrorKind | None = None
    status_code: int | None = None
    message: str | None = None
    latency_ms: float | None = None
    is_fallback: bool = False
    provider: str = "groq"
    retry: int = 0  # 0 for the first call to this model in the request, n for its n-th retry

    def describe(self) -> str:
        parts = [f"{self.model}: {self.outcome.value}"]
        if self.error_kind:
            parts.append(f"error_kind={self.error_kind.value}")
        if self.retry:
            parts.append(f"retry={self.retry}")
        if self.status_code is not None:
            parts.append(f"status={self.status_code}")
        if self.message:
            parts.append(f"message={self.message!r}")
        return " ".join(parts)


@dataclass(frozen=True, slots=True)
class LLMResponse:
    """What every execute_* returns. Built by hand (in a test's mock) only content, model_used and
    finish_reason are needed; `usage` may be given as a dict of token counts."""

    content: str | None
    model_used: str
    finish_reason: str | None
    usage: Usage = field(default_factory=Usage)
    task_type: str = ""
    request_id: str = ""
    fallback_used: bool = False
    latency_ms: float = 0.0
    attempts: tuple[AttemptRecord, ...] = field(default_factory=tuple)
    provider: str = "groq"
    cost_usd: float | None = None
    provider_request_id: str | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None
    variant: str | None = None
    tier: str | None = None  # the tier whose model answered, for a tiered request
    complexity: Complexity | None = None  # the scorer's verdict, when the tier was chosen by it (tier="auto")
    cached: bool = False  # served from the response cache: no provider was called

    def __post_init__(self) -> None:
        if type(self.usage) is not Usage:  # a dict (or None) given by hand
            object.__setattr__(self, "usage", Usage.of(self.usage))


class ModelParams(TypedDict, total=False):
    """The model parameters every execute_* and stream_* function accepts, keyword-only, checked against what
    Groq accepts before any call (app/core/params.py). `extra_body` passes provider-specific fields unchecked."""

    max_tokens: int
    max_completion_tokens: int
    temperature: float
    top_p: float
    frequency_penalty: float
    presence_penalty: float
    n: int
    seed: int
    stop: str | list[str]
    user: str
    parallel_tool_calls: bool
    response_format: dict[str, Any]
    tools: list[dict[str, Any]]
    tool_choice: str | dict[str, Any]
    reasoning_effort: str
    reasoning_format: str
    include_reasoning: bool
    service_tier: str
    extra_body: dict[str, Any]

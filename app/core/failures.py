"""What a provider failure means: `classify` names its kind (one flat function, one branch per answer), and
`POLICY` declares, in one table, what each kind does to the request and to the model. The request's owner, the model
health and the circuit breaker only read the table; the docs' failure table (docs/routing.md) is `policy_markdown()`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from app.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderSetupError,
    ProviderTimeout,
)
from app.types import ErrorKind


class Mark(StrEnum):
    """How long a failure keeps the model out of every request (every process, through `model_status`)."""

    FOR_GOOD = "for good"  # decommissioned: skipped until someone clears the mark
    NOT_FOUND_TTL = "NOT_FOUND_TTL_SECONDS"
    PROVIDER_WAIT = "the provider's wait"  # retry-after, "try again in 9m38s", or the reset headers
    CAPACITY = "CAPACITY_COOLDOWN_SECONDS"


class Trip(StrEnum):
    """A run of failures that opens the breaker at once, named by the setting that says how many requests in a row
    make one. A hang is strong evidence: by default one opens it. A dropped or refused connection is mostly a
    transient (a keep-alive race, a proxy's cut): only a run of them, with no answer in between, means the model's
    server is gone."""

    TIMEOUTS = "BREAKER_OPEN_AFTER_TIMEOUTS"
    CONNECTION_ERRORS = "BREAKER_OPEN_AFTER_CONNECTION_ERRORS"


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """What one kind of failure does. `retry`: worth calling the same model again in this request (it may
    answer next time). `breaker`: counts as a failure in the model's circuit-breaker window. `trips`: a run of
    these, counted once per request, opens the breaker at once (the model is not answering at all). `mark`: keeps
    the model out of every request for that long. `stop`: the next model would fail the same way, so the
    request ends at once."""

    reason: str
    answer: str  # what the provider sent, for the docs' table
    then: str = "next model"  # what the request does next, for the docs' table
    retry: bool = False
    breaker: bool = False
    trips: Trip | None = None
    mark: Mark | None = None
    stop: bool = False


POLICY: dict[ErrorKind, Policy] = {
    ErrorKind.DEPRECATED: Policy(
        mark=Mark.FOR_GOOD, reason="decommissioned: skipped from now on", answer="400 `model_decommissioned`"
    ),
    ErrorKind.NOT_FOUND: Policy(
        mark=Mark.NOT_FOUND_TTL, reason="model retired, unknown or not on this key", answer="404 `model_not_found`"
    ),
    ErrorKind.RATE_LIMITED: Policy(
        retry=True,
        mark=Mark.PROVIDER_WAIT,
        reason="rate limited: try another model, this one once its wait is over",
        answer="429",
    ),
    ErrorKind.TOO_LARGE: Policy(reason="request above this model's TPM limit", answer="413"),
    ErrorKind.CONTEXT_LENGTH: Policy(
        reason="prompt + completion exceed the context",
        answer="400 `context_length_exceeded`, or an OpenAI-compatible server's "
        "context wording (vLLM, LiteLLM, Ollama, llama.cpp)",
    ),
    ErrorKind.CAPACITY: Policy(
        retry=True,
        mark=Mark.CAPACITY,
        reason="flex capacity exceeded: short cooldown",
        answer="498 `capacity_exceeded`",
    ),
    ErrorKind.SERVER_ERROR: Policy(retry=True, breaker=True, reason="provider-side error", answer="5xx"),
    ErrorKind.TIMEOUT: Policy(
        retry=True,
        breaker=True,
        trips=Trip.TIMEOUTS,
        reason="no answer within the attempt's timeout",
        answer="no answer in time, 408",
    ),
    ErrorKind.CONNECTION: Policy(
        retry=True,
        breaker=True,
        trips=Trip.CONNECTION_ERRORS,
        reason="connection refused, reset or dropped: a transient, retried",
        answer="refused / reset / dropped, a stream closed before its finish reason",
    ),
    ErrorKind.INVALID_OUTPUT: Policy(
        retry=True,
        reason="the model's output failed JSON mode or a tool call: not the caller's fault",
        answer="400 `json_validate_failed` / `tool_use_failed`",
    ),
    ErrorKind.INVALID_RESPONSE: Policy(
        retry=True, breaker=True, reason="the answer could not be read", answer="an unreadable 2xx"
    ),
    ErrorKind.UNEXPECTED_STATUS: Policy(
        breaker=True, reason="unexpected answer: try the next model", answer="any other status"
    ),
    ErrorKind.SETUP: Policy(
        reason="no usable client for this endpoint: fix the key or base URL; no model is marked",
        answer="no key / a URL the server does not know (404 `unknown_url`, `Not Found`)",
        then="next model (one on another endpoint may answer)",
    ),
    ErrorKind.AUTH: Policy(
        stop=True,
        reason="the key is refused; every model shares it",
        answer="401 / 403",
        then="raises `AuthenticationFailedError` naming `GROQ_API_KEY`",
    ),
    ErrorKind.BAD_REQUEST: Policy(
        stop=True,
        reason="the request itself is invalid",
        answer="other 400 / 422, unknown parameter",
        then="raises `RequestRejectedError`",
    ),
    ErrorKind.VALIDATION: Policy(
        reason="the answer failed the caller's validate= / required_fields= (billed: no retry)",
        answer="an answer `validate=` / `required_fields=` refuses",
        then="next model (the row keeps the billed tokens and cost)",
    ),
    ErrorKind.REFUSED: Policy(
        reason="a tiered request's cascade refused the answer: cut at its length limit, empty, "
        "or a refusal (billed: no retry)",
        answer="an answer with finish_reason `length`, no text, or a refusal",
        then="next tier (the row keeps the billed tokens and cost)",
    ),
    ErrorKind.DEADLINE: Policy(
        reason="the request's deadline cut the attempt short: says nothing about the model",
        answer="no answer before the deadline",
        then="raises `DeadlineExceededError`",
    ),
    ErrorKind.STREAM_INTERRUPTED: Policy(
        breaker=True,
        stop=True,
        reason="the stream failed after its first token was shown",
        answer="a stream cut, stalled, errored or closed before its finish reason, after its first token",
        then="raises `StreamInterruptedError` with the partial text",
    ),
    ErrorKind.HEDGE_LOST: Policy(
        reason="the other call of a hedged request answered first",
        answer="(cancelled by the router)",
        then="returns the other call's answer",
    ),
    ErrorKind.CANCELLED: Policy(
        reason="cancelled by the caller",
        answer="(cancelled by the caller)",
        then="ends: `CancelledError` goes on to the caller",
    ),
}

_NO_POLICY = Policy(reason="not a provider failure", answer="")


def policy(kind: ErrorKind) -> Policy:
    return POLICY.get(kind, _NO_POLICY)


# How OpenAI-compatible servers word a prompt longer than the model's context, lower-cased. Each would otherwise be
# a plain 400 (`bad_request`: the request would end), where a model with a longer context may answer.
_CONTEXT_WORDINGS = (
    "maximum context length",  # OpenAI and vLLM: "This model's maximum context length is 4096 tokens. However..."
    "maximum model length",  # vLLM's engine: "The decoder prompt (length N) is longer than the maximum model length"
    "context_length_exceeded",  # OpenAI's code, quoted inside a proxy's message
    "contextwindowexceedederror",  # LiteLLM's proxy: "litellm.ContextWindowExceededError: ..." with code "400"
    "exceeds the available context size",  # llama.cpp's server (type `exceed_context_size_error`)
    "input length exceeds the context length",  # Ollama
    "exceeds the context window",
    "is longer than the model's context length",
)


def is_context_length(error: ProviderError) -> bool:
    if error.code == "context_length_exceeded" or error.error_type == "exceed_context_size_error":
        return True
    message = error.message.lower()
    return any(wording in message for wording in _CONTEXT_WORDINGS)


def classify(error: ProviderError) -> ErrorKind:
    status, code = error.status_code, error.code
    if isinstance(error, ProviderTimeout):
        return ErrorKind.TIMEOUT
    if isinstance(error, ProviderConnectionError):
        return ErrorKind.CONNECTION
    if isinstance(error, ProviderSetupError):
        return ErrorKind.SETUP  # per endpoint: a model on another provider may still be reachable
    if isinstance(error, ProviderResponseError):
        return ErrorKind.INVALID_RESPONSE
    if code == "model_decommissioned":
        return ErrorKind.DEPRECATED
    if status == 404 or code == "model_not_found":
        return ErrorKind.NOT_FOUND  # an unknown URL's 404 is a ProviderSetupError, mapped by the provider
    if code in ("json_validate_failed", "tool_use_failed"):
        return ErrorKind.INVALID_OUTPUT  # a 400, but the model's output failed, not the request
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status == 413:
        return ErrorKind.TOO_LARGE
    if is_context_length(error):
        return ErrorKind.CONTEXT_LENGTH  # before the 400s: another model's context may be longer
    if status == 498 or code == "capacity_exceeded":
        return ErrorKind.CAPACITY
    if status is not None and status >= 500:
        return ErrorKind.SERVER_ERROR
    if status in (401, 403) or code == "invalid_api_key":
        return ErrorKind.AUTH
    if status in (400, 422) or code == "invalid_params":
        return ErrorKind.BAD_REQUEST
    if status == 408:
        return ErrorKind.TIMEOUT  # the provider timed the request out
    return ErrorKind.UNEXPECTED_STATUS


def policy_markdown() -> str:
    """The docs' failure table (docs/routing.md), generated from POLICY at build time: the two cannot disagree."""
    lines = [
        "| provider answer | `error_kind` | the request | retried | circuit breaker | keeps the model out |",
        "|---|---|---|---|---|---|",
    ]
    for kind, p in POLICY.items():
        breaker = f"counts; a run of `{p.trips.value}` opens it" if p.trips else ("counts" if p.breaker else "—")
        lines.append(
            f"| {p.answer} | `{kind.value}` | {p.then} | {'yes' if p.retry else 'no'} | {breaker} | "
            f"{p.mark.value if p.mark else '—'} |"
        )
    return "\n".join(lines)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_TRY_AGAIN = re.compile(r"try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)", re.IGNORECASE)
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> float | None:
    """Groq's durations: `7.66s`, `2m59.56s`, `9m38s`, `1h2m`, `150ms`. None when it is not one."""
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def rate_limit_wait(headers: Mapping[str, str], message: str | None) -> float | None:
    """Seconds to leave a rate-limited model alone, from the most precise source Groq gave."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value:
            try:
                return max(float(value) * scale, 0.0)
            except ValueError:
                pass
    if message:
        found = _TRY_AGAIN.search(message)
        if found:
            wait = parse_duration(found.group(1))
            if wait is not None:
                return wait
    waits = []
    for kind in ("requests", "tokens"):
        if lowered.get(f"x-ratelimit-remaining-{kind}") == "0":
            wait = parse_duration(lowered.get(f"x-ratelimit-reset-{kind}", ""))
            if wait is not None:
                waits.append(wait)
    return max(waits) if waits else None

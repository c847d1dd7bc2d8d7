"""What a provider failure means: `classify` names its kind (one flat function, one branch per answer), and
`POLICY` declares, in one table, what each kind does to the request and to the model. The executor, the model
health and the circuit breaker only read the table; README's failure table is `policy_markdown()`.
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


@dataclass(frozen=True, slots=True)
class Policy:
    """What one kind of failure does. `retry`: worth calling the same model again in this request (it may
    answer next time). `breaker`: counts as a failure in the model's circuit-breaker window. `trips`: a run
    of these, one per request, opens the breaker at once (the model is not answering at all). `mark`: keeps
    the model out of every request for that long. `stop`: the next model would fail the same way, so the
    request ends at once."""

    retry: bool
    breaker: bool
    trips: bool
    mark: Mark | None
    stop: bool
    reason: str
    answer: str  # what the provider sent, for README's table
    then: str = "next model"  # what the request does next, for README's table


POLICY: dict[ErrorKind, Policy] = {
    ErrorKind.DEPRECATED: Policy(False, False, False, Mark.FOR_GOOD, False,
                                 "decommissioned: skipped from now on", "400 `model_decommissioned`"),
    ErrorKind.NOT_FOUND: Policy(False, False, False, Mark.NOT_FOUND_TTL, False,
                                "model retired, unknown or not on this key", "404 `model_not_found`"),
    ErrorKind.RATE_LIMITED: Policy(True, False, False, Mark.PROVIDER_WAIT, False,
                                   "rate limited: try another model, this one once its wait is over", "429"),
    ErrorKind.TOO_LARGE: Policy(False, False, False, None, False,
                                "request above this model's TPM limit", "413"),
    ErrorKind.CONTEXT_LENGTH: Policy(False, False, False, None, False,
                                     "prompt + completion exceed the context", "400 `context_length_exceeded`"),
    ErrorKind.CAPACITY: Policy(True, False, False, Mark.CAPACITY, False,
                               "flex capacity exceeded: short cooldown", "498 `capacity_exceeded`"),
    ErrorKind.SERVER_ERROR: Policy(True, True, False, None, False, "provider-side error", "5xx"),
    ErrorKind.TIMEOUT: Policy(True, True, True, None, False, "no answer within the attempt's timeout",
                              "no answer in time, 408"),
    ErrorKind.CONNECTION: Policy(True, True, True, None, False, "connection refused, reset or dropped",
                                 "refused / reset / dropped"),
    ErrorKind.INVALID_OUTPUT: Policy(True, False, False, None, False,
                                     "the model's output failed JSON mode or a tool call: not the caller's fault",
                                     "400 `json_validate_failed` / `tool_use_failed`"),
    ErrorKind.INVALID_RESPONSE: Policy(True, True, False, None, False, "the answer could not be read",
                                       "an unreadable 2xx"),
    ErrorKind.UNEXPECTED_STATUS: Policy(False, True, False, None, False, "unexpected answer: try the next model",
                                        "any other status"),
    ErrorKind.SETUP: Policy(False, False, False, None, False,
                            "no usable client for this endpoint: fix the key or base URL", "no key / bad URL",
                            "next model (one on another endpoint may answer)"),
    ErrorKind.AUTH: Policy(False, False, False, None, True, "the key is refused; every model shares it",
                           "401 / 403", "raises `AuthenticationFailedError` naming `GROQ_API_KEY`"),
    ErrorKind.BAD_REQUEST: Policy(False, False, False, None, True, "the request itself is invalid",
                                  "other 400 / 422, unknown parameter", "raises `RequestRejectedError`"),
    ErrorKind.VALIDATION: Policy(False, False, False, None, False,
                                 "the answer failed the caller's validate= / required_fields= (billed: no retry)",
                                 "an answer `validate=` / `required_fields=` refuses",
                                 "next model (the row keeps the billed tokens and cost)"),
    ErrorKind.DEADLINE: Policy(False, False, False, None, False,
                               "the request's deadline cut the attempt short: says nothing about the model",
                               "no answer before the deadline", "raises `DeadlineExceededError`"),
    ErrorKind.STREAM_INTERRUPTED: Policy(False, True, False, None, True,
                                         "the stream failed after its first token was shown",
                                         "a stream cut, stalled or errored after its first token",
                                         "raises `StreamInterruptedError` with the partial text"),
    ErrorKind.HEDGE_LOST: Policy(False, False, False, None, False,
                                 "the other call of a hedged request answered first", "(cancelled by the router)",
                                 "returns the other call's answer"),
    ErrorKind.CANCELLED: Policy(False, False, False, None, False, "cancelled by the caller",
                                "(cancelled by the caller)", "ends: `CancelledError` goes on to the caller"),
}

_NO_POLICY = Policy(False, False, False, None, False, "not a provider failure", "")


def policy(kind: ErrorKind) -> Policy:
    return POLICY.get(kind, _NO_POLICY)


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
        return ErrorKind.NOT_FOUND
    if code in ("json_validate_failed", "tool_use_failed"):
        return ErrorKind.INVALID_OUTPUT  # a 400, but the model's output failed, not the request
    if status == 429:
        return ErrorKind.RATE_LIMITED
    if status == 413:
        return ErrorKind.TOO_LARGE
    if code == "context_length_exceeded":
        return ErrorKind.CONTEXT_LENGTH
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
    """README's failure table, generated from POLICY so that the two cannot disagree (a test compares them)."""
    lines = ["| provider answer | `error_kind` | the request | retried | circuit breaker | keeps the model out |",
             "|---|---|---|---|---|---|"]
    for kind, p in POLICY.items():
        breaker = "counts; a run opens it" if p.trips else ("counts" if p.breaker else "—")
        lines.append(f"| {p.answer} | `{kind.value}` | {p.then} | {'yes' if p.retry else 'no'} | {breaker} | "
                     f"{p.mark.value if p.mark else '—'} |")
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

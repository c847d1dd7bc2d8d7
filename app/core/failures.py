"""What a provider failure means for the request: one flat function, one branch per answer, with the reason."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from app.core.types import ErrorKind
from app.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderSetupError,
    ProviderTimeout,
)


@dataclass(frozen=True, slots=True)
class FailureDecision:
    kind: ErrorKind
    stop_request: bool  # True: the next model would fail the same way, raise now
    reason: str


def classify(error: ProviderError) -> FailureDecision:
    status, code = error.status_code, error.code
    if isinstance(error, ProviderTimeout):
        return FailureDecision(ErrorKind.TIMEOUT, False, "no answer within LLM_TIMEOUT_SECONDS")
    if isinstance(error, ProviderConnectionError):
        return FailureDecision(ErrorKind.CONNECTION, False, "connection refused, reset or dropped")
    if isinstance(error, ProviderSetupError):
        # Per endpoint: a model on another provider may still be reachable.
        return FailureDecision(ErrorKind.SETUP, False, "no usable client: fix the key or base URL")
    if isinstance(error, ProviderResponseError):
        return FailureDecision(ErrorKind.INVALID_RESPONSE, False, "the answer could not be read")
    if code == "model_decommissioned":
        return FailureDecision(ErrorKind.DEPRECATED, False, "model decommissioned: skipped from now on")
    if status == 404 or code == "model_not_found":
        return FailureDecision(ErrorKind.NOT_FOUND, False, "model retired, unknown or not on this key")
    if status == 429:
        return FailureDecision(ErrorKind.RATE_LIMITED, False, "rate limited: cool down, try another model")
    if status == 413:
        return FailureDecision(ErrorKind.TOO_LARGE, False, "request above this model's TPM limit")
    if code == "context_length_exceeded":
        return FailureDecision(ErrorKind.CONTEXT_LENGTH, False, "prompt + completion exceed the context")
    if status == 498 or code == "capacity_exceeded":
        return FailureDecision(ErrorKind.CAPACITY, False, "flex capacity exceeded: short cooldown")
    if status is not None and status >= 500:
        return FailureDecision(ErrorKind.SERVER_ERROR, False, "provider-side error")
    if status in (401, 403) or code == "invalid_api_key":
        return FailureDecision(ErrorKind.AUTH, True, "the key is refused; every model shares it")
    if status in (400, 422) or code == "invalid_params":
        return FailureDecision(ErrorKind.BAD_REQUEST, True, "the request itself is invalid")
    if status == 408:
        return FailureDecision(ErrorKind.TIMEOUT, False, "the provider timed the request out")
    return FailureDecision(ErrorKind.UNEXPECTED_STATUS, False, "unexpected answer: try the next model")


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

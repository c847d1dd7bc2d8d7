"""Fault names and the exact status, JSON body and headers Groq sends for each (see groq-api.md)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from app.simulator.server import Response

FAULTS: tuple[str, ...] = (
    "decommissioned",
    "not_found",
    "rate_limit",
    "rate_limit_daily",
    "too_large",
    "context_length",
    "capacity",
    "server_error",
    "bad_gateway",
    "unavailable",
    "hang",
    "disconnect",
    "invalid_request",
    "json_validate_failed",
    "tool_use_failed",
    "auth",
    "forbidden",
    "stream_cut",
    "stream_stall",
    "stream_error",
    "echo_auth",
    "foreign_error",
)
OK = "ok"
OUTCOMES: frozenset[str] = frozenset((*FAULTS, OK))

# Outcomes after which nothing (or nothing yet) has been sent; the request log stores status None.
NO_STATUS: frozenset[str] = frozenset({"hang", "disconnect"})
# Faults of a stream already under way (status 200 and some chunks sent), scripted as e.g.
# `{"fault": "stream_cut", "after_chunks": 2}` or drawn from `fault_rates`:
#   stream_cut    after `after_chunks` content (or tool-call) chunks, counted after the role chunk, the connection
#                 closes mid-body: no finish chunk, no usage, no [DONE]. `framing`: "chunked" (default: the body
#                 lacks its last chunk, which the client sees as an error) or "close" (a close-delimited body, as
#                 a proxy or load balancer sends: the client sees a clean end of the stream).
#   stream_stall  after them nothing for `seconds` (None: until the client leaves or the server stops); a client
#                 that outwaits a finite stall gets the rest of the stream.
#   stream_error  after them `event: error` with {"error": {..., "status_code"}}, then the body ends without
#                 [DONE]. `error` names an error fault whose body to send (default tool_use_failed) or is the
#                 error object itself; `message` and `failed_generation` adjust it.
# All three also take the `ok` options that shape the answer they start to send. A request without
# `stream: true` that draws one gets the ordinary answer (logged as ok): what breaks a stream cannot break a
# body sent in one piece, and fault_rates should not need a separate copy for plain requests.
STREAM_FAULTS: frozenset[str] = frozenset({"stream_cut", "stream_stall", "stream_error"})
# Faults with an error body, which `stream_error` can send as its event.
# Not Groq's: the error body another OpenAI-compatible server sends (vLLM, LiteLLM's proxy, Ollama, llama.cpp's
# server), scripted as `{"fault": "foreign_error", "status": 400, "body": {...} or "text"}` and sent as given.
FOREIGN_ERROR = "foreign_error"
ERROR_FAULTS: tuple[str, ...] = tuple(
    f for f in FAULTS if f not in NO_STATUS and f not in STREAM_FAULTS and f != FOREIGN_ERROR
)
DEFAULT_AFTER_CHUNKS = 3
DEFAULT_STREAM_ERROR = "tool_use_failed"  # the mid-stream error seen from the real API
# Not Groq's: a proxy in front of it that echoes the request's Authorization header (app/simulator/echo.py). It
# answers `status` with the body of Groq's fault for that status; stream_error can send it as its `error` too.
ECHO_AUTH = "echo_auth"
ECHO_STATUSES: dict[int, str] = {401: "auth", 400: "invalid_request", 429: "rate_limit", 500: "server_error"}

# Script options each outcome understands; anything else is a typo and rejected when scripted.
_COMMON_OPTIONS = frozenset({"fault", "message", "latency_ms"})
# What the answer says, and (streams only) the pause from the response headers (sent after `latency_ms`) to
# the first chunk, `first_token_ms`, and between later chunks, `chunk_ms`; both default to the profile's
# tokens_per_second pacing. `tool_calls` ([{"name", "arguments" (a JSON string or an object), "id"?}]) answer a
# request that offers `tools` with those calls and finish_reason "tool_calls".
_ANSWER_OPTIONS = frozenset(
    {
        "content",
        "tool_calls",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "reasoning_tokens",
        "finish_reason",
        "first_token_ms",
        "chunk_ms",
    }
)
_OPTIONS: dict[str, frozenset[str]] = {
    OK: _ANSWER_OPTIONS,
    # A broken stream first sends part of an ordinary answer, which the same options shape.
    "stream_cut": _ANSWER_OPTIONS | {"after_chunks", "framing"},
    "stream_stall": _ANSWER_OPTIONS | {"after_chunks", "seconds"},
    "stream_error": _ANSWER_OPTIONS | {"after_chunks", "error", "failed_generation"},
    "rate_limit": frozenset({"retry_after"}),
    "rate_limit_daily": frozenset({"retry_after"}),
    "hang": frozenset({"seconds"}),
    "invalid_request": frozenset({"param"}),
    "json_validate_failed": frozenset({"failed_generation"}),
    "tool_use_failed": frozenset({"failed_generation"}),
    ECHO_AUTH: frozenset({"status", "retry_after"}),
    FOREIGN_ERROR: frozenset({"status", "body"}),
}

STATUS: dict[str, int] = {
    "decommissioned": 400,
    "not_found": 404,
    "rate_limit": 429,
    "rate_limit_daily": 429,
    "too_large": 413,
    "context_length": 400,
    "capacity": 498,
    "server_error": 500,
    "bad_gateway": 502,
    "unavailable": 503,
    "invalid_request": 400,
    "json_validate_failed": 400,
    "tool_use_failed": 400,
    "auth": 401,
    "forbidden": 403,
    "stream_cut": 200,
    "stream_stall": 200,
    "stream_error": 200,
    ECHO_AUTH: 401,  # unless scripted with another `status` (see status_of)
    FOREIGN_ERROR: 400,  # unless scripted with another `status`
    OK: 200,
}

ORG = "org_sim"
DAILY_REQUEST_LIMIT = 14400
MINUTE_TOKEN_LIMIT = 250000
_TPM_WAIT = 1.98  # Groq's own example; the header rounds it up to 2
_RPD_WAIT = 578.0  # "9m38s"
_UPGRADE = "Need more tokens? Upgrade to Dev Tier today at https://console.groq.com/settings/billing"
DEFAULT_INVALID_MESSAGE = "'messages.0' : discriminator property 'role' has invalid value"
# The model's own broken output, which Groq returns as `failed_generation` when it cannot parse it:
# JSON mode cut off before the object closes, and a Llama-style tool call missing the `>` after its name.
DEFAULT_FAILED_JSON = '{\n  "answer": "4",\n  "explanation": "2 plus 2 equals 4'
DEFAULT_FAILED_TOOL_CALL = '<function=calculator{"expression": "2+2"}</function>'
# fault (also Groq's `error.code`) -> (message, default failed_generation)
_FAILED_GENERATION: dict[str, tuple[str, str]] = {
    "json_validate_failed": (
        "Failed to generate JSON. Please adjust your prompt. See 'failed_generation' for more details.",
        DEFAULT_FAILED_JSON,
    ),
    "tool_use_failed": (
        "Failed to call a function. Please adjust your prompt. See 'failed_generation' for more details.",
        DEFAULT_FAILED_TOOL_CALL,
    ),
}


def check_options(outcome: str, options: dict[str, Any]) -> None:
    """Raise ValueError for an unknown outcome or an option it would ignore."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}; use 'ok' or one of: {', '.join(FAULTS)}")
    unknown = set(options) - _COMMON_OPTIONS - _OPTIONS.get(outcome, frozenset())
    if unknown:
        raise ValueError(f"option(s) {', '.join(sorted(unknown))} do not apply to {outcome!r}")
    for name in ("first_token_ms", "chunk_ms"):
        if name in options:
            _check_number(outcome, name, options[name])
    if "after_chunks" in options:
        value = options["after_chunks"]
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{outcome!r}: after_chunks must be an int >= 0, got {value!r}")
    if options.get("framing", "chunked") not in ("chunked", "close"):
        raise ValueError(f"{outcome!r}: framing must be 'chunked' or 'close', got {options['framing']!r}")
    if outcome == "stream_stall" and options.get("seconds") is not None:
        _check_number(outcome, "seconds", options["seconds"])
    if "tool_calls" in options:
        _check_tool_calls(outcome, options["tool_calls"])
    if outcome == ECHO_AUTH and options.get("status", 401) not in ECHO_STATUSES:
        statuses = ", ".join(map(str, ECHO_STATUSES))
        raise ValueError(f"{outcome!r}: status must be one of {statuses}, got {options['status']!r}")
    if outcome == FOREIGN_ERROR:
        status = options.get("status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"{outcome!r}: status must be an int from 400 to 599, got {status!r}")
        if not isinstance(options.get("body"), dict | str):
            raise ValueError(f"{outcome!r}: body must be a JSON object or a string, the answer as that server sends it")
    if "error" in options:
        error = options["error"]
        if isinstance(error, Mapping):
            if not isinstance(error.get("message"), str):
                raise ValueError(f"{outcome!r}: an error object needs a string 'message'")
        elif error not in ERROR_FAULTS:
            raise ValueError(f"{outcome!r}: error must be an error object or one of: {', '.join(ERROR_FAULTS)}")


def status_of(outcome: str, options: dict[str, Any]) -> int:
    """The HTTP status an outcome answers with."""
    return int(options.get("status", STATUS[outcome])) if outcome in (ECHO_AUTH, FOREIGN_ERROR) else STATUS[outcome]


def _check_number(outcome: str, name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{outcome!r}: {name} must be a finite number >= 0, got {value!r}")


def _check_tool_calls(outcome: str, calls: Any) -> None:
    if not isinstance(calls, list | tuple) or not calls:
        raise ValueError(f"{outcome!r}: tool_calls must be a non-empty list of {{'name', 'arguments'}} objects")
    for call in calls:
        if not isinstance(call, Mapping) or not isinstance(call.get("name"), str) or not call["name"]:
            raise ValueError(f"{outcome!r}: every tool call needs a non-empty string 'name', got {call!r}")
        extra = set(call) - {"name", "arguments", "id"}
        if extra:
            known = "name, arguments, id"
            raise ValueError(f"{outcome!r}: unknown tool call key(s) {', '.join(sorted(extra))}; use {known}")
        if not isinstance(call.get("arguments", ""), str | Mapping):
            raise ValueError(f"{outcome!r}: tool call arguments must be a JSON string or an object")
        if not isinstance(call.get("id", ""), str):
            raise ValueError(f"{outcome!r}: tool call id must be a string")


def groq_duration(seconds: float) -> str:
    """Groq's duration format: `1.98s`, `7.66s`, `2m59.56s`, `9m38s`, `1h2m3s`."""
    seconds = max(0.0, seconds)
    hours, rest = divmod(seconds, 3600.0)
    minutes, secs = divmod(rest, 60.0)
    secs_text = f"{secs:.2f}".rstrip("0").rstrip(".")
    text = f"{secs_text}s"
    if minutes or hours:
        text = f"{int(minutes)}m{text}"
    if hours:
        text = f"{int(hours)}h{text}"
    return text


def ratelimit_headers(
    *,
    remaining_requests: int,
    remaining_tokens: int,
    reset_requests: str = "2m59.56s",
    reset_tokens: str = "7.66s",
) -> list[tuple[str, str]]:
    # Requests are counted per day and tokens per minute, as Groq's headers do.
    return [
        ("x-ratelimit-limit-requests", str(DAILY_REQUEST_LIMIT)),
        ("x-ratelimit-limit-tokens", str(MINUTE_TOKEN_LIMIT)),
        ("x-ratelimit-remaining-requests", str(remaining_requests)),
        ("x-ratelimit-remaining-tokens", str(remaining_tokens)),
        ("x-ratelimit-reset-requests", reset_requests),
        ("x-ratelimit-reset-tokens", reset_tokens),
    ]


def error_json(status: int, error: dict[str, Any], headers: list[tuple[str, str]] | None = None) -> Response:
    body = json.dumps({"error": error}).encode()
    return Response(status, body, headers or [])


def _error(message: str, type_: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "type": type_}
    if code is not None:
        error["code"] = code
    if param is not None:
        error["param"] = param
    return error


def fault_error(fault: str, model: str, options: dict[str, Any]) -> dict[str, Any]:
    """The inner `error` object for an error fault (everything but hang, disconnect, echo_auth and ok)."""
    if fault == "decommissioned":
        error = _error(
            f"The model `{model}` has been decommissioned and is no longer supported. Please refer to "
            "https://console.groq.com/docs/deprecations for a recommendation on which model to use instead.",
            "invalid_request_error",
            "model_decommissioned",
        )
    elif fault == "not_found":
        error = _error(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        )
    elif fault == "rate_limit":
        wait = _wait(options, _TPM_WAIT)
        error = _error(
            f"Rate limit reached for model `{model}` in organization `{ORG}` service tier `on_demand` on "
            f"tokens per minute (TPM): Limit 12000, Used 2542, Requested 9855. Please try again in "
            f"{groq_duration(wait)}. {_UPGRADE}",
            "tokens",
            "rate_limit_exceeded",
        )
    elif fault == "rate_limit_daily":
        wait = _wait(options, _RPD_WAIT)
        error = _error(
            f"Rate limit reached for model `{model}` in organization `{ORG}` service tier `on_demand` on "
            f"requests per day (RPD): Limit 1000, Used 1000, Requested 1. Please try again in "
            f"{groq_duration(wait)}. {_UPGRADE}",
            "requests",
            "rate_limit_exceeded",
        )
    elif fault == "too_large":
        error = _error(
            f"Request too large for model `{model}` in organization `{ORG}` service tier `on_demand` on "
            "tokens per minute (TPM): Limit 6000, Requested 12328, please reduce your message size and "
            f"try again. {_UPGRADE}",
            "tokens",
            "rate_limit_exceeded",
        )
    elif fault == "context_length":
        error = _error(
            "Please reduce the length of the messages or completion.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        )
    elif fault == "capacity":
        error = _error(
            "Flex tier capacity exceeded. This is a known issue and we are working on it, please retry later.",
            "service_unavailable",
            "capacity_exceeded",
        )
    elif fault == "server_error":
        error = _error("Internal Server Error", "internal_server_error")
    elif fault == "bad_gateway":
        error = _error("Bad Gateway", "internal_server_error", "bad_gateway")
    elif fault == "unavailable":
        error = _error("Service Unavailable", "service_unavailable", "service_unavailable")
    elif fault == "invalid_request":
        error = _error(DEFAULT_INVALID_MESSAGE, "invalid_request_error", None, options.get("param"))
    elif fault in _FAILED_GENERATION:
        message, generation = _FAILED_GENERATION[fault]
        error = _error(message, "invalid_request_error", fault)
        override = options.get("failed_generation")
        error["failed_generation"] = generation if override is None else str(override)
    elif fault == "auth":
        error = _error("Invalid API Key", "invalid_request_error", "invalid_api_key")
    elif fault == "forbidden":
        error = _error("Access denied. Please check your network settings.", "permission_denied", "permission_denied")
    else:
        raise ValueError(f"{fault!r} has no error body")
    if options.get("message") is not None:
        error["message"] = str(options["message"])
    return error


def fault_response(fault: str, model: str, options: dict[str, Any], request_id: str) -> Response:
    """The full HTTP answer for an error fault: status, Groq's body, and the headers Groq adds."""
    headers = [("x-request-id", request_id)]
    if fault == "rate_limit":
        wait = _wait(options, _TPM_WAIT)
        headers += ratelimit_headers(remaining_requests=DAILY_REQUEST_LIMIT - 1, remaining_tokens=0)
        if options.get("retry_after", _TPM_WAIT) is not None:
            # Groq sends whole seconds, rounded up so that retrying at that moment is safe.
            headers.append(("retry-after", str(max(1, math.ceil(wait)))))
    elif fault == "rate_limit_daily":
        wait = _wait(options, _RPD_WAIT)
        headers += ratelimit_headers(
            remaining_requests=0, remaining_tokens=MINUTE_TOKEN_LIMIT, reset_requests=groq_duration(wait)
        )
    elif fault == "too_large":
        headers += ratelimit_headers(remaining_requests=DAILY_REQUEST_LIMIT - 1, remaining_tokens=MINUTE_TOKEN_LIMIT)
    return error_json(STATUS[fault], fault_error(fault, model, options), headers)


def stream_error_event(model: str, options: dict[str, Any]) -> bytes:
    """The SSE event Groq sends when a stream fails after it started: `event: error` and the error object
    with the status the request would have had, since the real one (200) is already sent."""
    error = options.get("error", DEFAULT_STREAM_ERROR)
    if isinstance(error, Mapping):
        inner = dict(error)
        if options.get("message") is not None:
            inner["message"] = str(options["message"])
        inner.setdefault("status_code", 400)
    else:
        inner = fault_error(error, model, options)
        inner["status_code"] = STATUS[error]
    return error_event(inner)


def error_event(inner: dict[str, Any]) -> bytes:
    return b"event: error\ndata: " + json.dumps({"error": inner}).encode() + b"\n\n"


def unknown_url(method: str, path: str) -> Response:
    return error_json(
        404,
        _error(
            f"Unknown request URL: {method} {path}. Please check the URL for typos, or see the docs at "
            "https://console.groq.com/docs/",
            "invalid_request_error",
            "unknown_url",
        ),
    )


def _wait(options: dict[str, Any], default: float) -> float:
    value = options.get("retry_after", default)
    # retry_after=None means "send no retry-after header"; the message still needs a wait to quote.
    return default if value is None else float(value)


def foreign_response(options: dict[str, Any], request_id: str) -> Response:
    """FOREIGN_ERROR's answer: the status and body as scripted (a string body goes out as plain text)."""
    body = options["body"]
    headers = [("x-request-id", request_id)]
    if isinstance(body, str):
        return Response(status_of(FOREIGN_ERROR, options), body.encode(), headers, "text/plain; charset=utf-8")
    return Response(status_of(FOREIGN_ERROR, options), json.dumps(body).encode(), headers)

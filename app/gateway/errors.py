"""The project's exceptions as the HTTP status and OpenAI error object an OpenAI client expects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.errors import (
    AllModelsFailedError,
    AuthenticationFailedError,
    BudgetExceededError,
    ConfigError,
    DeadlineExceededError,
    InvalidMessagesError,
    InvalidParameterError,
    NoCapableModelError,
    RequestRejectedError,
    StreamInterruptedError,
    TaskFailedError,
    UnknownTaskError,
)
from app.types import ErrorKind

INVALID_REQUEST = "invalid_request_error"
SERVER_ERROR = "server_error"


@dataclass(frozen=True, slots=True)
class ErrorReply:
    status: int
    type: str
    code: str
    message: str
    param: str | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def every_model_rate_limited(exc: TaskFailedError) -> bool:
    """Every attempt and skip was the provider's rate limit: the client should wait, not give up."""
    return bool(exc.attempts) and all(a.error_kind == ErrorKind.RATE_LIMITED for a in exc.attempts)


def error_reply(exc: Exception) -> ErrorReply:
    """The one mapping from an exception to its HTTP answer. Most specific classes first: the tree nests."""
    message = str(exc)
    if isinstance(exc, UnknownTaskError):
        # Named for an HTTP client: the exception's own advice is about registering a task from Python.
        known = ", ".join(exc.known)
        message = f"unknown model {exc.task_type!r}: name a task, one of {known} (GET /v1/models lists them)"
        return ErrorReply(404, INVALID_REQUEST, "model_not_found", message, "model")
    if isinstance(exc, InvalidParameterError):
        return ErrorReply(400, INVALID_REQUEST, "invalid_parameter", message, exc.param)
    if isinstance(exc, InvalidMessagesError):
        return ErrorReply(400, INVALID_REQUEST, "invalid_messages", message, "messages")
    if isinstance(exc, ConfigError):  # an option of this request the router refuses (e.g. one not for streams)
        return ErrorReply(400, INVALID_REQUEST, "invalid_request", message)
    if isinstance(exc, RequestRejectedError):
        return ErrorReply(400, INVALID_REQUEST, "request_rejected", message)
    if isinstance(exc, NoCapableModelError):
        return ErrorReply(400, INVALID_REQUEST, "no_capable_model", message)
    if isinstance(exc, BudgetExceededError):
        return ErrorReply(429, "insufficient_quota", "budget_exceeded", message)
    if isinstance(exc, DeadlineExceededError):
        return ErrorReply(504, SERVER_ERROR, "deadline_exceeded", message)
    if isinstance(exc, AuthenticationFailedError):  # the gateway's provider key, not the client's: not a 401
        return ErrorReply(503, SERVER_ERROR, "upstream_authentication_failed", message)
    if isinstance(exc, StreamInterruptedError):
        return ErrorReply(503, SERVER_ERROR, "stream_interrupted", message)
    if isinstance(exc, AllModelsFailedError) and every_model_rate_limited(exc):
        return ErrorReply(429, "rate_limit_error", "rate_limit_exceeded", message)
    if isinstance(exc, TaskFailedError):
        return ErrorReply(503, SERVER_ERROR, "all_models_failed", message)
    return ErrorReply(500, SERVER_ERROR, "internal_error", "the gateway failed to handle the request")

"""The project's exception tree.

Foreign exceptions (the `groq` SDK's, httpx's and aiohttp's under it, asyncio's timeouts) never escape the provider
layer: they are mapped at that boundary to a ProviderError raised outside the ``except`` block, ``from None``. The
foreign exception is neither its ``__cause__`` nor its ``__context__``: it holds the request, whose headers carry
the API key, and a proxy may echo the key in its response.

    TaskRouterError
    ├ ConfigError (ValueError)              a setting or registry entry is wrong; names the variable
    ├ InvalidMessagesError (ValueError)     messages rejected locally, before any network call
    ├ UnknownTaskError (LookupError)        a task type the registry does not know; lists the known ones
    ├ ProviderError                         one provider call failed (raised by run_llm, caught by the request)
    │  ├ ProviderTimeout                    no answer within LLM_TIMEOUT_SECONDS
    │  ├ ProviderConnectionError            refused, reset, dropped mid-response
    │  ├ ProviderStatusError                the provider answered 4xx/5xx (.status_code, .code, .headers)
    │  ├ ProviderResponseError              the answer could not be understood
    │  └ ProviderSetupError                 no usable client (missing key, bad base URL)
    └ TaskFailedError (RuntimeError)        a routed request ended without an answer (.attempts)
       ├ AllModelsFailedError               every candidate model failed or was skipped
       ├ AuthenticationFailedError          401/403: the key is shared by every model, so stop at once
       ├ RequestRejectedError               400/422 caused by the request itself: would repeat everywhere
       │  └ InvalidParameterError (ValueError)  a parameter Groq would refuse, caught before any network call
       ├ NoCapableModelError                no model in the chain has what the request needs
       ├ BudgetExceededError                the daily budget is spent; no provider was called
       ├ DeadlineExceededError (TimeoutError)  the request's deadline passed before any model answered
       └ StreamInterruptedError             a stream failed after its first token (.partial_content)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.types import AttemptRecord


class TaskRouterError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(TaskRouterError, ValueError):
    """A setting or registry entry is invalid. The message names what to fix."""


class InvalidMessagesError(TaskRouterError, ValueError):
    """The messages cannot be sent to any model (bad role, missing content...)."""


class UnknownTaskError(TaskRouterError, LookupError):
    def __init__(self, task_type: str, known: Sequence[str]) -> None:
        self.task_type = task_type
        self.known = sorted(known)
        super().__init__(
            f"unknown task type {task_type!r}; known task types: {', '.join(self.known)}. "
            f'Register it from your own code at startup (`app.MODEL_REGISTRY[{task_type!r}] = ["<model>", ...]`, '
            "read on every call), rather than in the installed package's files, which an upgrade replaces."
        )


class ProviderError(TaskRouterError):
    """One call to a provider failed. ``message`` never contains the API key; ``headers`` holds only the response's
    rate-limit, retry-after and request-id headers (app/providers/redaction.py)."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.error_type = error_type
        self.headers: Mapping[str, str] = dict(headers or {})


class ProviderTimeout(ProviderError):
    pass


class ProviderConnectionError(ProviderError):
    pass


class ProviderStatusError(ProviderError):
    pass


class ProviderResponseError(ProviderError):
    pass


class ProviderSetupError(ProviderError):
    pass


class TaskFailedError(TaskRouterError, RuntimeError):
    """A routed request ended without an answer. ``attempts`` holds one record per attempt or skip;
    ``request_id`` is the id its rows carry in the attempt log."""

    def __init__(
        self, summary: str, attempts: Sequence[AttemptRecord], *, task_type: str, request_id: str | None = None
    ) -> None:
        self.summary = summary
        self.attempts = tuple(attempts)
        self.task_type = task_type
        self.request_id = request_id
        lines = [f"{summary} (request_id={request_id})" if request_id else summary]
        lines += [f"  - {a.describe()}" for a in self.attempts]
        super().__init__("\n".join(lines))


class AllModelsFailedError(TaskFailedError):
    pass


class AuthenticationFailedError(TaskFailedError):
    pass


class RequestRejectedError(TaskFailedError):
    pass


class InvalidParameterError(RequestRejectedError, ValueError):
    """A parameter the provider would refuse (unknown, wrong type, out of range, above every model's completion
    limit), found locally: nothing was sent and nothing logged. A RequestRejectedError, as the provider's own 400
    would have been, and a ValueError, as InvalidMessagesError is. The message names the parameter, the value
    given and what is accepted; ``param`` is the parameter's name."""

    def __init__(self, message: str, *, param: str, task_type: str) -> None:
        super().__init__(message, (), task_type=task_type)
        self.param = param


class NoCapableModelError(TaskFailedError):
    pass


class BudgetExceededError(TaskFailedError):
    pass


class DeadlineExceededError(TaskFailedError, TimeoutError):
    """LLM_REQUEST_DEADLINE_SECONDS (or the call's `timeout=`) ran out; ``attempts`` holds every attempt made.
    Also a built-in TimeoutError, so `except TimeoutError` around a call catches it."""


class StreamInterruptedError(TaskFailedError):
    """A streamed answer stopped after the caller had seen part of it (connection dropped, an error event, no
    chunk within LLM_STREAM_IDLE_TIMEOUT_SECONDS). ``partial_content`` is the text received so far. The router
    does not move to another model here: the user would see the start of one answer and the rest of another."""

    def __init__(
        self,
        summary: str,
        attempts: Sequence[AttemptRecord],
        *,
        task_type: str,
        request_id: str | None = None,
        partial_content: str = "",
    ) -> None:
        super().__init__(summary, attempts, task_type=task_type, request_id=request_id)
        self.partial_content = partial_content

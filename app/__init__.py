"""taskrouter: Groq-first, resilient LLM task execution.

Application code names a task, never a model; `app/core/ai_models.py` maps tasks to models.

The `execute_*` and `stream_*` functions here, and the two tables, are looked up on `app.core.ai_models` at each
call: a test that patches `app.core.ai_models.execute_fast_task` (README's mock recipe) reaches code that calls
`app.execute_fast_task(...)` or did `from app import execute_fast_task`, before the patch or after it.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from app.core import ai_models as _ai_models
from app.core.complexity import score_complexity
from app.core.router import Router
from app.core.runtime import SyncTaskStream, configure, flush_attempt_log, get_router, reset
from app.core.streaming import TaskStream
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
    TaskRouterError,
    UnknownTaskError,
)
from app.registry.catalog import ModelInfo
from app.types import AttemptRecord, Complexity, ErrorKind, LLMResponse, ModelParams, Outcome, Usage

if TYPE_CHECKING:  # editors and type checkers see the functions themselves: signatures, types, docstrings
    from app.core.ai_models import (
        MODEL_CATALOG,
        MODEL_REGISTRY,
        execute_fast_task,
        execute_reasoning_task,
        execute_summarization_task,
        execute_task,
        execute_task_sync,
        stream_fast_task,
        stream_reasoning_task,
        stream_summarization_task,
        stream_task,
        stream_task_sync,
    )


def _forwarder(name: str) -> Callable[..., Any]:
    """`app.<name>`: calls whatever `app.core.ai_models.<name>` is at call time (the function, or a test's mock),
    with the function's name, docstring and signature (`inspect.signature`, `help`). A coroutine function stays
    one, so that `await`, `AsyncMock(spec=...)` and `patch(..., autospec=True)` treat it as the function."""
    target = getattr(_ai_models, name)
    forward: Callable[..., Any]
    if inspect.iscoroutinefunction(target):

        async def forward(*args: Any, **kwargs: Any) -> Any:
            return await getattr(_ai_models, name)(*args, **kwargs)
    else:

        def forward(*args: Any, **kwargs: Any) -> Any:
            return getattr(_ai_models, name)(*args, **kwargs)

    return functools.wraps(target)(forward)


if not TYPE_CHECKING:
    execute_task = _forwarder("execute_task")
    execute_fast_task = _forwarder("execute_fast_task")
    execute_reasoning_task = _forwarder("execute_reasoning_task")
    execute_summarization_task = _forwarder("execute_summarization_task")
    execute_task_sync = _forwarder("execute_task_sync")
    stream_task = _forwarder("stream_task")
    stream_fast_task = _forwarder("stream_fast_task")
    stream_reasoning_task = _forwarder("stream_reasoning_task")
    stream_summarization_task = _forwarder("stream_summarization_task")
    stream_task_sync = _forwarder("stream_task_sync")


def __getattr__(name: str) -> object:
    # The tables, read on ai_models each time, so that a test or an app that rebinds them there is seen here too.
    if name in ("MODEL_REGISTRY", "MODEL_CATALOG"):
        return getattr(_ai_models, name)
    # Settings and load_settings come from pydantic-settings, which takes longer to import than the rest of the
    # package: loaded when first asked for (or by the first call), not by `import app`.
    if name in ("Settings", "load_settings"):
        from app import config

        return getattr(config, name)
    raise AttributeError(f"module 'app' has no attribute {name!r}")


__all__ = [
    "MODEL_CATALOG",
    "MODEL_REGISTRY",
    "AllModelsFailedError",
    "AttemptRecord",
    "AuthenticationFailedError",
    "BudgetExceededError",
    "Complexity",
    "ConfigError",
    "DeadlineExceededError",
    "ErrorKind",
    "InvalidMessagesError",
    "InvalidParameterError",
    "LLMResponse",
    "ModelInfo",
    "ModelParams",
    "NoCapableModelError",
    "Outcome",
    "RequestRejectedError",
    "Router",
    "Settings",
    "StreamInterruptedError",
    "SyncTaskStream",
    "TaskFailedError",
    "TaskRouterError",
    "TaskStream",
    "UnknownTaskError",
    "Usage",
    "configure",
    "execute_fast_task",
    "execute_reasoning_task",
    "execute_summarization_task",
    "execute_task",
    "execute_task_sync",
    "flush_attempt_log",
    "get_router",
    "load_settings",
    "reset",
    "score_complexity",
    "stream_fast_task",
    "stream_reasoning_task",
    "stream_summarization_task",
    "stream_task",
    "stream_task_sync",
]

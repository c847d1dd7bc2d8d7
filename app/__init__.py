"""taskrouter: Groq-first, resilient LLM task execution.

Application code names a task, never a model; `app/core/ai_models.py` maps tasks to models.
"""

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
from app.core.catalog import ModelInfo
from app.core.executor import Router
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
from app.types import AttemptRecord, ErrorKind, LLMResponse, ModelParams, Outcome, Usage


def __getattr__(name: str) -> object:
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
    "stream_fast_task",
    "stream_reasoning_task",
    "stream_summarization_task",
    "stream_task",
    "stream_task_sync",
]

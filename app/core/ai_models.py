"""The single source of truth for model names: which models serve which task, and what each model is.

Application code names a task, never a model:

    from app.core.ai_models import execute_reasoning_task
    resp = await execute_reasoning_task([{"role": "user", "content": "Analyse my sales"}], max_tokens=2048)

Both tables are read at call time: editing them (or adding a task type) takes effect on the next call.
No other module of the package names a model (tests/test_model_names.py enforces it).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any, Unpack

from app.core.request import Request
from app.core.router import use_default_tables
from app.core.runtime import SyncTaskStream, current, get_router, run_sync
from app.core.streaming import TaskStream
from app.core.validation import Validator
from app.registry.catalog import ModelInfo
from app.types import LLMResponse, ModelParams

# Task type -> models in priority order. "fallback" is tried, for every task, after the task's own list.
# Checked against Groq's deprecations of late 2026: no llama-3.x (shut down for most tiers on 2026-08-16).
MODEL_REGISTRY: dict[str, list[str]] = {
    "fast": ["openai/gpt-oss-20b"],
    "reasoning": ["openai/gpt-oss-120b", "qwen/qwen3.8-27b"],
    "summarization": ["openai/gpt-oss-20b", "openai/gpt-oss-120b"],
    "fallback": ["openai/gpt-oss-20b", "openai/gpt-oss-120b"],
}

_GPT_OSS = frozenset({"tools", "json_mode", "reasoning"})

# Prices are USD per million tokens, from Groq's pricing page (late 2026). A model absent from here is still
# callable; its cost is logged as unknown (NULL), never as $0.
MODEL_CATALOG: dict[str, ModelInfo] = {
    "openai/gpt-oss-120b": ModelInfo(
        input_price=0.15,
        output_price=0.60,
        context_window=131_072,
        max_completion_tokens=65_536,
        capabilities=_GPT_OSS,
    ),
    "openai/gpt-oss-20b": ModelInfo(
        input_price=0.075,
        output_price=0.30,
        context_window=131_072,
        max_completion_tokens=65_536,
        capabilities=_GPT_OSS,
    ),
    "openai/gpt-oss-safeguard-20b": ModelInfo(
        input_price=0.075,
        output_price=0.30,
        context_window=131_072,
        max_completion_tokens=65_536,
        capabilities=frozenset({"json_mode", "reasoning"}),
    ),
    "qwen/qwen3.8-27b": ModelInfo(
        input_price=0.80,
        output_price=4.00,
        context_window=131_072,
        max_completion_tokens=16_384,
        capabilities=frozenset({"tools", "json_mode", "reasoning"}),
    ),
}

# Every Router given no tables of its own reads these two from this module, as they are at each call (a table
# rebound by a test is seen).
use_default_tables(sys.modules[__name__])


# The routing options are spelled out, keyword-only, and the model parameters typed (ModelParams), so that
# editors and type checkers help; each function calls the router directly (one call, not a chain of wrappers).
# Each builds the request's owner on the process-wide router (`current.router`, built by get_router() on first use)
# and reads the clock first: the deadline counts from there, so a process's first call, which builds
# the router, spends its own time on the build rather than adding it to the deadline.


async def execute_task(
    task_type: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    validate: Validator | None = None,
    required_fields: Sequence[str] | None = None,
    timeout: float | None = None,
    hedge_after_ms: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> LLMResponse:
    """Run `messages` on the task's chain and return the first good answer.

    variant: picks MODEL_REGISTRY["<task>:<variant>"] when it exists. max_cost_usd: skips models whose estimated
    cost is above it. validate: a callable taking the LLMResponse and returning None or why it is not good
    enough (the next model is tried). required_fields: keys the JSON answer must have. timeout: the request's
    deadline in seconds (LLM_REQUEST_DEADLINE_SECONDS). hedge_after_ms: start the next model beside an attempt
    slower than this (HEDGE_AFTER_MS; 0 turns it off). tier: "auto" (scored by app.score_complexity), "simple",
    "medium" or "complex": start on the task's tier list MODEL_REGISTRY["<task>:<tier>"] and escalate on a refused
    answer (default: COMPLEXITY_ROUTING's choice, else the task's own list). session_id: an agent conversation,
    which never starts below the highest tier it reached. cache_ttl: seconds the answer stays in the response
    cache (RESPONSE_CACHE_TASKS; 0: not cached). params: the model parameters (ModelParams)."""
    started = time.perf_counter()
    return await Request(
        current.router or get_router(),
        task_type,
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        validate=validate,
        required_fields=required_fields,
        timeout=timeout,
        hedge_after_ms=hedge_after_ms,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        params=params,
        started=started,
    ).run()


async def execute_fast_task(
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    validate: Validator | None = None,
    required_fields: Sequence[str] | None = None,
    timeout: float | None = None,
    hedge_after_ms: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> LLMResponse:
    """execute_task("fast", ...)."""
    started = time.perf_counter()
    return await Request(
        current.router or get_router(),
        "fast",
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        validate=validate,
        required_fields=required_fields,
        timeout=timeout,
        hedge_after_ms=hedge_after_ms,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        params=params,
        started=started,
    ).run()


async def execute_reasoning_task(
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    validate: Validator | None = None,
    required_fields: Sequence[str] | None = None,
    timeout: float | None = None,
    hedge_after_ms: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> LLMResponse:
    """execute_task("reasoning", ...)."""
    started = time.perf_counter()
    return await Request(
        current.router or get_router(),
        "reasoning",
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        validate=validate,
        required_fields=required_fields,
        timeout=timeout,
        hedge_after_ms=hedge_after_ms,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        params=params,
        started=started,
    ).run()


async def execute_summarization_task(
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    validate: Validator | None = None,
    required_fields: Sequence[str] | None = None,
    timeout: float | None = None,
    hedge_after_ms: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> LLMResponse:
    """execute_task("summarization", ...)."""
    started = time.perf_counter()
    return await Request(
        current.router or get_router(),
        "summarization",
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        validate=validate,
        required_fields=required_fields,
        timeout=timeout,
        hedge_after_ms=hedge_after_ms,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        params=params,
        started=started,
    ).run()


def execute_task_sync(
    task_type: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    validate: Validator | None = None,
    required_fields: Sequence[str] | None = None,
    timeout: float | None = None,
    hedge_after_ms: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> LLMResponse:
    """execute_task for code without an event loop (scripts, Django views, notebooks without await)."""
    started = time.perf_counter()
    return run_sync(
        get_router().execute(
            task_type,
            messages,
            variant=variant,
            max_cost_usd=max_cost_usd,
            validate=validate,
            required_fields=required_fields,
            timeout=timeout,
            hedge_after_ms=hedge_after_ms,
            tier=tier,
            session_id=session_id,
            cache_ttl=cache_ttl,
            started=started,
            **params,
        )
    )


def stream_task(
    task_type: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    timeout: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> TaskStream:
    """The answer as it is generated: `async for delta in stream_task(...)` (or `async with ... as stream`), then
    `stream.response`. Same chain, fallback, retries, budget and logging as execute_task; a fallback happens only
    before the first token reaches the caller (after it, a failure raises StreamInterruptedError). The options
    are execute_task's, but for validate, required_fields and hedging, which a stream cannot take back."""
    return get_router().stream(
        task_type,
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        timeout=timeout,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        **params,
    )


def stream_fast_task(
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    timeout: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> TaskStream:
    """stream_task("fast", ...)."""
    return get_router().stream(
        "fast",
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        timeout=timeout,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        **params,
    )


def stream_reasoning_task(
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    timeout: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> TaskStream:
    """stream_task("reasoning", ...)."""
    return get_router().stream(
        "reasoning",
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        timeout=timeout,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        **params,
    )


def stream_summarization_task(
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    timeout: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> TaskStream:
    """stream_task("summarization", ...)."""
    return get_router().stream(
        "summarization",
        messages,
        variant=variant,
        max_cost_usd=max_cost_usd,
        timeout=timeout,
        tier=tier,
        session_id=session_id,
        cache_ttl=cache_ttl,
        **params,
    )


def stream_task_sync(
    task_type: str,
    messages: Sequence[Mapping[str, Any]],
    *,
    variant: str | None = None,
    max_cost_usd: float | None = None,
    timeout: float | None = None,
    tier: str | None = None,
    session_id: str | None = None,
    cache_ttl: float | None = None,
    **params: Unpack[ModelParams],
) -> SyncTaskStream:
    """stream_task as a plain iterator, for code without an event loop."""
    return SyncTaskStream(
        stream_task(
            task_type,
            messages,
            variant=variant,
            max_cost_usd=max_cost_usd,
            timeout=timeout,
            tier=tier,
            session_id=session_id,
            cache_ttl=cache_ttl,
            **params,
        )
    )

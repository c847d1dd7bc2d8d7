"""Checks made before a model is called: capabilities, context window, the request's own cost ceiling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from app.core.messages import inspect_messages, tokens_from_chars
from app.registry.catalog import ModelInfo
from app.types import ErrorKind

# Without max_tokens the answer may run to the model's own limit; assume this much when that is unknown too.
DEFAULT_COMPLETION_ESTIMATE = 4096
_NOTHING: frozenset[str] = frozenset()
_VISION = frozenset({"vision"})


class Needs(NamedTuple):
    """What the request asks of a model, computed once per request (a NamedTuple: built on every call)."""

    capabilities: frozenset[str]
    prompt_tokens: int
    max_tokens: int | None


def needs_of(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
             measured: tuple[int, bool] | None = None) -> Needs:
    """`measured`: what `inspect_messages` returned for these messages, when the caller already has it."""
    chars, images = inspect_messages(messages) if measured is None else measured
    prompt_tokens = tokens_from_chars(chars, len(messages))
    if not params:
        return Needs(_VISION if images else _NOTHING, prompt_tokens, None)
    max_tokens = params.get("max_completion_tokens") or params.get("max_tokens")
    limit = max_tokens if isinstance(max_tokens, int) else None
    tools, response_format = params.get("tools"), params.get("response_format")
    if not (images or tools or response_format):  # the common call: max_tokens, temperature and the like
        return Needs(_NOTHING, prompt_tokens, limit)
    wanted = {"vision"} if images else set()
    if tools:
        wanted.add("tools")
    if isinstance(response_format, Mapping) and response_format.get("type") in ("json_object", "json_schema"):
        wanted.add("json_mode")
    return Needs(frozenset(wanted) if wanted else _NOTHING, prompt_tokens, limit)


def estimated_cost(info: ModelInfo | None, needs: Needs) -> float | None:
    """Upper-leaning estimate of one call's cost: estimated prompt + the completion it may produce."""
    if info is None or info.input_price is None or info.output_price is None:
        return None
    completion = needs.max_tokens or info.max_completion_tokens or DEFAULT_COMPLETION_ESTIMATE
    return (needs.prompt_tokens * info.input_price + completion * info.output_price) / 1_000_000


def skip_reason(info: ModelInfo | None, needs: Needs, max_cost_usd: float | None) -> tuple[ErrorKind, str] | None:
    """Why this model must not be called for this request, or None. Unknown models are given the benefit of
    the doubt on capabilities (a custom model may well have them), never on cost."""
    if info is not None:
        missing = needs.capabilities - info.capabilities
        if missing:
            return ErrorKind.CAPABILITY, f"lacks {', '.join(sorted(missing))}"
        limit = info.max_completion_tokens
        if limit is not None and needs.max_tokens is not None and needs.max_tokens > limit:
            # Another model of the chain can produce it, or params.py would have refused the request.
            return ErrorKind.CAPABILITY, (
                f"max_tokens={needs.max_tokens} exceeds its {limit}-token completion limit"
            )
        if info.context_window is not None and needs.prompt_tokens > info.context_window:
            return ErrorKind.CONTEXT_LENGTH, (
                f"estimated prompt of {needs.prompt_tokens} tokens exceeds its {info.context_window}-token context"
            )
    if max_cost_usd is not None:
        estimate = estimated_cost(info, needs)
        if estimate is None:
            return ErrorKind.BUDGET, "price unknown, so max_cost_usd cannot be guaranteed"
        if estimate > max_cost_usd:
            return ErrorKind.BUDGET, f"estimated cost ${estimate:.6f} exceeds max_cost_usd=${max_cost_usd:.6f}"
    return None

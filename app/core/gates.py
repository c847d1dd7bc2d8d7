"""The gates a request passes before any model is called: its messages checked and measured, what it needs of a model
(`Needs`), and which models of its chain can take it (`admit`): capabilities, context window, completion limit and
the caller's cost ceiling. One call per request, for the whole chain."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from app.core.messages import encodes, unsendable
from app.errors import InvalidMessagesError
from app.registry.catalog import ModelInfo
from app.types import ErrorKind

# Without max_tokens the answer may run to the model's own limit; assume this much when that is unknown too.
DEFAULT_COMPLETION_ESTIMATE = 4096
_NOTHING: frozenset[str] = frozenset()
_VISION = frozenset({"vision"})


ROLES = ("system", "user", "assistant", "tool", "developer")
_PLAIN_ROLES = frozenset(ROLES) - {"tool"}  # a tool message must also carry tool_call_id


def inspect_messages(messages: Any) -> tuple[int, bool]:
    """Check the messages (a bad one raises, saying what to fix) and measure them in the same pass: the
    characters of their text, and whether any carries an image. One pass, because this runs on every call."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidMessagesError(
            'messages must be a list of dicts like [{"role": "user", "content": "..."}], '
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty: give at least one message")
    chars = 0
    images = False
    for i, message in enumerate(messages):
        if type(message) is dict and len(message) == 2:
            content = message.get("content")
            # The common case, without the checks below: only role and content, the text plain ASCII (which
            # rules out unencodable surrogates) or valid UTF-8.
            if type(content) is str and message.get("role") in _PLAIN_ROLES and (content.isascii() or encodes(content)):
                chars += len(content)
                continue
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"{where} must be a dict with 'role' and 'content', got {type(message).__name__}"
            )
        role = message.get("role")
        if role not in ROLES:
            raise InvalidMessagesError(f"{where}.role must be one of {', '.join(ROLES)}; got {role!r}")
        content = message.get("content")
        if content is None:
            if not (role == "assistant" and message.get("tool_calls")):
                raise InvalidMessagesError(f"{where}.content is missing (role {role!r})")
        elif isinstance(content, str):
            chars += len(content)
        elif isinstance(content, Sequence) and not isinstance(content, bytes):
            for j, part in enumerate(content):
                if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                    raise InvalidMessagesError(f"{where}.content[{j}] must be a dict with a 'type' (text, image_url)")
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
                if part["type"] == "image_url":
                    images = True
        else:
            raise InvalidMessagesError(
                f"{where}.content must be a string or a list of content parts, got {type(content).__name__}"
            )
        if role == "tool" and not message.get("tool_call_id"):
            raise InvalidMessagesError(f"{where} has role 'tool' but no 'tool_call_id'")
        # Everything else it carries (content parts, tool calls and their arguments, names) must be sendable.
        problem = unsendable(message)
        if problem is not None:
            raise InvalidMessagesError(f"{where}{problem[0]} {problem[1]}")
    return chars, images


def tokens_from_chars(chars: int, messages: int) -> int:
    """A cheap upper-leaning estimate (~4 characters a token, plus per-message framing)."""
    return chars // 4 + 4 * messages + 3


class Needs(NamedTuple):
    """What the request asks of a model, computed once per request (a NamedTuple: built on every call)."""

    capabilities: frozenset[str]
    prompt_tokens: int
    max_tokens: int | None


def needs_of(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> Needs:
    """Check the messages (a bad one raises InvalidMessagesError) and say what the request needs of a model."""
    chars, images = inspect_messages(messages)
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
            return ErrorKind.CAPABILITY, (f"max_tokens={needs.max_tokens} exceeds its {limit}-token completion limit")
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


Unsuitable = tuple[ErrorKind, str]  # why a model cannot take the request: the kind logged, and the reason


def admit(
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    infos: Sequence[ModelInfo | None],
    max_cost_usd: float | None,
    needs: Needs | None = None,
) -> tuple[Needs, list[Unsuitable | None]]:
    """The request's needs, and for each model of its chain (`infos`, in order) why it cannot take the request, or
    None. Bad messages raise here, before any call. `needs`: needs_of(messages, params), when already known."""
    if needs is None:
        needs = needs_of(messages, params)
    if not needs.capabilities and needs.max_tokens is None and max_cost_usd is None:
        # The common request: only the context window can rule a model out.
        prompt = needs.prompt_tokens
        return needs, [
            None
            if info is None or info.context_window is None or prompt <= info.context_window
            else skip_reason(info, needs, None)
            for info in infos
        ]
    return needs, [skip_reason(info, needs, max_cost_usd) for info in infos]

"""OpenAI's chat-completion shapes: a request body read into the router's terms, an answer written back."""

from __future__ import annotations

import dataclasses
import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.router import Router
from app.errors import InvalidParameterError, UnknownTaskError
from app.types import AttemptRecord, LLMResponse

# The body fields the gateway reads itself; every other one goes to the router as a model parameter, where its
# checks accept or refuse it (an unknown one is a 400 naming it).
_OWN_FIELDS = frozenset({"model", "messages", "stream", "stream_options"})
# The router's own options (validate=, started=, tier=...) are keyword arguments beside the model parameters: a
# body field of that name would reach them as one, so none is taken from the body.
_ROUTER_OPTIONS = frozenset(
    name for name, p in inspect.signature(Router.execute).parameters.items() if p.kind is p.KEYWORD_ONLY
)

# An attempt's fields, read one by one: dataclasses.asdict deep-copies every value, which costs more than the rest of
# the answer's shape.
_ATTEMPT_FIELDS = tuple(f.name for f in dataclasses.fields(AttemptRecord))


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str  # as the client named it: a task or registry key
    task: str
    variant: str | None
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    params: dict[str, Any]


def resolve_task(model: str, registry: Mapping[str, Sequence[str]]) -> tuple[str, str | None]:
    """`writer:landing` is the task `writer` with its variant `landing` when both are registry keys; any other
    registry key is a task. Anything else is unknown, listing the tasks a client may name."""
    if model in registry:
        task, _, variant = model.rpartition(":")
        if task and task in registry:
            return task, variant
        return model, None
    raise UnknownTaskError(model, list(registry))


def _bad(message: str, param: str) -> InvalidParameterError:
    return InvalidParameterError(message, param=param, task_type="")


def read_chat_request(body: object, registry: Mapping[str, Sequence[str]]) -> ChatRequest:
    if not isinstance(body, dict):
        raise _bad("the request body must be a JSON object with `model` and `messages`", "body")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("`model` is required: a task name such as 'fast' (GET /v1/models lists them)", "model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("`messages` is required: a non-empty list of {role, content} objects", "messages")
    stream = body.get("stream") or False
    if not isinstance(stream, bool):
        raise _bad(f"`stream` must be true or false, not {stream!r}", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise _bad("`stream_options` must be an object such as {'include_usage': true}", "stream_options")
    task, variant = resolve_task(model, registry)
    options_given = sorted(_ROUTER_OPTIONS.intersection(body))
    if options_given:
        raise _bad(f"`{options_given[0]}` is not a chat-completion parameter the gateway accepts", options_given[0])
    params = {k: v for k, v in body.items() if k not in _OWN_FIELDS}
    return ChatRequest(model, task, variant, messages, stream, bool(options.get("include_usage")), params)


def extension(response: LLMResponse) -> dict[str, Any]:
    """The router's side of the answer, beside OpenAI's fields."""
    return {
        "request_id": response.request_id,
        "task": response.task_type,
        "variant": response.variant,
        "provider": response.provider,
        "fallback_used": response.fallback_used,
        "attempts": [{k: v for k in _ATTEMPT_FIELDS if (v := getattr(a, k)) is not None} for a in response.attempts],
        "cost_usd": response.cost_usd,
        "tier": response.tier,
        "cached": response.cached,
        "latency_ms": round(response.latency_ms, 3),
    }


def headers_of(response: LLMResponse) -> dict[str, str]:
    headers = {
        "x-taskrouter-request-id": response.request_id,
        "x-taskrouter-task": response.task_type,
        "x-taskrouter-fallback-used": "true" if response.fallback_used else "false",
        "x-taskrouter-attempts": str(len(response.attempts)),
    }
    if response.cost_usd is not None:
        headers["x-taskrouter-cost-usd"] = f"{response.cost_usd:.8f}"
    if response.tier is not None:
        headers["x-taskrouter-tier"] = response.tier
    return headers


def usage_of(response: LLMResponse) -> dict[str, int]:
    usage = response.usage
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }


def _message(response: LLMResponse) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": response.content}
    if response.tool_calls:
        message["tool_calls"] = list(response.tool_calls)
    return message


def completion(response: LLMResponse, *, created: int) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{response.request_id}",
        "object": "chat.completion",
        "created": created,
        "model": response.model_used,
        "choices": [{"index": 0, "message": _message(response), "finish_reason": response.finish_reason}],
        "usage": usage_of(response),
        "x_taskrouter": extension(response),
    }


def chunk(
    request_id: str,
    model: str,
    created: int,
    delta: Mapping[str, Any],
    *,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{request_id}",
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": dict(delta), "finish_reason": finish_reason}],
    }


def last_delta(response: LLMResponse) -> dict[str, Any]:
    """The finishing chunk's delta: tool calls arrive whole, once the stream has assembled them."""
    if not response.tool_calls:
        return {}
    return {"tool_calls": [{"index": i, **call} for i, call in enumerate(response.tool_calls)]}


def sse(data: Mapping[str, Any]) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"

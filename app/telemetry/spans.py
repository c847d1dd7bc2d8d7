"""OpenTelemetry spans for a request, following the GenAI semantic conventions.

A request is one span, `taskrouter {task}`, a child of the caller's current span; each provider call is a child
of it, `chat {model}` (kind CLIENT), drawn when the call's row is recorded with the call's own start and end; a
model passed over without a call is an event on the request span, not a span. Prompts and answers are added, as
the conventions' `gen_ai.client.inference.operation.details` event, only when LOG_CONTENT is on. Nothing here
reads an endpoint's key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry import context, trace
from opentelemetry.trace import SpanKind, Status, StatusCode

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Span, Tracer

MAX_STATUS_CHARS = 512  # a failure's message, as the attempt log keeps it, cut for the span's status


def request_span(
    tracer: Tracer, *, task: str, request_id: str, chain: Any, variant: str | None, deadline: float, stream: bool
) -> Span:
    """The request's span, started now under the caller's current span."""
    attributes: dict[str, Any] = {
        "taskrouter.task": task,
        "taskrouter.request_id": request_id,
        "taskrouter.chain": list(chain.models),
        "taskrouter.deadline_seconds": deadline,
        "taskrouter.forced": bool(chain.forced),
        "gen_ai.request.stream": stream,
    }
    if variant is not None:
        attributes["taskrouter.variant"] = variant
    if chain.tier is not None:
        attributes["taskrouter.tier"] = chain.tier
    if chain.override_source is not None:
        attributes["taskrouter.override"] = chain.override_source
    return tracer.start_span(f"taskrouter {task}", kind=SpanKind.INTERNAL, attributes=attributes)


def end_request_span(
    span: Span,
    *,
    ending: str,
    model: str | None,
    fallback_used: bool,
    cost: float | None,
    cached: bool,
    error: BaseException | None,
) -> None:
    attributes: dict[str, Any] = {"taskrouter.ending": ending}  # set at once: the SDK locks the span per call
    if model is not None:
        attributes["gen_ai.response.model"] = model
        attributes["taskrouter.fallback_used"] = fallback_used
    if cost is not None:
        attributes["taskrouter.cost_usd"] = cost
    if cached:
        attributes["taskrouter.cached"] = True
    if error is not None:
        attributes["error.type"] = ending
    span.set_attributes(attributes)
    if error is not None:
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {str(error)[:MAX_STATUS_CHARS]}"))
    span.end()


def skip_event(span: Span, *, model: str, kind: str, reason: str | None) -> None:
    span.add_event(
        "taskrouter.skip",
        {"gen_ai.request.model": model, "error.type": kind, "taskrouter.reason": (reason or "")[:MAX_STATUS_CHARS]},
    )


def context_of(span: Span) -> Context:
    """The context in which `span` is the parent: computed once per request, for each call's span."""
    return trace.set_span_in_context(span)


def attach(parent: Context) -> object:
    """Make `parent` the current context (the request's span the parent of what the request's course starts)."""
    return context.attach(parent)


def detach(token: object) -> None:
    context.detach(token)  # type: ignore[arg-type]


def call_span(
    tracer: Tracer,
    parent: Context,
    *,
    model: str,
    provider: str,
    base_url: str | None,
    params: Mapping[str, Any],
    attempt: int,
    retry: int,
    hedged: bool,
    fallback: bool,
    tier: str | None,
    latency_ms: float | None,
    kind: str | None,
    status: int | None,
    message: str | None,
    result: Any,
    first_token_ms: float | None,
    prompt: str | None,
) -> None:
    """One provider call's span, drawn after the call from its row: it started `latency_ms` ago and ends now."""
    end = time.time_ns()
    start = end - int((latency_ms or 0.0) * 1_000_000)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
        "taskrouter.attempt": attempt,
        "taskrouter.retry": retry,
        "taskrouter.hedged": hedged,
        "taskrouter.from_fallback_list": fallback,
    }
    if tier is not None:
        attributes["taskrouter.tier"] = tier
    if base_url:
        address, port = _server(base_url)
        if address:
            attributes["server.address"] = address
        if port:
            attributes["server.port"] = port
    max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
    if isinstance(max_tokens, int):
        attributes["gen_ai.request.max_tokens"] = max_tokens
    temperature = params.get("temperature")
    if isinstance(temperature, int | float):
        attributes["gen_ai.request.temperature"] = float(temperature)
    if first_token_ms is not None:
        attributes["gen_ai.response.time_to_first_chunk"] = first_token_ms / 1000.0
    if result is not None:
        attributes["gen_ai.response.model"] = model
        usage = result.usage
        attributes["gen_ai.usage.input_tokens"] = int(usage.prompt_tokens)
        attributes["gen_ai.usage.output_tokens"] = int(usage.completion_tokens)
        if result.finish_reason:
            attributes["gen_ai.response.finish_reasons"] = [result.finish_reason]
        if result.provider_request_id:
            attributes["gen_ai.response.id"] = result.provider_request_id
    if kind is not None:
        attributes["error.type"] = kind
    if status is not None:
        attributes["http.response.status_code"] = status
    span = tracer.start_span(
        f"chat {model}", context=parent, kind=SpanKind.CLIENT, attributes=attributes, start_time=start
    )
    if prompt is not None:
        details: dict[str, Any] = {"gen_ai.input.messages": _input_messages(prompt)}
        if result is not None and (result.content is not None or result.tool_calls):
            details["gen_ai.output.messages"] = json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": _parts(result.content, result.tool_calls),
                        "finish_reason": result.finish_reason,
                    }
                ]
            )
        span.add_event("gen_ai.client.inference.operation.details", details, timestamp=end)
    if kind is not None:
        span.set_status(Status(StatusCode.ERROR, f"{kind}: {(message or '')[:MAX_STATUS_CHARS]}"))
    span.end(end_time=end)


def _input_messages(prompt: str) -> str:
    """The request's messages (the chat API's shape, as LOG_CONTENT keeps them) in the conventions' shape: each
    message's role and its parts (text, tool calls, a tool's result)."""
    shaped: list[dict[str, Any]] = []
    for message in json.loads(prompt):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "tool":
            parts = [
                {"type": "tool_call_response", "id": message.get("tool_call_id"), "response": message.get("content")}
            ]
        else:
            parts = _parts(message.get("content"), message.get("tool_calls"))
        entry: dict[str, Any] = {"role": message.get("role"), "parts": parts}
        if message.get("name"):
            entry["name"] = message["name"]
        shaped.append(entry)
    return json.dumps(shaped)


def _parts(content: Any, tool_calls: Any) -> list[dict[str, Any]]:
    """A message's text and tool calls as the conventions' parts (a part of another kind, an image, kept as sent)."""
    parts: list[dict[str, Any]] = []
    if isinstance(content, str):
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        for part in content:
            if isinstance(part, dict):
                parts.append({"type": "text", "content": part.get("text")} if part.get("type") == "text" else part)
    for call in tool_calls or ():
        function = call.get("function") or {}
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name"),
                "arguments": function.get("arguments"),
            }
        )
    return parts


@lru_cache(maxsize=64)
def _server(base_url: str) -> tuple[str | None, int | None]:
    """The host and port of an endpoint's base URL (never its user information)."""
    try:
        parts = urlsplit(base_url)
        return parts.hostname, parts.port or (
            443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None
        )
    except ValueError:
        return None, None

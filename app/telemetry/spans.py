"""OpenTelemetry spans for a request, following the GenAI semantic conventions.

A request is one span, `taskrouter {task}`, a child of the span current when it started (the caller's); each
provider call is a child of it, `chat {model}` (kind CLIENT), with the call's own start and end; a model passed
over without a call is an event on the request span, not a span. The whole tree is drawn when the request ends,
from what the request kept along the way (`RequestTrace`): no span is open, nor current, while the request runs.
Prompts and answers are added, as the conventions' `gen_ai.client.inference.operation.details` event, only when
LOG_CONTENT is on. Nothing here reads an endpoint's key.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from opentelemetry.trace import SpanKind, Status, StatusCode, set_span_in_context

from app.types import Outcome

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer

MAX_STATUS_CHARS = 512  # a failure's message, as the attempt log keeps it, cut for a span's status or event


class Tracing:
    """A request's spans through one tracer, drawn at its end. The attributes of a call's span that depend only on
    the model, its place and its endpoint are built once per such combination (the registry bounds them), so a
    call's span adds only what is the call's own."""

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer
        self._shapes: dict[tuple[Any, ...], tuple[str, dict[str, Any]]] = {}

    def draw(self, request: Any, trace: Any, ending: str, response: Any, error: BaseException | None) -> None:
        """The request's span, from its start to now, under the context current at its start, with
        its events and, under it, one span per provider call the request recorded."""
        chain = request.chain
        task = chain.task_type
        attributes: dict[str, Any] = {
            "taskrouter.task": task,
            "taskrouter.request_id": request.request_id,
            "taskrouter.chain": chain.models,
            "taskrouter.deadline_seconds": request.deadline_seconds,
            "taskrouter.forced": chain.forced,
            "gen_ai.request.stream": trace.stream,
            "taskrouter.ending": ending,
        }
        if request.variant is not None:
            attributes["taskrouter.variant"] = request.variant
        if chain.tier is not None:
            attributes["taskrouter.tier"] = chain.tier
        if chain.override_source is not None:
            attributes["taskrouter.override"] = chain.override_source
        if response is not None:
            attributes["gen_ai.response.model"] = response.model_used
            attributes["taskrouter.fallback_used"] = response.fallback_used
            if response.cost_usd is not None:
                attributes["taskrouter.cost_usd"] = response.cost_usd
            if response.cached:
                attributes["taskrouter.cached"] = True
        if error is not None:
            attributes["error.type"] = ending
        caller = trace.caller
        span = self.tracer.start_span(
            f"taskrouter {task}", caller, SpanKind.INTERNAL, attributes, start_time=trace.start
        )
        # A request span the sampler left out draws nothing under it (no orphan call span).
        if span.is_recording():
            if trace.events:
                for outcome, model, kind, reason, at in trace.events:
                    if outcome is Outcome.SKIPPED:
                        skip = {
                            "gen_ai.request.model": model,
                            "error.type": kind,
                            "taskrouter.reason": (reason or "")[:MAX_STATUS_CHARS],
                        }
                        span.add_event("taskrouter.skip", skip, at)
                    else:
                        span.add_event("taskrouter.cache_hit", {"gen_ai.request.model": model}, at)
            if trace.calls:
                parent = set_span_in_context(span, caller)
                for call in trace.calls:
                    self._call(parent, request, *call)
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {str(error)[:MAX_STATUS_CHARS]}"))
        span.end()

    def _call(
        self,
        parent: Any,
        request: Any,
        pick: Any,
        provider: str,
        kind: str,
        status: int | None,
        message: str | None,
        latency_ms: float | None,
        result: Any,
        first_token_ms: float | None,
        end: int,
    ) -> None:
        """One provider call's span, from its row (as `Telemetry.attempt` keeps it): it ended at `end` (time_ns),
        `latency_ms` after it started. `kind`: the error kind, "" for an answer."""
        candidate = pick.candidate
        key = (candidate.model, candidate.tier, candidate.is_fallback, provider, request.endpoint(pick).base_url)
        shape = self._shapes.get(key)
        if shape is None:
            shape = self._shapes[key] = _shape(*key)
        name, static = shape
        attributes = {
            **static,
            "taskrouter.attempt": pick.position,
            "taskrouter.retry": pick.retry,
            "taskrouter.hedged": pick.hedged,
        }
        params = request.params
        if params:
            max_tokens = params.get("max_completion_tokens", params.get("max_tokens"))
            if isinstance(max_tokens, int):
                attributes["gen_ai.request.max_tokens"] = max_tokens
            temperature = params.get("temperature")
            if isinstance(temperature, int | float):
                attributes["gen_ai.request.temperature"] = float(temperature)
        if first_token_ms is not None:
            attributes["gen_ai.response.time_to_first_chunk"] = first_token_ms / 1000.0
        if result is not None:
            usage = result.usage
            attributes["gen_ai.response.model"] = candidate.model
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
            if result.finish_reason:
                attributes["gen_ai.response.finish_reasons"] = (result.finish_reason,)
            if result.provider_request_id:
                attributes["gen_ai.response.id"] = result.provider_request_id
        if kind:
            attributes["error.type"] = kind
        if status is not None:
            attributes["http.response.status_code"] = status
        start = end - int((latency_ms or 0.0) * 1_000_000)
        span = self.tracer.start_span(name, parent, SpanKind.CLIENT, attributes, start_time=start)
        if request.log_content:
            span.add_event("gen_ai.client.inference.operation.details", _details(request.prompt, result), end)
        if kind:
            span.set_status(Status(StatusCode.ERROR, f"{kind}: {(message or '')[:MAX_STATUS_CHARS]}"))
        span.end(end)


def _shape(
    model: str, tier: str | None, fallback: bool, provider: str, base_url: str | None
) -> tuple[str, dict[str, Any]]:
    """A call span's name and the attributes fixed by its model, place and endpoint."""
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,
        "gen_ai.request.model": model,
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
    return f"chat {model}", attributes


def _details(prompt: str | None, result: Any) -> dict[str, Any]:
    """The conventions' `gen_ai.client.inference.operation.details` event: the messages sent and the answer."""
    details: dict[str, Any] = {"gen_ai.input.messages": _input_messages(prompt or "[]")}
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
    return details


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


def _server(base_url: str) -> tuple[str | None, int | None]:
    """The host and port of an endpoint's base URL (never its user information)."""
    try:
        parts = urlsplit(base_url)
        return parts.hostname, parts.port or (
            443 if parts.scheme == "https" else 80 if parts.scheme == "http" else None
        )
    except ValueError:
        return None, None

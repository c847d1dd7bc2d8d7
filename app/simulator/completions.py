"""Request checks and token estimates, and successful answers: Groq's ChatCompletion JSON and its
server-sent-event stream."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from app.simulator.profiles import ModelProfile
from app.simulator.quality import COMPLETION_TOKENS_FIELD, field_problem, mark
from app.simulator.server import Drop, Pause

ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool", "developer"})
TOKENS_PER_MESSAGE = 4  # role and separators, roughly what chat templates add
SNIPPET_CHARS = 80
_ids = random.Random()  # not the module-level generator, which callers may seed


def random_uuid() -> str:
    """A uuid4-shaped id, several times cheaper than uuid.uuid4() (ids need not be unguessable)."""
    h = f"{_ids.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


MAX_STREAM_PIECES = 16  # more chunks only cost time; clients treat 16 like 1,000
MAX_ARGUMENT_PIECES = 4  # fragments a streamed tool call's arguments are split into


def message_text(content: Any) -> str:
    """The text of a message's content: a string, or the text parts of a content list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def estimate_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """About four characters per token, plus a few per message for the chat template."""
    return sum(math.ceil(len(message_text(m.get("content"))) / 4) + TOKENS_PER_MESSAGE for m in messages)


def requested_max_tokens(body: dict[str, Any]) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    return None


def invalid_reason(body: Any) -> tuple[str, str | None] | None:
    """Why Groq would reject this body before looking at the model: (message, param), or None."""
    if not isinstance(body, dict):
        return "failed to parse request body: expected a JSON object", None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "'model' : property 'model' is missing", "model"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' : property 'messages' is missing or empty", "messages"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            return f"'messages.{i}' : discriminator property 'role' has invalid value", f"messages.{i}"
    max_tokens = requested_max_tokens(body)
    if max_tokens is not None and max_tokens < 1:
        return "'max_tokens' : number must be at least 1", "max_tokens"
    return field_problem(body)


def max_tokens_reason(max_tokens: int | None, profile: ModelProfile) -> str | None:
    """Groq's 400 for a completion budget above the model's limit."""
    if max_tokens is None or max_tokens <= profile.max_completion_tokens:
        return None
    return (
        f"`max_tokens` must be less than or equal to `{profile.max_completion_tokens}`, the maximum value "
        "for `max_tokens` is less than the `context_window` for this model"
    )


@dataclass(frozen=True, slots=True)
class Answer:
    model: str
    content: str | None  # None when the answer is tool calls
    tool_calls: tuple[dict[str, Any], ...]  # OpenAI's shape: {"id", "type": "function", "function": {...}}
    finish_reason: str
    usage: dict[str, Any]
    generation_seconds: float  # simulated token generation time, spread over a stream's chunks
    completion_id: str
    request_id: str
    created: int


def build_answer(
    model: str,
    body: dict[str, Any],
    profile: ModelProfile | None,
    options: dict[str, Any],
    prompt_tokens: int,
    request_id: str,
    queue_seconds: float,
    *,
    acceptable: bool = True,
) -> Answer:
    """Decide content (or tool calls), finish reason and usage. A scripted `content` is returned verbatim,
    uncapped. Scripted `tool_calls` answer only a request that offers `tools`: a model cannot call a tool it
    was not given, so other requests get the text answer. A generated answer the quality model found not
    `acceptable` is marked (app/simulator/quality.py); the body's x_bench_completion_tokens sets its length."""
    default_tokens = body.get(COMPLETION_TOKENS_FIELD) or (profile.completion_tokens if profile else 24)
    tool_calls: tuple[dict[str, Any], ...] = ()
    content: str | None
    if options.get("tool_calls") and isinstance(body.get("tools"), list) and body["tools"]:
        tool_calls = tuple(_tool_call(call) for call in options["tool_calls"])
        content = None
        size = sum(len(c["function"]["name"]) + len(c["function"]["arguments"]) for c in tool_calls)
        completion_tokens = int(options.get("completion_tokens", max(1, math.ceil(size / 4))))
        finish_reason = str(options.get("finish_reason", "tool_calls"))
    elif options.get("content") is not None:
        content = str(options["content"])
        completion_tokens = int(options.get("completion_tokens", max(1, math.ceil(len(content) / 4))))
        finish_reason = str(options.get("finish_reason", "stop"))
    else:
        content = _generated_content(model, body)
        if not acceptable:
            content = mark(content)
        completion_tokens = int(options.get("completion_tokens", default_tokens))
        finish_reason = "stop"
        cap = requested_max_tokens(body)
        if cap is not None and completion_tokens > cap:
            # Truncate the text too: a cut-off JSON answer is exactly what a router must cope with.
            completion_tokens = cap
            content = content[: max(1, cap * 4)]
            finish_reason = "length"
        finish_reason = str(options.get("finish_reason", finish_reason))
    prompt_tokens = int(options.get("prompt_tokens", prompt_tokens))
    tps = profile.tokens_per_second if profile else 0.0
    generation_seconds = completion_tokens / tps if tps > 0 else 0.0
    prompt_time = round(prompt_tokens / 50000, 6)
    completion_time = round(generation_seconds or completion_tokens / 1000, 6)
    usage: dict[str, Any] = {
        "queue_time": round(queue_seconds, 6),
        "prompt_tokens": prompt_tokens,
        "prompt_time": prompt_time,
        "completion_tokens": completion_tokens,
        "completion_time": completion_time,
        "total_tokens": prompt_tokens + completion_tokens,
        "total_time": round(prompt_time + completion_time, 6),
    }
    if options.get("cached_tokens") is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": int(options["cached_tokens"])}
    if options.get("reasoning_tokens") is not None:
        usage["completion_tokens_details"] = {"reasoning_tokens": int(options["reasoning_tokens"])}
    return Answer(
        model=model,
        content=content,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=usage,
        generation_seconds=generation_seconds,
        completion_id=f"chatcmpl-{random_uuid()}",
        request_id=request_id,
        created=int(time.time()),
    )


def _tool_call(call: Mapping[str, Any]) -> dict[str, Any]:
    arguments = call.get("arguments", "")
    if not isinstance(arguments, str):
        arguments = json.dumps(arguments)
    return {
        "id": call.get("id") or f"call_{_ids.getrandbits(96):024x}",
        "type": "function",
        "function": {"name": call["name"], "arguments": arguments},
    }


def completion_json(answer: Answer) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.tool_calls:
        message["tool_calls"] = list(answer.tool_calls)
    return json.dumps(
        {
            "id": answer.completion_id,
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": answer.usage,
            "system_fingerprint": "fp_sim",
            "x_groq": {"id": answer.request_id},
            "service_tier": "on_demand",
        }
    ).encode()


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """How a stream is paced and, for a stream fault, where and how it breaks."""

    include_usage: bool = False
    # None: the profile's tokens_per_second pacing, spread evenly over the chunks.
    first_token_seconds: float | None = None  # response headers -> first chunk
    chunk_seconds: float | None = None  # between later chunks
    fault: str | None = None  # "stream_cut", "stream_stall", "stream_error" or None
    after_chunks: int = 0  # content or tool-call chunks sent before the fault (the role chunk not counted)
    stall_seconds: float | None = None  # stream_stall: None stalls until the client leaves or the server stops
    error_event: bytes = b""  # stream_error: the SSE error event


async def stream_events(answer: Answer, plan: StreamPlan) -> AsyncIterator[bytes | Pause | Drop]:
    """Groq's SSE sequence: a role chunk (with `x_groq.id`), content or tool-call chunks, a chunk with the
    finish reason whose `x_groq` carries the id and usage, with `include_usage` a last chunk with empty
    `choices` and `usage`, then `[DONE]`. A cut or an error event replaces everything after `after_chunks`
    body chunks: no finish reason, no usage, no `[DONE]` (an interrupted Groq stream never sends its usage);
    a stall pauses there."""
    body = _tool_call_deltas(answer.tool_calls) if answer.tool_calls else [{"content": p} for p in _pieces(answer)]
    paced = answer.generation_seconds / len(body) if body else 0.0
    first = paced if plan.first_token_seconds is None else plan.first_token_seconds
    gap = paced if plan.chunk_seconds is None else plan.chunk_seconds
    fault_at = min(plan.after_chunks, len(body)) if plan.fault is not None else None
    if first:
        await asyncio.sleep(first)
    role: dict[str, Any] = {"role": "assistant", "content": None if answer.tool_calls else ""}
    yield _event(answer, role, None, {"id": answer.request_id})
    for i in range(len(body) + 1):
        if i == fault_at:
            if plan.fault == "stream_cut":
                yield Drop()
                return
            if plan.fault == "stream_error":
                yield plan.error_event
                return
            yield Pause(plan.stall_seconds)  # stream_stall; should the client outwait it, the stream goes on
        if i == len(body):
            break
        if i and gap:
            await asyncio.sleep(gap)
        yield _event(answer, body[i], None, None)
    last = _event(answer, {}, answer.finish_reason, {"id": answer.request_id, "usage": answer.usage})
    if plan.include_usage:
        last += _usage_event(answer)
    yield last + b"data: [DONE]\n\n"


def _chunk(answer: Answer) -> dict[str, Any]:
    return {
        "id": answer.completion_id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": "fp_sim",
    }


def _event(answer: Answer, delta: dict[str, Any], finish_reason: str | None, x_groq: dict[str, Any] | None) -> bytes:
    chunk = _chunk(answer)
    chunk["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    if x_groq is not None:
        chunk["x_groq"] = x_groq
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _usage_event(answer: Answer) -> bytes:
    # OpenAI's include_usage chunk. It also carries x_groq.id: it is the stream's final chunk.
    chunk = _chunk(answer)
    chunk["choices"] = []
    chunk["usage"] = answer.usage
    chunk["x_groq"] = {"id": answer.request_id}
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _tool_call_deltas(calls: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    """OpenAI's tool-call fragments: per call, one with index, id, type and name (arguments empty), then the
    arguments in a few pieces that concatenate back to the exact string."""
    deltas: list[dict[str, Any]] = []
    for index, call in enumerate(calls):
        function = call["function"]
        head = {"index": index, "id": call["id"], "type": "function"}
        deltas.append({"tool_calls": [{**head, "function": {"name": function["name"], "arguments": ""}}]})
        arguments: str = function["arguments"]
        size = max(1, math.ceil(len(arguments) / MAX_ARGUMENT_PIECES))
        for start in range(0, len(arguments), size):
            piece = {"index": index, "function": {"arguments": arguments[start : start + size]}}
            deltas.append({"tool_calls": [piece]})
    return deltas


def _pieces(answer: Answer) -> list[str]:
    words = (answer.content or "").split(" ")
    per_piece = max(1, math.ceil(len(words) / MAX_STREAM_PIECES))
    joined = [" ".join(words[i : i + per_piece]) for i in range(0, len(words), per_piece)]
    # Keep the separating spaces so that the pieces concatenate back to the exact content.
    return [piece + (" " if i < len(joined) - 1 else "") for i, piece in enumerate(joined)]


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "user":
            return " ".join(message_text(message.get("content")).split())
    return ""


def _generated_content(model: str, body: dict[str, Any]) -> str:
    snippet = _last_user_text(body)[:SNIPPET_CHARS]
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        response_format = {}
    kind = response_format.get("type")
    if kind == "json_schema":
        json_schema = response_format.get("json_schema")
        schema = json_schema.get("schema") if isinstance(json_schema, dict) else None
        return json.dumps(schema_instance(schema, snippet))
    if kind == "json_object":
        return json.dumps({"model": model, "reply": snippet})
    return f"[{model}] Simulated reply to: {snippet}"


def schema_instance(schema: Any, text: str) -> Any:
    """A small value satisfying a JSON schema's common keywords, so structured-output callers get
    something their validation accepts."""
    if not isinstance(schema, dict):
        return text
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return schema_instance(schema[key][0], text)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        props: dict[str, Any] = schema.get("properties") or {}
        return {name: schema_instance(sub, text) for name, sub in props.items()}
    if kind == "array":
        count = int(schema.get("minItems", 1))
        return [schema_instance(schema.get("items", {}), text) for _ in range(count)]
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return text[: int(schema.get("maxLength", len(text)))] or "sim"

"""Request checks and token estimates, and successful answers: Groq's ChatCompletion JSON and its
server-sent-event stream."""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from app.simulator.profiles import ModelProfile

ROLES: frozenset[str] = frozenset({"system", "user", "assistant", "tool", "developer"})
TOKENS_PER_MESSAGE = 4  # role and separators, roughly what chat templates add
SNIPPET_CHARS = 80
_ids = random.Random()  # not the module-level generator, which callers may seed


def random_uuid() -> str:
    """A uuid4-shaped id, several times cheaper than uuid.uuid4() (ids need not be unguessable)."""
    h = f"{_ids.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


MAX_STREAM_PIECES = 16  # more chunks only cost time; clients treat 16 like 1,000


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
    return None


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
    content: str
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
) -> Answer:
    """Decide content, finish reason and usage. A scripted `content` is returned verbatim, uncapped."""
    default_tokens = profile.completion_tokens if profile else 24
    if options.get("content") is not None:
        content = str(options["content"])
        completion_tokens = int(options.get("completion_tokens", max(1, math.ceil(len(content) / 4))))
        finish_reason = str(options.get("finish_reason", "stop"))
    else:
        content = _generated_content(model, body)
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
        finish_reason=finish_reason,
        usage=usage,
        generation_seconds=generation_seconds,
        completion_id=f"chatcmpl-{random_uuid()}",
        request_id=request_id,
        created=int(time.time()),
    )


def completion_json(answer: Answer) -> bytes:
    return json.dumps(
        {
            "id": answer.completion_id,
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": answer.content},
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


async def stream_events(answer: Answer, include_usage: bool) -> AsyncIterator[bytes]:
    """Groq's SSE sequence: a role chunk, content chunks, a final chunk whose x_groq carries the usage,
    then `[DONE]`. Generation time, if any, is spread evenly between the content chunks."""
    pieces = _pieces(answer.content)
    pause = answer.generation_seconds / len(pieces) if pieces else 0.0
    yield _event(answer, {"role": "assistant", "content": ""}, None, {"id": answer.request_id})
    for piece in pieces:
        if pause:
            await asyncio.sleep(pause)
        yield _event(answer, {"content": piece}, None, None)
    last = _event(
        answer,
        {},
        answer.finish_reason,
        {"id": answer.request_id, "usage": answer.usage},
        answer.usage if include_usage else None,
    )
    yield last + b"data: [DONE]\n\n"


def _event(
    answer: Answer,
    delta: dict[str, Any],
    finish_reason: str | None,
    x_groq: dict[str, Any] | None,
    usage: dict[str, Any] | None = None,
) -> bytes:
    chunk: dict[str, Any] = {
        "id": answer.completion_id,
        "object": "chat.completion.chunk",
        "created": answer.created,
        "model": answer.model,
        "system_fingerprint": "fp_sim",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if x_groq is not None:
        chunk["x_groq"] = x_groq
    if usage is not None:
        chunk["usage"] = usage
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


def _pieces(content: str) -> list[str]:
    words = content.split(" ")
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
    kind = response_format.get("type") if isinstance(response_format, dict) else None
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

"""OpenAI-style JSON answers, read once for every provider: a chat completion to a ProviderResponse, and the
message, code and type of an error body.

Groq's provider reads the JSON itself too (rather than the SDK's typed ChatCompletion): building that model
costs more client CPU per call than the whole router does, and we keep six of its fields.
"""

from __future__ import annotations

import re
from typing import Any

from app.errors import ProviderResponseError, ProviderSetupError
from app.providers.base import ProviderResponse, StreamChunk
from app.types import Usage
from app.urls import redact_url


def parse_chat_completion(data: Any) -> ProviderResponse:
    try:
        choices = data["choices"]
        if not choices:
            raise ProviderResponseError("the answer has no choices", status_code=200)
        choice = choices[0]
        message = choice["message"]
        tool_calls = message.get("tool_calls")
        return ProviderResponse(
            content=message.get("content"),
            finish_reason=choice.get("finish_reason"),
            usage=_usage(data.get("usage") or {}),
            provider_request_id=(data.get("x_groq") or {}).get("id") or data.get("id"),
            tool_calls=tuple(tool_calls) if tool_calls else None,
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderResponseError(f"unexpected answer shape: {exc!r}", status_code=200) from exc


def _usage(usage: dict[str, Any]) -> Usage:
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        total_tokens=int(usage.get("total_tokens") or 0),
        cached_tokens=int(prompt_details.get("cached_tokens") or 0),
        reasoning_tokens=int(completion_details.get("reasoning_tokens") or 0),
    )


def parse_chat_chunk(data: Any) -> StreamChunk:
    """A `chat.completion.chunk`. Usage is Groq's `x_groq.usage` (final chunk) or the top-level `usage` of the
    extra chunk `stream_options.include_usage` adds."""
    try:
        x_groq = data.get("x_groq") or {}
        usage = data.get("usage") or x_groq.get("usage")
        choices = data.get("choices")
        if not choices:
            return StreamChunk(usage=_usage(usage) if usage else None, provider_request_id=x_groq.get("id"))
        choice = choices[0]
        delta = choice.get("delta") or {}
        tool_calls = delta.get("tool_calls")
        return StreamChunk(
            content=delta.get("content"),
            tool_calls=tuple(tool_calls) if tool_calls else None,
            finish_reason=choice.get("finish_reason"),
            usage=_usage(usage) if usage else None,
            provider_request_id=x_groq.get("id"),
        )
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
        raise ProviderResponseError(f"unexpected stream chunk: {exc!r}", status_code=200) from exc


def error_fields(body: object) -> tuple[str | None, str | None, str | None]:
    """(message, code, type) from an `{"error": {...}}` or `{"error": "..."}` body, the bare inner object of an
    SSE error event, or a plain string."""
    inner = body.get("error", body) if isinstance(body, dict) else body
    if isinstance(inner, dict):
        message = inner.get("message")
        return (
            str(message) if message is not None else None,
            inner.get("code") if isinstance(inner.get("code"), str) else None,
            inner.get("type") if isinstance(inner.get("type"), str) else None,
        )
    if isinstance(inner, str) and inner:
        return inner, None, None
    return None, None, None


_PATHS = re.compile(r"\S*/\S*")  # a path or URL quoted in a message: the word "model" in it says nothing


def is_unknown_url(status: int | None, code: str | None, message: str | None) -> bool:
    """Whether a 404 is about the URL rather than the model: Groq's `unknown_url`, OpenAI's "Invalid URL (POST
    /v1/chat/completion)", a web framework's bare "Not Found" (vLLM's and LiteLLM's FastAPI, Ollama's "404 page not
    found"). A model the server does not serve is a 404 too, but its body says `model_not_found` or names the model
    (vLLM: "The model `x` does not exist.", Ollama: "model \"x\" not found, try pulling it first")."""
    if status != 404 or code == "model_not_found":
        return False
    return code == "unknown_url" or "model" not in _PATHS.sub("", message or "").lower()


def unknown_url_error(
    message: str, *, base_url: str, setting: str, example: str, code: str | None
) -> ProviderSetupError:
    """The setup error for a URL the server does not know: it names the setting to fix, and what goes in it. A
    ProviderSetupError, so that no model is marked as missing for what is a typo in one setting."""
    shown = redact_url(base_url)
    return ProviderSetupError(
        f"the server has no such URL ({message}): check {setting}={shown}; it should be {example}",
        status_code=404,
        code=code,
    )

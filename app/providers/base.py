"""What crosses the provider boundary, in both directions. Nothing here knows a provider's SDK."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.types import Usage


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a model is served. ``api_key`` is kept out of repr so it cannot reach a log line."""

    provider: str  # "groq" | "openai_compatible"
    base_url: str
    api_key: str | None = field(default=None, repr=False)
    transport: str = "aiohttp"  # HTTP_TRANSPORT: "aiohttp" | "httpx" (Groq's SDK client; see groq_provider)


@dataclass(frozen=True, slots=True)
class ProviderResponse:
    content: str | None
    finish_reason: str | None
    usage: Usage
    provider_request_id: str | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None


@dataclass(frozen=True, slots=True)
class StreamChunk:
    """One chunk of a streamed answer, as far as the router needs it."""

    content: str | None = None  # the text delta
    tool_calls: tuple[dict[str, Any], ...] | None = None  # tool-call fragments, to be assembled by index
    finish_reason: str | None = None
    usage: Usage | None = None  # only in the last chunk (Groq's x_groq.usage, or OpenAI's include_usage chunk)
    provider_request_id: str | None = None


class ProviderStream(Protocol):
    """An open stream: iterate its chunks; `aclose()` drops the connection. Raises only ProviderError."""

    def __aiter__(self) -> AsyncIterator[StreamChunk]: ...

    async def __anext__(self) -> StreamChunk: ...

    async def aclose(self) -> None: ...


class Provider(Protocol):
    async def complete(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> ProviderResponse:
        """One request, no retries. Raises only app.errors.ProviderError subclasses."""
        ...

    async def open_stream(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> ProviderStream:
        """Send a streaming request; returns once the provider accepted it (a status error raises here).
        `timeout` bounds the opening; the caller bounds the waits between chunks."""
        ...

    async def list_models(self, endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
        """The provider's model listing (GET /models) as plain dicts."""
        ...

"""What crosses the provider boundary, in both directions. Nothing here knows a provider's SDK."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

    async def list_models(self, endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
        """The provider's model listing (GET /models) as plain dicts."""
        ...

"""`run_llm`: the one door from the router to any provider."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.errors import ProviderSetupError
from app.providers.base import Endpoint, Provider, ProviderResponse, ProviderStream
from app.providers.groq_provider import GroqProvider
from app.providers.openai_compat import OpenAICompatProvider
from app.providers.redaction import install_log_redaction

_PROVIDERS: dict[str, Provider] = {"groq": GroqProvider(), "openai_compatible": OpenAICompatProvider()}
# The SDK and the HTTP clients under it log headers and tracebacks at DEBUG: scrub keys from those lines.
install_log_redaction()


def get_provider(name: str) -> Provider:
    try:
        return _PROVIDERS[name]
    except KeyError:
        raise ProviderSetupError(
            f"unknown provider {name!r}; known providers: {', '.join(sorted(_PROVIDERS))}"
        ) from None


async def run_llm(
    endpoint: Endpoint,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    timeout: float,
    provider: Provider | None = None,
) -> ProviderResponse:
    """Send one chat request, with no retries. Raises only app.errors.ProviderError subclasses. `provider`: the
    implementation to use instead of the shipped one for `endpoint.provider` (a router's own, e.g. app.testing's)."""
    return await (provider or get_provider(endpoint.provider)).complete(endpoint, model, messages, params, timeout)


async def open_stream(
    endpoint: Endpoint,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    timeout: float,
    provider: Provider | None = None,
) -> ProviderStream:
    """Send one streaming chat request, with no retries; iterate what it returns. Raises only ProviderError."""
    return await (provider or get_provider(endpoint.provider)).open_stream(endpoint, model, messages, params,
                                                                           timeout)


async def list_models(endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
    return await get_provider(endpoint.provider).list_models(endpoint, timeout)

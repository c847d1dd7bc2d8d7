"""The provider layer: nothing outside this package talks to a model provider."""

from app.providers.base import Endpoint, Provider, ProviderResponse, ProviderStream, StreamChunk
from app.providers.run import (
    get_provider,
    list_models,
    open_stream,
    prepare_providers,
    run_llm,
    shipped_providers,
)

__all__ = [
    "Endpoint",
    "Provider",
    "ProviderResponse",
    "ProviderStream",
    "StreamChunk",
    "get_provider",
    "list_models",
    "open_stream",
    "prepare_providers",
    "run_llm",
    "shipped_providers",
]

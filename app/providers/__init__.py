"""The provider layer: nothing outside this package talks to a model provider."""

from app.providers.base import Endpoint, Provider, ProviderResponse
from app.providers.run import get_provider, list_models, run_llm

__all__ = ["Endpoint", "Provider", "ProviderResponse", "get_provider", "list_models", "run_llm"]

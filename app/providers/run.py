"""`run_llm`: the one door from the router to any provider."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

from app.errors import ProviderSetupError
from app.providers.base import Endpoint, Provider, ProviderResponse, ProviderStream
from app.providers.redaction import install_log_redaction

_PROVIDERS: dict[str, Provider] = {}  # made on first use: the SDKs load with the first call, not with `import app`
_KNOWN = ("groq", "openai_compatible")
# The SDK and the HTTP clients under it log headers and tracebacks at DEBUG: scrub keys from those lines.
install_log_redaction()

EndpointGuard = Callable[[Endpoint], None]
# None but under a test harness (app/pytest_plugin.py): a call then pays one `is None` test for it.
_endpoint_guard: EndpointGuard | None = None


def set_endpoint_guard(guard: EndpointGuard | None) -> EndpointGuard | None:
    """Have `guard(endpoint)` called before each request a shipped provider would send (run_llm, open_stream,
    list_models); what it raises ends that call before any connection is opened, and reaches the caller as
    raised (raise a ProviderError subclass only to have the router treat it as the model's failure). Returns the
    guard it replaces, to put back. A router's own providers (`Router(providers=...)`, app.testing) are not
    guarded."""
    global _endpoint_guard
    previous, _endpoint_guard = _endpoint_guard, guard
    return previous


def shipped_providers() -> list[Provider]:
    return list(_PROVIDERS.values())


def get_provider(name: str) -> Provider:
    provider = _PROVIDERS.get(name)
    if provider is not None:
        return provider
    if name == "groq":
        from app.providers.groq_provider import GroqProvider

        provider = _PROVIDERS.setdefault(name, GroqProvider())
    elif name == "openai_compatible":
        from app.providers.openai_compat import OpenAICompatProvider

        provider = _PROVIDERS.setdefault(name, OpenAICompatProvider())
    else:
        raise ProviderSetupError(f"unknown provider {name!r}; known providers: {', '.join(_KNOWN)}")
    return provider


def prepare_providers(names: Iterable[str]) -> None:
    """Load the named providers (their SDKs) and the TLS context their clients share, while a router is built:
    inside a first request, neither an import nor loading the CA bundle could be cut short by its deadline. An
    unknown name is left to fail its own calls, logged."""
    wanted = list(names)
    if not wanted:
        return
    from app.providers.loop_clients import start_shared_ssl_context  # httpx: not loaded by `import app`

    tls = start_shared_ssl_context()  # on a thread, beside the SDK imports
    for name in wanted:
        with contextlib.suppress(ProviderSetupError):
            get_provider(name)
    tls()


def run_llm(
    endpoint: Endpoint,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    timeout: float,
    provider: Provider | None = None,
) -> Awaitable[ProviderResponse]:
    """Send one chat request, with no retries: `await run_llm(...)`. Raises only app.errors.ProviderError subclasses
    (and what an endpoint guard raises: set_endpoint_guard). `provider`: the implementation to use instead of the
    shipped one for `endpoint.provider` (a router's own, e.g. app.testing's). It returns the provider's own
    awaitable rather than awaiting it: the door adds no frame of its own to the call."""
    if provider is None:
        provider = get_provider(endpoint.provider)
        if _endpoint_guard is not None:
            _endpoint_guard(endpoint)
    return provider.complete(endpoint, model, messages, params, timeout)


def open_stream(
    endpoint: Endpoint,
    model: str,
    messages: Sequence[Mapping[str, Any]],
    params: Mapping[str, Any],
    timeout: float,
    provider: Provider | None = None,
) -> Awaitable[ProviderStream]:
    """Send one streaming chat request, with no retries: `await open_stream(...)`, then iterate what it returns.
    Raises only ProviderError (and what an endpoint guard raises)."""
    if provider is None:
        provider = get_provider(endpoint.provider)
        if _endpoint_guard is not None:
            _endpoint_guard(endpoint)
    return provider.open_stream(endpoint, model, messages, params, timeout)


async def list_models(endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
    provider = get_provider(endpoint.provider)
    if _endpoint_guard is not None:
        _endpoint_guard(endpoint)
    return await provider.list_models(endpoint, timeout)

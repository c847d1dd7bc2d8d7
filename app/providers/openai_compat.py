"""Any OpenAI-compatible endpoint (Ollama, vLLM, OpenRouter, Together...) over plain httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from app.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderStatusError,
    ProviderTimeout,
)
from app.providers.base import Endpoint, ProviderResponse
from app.providers.chat_json import error_fields, parse_chat_completion
from app.providers.loop_clients import POOL_LIMITS, LoopClients
from app.providers.redaction import redact


def map_httpx_error(exc: BaseException, api_key: str | None = None) -> ProviderError:
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ProviderTimeout("no answer before the timeout")
    if isinstance(exc, httpx.TransportError):
        return ProviderConnectionError(redact(f"connection failed: {type(exc).__name__}: {exc}", api_key))
    return ProviderError(redact(f"{type(exc).__name__}: {exc}", api_key))


def _status_error(response: httpx.Response, api_key: str | None) -> ProviderStatusError:
    try:
        body = response.json()
    except ValueError:
        body = None
    message, code, error_type = error_fields(body)
    message = message or response.text[:500] or f"HTTP {response.status_code}"
    return ProviderStatusError(redact(message, api_key), status_code=response.status_code, code=code,
                               error_type=error_type, headers=dict(response.headers))


class OpenAICompatProvider:
    def __init__(self) -> None:
        self._clients: LoopClients[httpx.AsyncClient] = LoopClients(lambda client: client.aclose())

    def _client(self) -> httpx.AsyncClient:
        return self._clients.get("httpx", lambda: httpx.AsyncClient(limits=POOL_LIMITS))

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def _request(self, endpoint: Endpoint, method: str, path: str, timeout: float, **kwargs: Any) -> Any:
        headers = {"content-type": "application/json"}
        if endpoint.api_key:
            headers["authorization"] = f"Bearer {endpoint.api_key}"
        url = endpoint.base_url.rstrip("/") + path
        try:
            async with asyncio.timeout(timeout):
                response = await self._client().request(method, url, headers=headers, timeout=timeout, **kwargs)
        except Exception as exc:
            raise map_httpx_error(exc, endpoint.api_key) from exc
        if response.status_code >= 400:
            raise _status_error(response, endpoint.api_key)
        try:
            return response.json()
        except ValueError as exc:
            raise ProviderResponseError("the answer is not JSON", status_code=response.status_code) from exc

    async def complete(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> ProviderResponse:
        body = {"model": model, "messages": list(messages), **params}
        try:
            payload = json.dumps(body)
        except TypeError as exc:
            raise ProviderStatusError(f"invalid parameter: {exc}", code="invalid_params") from exc
        data = await self._request(endpoint, "POST", "/chat/completions", timeout, content=payload)
        return parse_chat_completion(data)

    async def list_models(self, endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
        data = await self._request(endpoint, "GET", "/models", timeout)
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise ProviderResponseError("the model list has no 'data' array")
        return [m for m in models if isinstance(m, dict)]

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
from app.providers.base import Endpoint, ProviderResponse, StreamChunk
from app.providers.chat_json import (
    error_fields,
    is_unknown_url,
    parse_chat_chunk,
    parse_chat_completion,
    unknown_url_error,
)
from app.providers.loop_clients import POOL_LIMITS, LoopClients, shared_ssl_context
from app.providers.redaction import redact, remember_secret, safe_headers


def map_httpx_error(exc: BaseException, api_key: str | None = None) -> ProviderError:
    """httpx's exception as the project's. Raise the result outside the `except` block that caught `exc`: httpx's
    exception holds the request, whose headers carry the key, so it must not be the `__cause__` or `__context__`."""
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ProviderTimeout("no answer before the timeout")
    if isinstance(exc, httpx.TransportError):
        return ProviderConnectionError(redact(f"connection failed: {type(exc).__name__}: {exc}", api_key))
    return ProviderError(redact(f"{type(exc).__name__}: {exc}", api_key))


def _status_error(response: httpx.Response, endpoint: Endpoint) -> ProviderError:
    api_key = endpoint.api_key
    try:
        body = response.json()
    except ValueError:
        body = None
    message, code, error_type = error_fields(body)
    if message is None and isinstance(body, dict) and isinstance(body.get("detail"), str):
        message = body["detail"]  # FastAPI's own errors (vLLM, LiteLLM's proxy): {"detail": "Not Found"}
    message = message or response.text[:500] or f"HTTP {response.status_code}"
    if is_unknown_url(response.status_code, code, message):
        return unknown_url_error(
            redact(message, api_key),
            base_url=endpoint.base_url,
            code=code,
            setting="the model's base_url in MODEL_CATALOG (or MODEL_CATALOG_FILE)",
            example="the address that /chat/completions follows, such as http://127.0.0.1:8000/v1",
        )
    return ProviderStatusError(
        redact(message, api_key),
        status_code=response.status_code,
        code=code,
        error_type=error_type,
        headers=safe_headers(response.headers, api_key),
    )


def _body(
    model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any], **defaults: Any
) -> dict[str, Any]:
    """The JSON body: the router's fields, the caller's parameters, then their `extra_body` merged in as it is."""
    body = {"model": model, "messages": list(messages), **defaults, **params}
    extra = body.pop("extra_body", None)
    if extra:
        body.update(extra)
    return body


def _loads(text: str | bytes) -> tuple[Any, str | None]:
    """(the value, None), or (None, why) when `text` is not JSON. The decode error itself is not kept: its `doc`
    is the text, which a proxy may have filled with the echoed key."""
    try:
        return json.loads(text), None
    except ValueError as exc:
        return None, str(exc)


def _headers(endpoint: Endpoint) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if endpoint.api_key:
        remember_secret(endpoint.api_key)  # for the log filter (app/providers/redaction.py)
        headers["authorization"] = f"Bearer {endpoint.api_key}"
    return headers


class SSEStream:
    """Server-Sent Events of chat chunks: `data: {...}` lines, `data: [DONE]` at the end, `event: error` before
    an error's data."""

    def __init__(self, response: httpx.Response, api_key: str | None) -> None:
        self._response = response
        self._lines = response.aiter_lines()
        self._api_key = api_key

    def __aiter__(self) -> SSEStream:
        return self

    async def __anext__(self) -> StreamChunk:
        event = None
        while True:
            try:
                line = await self._lines.__anext__()
            except StopAsyncIteration:
                raise
            except Exception as exc:
                error = map_httpx_error(exc, self._api_key)
                break  # raised after the loop, outside the except block: no httpx exception in the chain
            if line.startswith("event:"):
                event = line[6:].strip()
                continue
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                raise StopAsyncIteration
            parsed, unreadable = _loads(data)
            if unreadable is not None:
                raise ProviderResponseError(f"a stream event is not JSON: {unreadable}", status_code=200)
            if event == "error" or (isinstance(parsed, dict) and parsed.get("error")):
                message, code, error_type = error_fields(parsed)
                raise ProviderStatusError(
                    redact(message or "error event in the stream", self._api_key), code=code, error_type=error_type
                )
            return parse_chat_chunk(parsed)
        raise error from None

    async def aclose(self) -> None:
        await self._response.aclose()


class OpenAICompatProvider:
    def __init__(self) -> None:
        self._clients: LoopClients[httpx.AsyncClient] = LoopClients(lambda client: client.aclose())

    def _client(self) -> httpx.AsyncClient:
        return self._clients.get("httpx", lambda: httpx.AsyncClient(limits=POOL_LIMITS, verify=shared_ssl_context()))

    async def aclose(self) -> None:
        await self._clients.aclose()

    async def _request(self, endpoint: Endpoint, method: str, path: str, timeout: float, **kwargs: Any) -> Any:
        headers = _headers(endpoint)
        url = endpoint.base_url.rstrip("/") + path
        try:
            async with asyncio.timeout(timeout):
                response = await self._client().request(method, url, headers=headers, timeout=timeout, **kwargs)
        except Exception as exc:
            error: ProviderError = map_httpx_error(exc, endpoint.api_key)
        else:
            if response.status_code >= 400:
                raise _status_error(response, endpoint)
            data, unreadable = _loads(response.content)
            if unreadable is None:
                return data
            error = ProviderResponseError(f"the answer is not JSON: {unreadable}", status_code=response.status_code)
        raise error from None  # outside the except blocks: no httpx exception (its request has the key) in the chain

    async def complete(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> ProviderResponse:
        body = _body(model, messages, params)
        try:
            payload = json.dumps(body)
        except TypeError as exc:
            raise ProviderStatusError(f"invalid parameter: {exc}", code="invalid_params") from exc
        data = await self._request(endpoint, "POST", "/chat/completions", timeout, content=payload)
        return parse_chat_completion(data)

    async def open_stream(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> SSEStream:
        # OpenAI-style servers send usage only when asked, in an extra last chunk.
        body = {**_body(model, messages, params, stream_options={"include_usage": True}), "stream": True}
        try:
            payload = json.dumps(body)
        except TypeError as exc:
            raise ProviderStatusError(f"invalid parameter: {exc}", code="invalid_params") from exc
        client = self._client()
        request = client.build_request(
            "POST",
            endpoint.base_url.rstrip("/") + "/chat/completions",
            headers=_headers(endpoint),
            content=payload,
            timeout=timeout,
        )
        try:
            async with asyncio.timeout(timeout):
                response = await client.send(request, stream=True)
                if response.status_code >= 400:
                    await response.aread()
                    await response.aclose()
                    raise _status_error(response, endpoint)
        except ProviderError:
            raise
        except Exception as exc:
            error = map_httpx_error(exc, endpoint.api_key)
        else:
            return SSEStream(response, endpoint.api_key)
        raise error from None  # outside the except block, as in `_request`

    async def list_models(self, endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
        data = await self._request(endpoint, "GET", "/models", timeout)
        models = data.get("data") if isinstance(data, dict) else None
        if not isinstance(models, list):
            raise ProviderResponseError("the model list has no 'data' array")
        return [m for m in models if isinstance(m, dict)]

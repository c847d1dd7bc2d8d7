"""Groq through its official SDK: the only module of the package that imports `groq`."""

from __future__ import annotations

import asyncio
import inspect
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import groq
import httpx
from groq.resources.chat.completions import AsyncCompletions

from app.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderSetupError,
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


def map_groq_error(exc: BaseException, api_key: str | None = None, base_url: str | None = None) -> ProviderError:
    """Map any exception the SDK (or httpx under it) raises to the project's tree. Most specific first.
    `base_url`: the endpoint's, named in the setup error a 404 for an unknown URL becomes.

    Raise the result outside the `except` block that caught `exc` (see `complete`): the SDK's exception holds
    the request, whose headers carry the key, so it must be neither the `__cause__` nor the `__context__`."""
    dropped = _dropped(exc)
    if dropped is not None:
        return ProviderConnectionError(redact(f"connection failed: {type(dropped).__name__}: {dropped}", api_key))
    if isinstance(exc, groq.APITimeoutError | httpx.TimeoutException | TimeoutError):
        return ProviderTimeout("no answer before the timeout")
    if isinstance(exc, groq.APIConnectionError | httpx.TransportError):
        cause = exc.__cause__ or exc
        return ProviderConnectionError(redact(f"connection failed: {type(cause).__name__}: {cause}", api_key))
    if isinstance(exc, groq.APIResponseValidationError):
        return ProviderResponseError(
            redact(f"unexpected response body: {exc.message}", api_key), status_code=exc.status_code
        )
    if isinstance(exc, groq.APIStatusError):
        message, code, error_type = error_fields(exc.body)
        if base_url is not None and is_unknown_url(exc.status_code, code, message):
            return unknown_url_error(
                redact(message or exc.message, api_key),
                base_url=base_url,
                setting="GROQ_BASE_URL",
                example=_groq_root(base_url),
                code=code,
            )
        return ProviderStatusError(
            redact(message or exc.message, api_key),
            status_code=exc.status_code,
            code=code,
            error_type=error_type,
            headers=safe_headers(exc.response.headers, api_key),
        )
    if isinstance(exc, groq.APIError):  # an error event in the middle of a stream: body is the inner object
        message, code, error_type = error_fields(exc.body)
        return ProviderStatusError(redact(message or exc.message, api_key), code=code, error_type=error_type)
    if isinstance(exc, groq.GroqError):  # raised by the client constructor, e.g. no API key
        return ProviderSetupError(redact(str(exc), api_key))
    return ProviderError(redact(f"{type(exc).__name__}: {exc}", api_key))


def _groq_root(base_url: str) -> str:
    """What GROQ_BASE_URL should hold. The usual mistake is an OpenAI-style URL ending in /v1 or /openai/v1, which
    the SDK extends with its own /openai/v1/chat/completions."""
    example = "the server's root, such as https://api.groq.com: the SDK adds /openai/v1/chat/completions itself"
    path = urlsplit(base_url).path.rstrip("/")
    for suffix in ("/openai/v1", "/v1"):
        if path.endswith(suffix):
            return f"{example}, so leave out the trailing {suffix}"
    return example


def _aiohttp_cause(exc: BaseException) -> aiohttp.ClientError | None:
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, aiohttp.ClientError):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__
    return None


def _dropped(exc: BaseException) -> aiohttp.ClientError | None:
    """The aiohttp error behind a "timeout" that was not one. httpx-aiohttp maps aiohttp's connection errors
    (refused, reset, dropped mid-response) to httpx's ConnectTimeout, which the SDK raises as APITimeoutError;
    aiohttp's real timeouts are TimeoutErrors."""
    cause = _aiohttp_cause(exc)
    return cause if cause is not None and not isinstance(cause, TimeoutError) else None


class GroqProvider:
    """AsyncGroq clients are bound to the event loop that opened their connections, so keep one per loop."""

    def __init__(self) -> None:
        self._clients: LoopClients[groq.AsyncGroq] = LoopClients(lambda client: client.close())

    def client(self, endpoint: Endpoint) -> groq.AsyncGroq:
        key = endpoint.api_key
        if not key:
            raise ProviderSetupError(
                "GROQ_API_KEY is not set: set it in the environment or .env, "
                "or run `taskrouter demo` to use the built-in simulator"
            )
        where = (endpoint.base_url, key, endpoint.transport)
        made = self._clients.loops.get(asyncio.get_running_loop())  # the common case: made already, no call of ours
        client = made.clients.get(where) if made is not None else None
        if client is not None:
            return client

        def make() -> groq.AsyncGroq:
            remember_secret(key)  # for the log filter: the SDK's DEBUG lines may quote it (redaction.py)
            return groq.AsyncGroq(
                api_key=key,
                base_url=endpoint.base_url,
                max_retries=0,  # the router owns retries: one attempt is one request
                http_client=_http_client(endpoint.transport),
            )

        return self._clients.get(where, make)

    async def complete(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> ProviderResponse:
        # httpx's timeout bounds each read; asyncio's bounds the whole call (a slow drip cannot stretch it), this
        # loop's first use of the client (making it) included.
        read_timeout = _read_timeout(timeout)
        try:
            async with asyncio.timeout(timeout):
                client = self.client(endpoint)
                if _plain(messages, params):
                    data = await _post_chat(client, {"model": model, "messages": messages, **params}, read_timeout)
                else:
                    completion = await client.chat.completions.create(
                        model=model,
                        messages=messages,  # type: ignore[arg-type]
                        timeout=read_timeout,
                        **params,
                    )
                    data = completion.to_dict()
        except ProviderError as exc:  # no key: already the project's error
            error = exc
        except TypeError as exc:  # an unknown keyword: the caller's mistake, the same for every model
            error = ProviderStatusError(f"invalid parameter: {exc}", code="invalid_params")
        except json.JSONDecodeError as exc:  # a 2xx whose body is not JSON (`exc.doc` holds the body: not kept)
            error = ProviderResponseError(f"the answer is not JSON: {exc}", status_code=200)
        except Exception as exc:
            error = map_groq_error(exc, endpoint.api_key, endpoint.base_url)
        else:
            return parse_chat_completion(data)
        # Raised here, outside the except blocks: no SDK exception (its request has the key) in the chain.
        raise error from None

    async def open_stream(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> GroqStream:
        try:
            async with asyncio.timeout(timeout):
                client = self.client(endpoint)
                if _plain(messages, params):
                    # The SDK's own SSE reader (error events raise APIError), minus a typed model per chunk.
                    stream = await client.post(
                        _CHAT_PATH,
                        body={"model": model, "messages": messages, **params, "stream": True},
                        cast_to=object,
                        stream=True,
                        stream_cls=groq.AsyncStream[object],
                        options={"timeout": _read_timeout(timeout)},
                    )
                else:
                    stream = await client.chat.completions.create(  # type: ignore[assignment]
                        model=model,
                        messages=messages,  # type: ignore[arg-type]
                        timeout=_read_timeout(timeout),
                        stream=True,
                        **params,
                    )
        except ProviderError as exc:
            error = exc
        except TypeError as exc:
            error = ProviderStatusError(f"invalid parameter: {exc}", code="invalid_params")
        except Exception as exc:
            error = map_groq_error(exc, endpoint.api_key, endpoint.base_url)
        else:
            return GroqStream(stream, endpoint.api_key)
        raise error from None  # outside the except blocks, as in `complete`

    async def list_models(self, endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
        client = self.client(endpoint)
        try:
            async with asyncio.timeout(timeout):
                page = await client.models.list(timeout=timeout)
        except Exception as exc:
            error = map_groq_error(exc, endpoint.api_key, endpoint.base_url)
        else:
            return [model.model_dump() for model in page.data]
        raise error from None  # outside the except block, as in `complete`

    async def aclose(self) -> None:
        await self._clients.aclose()


class GroqStream:
    """The SDK's stream, its chunks read as plain JSON and its errors mapped to the project's tree."""

    def __init__(self, stream: groq.AsyncStream[Any], api_key: str | None) -> None:
        self._stream = stream
        self._chunks = stream.__aiter__()
        self._api_key = api_key

    def __aiter__(self) -> GroqStream:
        return self

    async def __anext__(self) -> StreamChunk:
        try:
            data = await self._chunks.__anext__()
        except StopAsyncIteration:
            raise
        except Exception as exc:
            error = map_groq_error(exc, self._api_key)
        else:
            return parse_chat_chunk(data if type(data) is dict else data.to_dict())
        raise error from None  # outside the except block, as in `complete`

    async def aclose(self) -> None:
        try:
            await self._stream.close()
        except Exception as exc:  # closing a connection that is already gone
            error = map_groq_error(exc, self._api_key)
        else:
            return
        raise error from None  # outside the except block, as in `complete`


def _http_client(transport: str) -> httpx.AsyncClient:
    if transport == "httpx":
        return httpx.AsyncClient(limits=POOL_LIMITS, verify=shared_ssl_context())
    if transport == "aiohttp":
        return groq.DefaultAioHttpClient(limits=POOL_LIMITS, verify=shared_ssl_context())
    raise ProviderSetupError(f"HTTP_TRANSPORT must be aiohttp or httpx, got {transport!r}")


# What `chat.completions.create` puts in the JSON body. Anything else it takes is a request option.
_BODY_PARAMS = frozenset(inspect.signature(AsyncCompletions.create).parameters) - {
    "self",
    "messages",
    "model",
    "stream",
    "extra_headers",
    "extra_query",
    "extra_body",
    "timeout",
}
_CHAT_PATH = "/openai/v1/chat/completions"


def _plain(messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]) -> bool:
    """Whether the request can skip the SDK's typed layer: plain dict messages and only body parameters.
    Anything else (a request option, stream, an unknown keyword, a Mapping that is not a dict) takes
    `create()`, which converts it or raises the SDK's own TypeError."""
    return params.keys() <= _BODY_PARAMS and all(type(m) is dict for m in messages)


def _read_timeout(timeout: float) -> float:
    """The SDK's read timeout for a call that asyncio bounds at `timeout`. It must fire first (cancelled by asyncio
    alone, an aiohttp call takes a few hundred ms to unwind): the time left, cut down to the millisecond. The SDK
    formats it into a header on every call, and 29.999 formats at half the cost of 29.99987..."""
    return max(math.floor(timeout * 1000.0) / 1000.0, 0.001)


async def _post_chat(client: groq.AsyncGroq, body: dict[str, Any], timeout: float) -> Any:
    """`create()`'s request through the SDK's documented `post` (same auth, headers, timeout, status errors),
    minus its typed transform of the body and its ChatCompletion model, a large part of a bare call's client CPU
    (bench/RESULTS.md has the measure).
    For these parameters the transform is the identity (chat params have no aliases or formats)."""
    response = await client.post(_CHAT_PATH, body=body, cast_to=httpx.Response, options={"timeout": timeout})
    return response.json()

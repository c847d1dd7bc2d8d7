"""The provider boundary: every SDK exception mapped, one request per attempt, clients reused."""

from __future__ import annotations

import inspect
import json

import groq
import httpx
import pytest
from conftest import TEST_KEY, USER

from app.errors import (
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderSetupError,
    ProviderStatusError,
    ProviderTimeout,
)
from app.providers import Endpoint, run_llm
from app.providers.groq_provider import GroqProvider, map_groq_error

pytestmark = pytest.mark.anyio

REQUEST = httpx.Request("POST", "http://127.0.0.1/openai/v1/chat/completions")


def _response(status: int, body: dict | None = None) -> httpx.Response:
    return httpx.Response(status, json=body or {"error": {"message": "m", "type": "t", "code": "c"}}, request=REQUEST)


def _instance(cls: type[BaseException]) -> BaseException:
    if issubclass(cls, groq.APIStatusError):
        return cls("boom", response=_response(getattr(cls, "status_code", 500) or 500), body={"error": {}})
    if issubclass(cls, groq.APIResponseValidationError):
        return cls(_response(200), body=None)
    if issubclass(cls, groq.APITimeoutError):
        return cls(request=REQUEST)
    if issubclass(cls, groq.APIConnectionError):
        return cls(request=REQUEST)
    if issubclass(cls, groq.APIError):
        return cls("boom", REQUEST, body=None)
    return cls("boom")


SDK_EXCEPTIONS = sorted(
    {obj for obj in list(vars(groq).values()) if inspect.isclass(obj) and issubclass(obj, groq.GroqError)},
    key=lambda c: c.__name__,
)


def test_the_sdk_exception_list_is_complete():
    assert len(SDK_EXCEPTIONS) >= 14  # if groq adds classes, they are picked up above and must map below


@pytest.mark.parametrize("cls", SDK_EXCEPTIONS, ids=lambda c: c.__name__)
def test_every_sdk_exception_is_mapped(cls):
    mapped = map_groq_error(_instance(cls))
    assert isinstance(mapped, ProviderError)
    assert type(mapped) is not ProviderError  # a specific class, not the catch-all
    expected = {
        "APITimeoutError": ProviderTimeout,
        "APIConnectionError": ProviderConnectionError,
        "APIResponseValidationError": ProviderResponseError,
        "GroqError": ProviderSetupError,
    }.get(cls.__name__, ProviderStatusError)
    assert isinstance(mapped, expected)


def test_status_error_keeps_groq_code_message_and_headers():
    response = httpx.Response(
        429,
        json={
            "error": {
                "message": "Rate limit reached ... try again in 1.5s",
                "type": "tokens",
                "code": "rate_limit_exceeded",
            }
        },
        headers={"retry-after": "2"},
        request=REQUEST,
    )
    exc = groq.RateLimitError("x", response=response, body=response.json())
    mapped = map_groq_error(exc)
    assert (mapped.status_code, mapped.code, mapped.error_type) == (429, "rate_limit_exceeded", "tokens")
    assert mapped.message.startswith("Rate limit reached")
    assert mapped.headers["retry-after"] == "2"


def test_key_is_redacted_from_mapped_messages():
    exc = groq.APIError(f"bad key {TEST_KEY}", REQUEST, body=None)
    assert TEST_KEY not in map_groq_error(exc, TEST_KEY).message


async def test_one_attempt_is_one_request_even_for_retryable_statuses():
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(503, json={"error": {"message": "Service Unavailable"}}, headers={"retry-after": "0"})

    provider = GroqProvider()
    endpoint = Endpoint("groq", "http://mock.invalid", TEST_KEY)
    client = provider.client(endpoint)
    assert client.max_retries == 0
    client._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))  # narrow: the wire only
    with pytest.raises(ProviderStatusError) as caught:
        await provider.complete(endpoint, "m", USER, {}, timeout=2)
    assert caught.value.status_code == 503
    assert len(seen) == 1
    body = json.loads(seen[0].content)
    assert body["model"] == "m" and body["messages"] == USER
    assert seen[0].headers["authorization"] == f"Bearer {TEST_KEY}"


async def test_clients_are_reused_per_base_url_and_key():
    provider = GroqProvider()
    a = provider.client(Endpoint("groq", "http://127.0.0.1:1", "k1"))
    assert provider.client(Endpoint("groq", "http://127.0.0.1:1", "k1")) is a
    assert provider.client(Endpoint("groq", "http://127.0.0.1:1", "k2")) is not a


def test_endpoint_repr_hides_the_key():
    assert TEST_KEY not in repr(Endpoint("groq", "http://x", TEST_KEY))


async def test_run_llm_against_the_simulator(sim):
    result = await run_llm(Endpoint("groq", sim.base_url, TEST_KEY), "any/model", USER, {"max_tokens": 5}, 2)
    assert result.usage.completion_tokens == 5 and result.finish_reason == "length"  # capped at max_tokens
    assert result.provider_request_id


async def test_unknown_provider_is_a_setup_error():
    with pytest.raises(ProviderSetupError, match="unknown provider 'nope'"):
        await run_llm(Endpoint("nope", "http://x"), "m", USER, {}, 1)


# -- the JSON fast path: what goes on the wire must be exactly what `create()` sends ----------------------------

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "finish_reason": "tool_calls",
            "message": {
                "role": "assistant",
                "content": "hi",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
            },
        }
    ],
    "usage": {
        "prompt_tokens": 7,
        "completion_tokens": 3,
        "total_tokens": 10,
        "prompt_tokens_details": {"cached_tokens": 2},
        "completion_tokens_details": {"reasoning_tokens": 1},
    },
    "x_groq": {"id": "req_abc"},
}
PARAMS = {
    "max_tokens": 5,
    "temperature": 0.2,
    "stop": ["\n"],
    "seed": 7,
    "tool_choice": "auto",
    "response_format": {"type": "json_object"},
    "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
}


def _mock_provider(handler) -> tuple[GroqProvider, Endpoint]:
    provider = GroqProvider()
    endpoint = Endpoint("groq", "http://mock.invalid", TEST_KEY)
    provider.client(endpoint)._client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    return provider, endpoint


async def test_the_fast_path_sends_what_create_sends_and_reads_what_it_reads():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=COMPLETION)

    provider, endpoint = _mock_provider(handler)
    fast = await provider.complete(endpoint, "m", USER, PARAMS, timeout=2)
    typed = await provider.complete(
        endpoint, "m", tuple(dict(m) for m in USER), {**PARAMS, "extra_headers": {}}, timeout=2
    )  # a request option: through create() and its typed model
    assert fast == typed
    assert fast.content == "hi" and fast.finish_reason == "tool_calls" and fast.provider_request_id == "req_abc"
    assert (fast.usage.prompt_tokens, fast.usage.completion_tokens, fast.usage.total_tokens) == (7, 3, 10)
    assert (fast.usage.cached_tokens, fast.usage.reasoning_tokens) == (2, 1)
    assert fast.tool_calls == ({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}},)
    assert len(seen) == 2
    assert seen[0].url == seen[1].url and seen[0].method == seen[1].method == "POST"
    assert json.loads(seen[0].content) == json.loads(seen[1].content) == {"model": "m", "messages": USER, **PARAMS}
    differing = {
        k for k in set(seen[0].headers) | set(seen[1].headers) if seen[0].headers.get(k) != seen[1].headers.get(k)
    }
    assert differing <= {"x-stainless-read-timeout", "content-length"}, differing
    assert seen[0].headers["authorization"] == f"Bearer {TEST_KEY}"


async def test_a_mapping_that_is_not_a_dict_goes_through_create():
    from types import MappingProxyType

    bodies: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json=COMPLETION)

    provider, endpoint = _mock_provider(handler)
    result = await provider.complete(endpoint, "m", [MappingProxyType(USER[0])], {}, timeout=2)
    assert result.content == "hi"
    assert bodies == [{"model": "m", "messages": USER}]


async def test_an_unknown_keyword_is_an_invalid_parameter_and_sends_nothing():
    seen: list[httpx.Request] = []
    provider, endpoint = _mock_provider(lambda request: seen.append(request) or httpx.Response(200, json=COMPLETION))
    with pytest.raises(ProviderStatusError) as caught:
        await provider.complete(endpoint, "m", USER, {"max_tokenz": 5}, timeout=2)
    assert caught.value.code == "invalid_params" and "max_tokenz" in caught.value.message
    assert seen == []


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"<html>gateway</html>", "not JSON"),
        (b'{"choices": []}', "no choices"),
        (b'{"choices": [{"finish_reason": "stop"}]}', "unexpected answer shape"),
        (
            b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": "many"}}',
            "unexpected answer shape",
        ),
    ],
)
async def test_a_2xx_that_cannot_be_read_is_a_response_error(body, expected):
    provider, endpoint = _mock_provider(lambda request: httpx.Response(200, content=body))
    with pytest.raises(ProviderResponseError, match=expected) as caught:
        await provider.complete(endpoint, "m", USER, {}, timeout=2)
    assert caught.value.status_code == 200

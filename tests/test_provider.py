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
        json={"error": {"message": "Rate limit reached ... try again in 1.5s", "type": "tokens",
                        "code": "rate_limit_exceeded"}},
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
    assert result.usage.completion_tokens <= 5
    assert result.provider_request_id


async def test_unknown_provider_is_a_setup_error():
    with pytest.raises(ProviderSetupError, match="unknown provider 'nope'"):
        await run_llm(Endpoint("nope", "http://x"), "m", USER, {}, 1)

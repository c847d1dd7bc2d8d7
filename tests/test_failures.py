from __future__ import annotations

import pytest

from app.core.failures import POLICY, Trip, classify, parse_duration, policy, policy_markdown, rate_limit_wait
from app.errors import ProviderSetupError, ProviderStatusError
from app.providers.chat_json import is_unknown_url
from app.types import ErrorKind


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("7.66s", 7.66),
        ("2m59.56s", 179.56),
        ("9m38s", 578),
        ("1h2m", 3720),
        ("150ms", 0.15),
        ("abc", None),
        ("", None),
        ("5", None),
    ],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_rate_limit_wait_prefers_retry_after_then_message_then_reset_headers():
    assert rate_limit_wait({"retry-after": "7"}, "Please try again in 9m38s.") == 7
    assert rate_limit_wait({}, "Please try again in 9m38s. Need more tokens?") == 578
    headers = {
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-tokens": "7.66s",
        "x-ratelimit-remaining-requests": "10",
        "x-ratelimit-reset-requests": "2m59.56s",
    }
    assert rate_limit_wait(headers, "no hint") == pytest.approx(7.66)
    assert rate_limit_wait({}, None) is None


@pytest.mark.parametrize(
    ("status", "code", "kind", "stop"),
    [
        (400, "model_decommissioned", "deprecated", False),
        (404, "model_not_found", "not_found", False),
        (429, "rate_limit_exceeded", "rate_limited", False),
        (413, "rate_limit_exceeded", "too_large", False),
        (400, "context_length_exceeded", "context_length", False),
        (498, "capacity_exceeded", "capacity", False),
        (502, None, "server_error", False),
        (401, "invalid_api_key", "auth", True),
        (403, None, "auth", True),
        (400, None, "bad_request", True),
        (422, None, "bad_request", True),
        (409, None, "unexpected_status", False),
        (400, "json_validate_failed", "invalid_output", False),
        (400, "tool_use_failed", "invalid_output", False),
    ],
)
def test_classify(status, code, kind, stop):
    found = classify(ProviderStatusError("m", status_code=status, code=code))
    assert (found.value, policy(found).stop) == (kind, stop)


def test_every_failure_kind_has_a_policy_and_the_docs_show_the_table_itself():
    from docs_site import built, source

    skip_only = {
        ErrorKind.COOLING_DOWN,
        ErrorKind.BUDGET,
        ErrorKind.CAPABILITY,
        ErrorKind.CIRCUIT_OPEN,
        ErrorKind.DISABLED,
    }
    assert set(POLICY) == set(ErrorKind) - skip_only
    assert source("routing.md").count("<!-- generated: failure-table -->") == 1
    assert policy_markdown() in built("routing.md")
    assert "| 429 | `rate_limited` | next model | yes | — | the provider's wait |" in built("routing.md")


@pytest.mark.parametrize(
    ("kind", "retry", "breaker", "trips", "stop"),
    [
        ("server_error", True, True, None, False),
        ("timeout", True, True, Trip.TIMEOUTS, False),
        ("connection", True, True, Trip.CONNECTION_ERRORS, False),
        ("rate_limited", True, False, None, False),
        ("invalid_output", True, False, None, False),
        ("auth", False, False, None, True),
        ("bad_request", False, False, None, True),
        ("deprecated", False, False, None, False),
        ("setup", False, False, None, False),
        ("hedge_lost", False, False, None, False),
        ("deadline", False, False, None, False),
    ],
)
def test_policy_rows(kind, retry, breaker, trips, stop):
    row = POLICY[ErrorKind(kind)]
    assert (row.retry, row.breaker, row.trips, row.stop) == (retry, breaker, trips, stop)


# The wordings as each server sends them (from their sources): each is a 400 a model with a longer context may answer.
CONTEXT_ERRORS = [
    (
        "openai",
        400,
        "context_length_exceeded",
        None,
        "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.",
    ),
    (
        "vllm",
        400,
        None,
        "BadRequestError",
        "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens (4000 in the messages, "
        "1000 in the completion). Please reduce the length of the messages or completion.",
    ),
    (
        "vllm max_tokens",
        400,
        None,
        "BadRequestError",
        "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 "
        "tokens and your request has 2778 input tokens (8000 > 4096 - 2778).",
    ),
    (
        "vllm v1 engine",
        400,
        None,
        "BadRequestError",
        "The decoder prompt (length 5000) is longer than the maximum model length of 4096. Make sure that "
        "`max_model_len` is no smaller than the number of text tokens.",
    ),
    (
        "litellm proxy",
        400,
        "400",
        None,
        "litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError: OpenAIException - "
        "Error code: 400",
    ),
    (
        "llama.cpp",
        400,
        None,
        "exceed_context_size_error",
        "request (4476 tokens) exceeds the available context size (4096 tokens), try increasing it",
    ),
    ("ollama", 400, None, "api_error", "the input length exceeds the context length"),
]


@pytest.mark.parametrize(
    ("server", "status", "code", "type_", "message"), CONTEXT_ERRORS, ids=[c[0] for c in CONTEXT_ERRORS]
)
def test_context_length_wordings_of_openai_compatible_servers(server, status, code, type_, message):
    error = ProviderStatusError(message, status_code=status, code=code, error_type=type_)
    assert classify(error) is ErrorKind.CONTEXT_LENGTH


def test_a_plain_bad_request_is_still_the_callers_fault():
    assert (
        classify(ProviderStatusError("'messages.0' : discriminator property 'role' has invalid value", status_code=400))
        is ErrorKind.BAD_REQUEST
    )


@pytest.mark.parametrize(
    ("status", "code", "message", "unknown"),
    [
        (404, "unknown_url", "Unknown request URL: POST /v1/openai/v1/chat/completions.", True),  # Groq
        (404, None, "Invalid URL (POST /v1/chat/completion)", True),  # OpenAI
        (404, None, "Not Found", True),  # FastAPI: vLLM, LiteLLM's proxy
        (404, None, "404 page not found", True),  # Ollama
        (404, "model_not_found", "The model `x` does not exist or you do not have access to it.", False),  # Groq
        (404, None, "The model `x` does not exist.", False),  # vLLM
        (404, None, 'model "llama3" not found, try pulling it first', False),  # Ollama
        (404, None, "Unknown request URL: GET /openai/v1/models/x", True),  # "models" in the path says nothing
        (400, "unknown_url", "Unknown request URL", False),
    ],
)
def test_an_unknown_url_is_told_from_an_unknown_model(status, code, message, unknown):
    assert is_unknown_url(status, code, message) is unknown


def test_a_setup_error_is_never_a_missing_model():
    assert classify(ProviderSetupError("no such URL", status_code=404, code="unknown_url")) is ErrorKind.SETUP

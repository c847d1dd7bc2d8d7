"""The pieces of app/providers/redaction.py: `redact`, the headers an error keeps, the log filter and where it is
installed. tests/test_secrets.py checks them together, end to end."""

from __future__ import annotations

import logging
import secrets
import sys

import app.providers  # noqa: F401  (importing the provider layer installs the log filter)
from app.providers.redaction import RedactingFilter, redact, remember_secret, safe_headers

CANARY = "gsk_canary_" + secrets.token_hex(16)
ECHO_HEADER = "x-echoed-authorization"


def test_redact_finds_keys_bearer_tokens_and_credential_headers() -> None:
    other = "gsk_" + secrets.token_hex(12)  # a Groq-shaped key that is not the configured one
    text = (
        f"Authorization: Bearer {CANARY}; {{'authorization': 'Basic dXNlcjpwYXNz'}} x-api-key=abc123 "
        f"token {other} bearer eyJhbGciOi.J9-x_y~z+/= and plain-secret-42"
    )
    clean = redact(text, "plain-secret-42")
    assert clean == (
        "Authorization: Bearer [redacted]; {'authorization': 'Basic [redacted]'} x-api-key=[redacted] "
        "token [redacted] Bearer [redacted] and [redacted]"
    )
    assert redact(clean) == clean
    assert redact("GET https://bob:pa55-word@proxy:8080/v1 refused; http://x.io/a@b kept") == (
        "GET https://bob:[redacted]@proxy:8080/v1 refused; http://x.io/a@b kept"
    )
    assert redact("Invalid API Key; check your Authorization header") == (
        "Invalid API Key; check your Authorization header"
    )


def test_safe_headers_keep_only_rate_limits_retry_after_and_the_request_id() -> None:
    headers = {
        "Retry-After": "7",
        "x-ratelimit-remaining-tokens": "0",
        "x-request-id": "req_1",
        ECHO_HEADER: f"Bearer {CANARY}",
        "set-cookie": "session=1",
        "x-debug": CANARY,
    }
    assert safe_headers(headers) == {"retry-after": "7", "x-ratelimit-remaining-tokens": "0", "x-request-id": "req_1"}


def test_the_log_filter_scrubs_messages_arguments_and_tracebacks() -> None:
    odd_key = "k-" + secrets.token_hex(8)  # no known key shape: found because the provider remembered it
    remember_secret(odd_key)
    try:
        raise RuntimeError(f"upstream said: Authorization: Bearer {CANARY}")
    except RuntimeError:
        record = logging.LogRecord(
            "groq._base_client",
            logging.DEBUG,
            __file__,
            1,
            "headers %s key %s",
            ({"x-echoed-authorization": f"Bearer {CANARY}"}, odd_key),
            sys.exc_info(),
        )
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert CANARY not in formatted and odd_key not in formatted
    assert record.exc_info is None and "upstream said: Authorization: Bearer [redacted]" in formatted
    assert record.getMessage() == "headers {'x-echoed-authorization': 'Bearer [redacted]'} key [redacted]"


def test_every_logger_of_the_http_stack_has_the_filter() -> None:
    # A filter applies only to the records of its own logger, so the libraries' module loggers need it too,
    # including those created after the provider layer was imported.
    for name in (
        "groq",
        "groq._base_client",
        "groq._response",
        "httpx",
        "httpcore.http11",
        "httpcore.connection",
        "aiohttp.client",
        "aiohttp.internal",
    ):
        assert any(isinstance(f, RedactingFilter) for f in logging.getLogger(name).filters), name

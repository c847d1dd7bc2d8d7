from __future__ import annotations

import pytest

from app.core.failures import classify, parse_duration, rate_limit_wait
from app.errors import ProviderStatusError


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7.66s", 7.66), ("2m59.56s", 179.56), ("9m38s", 578), ("1h2m", 3720), ("150ms", 0.15), ("abc", None),
     ("", None), ("5", None)],
)
def test_parse_duration(text, seconds):
    assert parse_duration(text) == (pytest.approx(seconds) if seconds is not None else None)


def test_rate_limit_wait_prefers_retry_after_then_message_then_reset_headers():
    assert rate_limit_wait({"retry-after": "7"}, "Please try again in 9m38s.") == 7
    assert rate_limit_wait({}, "Please try again in 9m38s. Need more tokens?") == 578
    headers = {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "7.66s",
               "x-ratelimit-remaining-requests": "10", "x-ratelimit-reset-requests": "2m59.56s"}
    assert rate_limit_wait(headers, "no hint") == pytest.approx(7.66)
    assert rate_limit_wait({}, None) is None


@pytest.mark.parametrize(
    ("status", "code", "kind", "stop"),
    [(400, "model_decommissioned", "deprecated", False), (404, "model_not_found", "not_found", False),
     (429, "rate_limit_exceeded", "rate_limited", False), (413, "rate_limit_exceeded", "too_large", False),
     (400, "context_length_exceeded", "context_length", False), (498, "capacity_exceeded", "capacity", False),
     (502, None, "server_error", False), (401, "invalid_api_key", "auth", True), (403, None, "auth", True),
     (400, None, "bad_request", True), (422, None, "bad_request", True), (409, None, "unexpected_status", False)],
)
def test_classify(status, code, kind, stop):
    decision = classify(ProviderStatusError("m", status_code=status, code=code))
    assert (decision.kind.value, decision.stop_request) == (kind, stop)

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.failures import POLICY, classify, parse_duration, policy, policy_markdown, rate_limit_wait
from app.errors import ProviderStatusError
from app.types import ErrorKind


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
     (400, None, "bad_request", True), (422, None, "bad_request", True), (409, None, "unexpected_status", False),
     (400, "json_validate_failed", "invalid_output", False), (400, "tool_use_failed", "invalid_output", False)],
)
def test_classify(status, code, kind, stop):
    found = classify(ProviderStatusError("m", status_code=status, code=code))
    assert (found.value, policy(found).stop) == (kind, stop)


def test_every_failure_kind_has_a_policy_and_readme_shows_the_table_itself():
    skip_only = {ErrorKind.COOLING_DOWN, ErrorKind.BUDGET, ErrorKind.CAPABILITY, ErrorKind.CIRCUIT_OPEN,
                 ErrorKind.DISABLED}
    assert set(POLICY) == set(ErrorKind) - skip_only
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    assert policy_markdown() in readme


@pytest.mark.parametrize(
    ("kind", "retry", "breaker", "trips", "stop"),
    [("server_error", True, True, False, False), ("timeout", True, True, True, False),
     ("connection", True, True, True, False), ("rate_limited", True, False, False, False),
     ("invalid_output", True, False, False, False), ("auth", False, False, False, True),
     ("bad_request", False, False, False, True), ("deprecated", False, False, False, False),
     ("hedge_lost", False, False, False, False), ("deadline", False, False, False, False)],
)
def test_policy_rows(kind, retry, breaker, trips, stop):
    row = POLICY[ErrorKind(kind)]
    assert (row.retry, row.breaker, row.trips, row.stop) == (retry, breaker, trips, stop)

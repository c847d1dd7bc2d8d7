"""Every row of the failure table: the real SDK against the local simulator, then the logged rows."""

from __future__ import annotations

import pytest
from conftest import TEST_KEY, USER, logged_rows

from app.core import ai_models
from app.errors import AuthenticationFailedError, RequestRejectedError
from app.store import epoch_from_iso
from app.testing import FakeClock

pytestmark = pytest.mark.anyio

FIRST, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]


def status_rows(db_path):
    return {r["model"]: r for r in logged_rows(db_path, "SELECT * FROM model_status")}


@pytest.mark.parametrize(
    ("fault", "kind", "status"),
    [
        ("decommissioned", "deprecated", 400),
        ("not_found", "not_found", 404),
        ("rate_limit", "rate_limited", 429),
        ("too_large", "too_large", 413),
        ("context_length", "context_length", 400),
        ("capacity", "capacity", 498),
        ("server_error", "server_error", 500),
        ("bad_gateway", "server_error", 502),
        ("unavailable", "server_error", 503),
        ("disconnect", "connection", None),
    ],
)
async def test_failure_moves_on_to_the_next_model_and_is_logged(sim, make_router, db_path, fault, kind, status):
    sim.script(FIRST, fault)
    resp = await make_router().execute("reasoning", USER)

    assert resp.model_used == SECOND
    assert resp.fallback_used is True
    assert [(a.model, a.outcome.value, a.error_kind and a.error_kind.value, a.status_code) for a in resp.attempts] == [
        (FIRST, "failure", kind, status),
        (SECOND, "success", None, None),
    ]
    rows = logged_rows(db_path)
    assert [(r["model"], r["outcome"], r["error_kind"], r["status_code"], r["attempt"]) for r in rows] == [
        (FIRST, "failure", kind, status, 1),
        (SECOND, "success", None, None, 2),
    ]
    assert rows[0]["request_id"] == rows[1]["request_id"] == resp.request_id
    assert rows[0]["error_message"]
    assert rows[0]["cost_usd"] == 0.0  # a failed call is not billed
    assert rows[1]["prompt_tokens"] > 0 and rows[1]["cost_usd"] > 0


async def test_timeout_moves_on(sim, make_router, db_path):
    sim.script(FIRST, {"fault": "hang", "seconds": 30})
    resp = await make_router(llm_timeout_seconds=0.5).execute("reasoning", USER)
    assert resp.model_used == SECOND
    assert [(a.model, a.outcome.value, a.error_kind and a.error_kind.value) for a in resp.attempts] == [
        (FIRST, "failure", "timeout"),
        (SECOND, "success", None),
    ]
    row = logged_rows(db_path)[0]
    assert (row["error_kind"], row["status_code"]) == ("timeout", None)
    assert row["latency_ms"] >= 450  # the row holds the wait for the 0.5 s timeout (a bound no load can break)


async def test_decommissioned_model_is_persisted_and_skipped_without_a_call(sim, make_router, db_path):
    sim.script(FIRST, "decommissioned")
    router = make_router()
    await router.execute("reasoning", USER)
    calls_before = sim.calls(FIRST)

    resp = await router.execute("reasoning", USER)
    assert sim.calls(FIRST) == calls_before
    assert resp.attempts[0].outcome.value == "skipped"
    assert resp.attempts[0].error_kind.value == "deprecated"
    status = status_rows(db_path)[FIRST]
    assert status["status"] == "deprecated" and status["until"] is None
    assert "decommissioned" in status["detail"]

    # Another process sharing the database skips it too, without ever having called it.
    other = make_router(model_status_refresh_seconds=0)
    calls_before = sim.calls(FIRST)
    resp = await other.execute("reasoning", USER)
    assert sim.calls(FIRST) == calls_before
    assert resp.model_used == SECOND
    rows = logged_rows(db_path, "SELECT outcome, error_kind FROM attempts WHERE request_id = ?", resp.request_id)
    assert rows == [{"outcome": "skipped", "error_kind": "deprecated"}, {"outcome": "success", "error_kind": None}]


async def test_not_found_is_skipped_for_the_ttl(sim, make_router, db_path):
    fake = FakeClock()
    sim.script(FIRST, "not_found")
    router = make_router(not_found_ttl_seconds=3600, clock=fake.clock)
    await router.execute("reasoning", USER)
    status = status_rows(db_path)[FIRST]
    assert status["status"] == "not_found"
    assert epoch_from_iso(status["until"]) == fake.now + 3600
    fake.advance(3599)
    resp = await router.execute("reasoning", USER)
    assert resp.attempts[0].error_kind.value == "not_found" and resp.attempts[0].outcome.value == "skipped"
    fake.advance(1)
    calls_before = sim.calls(FIRST)
    assert (await router.execute("reasoning", USER)).model_used == FIRST  # the hour is over: tried again
    assert sim.calls(FIRST) == calls_before + 1


@pytest.mark.parametrize(
    ("script", "expected_wait"),
    [
        ({"fault": "rate_limit", "retry_after": 7}, 7),  # retry-after header
        ({"fault": "rate_limit_daily"}, 9 * 60 + 38),  # no header: "Please try again in 9m38s"
    ],
)
async def test_rate_limit_cools_down_for_what_groq_says(sim, make_router, db_path, script, expected_wait):
    fake = FakeClock()
    started = fake.now
    sim.script(FIRST, script)
    router = make_router(clock=fake.clock)
    resp = await router.execute("reasoning", USER)
    assert fake.now == started  # moved on at once: the router waited for nothing
    assert resp.model_used == SECOND

    status = status_rows(db_path)[FIRST]
    assert status["status"] == "cooling_down"
    assert epoch_from_iso(status["until"]) == started + expected_wait

    calls_before = sim.calls(FIRST)
    resp = await router.execute("reasoning", USER)
    assert sim.calls(FIRST) == calls_before
    assert (resp.attempts[0].outcome.value, resp.attempts[0].error_kind.value) == ("skipped", "cooling_down")


async def test_rate_limit_cooldown_ends(sim, make_router):
    fake = FakeClock()
    sim.script(FIRST, {"fault": "rate_limit", "retry_after": 1})
    router = make_router(clock=fake.clock)
    await router.execute("reasoning", USER)
    fake.advance(0.9)
    assert (await router.execute("reasoning", USER)).attempts[0].error_kind.value == "cooling_down"
    fake.advance(0.1)
    resp = await router.execute("reasoning", USER)
    assert resp.model_used == FIRST and len(resp.attempts) == 1


async def test_capacity_gives_a_short_cooldown(sim, make_router, db_path):
    fake = FakeClock()
    sim.script(FIRST, "capacity")
    await make_router(capacity_cooldown_seconds=5, clock=fake.clock).execute("reasoning", USER)

    status = status_rows(db_path)[FIRST]
    assert status["status"] == "cooling_down"
    assert epoch_from_iso(status["until"]) == fake.now + 5


@pytest.mark.parametrize(("fault", "status"), [("auth", 401), ("forbidden", 403)])
async def test_auth_failure_raises_at_once(sim, make_router, db_path, fault, status):
    sim.script(FIRST, fault)
    with pytest.raises(AuthenticationFailedError) as caught:
        await make_router().execute("reasoning", USER)
    assert "GROQ_API_KEY" in str(caught.value)
    assert TEST_KEY not in str(caught.value)
    assert sim.calls(SECOND) == 0
    rows = logged_rows(db_path)
    assert [(r["model"], r["error_kind"], r["status_code"]) for r in rows] == [(FIRST, "auth", status)]


async def test_wrong_key_is_refused_by_the_server_and_never_leaks(sim, make_router, db_path):
    wrong = "gsk_wrong_key_9876543210zyxw"
    with pytest.raises(AuthenticationFailedError) as caught:
        await make_router(groq_api_key=wrong).execute("reasoning", USER)
    assert wrong not in str(caught.value)
    assert wrong not in repr(caught.value.attempts)
    assert all(wrong not in str(v) for r in logged_rows(db_path) for v in r.values())


async def test_invalid_request_raises_at_once(sim, make_router, db_path):
    sim.script(FIRST, "invalid_request")
    with pytest.raises(RequestRejectedError) as caught:
        await make_router().execute("reasoning", USER)
    assert "discriminator property 'role'" in str(caught.value)
    assert sim.calls(SECOND) == 0
    assert [(r["error_kind"], r["status_code"]) for r in logged_rows(db_path)] == [("bad_request", 400)]


async def test_connection_refused(make_router, db_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    from app.errors import AllModelsFailedError

    with pytest.raises(AllModelsFailedError) as caught:
        await make_router(groq_base_url=f"http://127.0.0.1:{port}").execute("reasoning", USER)
    assert {a.error_kind.value for a in caught.value.attempts} == {"connection"}
    assert {r["error_kind"] for r in logged_rows(db_path)} == {"connection"}


async def test_decommissioned_model_in_the_calendar_names_its_replacement(sim, make_router, db_path):
    ai_models.MODEL_REGISTRY["legacy"] = ["mixtral-8x7b-32768"]
    sim.script("mixtral-8x7b-32768", "decommissioned")
    resp = await make_router(skip_retired_models=False).execute("legacy", USER)
    assert resp.model_used == ai_models.MODEL_REGISTRY["fallback"][0]
    row = logged_rows(db_path)[0]
    assert (row["error_kind"], row["status_code"]) == ("deprecated", 400)
    assert "shut down on 2025-03-20" in row["error_message"]
    assert "replacement: openai/gpt-oss-120b" in row["error_message"]

"""The resilience engine through the real SDK on loopback: the deadline, retries, the circuit breaker, hedging,
invalid model output. Each test checks what the caller gets and what reached the attempt log."""

from __future__ import annotations

import asyncio

import pytest
from conftest import USER, logged_rows

from app.core import ai_models
from app.errors import (
    AllModelsFailedError,
    AuthenticationFailedError,
    DeadlineExceededError,
    ProviderConnectionError,
    ProviderTimeout,
    TaskFailedError,
)
from app.registry.catalog import ModelInfo
from app.simulator import ModelProfile
from app.testing import FakeClock
from app.types import ErrorKind

pytestmark = pytest.mark.anyio

A, B = "sim/primary", "sim/secondary"
HANG = {"fault": "hang", "seconds": 30}


@pytest.fixture(autouse=True)
def _two_model_chain() -> None:
    ai_models.MODEL_REGISTRY["pair"] = [A, B]
    ai_models.MODEL_REGISTRY["solo"] = [A]
    ai_models.MODEL_REGISTRY["fallback"] = []


def rows_of(db_path, request_id):
    return logged_rows(db_path, "SELECT * FROM attempts WHERE request_id = ? ORDER BY id", request_id)


def marks(db_path):
    return {r["model"]: r for r in logged_rows(db_path, "SELECT * FROM model_status")}


# -- the deadline -------------------------------------------------------------------------------------------


async def test_the_deadline_ends_a_call_on_hung_models(sim, make_router, db_path):
    # How close to the deadline the call ends is a speed figure: bench/resilience.py counts calls past it.
    sim.script(A, HANG, HANG)
    sim.script(B, HANG, HANG)
    router = make_router(llm_timeout_seconds=5)
    with pytest.raises(DeadlineExceededError) as caught:
        await router.execute("pair", USER, timeout=0.4)
    error = caught.value
    assert isinstance(error, TimeoutError) and isinstance(error, TaskFailedError)
    assert "deadline of 0.4s" in str(error)
    # A had two thirds of the time (B was untried), B the rest; both long before their own 5 s timeout: neither
    # model was given a fair chance.
    assert [(a.model, a.error_kind.value) for a in error.attempts] == [(A, "deadline"), (B, "deadline")]
    assert [(r["model"], r["error_kind"]) for r in rows_of(db_path, error.request_id)] == [
        (A, "deadline"),
        (B, "deadline"),
    ]
    assert A not in marks(db_path) and B not in marks(db_path)  # says nothing about the models: no breaker
    assert "timeout" not in sim.requests[0].body  # the caller's deadline is never sent to the provider


async def test_a_caller_timeout_is_validated(make_router):
    for bad in (0, -1, "soon", True, 10_000):
        with pytest.raises(ValueError, match="timeout must be"):
            await make_router().execute("pair", USER, timeout=bad)


async def test_the_setting_bounds_every_call_and_each_attempt_gets_the_time_left(sim, make_router, db_path):
    sim.script(A, HANG)
    sim.script(B, HANG)
    router = make_router(llm_timeout_seconds=0.3, llm_request_deadline_seconds=0.4)
    with pytest.raises(DeadlineExceededError, match=r"deadline of 0\.4s") as caught:
        await router.execute("pair", USER)
    kinds = [(a.model, a.error_kind.value) for a in caught.value.attempts]
    # A had two thirds of the 0.4 s (0.27 s, most of its 0.3 s: a fair test); B the 0.13 s left: cut, not its fault.
    assert kinds == [(A, "timeout"), (B, "deadline")]
    assert [(r["model"], r["error_kind"]) for r in rows_of(db_path, caught.value.request_id)] == kinds
    assert marks(db_path)[A]["status"] == "circuit_open" and B not in marks(db_path)  # only a fair verdict counts


@pytest.mark.slow
async def test_a_hung_primary_leaves_the_next_model_time_with_only_the_deadline_set(sim, make_router, db_path):
    # The default per-attempt timeout (30 s) is far above the deadline: the primary may use two thirds of it.
    sim.script(A, HANG)
    router = make_router(llm_timeout_seconds=30, llm_request_deadline_seconds=1.5)
    resp = await router.execute("pair", USER)
    # A had two thirds of the deadline, cut long before its own timeout; B answered within the rest.
    assert (resp.model_used, resp.fallback_used) == (B, True)
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["error_kind"]) for r in rows] == [(A, "deadline"), (B, None)]
    assert A not in marks(db_path)  # cut by the deadline: not the model's fault


async def test_with_default_timeouts_a_hung_primary_is_benched_and_the_next_answers(sim, make_router, db_path):
    # LLM_TIMEOUT_SECONDS equal to the deadline, as by default (scaled down): two thirds of the deadline is more
    # than half the model's timeout, so the hang is a fair verdict and benches the model.
    sim.set_profile(A, ModelProfile(fault_rates={"hang": 1.0}))
    router = make_router(llm_timeout_seconds=0.9, llm_request_deadline_seconds=0.9)
    resp = await router.execute("pair", USER)  # B answers within the third A left it
    assert resp.model_used == B
    assert [(a.model, a.error_kind) for a in resp.attempts] == [(A, ErrorKind.TIMEOUT), (B, None)]
    assert marks(db_path)[A]["status"] == "circuit_open"
    again = await router.execute("pair", USER)
    assert [(a.model, a.outcome.value) for a in again.attempts] == [(A, "skipped"), (B, "success")]


async def test_a_per_model_timeout_from_the_catalog(sim, make_router, db_path):
    ai_models.MODEL_CATALOG[A] = ModelInfo(timeout_seconds=0.2)
    sim.script(A, HANG)
    # On LLM_TIMEOUT_SECONDS (30 s) A would be cut by the 3 s deadline after 2 s ("deadline"); on the catalog's
    # 0.2 s it runs out its own timeout ("timeout"), and the breaker counts it.
    resp = await make_router(llm_timeout_seconds=30, llm_request_deadline_seconds=3).execute("pair", USER)
    assert resp.model_used == B
    assert [(r["model"], r["error_kind"]) for r in rows_of(db_path, resp.request_id)] == [(A, "timeout"), (B, None)]
    assert marks(db_path)[A]["status"] == "circuit_open"


# -- retries ------------------------------------------------------------------------------------------------


async def test_a_forced_flaky_model_is_retried_to_success(sim, make_router, db_path):
    sim.script(A, "server_error", "unavailable", "ok")
    resp = await make_router(force_model=A).execute("pair", USER)
    assert resp.model_used == A
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["outcome"], r["error_kind"], r["retry"], r["forced"]) for r in rows] == [
        (A, "failure", "server_error", 0, 1),
        (A, "failure", "server_error", 1, 1),
        (A, "success", None, 2, 1),
    ]
    assert [a.retry for a in resp.attempts] == [0, 1, 2]


async def test_transient_failures_everywhere_are_retried_within_the_chain(sim, make_router, db_path):
    sim.script(A, "server_error", "ok")
    sim.script(B, {"fault": "disconnect"})
    resp = await make_router().execute("pair", USER)
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["error_kind"], r["retry"]) for r in rows] == [
        (A, "server_error", 0),
        (B, "connection", 0),
        (A, None, 1),
    ]
    assert resp.model_used == A


async def test_max_attempts_bounds_retries(sim, make_router, db_path):
    sim.script(A, *["server_error"] * 5)
    with pytest.raises(AllModelsFailedError) as caught:
        await make_router(llm_max_attempts=3).execute("solo", USER)
    assert "3 provider calls, 2 of them retries" in str(caught.value)
    assert "LLM_MAX_ATTEMPTS=3 calls spent" in str(caught.value)
    assert len(rows_of(db_path, caught.value.request_id)) == 3


async def test_a_rate_limit_that_ends_before_the_deadline_is_waited_for(sim, make_router, db_path):
    fake = FakeClock()
    started = fake.now
    sim.script(A, {"fault": "rate_limit", "retry_after": 1})
    sim.script(B, {"fault": "rate_limit", "retry_after": 1})
    resp = await make_router(clock=fake.clock, retry_backoff_max_seconds=0.5).execute("pair", USER)
    assert 1.0 <= fake.now - started <= 1.5  # on the router's clock: retry-after: 1, plus at most the backoff
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["error_kind"], r["retry"]) for r in rows] == [
        (A, "rate_limited", 0),
        (B, "rate_limited", 0),
        (A, None, 1),
    ]


@pytest.mark.parametrize("fault", ["invalid_request", "auth"])
async def test_caller_errors_are_never_retried(sim, make_router, db_path, fault):
    sim.script(A, fault)
    with pytest.raises(TaskFailedError):
        await make_router(force_model=A).execute("solo", USER)
    assert sim.calls(A) == 1


async def test_a_deprecated_model_is_never_retried(sim, make_router, db_path):
    sim.script(A, "decommissioned")
    with pytest.raises(AllModelsFailedError) as caught:
        await make_router().execute("solo", USER)
    assert sim.calls(A) == 1
    assert "no model left worth another call" in str(caught.value)


# -- invalid model output -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["json_validate_failed", "tool_use_failed"])
async def test_invalid_model_output_falls_back(sim, make_router, db_path, fault):
    sim.script(A, fault)
    resp = await make_router().execute("pair", USER, response_format={"type": "json_object"})
    assert resp.model_used == B
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["error_kind"], r["status_code"]) for r in rows] == [
        (A, "invalid_output", 400),
        (B, None, None),
    ]
    assert rows[0]["error_message"].startswith("Failed to ")
    assert A not in marks(db_path)


# -- the circuit breaker ------------------------------------------------------------------------------------


async def test_a_hung_primary_is_benched_after_its_first_timeout(sim, make_router, db_path):
    sim.set_profile(A, ModelProfile(fault_rates={"hang": 1.0}))
    router = make_router(llm_timeout_seconds=0.3)
    for _ in range(10):
        assert (await router.execute("pair", USER)).model_used == B
    rows = logged_rows(db_path, "SELECT model, outcome, error_kind FROM attempts WHERE model = ?", A)
    assert [r["error_kind"] for r in rows] == ["timeout"] + ["circuit_open"] * 9
    assert {r["outcome"] for r in rows[1:]} == {"skipped"}
    assert sim.calls(A) == 1
    mark = marks(db_path)[A]
    assert mark["status"] == "circuit_open"
    assert "in a row saw it time out (BREAKER_OPEN_AFTER_TIMEOUTS=1)" in mark["detail"]


async def test_the_breaker_opens_on_a_failure_rate(sim, make_router, db_path):
    router = make_router(breaker_window_calls=4, breaker_min_calls=4, breaker_failure_rate=0.5)
    sim.script(A, "server_error", "ok", "ok", "server_error")  # the window starts at the first failure
    for _ in range(4):
        await router.execute("pair", USER)
    mark = marks(db_path)[A]
    assert mark["status"] == "circuit_open" and "2 of its last 4 calls failed" in mark["detail"]
    resp = await router.execute("pair", USER)
    assert (resp.attempts[0].model, resp.attempts[0].error_kind.value) == (A, "circuit_open")


async def test_open_then_half_open_then_closed(sim, make_router, db_path):
    # A zero cooldown makes the breaker half-open at once: the next request's call is the probe.
    router = make_router(
        breaker_cooldown_seconds=0, breaker_max_cooldown_seconds=0, breaker_open_after_connection_errors=1
    )
    sim.script(A, {"fault": "disconnect"}, {"fault": "disconnect"}, "ok")
    await router.execute("pair", USER)
    assert marks(db_path)[A]["status"] == "circuit_open"
    second = await router.execute("pair", USER)  # the probe fails: open again
    assert [(a.model, a.error_kind.value if a.error_kind else None) for a in second.attempts] == [
        (A, "connection"),
        (B, None),
    ]
    assert marks(db_path)[A]["status"] == "circuit_open" and "probe failed" in marks(db_path)[A]["detail"]
    third = await router.execute("pair", USER)  # the probe answers: closed
    assert third.model_used == A
    assert marks(db_path)[A]["status"] == "closed"


def test_breaker_states_and_doubling_cooldowns_with_an_injected_clock(make_router):
    health = make_router(
        breaker_cooldown_seconds=10, breaker_max_cooldown_seconds=25, breaker_open_after_connection_errors=1
    ).health
    drop = ProviderConnectionError("connection failed")
    state = health.on_failure(A, ErrorKind.CONNECTION, drop, 1000.0, "r1")
    assert (state.status, state.until) == ("circuit_open", 1010.0)
    assert health.blocked(A, 1005.0).status == "circuit_open"  # open: skipped
    assert health.blocked(A, 1011.0) is None  # half-open: this caller is the probe...
    other = health.blocked(A, 1011.0)  # ...and everyone else still skips it
    assert other.status == "circuit_open" and "probe" in other.detail
    state = health.on_failure(A, ErrorKind.CONNECTION, drop, 1011.0, "r2")  # the probe failed
    assert state.until == 1031.0  # twice as long
    assert health.blocked(A, 1032.0) is None
    assert health.on_failure(A, ErrorKind.TIMEOUT, drop, 1032.0, "r3").until == 1057.0  # capped at 25 s
    assert health.blocked(A, 1058.0) is None
    health.on_success(A)
    assert health.blocked(A, 1058.0) is None and health.mark(A) is None  # closed


def test_a_run_of_timeouts_counts_once_per_request(make_router):
    health = make_router(breaker_open_after_timeouts=2).health
    slow = ProviderTimeout("no answer")
    assert health.on_failure(A, ErrorKind.TIMEOUT, slow, 1000.0, "same") is None
    assert health.on_failure(A, ErrorKind.TIMEOUT, slow, 1000.1, "same") is None  # the same request again
    assert health.on_failure(A, ErrorKind.TIMEOUT, slow, 1000.2, "next").status == "circuit_open"


# -- dropped connections: a transient, retried; only a run of them benches the model ------------------------


async def test_a_dropped_connection_is_retried_and_does_not_bench_the_model(sim, make_router, db_path):
    sim.script(A, {"fault": "disconnect"}, "ok")
    router = make_router()
    resp = await router.execute("solo", USER)
    assert resp.model_used == A
    rows = rows_of(db_path, resp.request_id)
    assert [(r["outcome"], r["error_kind"], r["retry"]) for r in rows] == [
        ("failure", "connection", 0),
        ("success", None, 1),
    ]
    assert A not in marks(db_path) and router.health.mark(A) is None
    assert (await router.execute("solo", USER)).attempts[0].outcome.value == "success"  # not skipped


def test_only_a_run_of_lost_connections_opens_the_breaker(make_router):
    health = make_router(breaker_open_after_connection_errors=3).health
    drop = ProviderConnectionError("connection failed: ServerDisconnectedError")
    assert health.on_failure(A, ErrorKind.CONNECTION, drop, 1000.0, "r1") is None
    assert health.on_failure(A, ErrorKind.CONNECTION, drop, 1000.1, "r1") is None  # the same request: once
    assert health.on_failure(A, ErrorKind.CONNECTION, drop, 1000.2, "r2") is None
    health.on_success(A)  # an answer in between: the run starts again
    assert health.on_failure(A, ErrorKind.CONNECTION, drop, 1000.3, "r3") is None
    assert health.on_failure(A, ErrorKind.CONNECTION, drop, 1000.4, "r4") is None
    state = health.on_failure(A, ErrorKind.CONNECTION, drop, 1000.5, "r5")
    assert state.status == "circuit_open"
    assert "3 requests in a row saw it lose its connection (BREAKER_OPEN_AFTER_CONNECTION_ERRORS=3)" in state.detail


@pytest.mark.parametrize("chain", ["solo", "pair"])
async def test_every_request_is_answered_with_30_percent_of_connections_dropped(sim, make_router, db_path, chain):
    for model in ai_models.MODEL_REGISTRY[chain]:
        sim.set_profile(model, ModelProfile(fault_rates={"disconnect": 0.3}))
    # A request is lost only when every one of its calls is dropped, with odds of 0.3 ** LLM_MAX_ATTEMPTS: at the
    # default 6, one of these 120 requests is lost in about one run of twelve; at 10, in about one run of 1,400.
    router = make_router(retry_backoff_base_seconds=0.001, llm_max_attempts=10)
    gate = asyncio.Semaphore(10)

    async def one() -> str:
        async with gate:
            return (await router.execute(chain, USER)).model_used

    answered = await asyncio.gather(*(one() for _ in range(120)))
    assert len(answered) == 120
    rows = logged_rows(db_path)
    kinds = [r["error_kind"] for r in rows]
    assert kinds.count(None) == 120 and kinds.count("connection") > 20  # the drops happened, and were retried
    assert "circuit_open" not in kinds and marks(db_path) == {}


async def test_another_process_skips_a_model_whose_breaker_opened(sim, make_router, db_path):
    sim.script(A, {"fault": "disconnect"})
    await make_router(breaker_open_after_connection_errors=1).execute("pair", USER)
    assert marks(db_path)[A]["status"] == "circuit_open"  # written (flushed) for every process to read
    other = make_router(model_status_refresh_seconds=0)
    resp = await other.execute("pair", USER)
    assert (resp.attempts[0].model, resp.attempts[0].error_kind.value) == (A, "circuit_open")
    assert sim.calls(A) == 1


async def test_with_every_breaker_open_the_request_still_tries_a_model_once(sim, make_router, db_path):
    router = make_router(breaker_open_after_connection_errors=1)
    sim.script(A, {"fault": "disconnect"})
    sim.script(B, {"fault": "disconnect"})
    with pytest.raises(AllModelsFailedError):
        await router.execute("pair", USER)
    resp = await router.execute("pair", USER)  # both open: a last-resort call beats refusing the request
    assert resp.model_used == A
    assert [(a.model, a.outcome.value) for a in resp.attempts] == [(A, "skipped"), (B, "skipped"), (A, "success")]


# -- hedged requests ----------------------------------------------------------------------------------------


async def test_a_hedge_wins_and_the_slow_call_is_logged_hedge_lost(sim, make_router, db_path):
    sim.script(A, {"fault": "ok", "latency_ms": 1500})
    resp = await make_router().execute("pair", USER, hedge_after_ms=100)
    assert resp.model_used == B
    rows = rows_of(db_path, resp.request_id)
    # The loser is logged as the race ends, before the winner's answer is accepted: the success row comes last.
    assert [(r["model"], r["outcome"], r["error_kind"], r["hedged"]) for r in rows] == [
        (A, "failure", "hedge_lost", 0),
        (B, "success", None, 1),
    ]
    assert A not in marks(db_path)  # a lost race is not a failure of the model


async def test_a_fast_answer_starts_no_hedge(sim, make_router, db_path):
    resp = await make_router(hedge_after_ms=500).execute("pair", USER)
    assert resp.model_used == A
    assert sim.calls(B) == 0
    assert [r["hedged"] for r in rows_of(db_path, resp.request_id)] == [0]


async def test_a_single_model_chain_hedges_with_the_same_model(sim, make_router, db_path):
    sim.script(A, {"fault": "ok", "latency_ms": 1500}, "ok")
    resp = await make_router(hedge_after_ms=100).execute("solo", USER)
    rows = rows_of(db_path, resp.request_id)
    assert [(r["outcome"], r["error_kind"], r["retry"], r["hedged"]) for r in rows] == [
        ("failure", "hedge_lost", 0, 0),
        ("success", None, 1, 1),
    ]


async def test_a_failed_hedge_leaves_the_first_call_running(sim, make_router, db_path):
    sim.script(A, {"fault": "ok", "latency_ms": 400})
    sim.script(B, "server_error")
    resp = await make_router().execute("pair", USER, hedge_after_ms=50)
    assert resp.model_used == A
    rows = rows_of(db_path, resp.request_id)
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        (B, "failure", "server_error"),
        (A, "success", None),
    ]


async def test_status_clear_lifts_an_open_breaker(sim, make_router, db_path, capsys):
    from app import cli

    router = make_router(model_status_refresh_seconds=0, breaker_open_after_connection_errors=1)
    sim.script(A, {"fault": "disconnect"})
    await router.execute("pair", USER)
    assert marks(db_path)[A]["status"] == "circuit_open"
    assert cli.main(["status", "--db", str(db_path), "--clear", A, "--reason", "provider back"]) == 0
    assert f"cleared {A} (was circuit_open)" in capsys.readouterr().out
    resp = await router.execute("pair", USER)  # the router dropped its mark at its next refresh
    assert resp.model_used == A and len(resp.attempts) == 1


async def test_a_hedge_holds_its_own_budget_reservation(sim, make_router, db_path):
    from app.core.gates import estimated_cost, needs_of

    slow, fast = "openai/gpt-oss-120b", "openai/gpt-oss-20b"  # priced: their calls are counted
    ai_models.MODEL_REGISTRY["priced"] = [slow, fast]
    sim.script(slow, {"fault": "ok", "latency_ms": 400})
    router = make_router(daily_budget_usd=100.0)
    resp = await router.execute("priced", USER, hedge_after_ms=50)
    assert resp.model_used == fast
    spent, reserved = router.budget.status()
    assert reserved == 0.0  # both reservations settled
    # The cancelled call is held at its estimate (the provider may still bill it), the answer at its real cost.
    held = estimated_cost(ai_models.MODEL_CATALOG[slow], needs_of(USER, {}))
    assert held > 0 and spent == pytest.approx(resp.cost_usd + held, rel=1e-9)
    lost = rows_of(db_path, resp.request_id)[0]
    assert (lost["model"], lost["error_kind"], lost["cost_usd"]) == (slow, "hedge_lost", None)


async def test_a_hedge_refused_the_key_ends_the_request_and_says_why_the_first_call_stopped(sim, make_router, db_path):
    sim.script(A, {"fault": "ok", "latency_ms": 1500})
    sim.script(B, "auth")
    with pytest.raises(AuthenticationFailedError) as caught:
        await make_router().execute("pair", USER, hedge_after_ms=50)
    # The slow call was not waited for: it was cancelled, and its row says why.
    rows = rows_of(db_path, caught.value.request_id)
    assert [(r["model"], r["error_kind"], r["error_message"]) for r in rows] == [
        (B, "auth", "Invalid API Key"),
        (A, "cancelled", "cancelled: the other call's error ended the request"),
    ]

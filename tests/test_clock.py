"""Time is injected: cooldowns, not-found marks, the circuit breaker's half-open probe, the budget's UTC day and the
daily retirement check all read the clock they are given, so a test moves a FakeClock and never sleeps."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_KEY

from app.clock import iso_from_epoch, iso_millis
from app.config import Settings, load_settings
from app.core.alerts import watch_retirements
from app.core.breaker import Breaker
from app.core.budget import RESYNC_SECONDS, BudgetReached, DailyBudget, budget_from
from app.core.model_health import ModelHealth
from app.deprecations.calendar import load_calendar
from app.store import AttemptRow, get_attempt_log
from app.testing import FakeClock, failure
from app.types import ErrorKind

A, B = "sim/primary", "sim/secondary"
MIDNIGHT = datetime(2031, 3, 10, tzinfo=UTC).timestamp()  # far from any real date: only the fake clock gives it


def settings_for(db: Path, **overrides: Any) -> Settings:
    return load_settings(env_file=None, **{"groq_api_key": TEST_KEY, "attempts_db_path": db, **overrides})


def status_row(db: Path, model: str) -> dict[str, Any]:
    assert get_attempt_log(db).flush(timeout=30)
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM model_status WHERE model = ?", (model,)).fetchone())


# -- the fake clock itself ---------------------------------------------------------------------------------------


def test_a_fake_clock_starts_at_a_fixed_time_and_moves_only_when_told():
    fake = FakeClock()
    assert fake.now == datetime(2026, 12, 5, tzinfo=UTC).timestamp()
    assert (fake.clock.wall(), fake.clock.monotonic(), fake.clock.today()) == (fake.now, fake.now, date(2026, 12, 5))
    fake.advance(0)
    fake.advance(86_399.5)
    assert fake.clock.wall() == fake.clock.monotonic() == datetime(2026, 12, 5, 23, 59, 59, 500_000, UTC).timestamp()
    assert fake.clock.today() == date(2026, 12, 5)
    fake.advance(0.5)
    assert fake.clock.today() == date(2026, 12, 6)
    assert FakeClock(start=MIDNIGHT).clock.today() == date(2031, 3, 10)


@pytest.mark.parametrize("seconds", [-1.0, -0.001, float("nan"), float("inf")])
def test_a_fake_clock_never_goes_back(seconds):
    fake = FakeClock()
    with pytest.raises(ValueError, match=r"FakeClock.advance\(.*\): time only moves forward; give a finite number"):
        fake.advance(seconds)
    assert fake.now == FakeClock().now


@pytest.mark.anyio
async def test_its_sleep_moves_the_time_on_and_lets_other_tasks_run():
    fake = FakeClock()
    ran: list[float] = []

    async def other() -> None:
        ran.append(fake.now)

    task = asyncio.ensure_future(other())
    started = asyncio.get_running_loop().time()
    await fake.clock.sleep(3600)
    assert asyncio.get_running_loop().time() - started < 1  # an hour of fake time, at once
    assert fake.now == FakeClock().now + 3600
    assert task.done() and ran == [fake.now]  # the loop ran the other task during the wait
    await fake.clock.sleep(-5)  # as asyncio.sleep: returns at once, time does not go back
    assert fake.now == FakeClock().now + 3600


# -- marks: rate limits, not found ---------------------------------------------------------------------------------


def test_a_rate_limit_cooldown_ends_exactly_when_the_clock_reaches_it(tmp_path):
    db = tmp_path / "attempts.db"
    fake = FakeClock(start=MIDNIGHT)
    health = ModelHealth(settings_for(db), get_attempt_log(db), clock=fake.clock)
    error = failure("rate_limited", retry_after=30).error
    state = health.on_failure(A, ErrorKind.RATE_LIMITED, error, fake.now, "r1")
    assert (state.status, state.until, state.since) == ("cooling_down", MIDNIGHT + 30, MIDNIGHT)
    row = status_row(db, A)
    assert (row["status"], row["until"], row["last_seen"]) == (
        "cooling_down",
        iso_from_epoch(MIDNIGHT + 30),
        iso_millis(MIDNIGHT),
    )  # dated by the clock

    fake.advance(29.999)
    health.refresh_if_due(fake.now)  # the store's copy of the mark, read at the fake time, keeps it too
    assert health.blocked(A, fake.now) == state
    fake.advance(0.001)
    assert fake.now == MIDNIGHT + 30
    assert health.blocked(A, fake.now) is None
    assert health.mark(A) is None  # expired and dropped
    health.refresh_if_due(fake.now + 1)  # read back from the store after it expired: not applied again
    assert health.blocked(A, fake.now + 1) is None


def test_a_not_found_mark_lasts_its_ttl_on_the_clock(tmp_path):
    db = tmp_path / "attempts.db"
    fake = FakeClock(start=MIDNIGHT)
    health = ModelHealth(settings_for(db, not_found_ttl_seconds=600), get_attempt_log(db), clock=fake.clock)
    state = health.on_failure(A, ErrorKind.NOT_FOUND, failure("not_found").error, fake.now, "r1")
    assert (state.status, state.until) == ("not_found", MIDNIGHT + 600)
    assert status_row(db, A)["until"] == iso_from_epoch(MIDNIGHT + 600)
    fake.advance(599)
    assert health.blocked(A, fake.now).status == "not_found"
    fake.advance(1)
    assert health.blocked(A, fake.now) is None


# -- the circuit breaker -----------------------------------------------------------------------------------------


def test_an_open_circuit_turns_half_open_after_its_cooldown_and_lets_one_probe_through(tmp_path):
    db = tmp_path / "attempts.db"
    fake = FakeClock(start=MIDNIGHT)
    settings = settings_for(
        db,
        breaker_cooldown_seconds=10,
        breaker_max_cooldown_seconds=600,
        breaker_open_after_connection_errors=1,
        llm_timeout_seconds=2,
        llm_request_deadline_seconds=30,
    )
    health = ModelHealth(settings, get_attempt_log(db), clock=fake.clock)
    drop = failure("connection").error

    state = health.on_failure(A, ErrorKind.CONNECTION, drop, fake.now, "r1")
    assert (state.status, state.until) == ("circuit_open", MIDNIGHT + 10)
    fake.advance(9.5)
    assert health.blocked(A, fake.now) == state  # open: every caller skips it
    fake.advance(0.5)
    assert health.blocked(A, fake.now) is None  # half-open: this caller is the probe...
    waiting = health.blocked(A, fake.now)  # ...and the others still skip it while the probe is out
    assert (waiting.status, waiting.detail) == ("circuit_open", "half-open: one probe call is in flight")
    fake.advance(29.9)  # a probe that never reported holds the model for the longest a call may take
    assert health.blocked(A, fake.now).detail == "half-open: one probe call is in flight"
    fake.advance(0.1)
    assert health.blocked(A, fake.now) is None  # the lost probe is given up: a new one goes

    state = health.on_failure(A, ErrorKind.CONNECTION, drop, fake.now, "r2")  # that probe failed
    assert (state.until - fake.now, "the half-open probe failed" in state.detail) == (20, True)  # twice as long
    fake.advance(19)
    assert health.blocked(A, fake.now).status == "circuit_open"
    fake.advance(1)
    assert health.blocked(A, fake.now) is None  # the probe
    health.on_success(A)  # it answered: closed
    assert health.mark(A) is None and health.blocked(A, fake.now) is None
    row = status_row(db, A)
    assert (row["status"], row["last_seen"]) == ("closed", iso_millis(fake.now))


def test_the_breaker_reads_its_clock_when_no_time_is_given(tmp_path):
    fake = FakeClock(start=MIDNIGHT)
    breaker = Breaker(
        settings_for(tmp_path / "a.db", llm_timeout_seconds=5, llm_request_deadline_seconds=5), clock=fake.clock
    )
    assert breaker.claim_probe(A) is True
    fake.advance(4.9)
    assert breaker.claim_probe(A) is False  # the first probe is still in flight
    assert breaker.claim_probe(B) is True  # per model
    fake.advance(0.1)
    assert breaker.claim_probe(A) is True  # five seconds on: the first probe is given up


# -- the budget's day --------------------------------------------------------------------------------------------


def test_the_budgets_spend_starts_again_at_zero_when_the_utc_day_turns(tmp_path):
    db = tmp_path / "spend.db"
    log = get_attempt_log(db)
    fake = FakeClock(start=MIDNIGHT - 60)  # 23:59 on 2031-03-09

    def spend(cost: float) -> None:  # a call of any process, logged at the fake time
        log.record(
            AttemptRow(
                "r",
                "fast",
                "m",
                "groq",
                1,
                "success",
                None,
                None,
                None,
                False,
                False,
                1,
                1,
                2,
                1.0,
                cost,
                iso_millis(fake.now),
            )
        )

    spend(3.0)
    assert log.flush(timeout=30)
    budget = budget_from(settings_for(db, daily_budget_usd=10.0), db, log, None, clock=fake.clock)
    assert isinstance(budget, DailyBudget)
    assert budget.status() == (3.0, 0.0)
    evening = budget.reserve(1.0)
    assert (evening.day, budget.status()) == ("2031-03-09", (3.0, 1.0))
    budget.settle(evening, 1.0)
    assert budget.status() == (4.0, 0.0)

    spend(2.0)  # another process, logged since: read at the next re-sync, which the clock times
    assert log.flush(timeout=30)
    fake.advance(RESYNC_SECONDS - 1)
    budget.settle(budget.reserve(0.0), 0.0)
    assert budget.status() == (4.0, 0.0)  # not due yet
    fake.advance(1)
    budget.settle(budget.reserve(0.0), 0.0)
    assert budget.status() == (5.0, 0.0)

    late = budget.reserve(1.0)  # in flight across midnight
    fake.advance(60 - RESYNC_SECONDS)
    assert fake.now == MIDNIGHT
    morning = budget.reserve(0.5)
    assert (morning.day, budget.status()) == ("2031-03-10", (0.0, 0.5))  # a new day: yesterday's spend is gone
    budget.settle(late, 1.0)  # yesterday's reservation: neither today's spend nor today's reservations
    assert budget.status() == (0.0, 0.5)
    spend(0.25)
    assert log.flush(timeout=30)
    fake.advance(RESYNC_SECONDS)
    budget.settle(morning, 0.5)
    budget.settle(budget.reserve(0.0), 0.0)
    assert budget.status() == (0.5, 0.0)  # today's own spend, never less than the log's (0.25)


def test_a_budget_reached_today_opens_again_tomorrow(tmp_path):
    db = tmp_path / "spend.db"
    fake = FakeClock(start=MIDNIGHT - 1)
    budget = DailyBudget(1.0, 0.8, db, clock=fake.clock)
    budget.settle(budget.reserve(1.0), 1.0)
    with pytest.raises(BudgetReached, match=r"daily budget reached: \$1\.000000 spent or reserved of \$1\.000000"):
        budget.reserve(0.1)
    fake.advance(1)
    assert budget.reserve(0.1).day == "2031-03-10"


# -- the daily retirement check --------------------------------------------------------------------------------


class Posted:
    """Stands in for Alerts where only what would be posted matters: no webhook, no thread."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def notify(self, key: str, text: str) -> bool:
        self.keys.append(key)
        return True

    def resolve(self, key: str) -> None:
        return None


def test_the_retirement_check_runs_on_the_clocks_days(tmp_path):
    fake = FakeClock(start=MIDNIGHT + 3600)
    shutdown = date(2031, 3, 10) + timedelta(days=20)
    calendar = tmp_path / "deprecations.toml"
    calendar.write_text(f'[models."{A}"]\nshutdown = {shutdown}\nreplacements = ["{B}"]\n')
    settings = settings_for(
        tmp_path / "a.db", retirement_warning_days=30, model_status_refresh_seconds=60, deprecations_file=calendar
    )
    posted = Posted()
    health = ModelHealth(settings, None, posted, clock=fake.clock)  # type: ignore[arg-type]
    watch_retirements(
        posted,
        health,
        lambda: {"pair": [A, B]},
        settings,  # type: ignore[arg-type]
        load_calendar(calendar),
    )
    assert posted.keys == [f"retiring:{A}:{shutdown}"]  # twenty days left on the clock's day: in the window
    fake.advance(3600)
    health.refresh_if_due(fake.now)
    assert len(posted.keys) == 1  # the same day: not checked again
    fake.advance(19 * 86400)
    health.refresh_if_due(fake.now)
    assert posted.keys[1:] == [f"retiring:{A}:{shutdown}"]  # the first refresh of a later day checks again
    fake.advance(86400)
    health.refresh_if_due(fake.now)
    assert posted.keys[2:] == [f"retired:{A}:{shutdown}"]  # the shutdown day, on the clock

"""The router on an injected clock (`Router(clock=)`, `fake_models(clock=)`): a retry's backoff, a cooldown's end,
the request's deadline and the budget's day follow the test's FakeClock, and nothing sleeps."""

from __future__ import annotations

import pytest

from app.core.ai_models import MODEL_REGISTRY, execute_fast_task, execute_reasoning_task
from app.errors import AllModelsFailedError, BudgetExceededError
from app.testing import FakeClock, failure, fake_models, reply

pytestmark = pytest.mark.anyio

USER = [{"role": "user", "content": "hello"}]
DAY = 86_400.0


async def test_a_retry_waits_its_backoff_on_the_router_s_clock():
    fake = FakeClock()
    model = MODEL_REGISTRY["fast"][0]
    script = {model: [failure("server_error"), failure("server_error"), "third time"]}
    with fake_models(
        script, clock=fake, force_model=model, retry_backoff_base_seconds=4, retry_backoff_max_seconds=8
    ) as models:
        response = await execute_fast_task(USER)
        rows = models.attempts()
    assert response.content == "third time" and response.model_used == model
    assert [(r["retry"], r["outcome"], r["error_kind"]) for r in rows] == [
        (0, "failure", "server_error"),
        (1, "failure", "server_error"),
        (2, "success", None),
    ]
    # Full jitter: the first wait is in [0, 4] s, the second in [0, 8] s, all of it on the fake clock.
    assert 0 < fake.now - FakeClock().now <= 12


async def test_a_rate_limited_model_is_skipped_until_its_cooldown_ends_on_the_clock():
    fake = FakeClock()
    primary = MODEL_REGISTRY["reasoning"][0]
    script = {primary: [failure("rate_limited", retry_after=5), "primary again"], "*": "another model"}
    with fake_models(script, clock=fake) as models:
        first = await execute_reasoning_task(USER)
        fake.advance(4.9)
        cooling = await execute_reasoning_task(USER)
        fake.advance(0.1)
        back = await execute_reasoning_task(USER)
    assert first.content == "another model" and first.attempts[0].error_kind.value == "rate_limited"
    assert cooling.content == "another model"
    assert (cooling.attempts[0].model, cooling.attempts[0].outcome.value, cooling.attempts[0].error_kind.value) == (
        primary,
        "skipped",
        "cooling_down",
    )
    assert back.content == "primary again" and back.model_used == primary
    assert [c.model for c in models.calls].count(primary) == 2  # the skip made no call


async def test_the_deadline_counts_on_the_router_s_clock():
    fake = FakeClock()
    model = MODEL_REGISTRY["fast"][0]
    # Each failure is followed by a backoff of up to 8 s on the fake clock: retries stop once the next one would
    # start after the 10 s deadline, counted on that clock (in real time the whole test takes a moment).
    script = {model: failure("server_error")}
    late = r"would start after the request's deadline \(10s\)"
    with (
        fake_models(
            script,
            clock=fake,
            force_model=model,
            retry_backoff_base_seconds=8,
            retry_backoff_max_seconds=8,
            llm_max_attempts=50,
        ) as models,
        pytest.raises(AllModelsFailedError, match=late) as caught,
    ):
        await execute_fast_task(USER, timeout=10)
    assert 0 < fake.now - FakeClock().now <= 10
    assert len(models.calls) == len(caught.value.attempts) >= 2


async def test_a_spent_budget_opens_again_at_the_clock_s_next_utc_day():
    fake = FakeClock()  # 2026-12-05T00:00:00Z
    spend = reply("costly", usage={"prompt_tokens": 10, "completion_tokens": 1_000_000, "total_tokens": 1_000_010})
    with fake_models({"*": spend}, clock=fake, daily_budget_usd=0.05) as models:
        first = await execute_fast_task(USER, max_tokens=10)
        fake.advance(DAY - 1)  # 23:59:59 the same day
        with pytest.raises(BudgetExceededError, match="no provider was called"):
            await execute_fast_task(USER, max_tokens=10)
        fake.advance(1)  # midnight: a new day, a new budget
        again = await execute_fast_task(USER, max_tokens=10)
    assert first.cost_usd is not None and first.cost_usd >= 0.05
    assert again.content == "costly"
    assert len(models.calls) == 2

"""Exact cost rows, per-request cost ceilings, and the daily budget (reservation under load, across restarts)."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from conftest import USER, logged_rows

from app.core import ai_models
from app.core.gates import estimated_cost, needs_of
from app.errors import BudgetExceededError
from app.registry.catalog import ModelInfo

pytestmark = pytest.mark.anyio

BIG, QWEN = ai_models.MODEL_REGISTRY["reasoning"]
SMALL = ai_models.MODEL_REGISTRY["fast"][0]


async def test_cost_is_exact_with_cached_and_reasoning_tokens(sim, make_router, db_path, tmp_path):
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(f'[models."{BIG}"]\ncached_input_price = 0.075\n')
    sim.script(
        BIG,
        {"fault": "ok", "prompt_tokens": 1234, "completion_tokens": 567, "cached_tokens": 200, "reasoning_tokens": 100},
    )
    resp = await make_router(model_catalog_file=catalog).execute("reasoning", USER)
    # By hand: 1034 fresh input at $0.15/M, 200 cached at $0.075/M, 567 output (reasoning included) at $0.60/M.
    expected = (1034 * 0.15 + 200 * 0.075 + 567 * 0.60) / 1_000_000
    assert resp.cost_usd == pytest.approx(expected, abs=1e-9)
    assert (resp.usage.cached_tokens, resp.usage.reasoning_tokens) == (200, 100)
    row = logged_rows(db_path)[0]
    assert row["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert (row["prompt_tokens"], row["completion_tokens"], row["cached_tokens"], row["reasoning_tokens"]) == (
        1234,
        567,
        200,
        100,
    )


async def test_unpriced_model_has_unknown_cost_never_zero(sim, make_router, db_path):
    ai_models.MODEL_REGISTRY["custom"] = ["custom/unpriced"]
    sim.script("custom/unpriced", "server_error")
    resp = await make_router().execute("custom", USER)
    assert resp.model_used != "custom/unpriced" and resp.cost_usd is not None
    first, second = logged_rows(db_path)
    assert first["cost_usd"] is None  # failed and unpriced: unknown
    assert second["cost_usd"] > 0
    sim.script("custom/unpriced", "ok")
    resp = await make_router().execute("custom", USER)
    assert resp.model_used == "custom/unpriced" and resp.cost_usd is None
    assert logged_rows(db_path)[-1]["cost_usd"] is None


async def test_max_cost_usd_skips_models_estimated_above_it(sim, make_router, db_path):
    router = make_router()
    needs = needs_of(USER, {"max_tokens": 1000})
    big = estimated_cost(ai_models.MODEL_CATALOG[BIG], needs)
    small = estimated_cost(ai_models.MODEL_CATALOG[SMALL], needs)
    assert small < big
    resp = await router.execute("reasoning", USER, max_tokens=1000, max_cost_usd=(small + big) / 2)
    assert resp.model_used == SMALL
    rows = logged_rows(db_path)
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        (BIG, "skipped", "budget"),
        (QWEN, "skipped", "budget"),
        (SMALL, "success", None),
    ]
    assert "exceeds max_cost_usd" in rows[0]["error_message"]
    assert sim.calls(BIG) == 0


async def test_daily_budget_holds_under_200_concurrent_calls_and_across_a_restart(sim, make_router, db_path, caplog):
    caplog.set_level(logging.WARNING, logger="taskrouter")
    ai_models.MODEL_REGISTRY["metered"] = [SMALL]
    price = ai_models.MODEL_CATALOG[SMALL]
    actual = (1000 * price.input_price + 1000 * price.output_price) / 1_000_000  # what each call really costs
    sim.script(SMALL, *[{"fault": "ok", "prompt_tokens": 1000, "completion_tokens": 1000}] * 200)
    estimate = estimated_cost(price, needs_of(USER, {"max_tokens": 1000}))
    budget = 10 * actual
    router = make_router(daily_budget_usd=budget, llm_timeout_seconds=60)

    results = await asyncio.gather(
        *(router.execute("metered", USER, max_tokens=1000) for _ in range(200)), return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    refused = [r for r in results if isinstance(r, BudgetExceededError)]
    assert len(ok) + len(refused) == 200
    # Every call reserves its estimate before its first await: exactly enough are let through to cover the budget.
    granted = next(k for k in range(1, 201) if k * estimate >= budget)
    assert len(ok) == granted
    spent = sum(r.cost_usd for r in ok)
    assert spent == pytest.approx(granted * actual, abs=1e-12)
    assert sim.calls(SMALL) == granted  # refused calls never reached the provider
    assert "Budget alert" in caplog.text
    logged = logged_rows(db_path, "SELECT SUM(cost_usd) AS s, COUNT(*) AS n FROM attempts WHERE outcome='success'")
    assert logged[0]["n"] == granted and logged[0]["s"] == pytest.approx(spent, abs=1e-12)
    refusals = logged_rows(db_path, "SELECT COUNT(*) AS n FROM attempts WHERE error_kind='budget'")[0]["n"]
    assert refusals == 200 - granted

    # A new process (a new router on the same database) still knows today's spend.
    restarted = make_router(daily_budget_usd=budget)
    with pytest.raises(BudgetExceededError, match="DAILY_BUDGET_USD"):
        await restarted.execute("metered", USER)
    assert sim.calls(SMALL) == granted
    # A bigger budget lets calls through again.
    assert (await make_router(daily_budget_usd=budget * 10).execute("metered", USER)).model_used == SMALL


def test_catalog_file_errors_name_the_file_and_entry(make_router, tmp_path):
    from app.errors import ConfigError

    bad = tmp_path / "bad.toml"
    bad.write_text('[models."x/y"]\ninput_price = "cheap"\n')
    with pytest.raises(ConfigError, match=r"bad.toml.*x/y.*input_price"):
        make_router(model_catalog_file=bad)
    bad.write_text('[models."x/y"]\nprovider = "openai_compatible"\n')
    with pytest.raises(ConfigError, match="needs a base_url"):
        make_router(model_catalog_file=bad)
    bad.write_text('[models."x/y"]\nprovider = "openai_compatible"\nbase_url = "https://u:s3cret-pw@llm.local/v1"\n')
    with pytest.raises(ConfigError, match=r"x/y.*base_url must not hold a user or password") as caught:
        make_router(model_catalog_file=bad)
    assert "s3cret-pw" not in str(caught.value)


def test_catalog_file_merges_over_the_shipped_entry(make_router, tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"models": {BIG: {"input_price": 1.5}}}))
    info = make_router(model_catalog_file=path).model_info(BIG)
    assert isinstance(info, ModelInfo)
    assert (info.input_price, info.output_price) == (1.5, ai_models.MODEL_CATALOG[BIG].output_price)


def test_the_budget_resync_adds_only_rows_appended_since_and_only_todays(tmp_path, monkeypatch):
    """Every process's logged spend, re-read incrementally by rowid (not the whole day through an index)."""
    from datetime import UTC, datetime, timedelta

    from app.core import budget as budget_module
    from app.store import AttemptRow, get_attempt_log, utc_now_iso

    monkeypatch.setattr(budget_module, "RESYNC_SECONDS", 0.0)
    db = tmp_path / "spend.db"
    log = get_attempt_log(db)
    yesterday = (datetime.now(UTC) - timedelta(days=1)).isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def spend(cost: float, created_at: str) -> None:
        log.record(
            AttemptRow(
                "r", "fast", "m", "groq", 1, "success", None, None, None, False, False, 1, 1, 2, 1.0, cost, created_at
            )
        )

    spend(5.0, yesterday)
    spend(1.0, utc_now_iso())
    spend(1.0, utc_now_iso())
    assert log.flush(timeout=10)
    budget = budget_module.DailyBudget(100.0, 0.8, db)
    assert budget.status() == (pytest.approx(2.0), 0.0)

    spend(0.5, utc_now_iso())  # another process's call, logged since
    spend(7.0, yesterday)  # committed late, but yesterday's: not today's spend
    assert log.flush(timeout=10)
    budget.settle(budget.reserve(0.0), 0.0)  # reserve() re-syncs when due
    assert budget.status()[0] == pytest.approx(2.5)
    budget.settle(budget.reserve(0.0), 0.0)  # nothing new: nothing counted twice
    assert budget.status()[0] == pytest.approx(2.5)


def test_spent_on_after_an_id_sums_only_the_rows_above_it(tmp_path):
    from app.store import AttemptRow, get_attempt_log, utc_now_iso
    from app.store.spend import spent_on

    db = tmp_path / "ids.db"
    log = get_attempt_log(db)
    for cost in (1.0, 2.0, 4.0):
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
                utc_now_iso(),
            )
        )
    assert log.flush(timeout=10)
    today = utc_now_iso()[:10]
    assert spent_on(db, today) == (pytest.approx(7.0), 3)
    assert spent_on(db, today, after_id=1) == (pytest.approx(6.0), 3)
    assert spent_on(db, today, after_id=3) == (0.0, 3)
    assert spent_on(tmp_path / "missing.db", today, after_id=5) == (0.0, 5)


def test_a_budget_names_the_registry_models_it_cannot_count(make_router, caplog):
    caplog.set_level(logging.WARNING, logger="taskrouter")
    ai_models.MODEL_REGISTRY["custom"] = ["local/unpriced-model", SMALL]
    make_router(daily_budget_usd=5.0)
    warning = next(r.getMessage() for r in caplog.records if "DAILY_BUDGET_USD does not count" in r.getMessage())
    assert "local/unpriced-model" in warning and SMALL not in warning
    caplog.clear()
    make_router()  # no budget: nothing to warn about
    assert "DAILY_BUDGET_USD" not in caplog.text

"""Today's spend against DAILY_BUDGET_USD: always on Overview while a budget is set, with the projected spend at
midnight UTC (even when other settings do not load); above the other pages from the alert ratio on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from stores import dashboard_db, insert_attempts
from test_dashboard import _row, read, run_page, texts

from app.config import load_settings
from app.store.target import Target
from dashboard import queries
from dashboard.budget import budget_settings, load_budget


@pytest.fixture
def spent_today(dashboard_store: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    now = datetime.now(UTC)
    insert_attempts(
        dashboard_store,
        [
            _row("b1", "fast", "openai/gpt-oss-20b", 1, "success", now, latency=10, tokens=10, cost=0.6),
            _row("b2", "fast", "openai/gpt-oss-20b", 1, "success", now, latency=10, tokens=10, cost=0.25),
        ],
    )
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", dashboard_db(dashboard_store))
    return dashboard_store


@pytest.mark.parametrize(
    ("budget", "kind", "fragment"),
    [
        ("1.0", "warning", "$0.8500 of $1.0000 spent today (UTC), 85%"),
        ("0.5", "error", "BudgetExceededError"),
        ("10", None, None),
    ],
)
def test_budget_banner_above_the_other_pages(
    spent_today: Target, monkeypatch: pytest.MonkeyPatch, budget, kind, fragment
) -> None:
    monkeypatch.setenv("DAILY_BUDGET_USD", budget)
    at = run_page("Models")
    shown = " ".join(e.value for e in (at.warning if kind == "warning" else at.error)) if kind else texts(at)
    if fragment:
        assert fragment in shown
    else:
        assert "Daily budget" not in shown


def test_overview_always_shows_todays_spend_and_the_projection(
    spent_today: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAILY_BUDGET_USD", "1000")
    line = [read(i.value) for i in run_page("Overview").info if "Daily budget" in i.value]
    assert len(line) == 1
    assert "$0.8500 of $1,000.0000 spent today (UTC), 0%" in line[0]
    assert "Projected by midnight UTC: $" in line[0] and "per hour" in line[0]
    monkeypatch.delenv("DAILY_BUDGET_USD")
    assert "Daily budget" not in texts(run_page("Overview"))


def test_the_budget_shows_when_other_settings_do_not_load(spent_today: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAILY_BUDGET_USD", "0.5")
    monkeypatch.setenv("GROQ_BASE_URL", "ftp://not-http.example")
    at = run_page("Overview")
    errors = [read(e.value) for e in at.error]
    assert any("The settings do not load" in e and "GROQ_BASE_URL" in e for e in errors)  # in red
    assert any("$0.8500 of $0.5000 spent today" in e and "BudgetExceededError" in e for e in errors)
    assert any("BudgetExceededError" in e.value for e in run_page("Models").error)
    monkeypatch.setenv("DAILY_BUDGET_USD", "-1")  # the budget itself is malformed: the settings error says so
    assert budget_settings(None) == (None, 0.8)


def test_the_projection_spends_the_rest_of_the_day_at_the_last_hours_rate(
    dashboard_store: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)
    store = dashboard_store
    insert_attempts(
        store,
        [
            _row("p1", "fast", "m", 1, "success", now - timedelta(minutes=30), latency=1, tokens=1, cost=0.6),
            _row("p2", "fast", "m", 1, "success", now - timedelta(hours=8), latency=1, tokens=1, cost=0.4),
            _row("p3", "fast", "m", 1, "success", now - timedelta(days=1), latency=1, tokens=1, cost=5.0),
            _row(
                "p4", "fast", "m", 1, "success", datetime(2026, 11, 23, 0, 5, tzinfo=UTC), latency=1, tokens=1, cost=0.1
            ),
        ],
    )
    conn = queries.connect(store)
    assert conn is not None
    monkeypatch.setenv("DAILY_BUDGET_USD", "4")
    budget = load_budget(conn, store, load_settings(), now)
    assert budget is not None
    assert budget.spent == pytest.approx(1.0)  # today only
    assert budget.rate_per_hour == pytest.approx(0.6)
    assert budget.projected == pytest.approx(1.0 + 0.6 * 6)
    assert budget.reached_at(now) == datetime(2026, 11, 22, 23, 0, tzinfo=UTC)  # (4 - 1) / 0.6 = 5 h from now
    # Ten minutes into the day the rate is over those ten minutes, not an hour.
    early = load_budget(conn, store, load_settings(), datetime(2026, 11, 23, 0, 10, tzinfo=UTC))
    assert early is not None and early.spent == pytest.approx(0.1)
    assert early.rate_per_hour == pytest.approx(0.6)
    monkeypatch.setenv("DAILY_BUDGET_USD", "10")
    relaxed = load_budget(conn, store, load_settings(), now)
    assert relaxed is not None and relaxed.reached_at(now) is None

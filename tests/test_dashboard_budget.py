"""The daily-budget banner: hidden without a budget, a warning at the alert ratio, an error once spent."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_dashboard import _row, run_page, texts

from app.store import open_database


@pytest.fixture
def spent_today(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "budget.db"
    now = datetime.now(UTC)
    db = open_database(path)
    with db.conn:
        db["attempts"].insert_all([
            _row("b1", "fast", "openai/gpt-oss-20b", 1, "success", now, latency=10, tokens=10, cost=0.6),
            _row("b2", "fast", "openai/gpt-oss-20b", 1, "success", now, latency=10, tokens=10, cost=0.25),
        ])
    db.conn.close()
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", str(path))
    return path


@pytest.mark.parametrize(
    ("budget", "kind", "fragment"),
    [("1.0", "warning", "$0.8500 of $1.0000 spent today (UTC), 85%"),
     ("0.5", "error", "BudgetExceededError"),
     ("10", None, None)],
)
def test_budget_banner(spent_today: Path, monkeypatch: pytest.MonkeyPatch, budget, kind, fragment) -> None:
    monkeypatch.setenv("DAILY_BUDGET_USD", budget)
    at = run_page("Overview")
    shown = " ".join(e.value for e in (at.warning if kind == "warning" else at.error)) if kind else texts(at)
    if fragment:
        assert fragment in shown
    else:
        assert "Daily budget" not in shown

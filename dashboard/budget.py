"""The daily-budget banner, shown above every page while DAILY_BUDGET_USD is set."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import streamlit as st

from app.config import Settings
from app.core.budget import spent_on


def budget_banner(path: Path, settings: Settings | None, now: datetime) -> None:
    if settings is None or not settings.daily_budget_usd:
        return
    limit = settings.daily_budget_usd
    spent, _ = spent_on(path, now.date().isoformat())  # the same sum the router enforces, for this UTC day
    share = spent / limit
    text = f"Daily budget: ${spent:.4f} of ${limit:.4f} spent today (UTC), {share:.0%}."
    if share >= 1:
        st.error(text + " Calls now raise BudgetExceededError before reaching a provider (DAILY_BUDGET_USD).")
    elif share >= settings.budget_alert_ratio:
        st.warning(text + f" Alert level BUDGET_ALERT_RATIO={settings.budget_alert_ratio:g} reached.")

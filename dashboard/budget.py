"""Today's spend against DAILY_BUDGET_USD: a line on Overview whenever a budget is set, with the projected spend
at the end of the UTC day, and a banner above the other pages once the alert ratio is reached.

The two budget settings are read on their own when the settings as a whole do not load: an unrelated mistake
(a bad GROQ_BASE_URL) must not hide a budget that is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

import streamlit as st
from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings

from app.config import Settings
from app.store import StoreProblem
from app.store.spend import spent_on
from app.store.target import Target
from dashboard import fmt, queries
from dashboard.timeframe import iso

if TYPE_CHECKING:
    from app.store.backend import Connection

RATE_WINDOW = timedelta(hours=1)  # the projection assumes the rest of the day spends at this window's rate


class _BudgetSettings(BaseSettings):
    """DAILY_BUDGET_USD and BUDGET_ALERT_RATIO as Settings reads them (environment over .env), alone."""

    model_config = Settings.model_config
    daily_budget_usd: float | None = Field(default=None, gt=0)
    budget_alert_ratio: float = Field(default=0.8, gt=0, le=1)


def budget_settings(settings: Settings | None) -> tuple[float | None, float]:
    """(DAILY_BUDGET_USD or None, BUDGET_ALERT_RATIO)."""
    if settings is not None:
        return settings.daily_budget_usd, settings.budget_alert_ratio
    try:
        alone = _BudgetSettings()
    except ValidationError:  # the budget itself is malformed: the settings error says so
        return None, 0.8
    return alone.daily_budget_usd, alone.budget_alert_ratio


@dataclass(frozen=True, slots=True)
class BudgetToday:
    limit: float
    alert_ratio: float
    spent: float  # logged cost today (UTC), the sum the router enforces
    rate_per_hour: float  # over the last hour (or since midnight, when the day is younger)
    projected: float  # spent + the rest of the day at that rate

    @property
    def share(self) -> float:
        return self.spent / self.limit

    def reached_at(self, now: datetime) -> datetime | None:
        """When the projection crosses the limit today, if it does and has not yet."""
        if self.spent >= self.limit or self.projected < self.limit or self.rate_per_hour <= 0:
            return None
        return now + timedelta(hours=(self.limit - self.spent) / self.rate_per_hour)


def load_budget(conn: Connection, path: Target, settings: Settings | None, now: datetime) -> BudgetToday | None:
    limit, ratio = budget_settings(settings)
    if not limit:
        return None
    spent, _ = spent_on(path, now.date().isoformat())
    midnight = datetime.combine(now.date(), time.min, now.tzinfo)
    since = max(now - RATE_WINDOW, midnight)
    hours = (now - since).total_seconds() / 3600
    recent = queries.totals(conn, queries.Scope(iso(since), iso(now))).cost
    rate = recent / hours if hours > 0 else 0.0
    left = (midnight + timedelta(days=1) - now).total_seconds() / 3600
    return BudgetToday(limit, ratio, spent, rate, spent + rate * left)


def budget_line(b: BudgetToday | None, now: datetime) -> None:
    """Overview: always shown while a budget is set."""
    if b is None:
        return
    text = (
        f"Daily budget: ${b.spent:,.4f} of ${b.limit:,.4f} spent today (UTC), {b.share:.0%}. Projected by "
        f"midnight UTC: ${b.projected:,.4f}, at the last hour's ${b.rate_per_hour:,.4f} per hour."
    )
    runs_out = fmt.plain(runs_out_text(b, now))
    if b.share >= 1:
        st.error(text + " Calls now raise BudgetExceededError before reaching a provider (DAILY_BUDGET_USD).")
    elif b.share >= b.alert_ratio:
        st.warning(f"{text} {runs_out} Alert level reached (BUDGET_ALERT_RATIO {b.alert_ratio:.0%}).")
    elif b.reached_at(now) is not None:
        st.warning(f"{text} {runs_out}")
    else:
        st.info(f"{text} {runs_out}")


def runs_out_text(b: BudgetToday, now: datetime) -> str:
    """When the budget runs out at the last hour's rate, said whatever the share spent: the reader past the alert
    level needs it most."""
    at = b.reached_at(now)
    if at is not None:
        return f"At this rate it runs out at about {at.strftime('%H:%M')} UTC ({fmt.relative(at, now)})."
    if b.rate_per_hour <= 0:
        return "Nothing spent in the last hour: at this rate it lasts the day."
    return "At this rate it lasts until midnight UTC."


def budget_banner(path: Target, settings: Settings | None, now: datetime) -> None:
    """Above the other pages: only from the alert ratio on."""
    limit, ratio = budget_settings(settings)
    if not limit:
        return
    spent, _ = spent_on(path, now.date().isoformat())  # the same sum the router enforces, for this UTC day
    share = spent / limit
    text = f"Daily budget: ${spent:.4f} of ${limit:.4f} spent today (UTC), {share:.0%}."
    if share >= 1:
        st.error(text + " Calls now raise BudgetExceededError before reaching a provider (DAILY_BUDGET_USD).")
    elif share >= ratio:
        runs_out = fmt.plain(_runs_out_on(path, settings, now))
        st.warning(f"{text} {runs_out} Alert level reached (BUDGET_ALERT_RATIO {ratio:.0%}).")


def _runs_out_on(path: Target, settings: Settings | None, now: datetime) -> str:
    """The banner's "when it runs out": the last hour's rate needs the attempts, read only past the alert level."""
    try:
        conn = queries.connect(path)
    except StoreProblem:  # the store went away since the page's own connection: the banner says the rest
        return ""
    if conn is None:
        return ""
    try:
        today = load_budget(conn, path, settings, now)
    finally:
        conn.close()
    return runs_out_text(today, now) if today is not None else ""

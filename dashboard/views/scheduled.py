"""Scheduled shutdowns, from the deprecation calendar (app.deprecations), and the latest `taskrouter check`.

Kept apart from the runtime evidence on purpose: this half is what the calendar and the last check *predict*,
the other half is what the router *saw*. The calendar is package data plus DEPRECATIONS_FILE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

import pandas as pd
import streamlit as st

from app.deprecations import (
    CalendarEntry,
    DeprecationCalendar,
    StoredCheck,
    latest_check,
    load_calendar,
    registry_chains,
)
from app.deprecations.usage import models_in_use
from app.errors import TaskRouterError
from dashboard import fmt, queries, registry
from dashboard.context import PageContext

# A row of the shutdowns table, keyed by its column headings (hence the functional form).
ShutdownRow = TypedDict(
    "ShutdownRow",
    {
        "Model": str,
        "Shutdown": str,  # ISO date
        "Days left": int,  # negative once shut down
        "When": str,
        "Replacement": str,
        "Used by tasks": str,
        "In the attempt log": str,
        "Tiers": str,
        "Note": str,
    },
)


@dataclass(frozen=True, slots=True)
class ScheduleData:
    rows: list[ShutdownRow]  # calendar entries for the models in use or seen in traffic, soonest first
    entries: list[CalendarEntry]  # the whole calendar
    warning_days: int
    problem: str | None  # settings, registry or calendar that do not load
    check: StoredCheck | None
    calendar: DeprecationCalendar | None = None  # for the replacement of a model the router found retired


def load(ctx: PageContext) -> ScheduleData:
    today = ctx.now.date()
    check = latest_check(ctx.db_path)
    settings, problem = ctx.settings, ctx.settings_problem
    if settings is None:
        return ScheduleData([], [], 30, problem, check)
    try:
        calendar = load_calendar(settings.deprecations_file)
        in_use = models_in_use(registry_chains(registry.registry(), settings))
    except TaskRouterError as exc:  # a bad DEPRECATIONS_FILE or registry entry, worded for the user
        return ScheduleData([], [], settings.retirement_warning_days, str(exc), check)
    seen = set(queries.distinct_values(ctx.conn, "model"))
    rows: list[ShutdownRow] = []
    for model in sorted(set(in_use) | seen):
        retirement = calendar.scheduled(model, today)
        if retirement is None or (ctx.scope.models and model not in ctx.scope.models):
            continue
        left = retirement.days_left(today)
        rows.append(
            {
                "Model": model,
                "Shutdown": retirement.shutdown.isoformat(),
                "Days left": left,
                "When": _when(left, settings.retirement_warning_days),
                "Replacement": retirement.replacement or "none named",
                "Used by tasks": ", ".join(in_use.get(model, [])) or "not in the effective registry",
                "In the attempt log": "yes" if model in seen else "no",
                "Tiers": retirement.tiers or "all",
                "Note": retirement.note or "",
            }
        )
    rows.sort(key=lambda r: (r["Shutdown"], r["Model"]))
    return ScheduleData(rows, calendar.entries(), settings.retirement_warning_days, None, check, calendar)


def _when(days_left: int, warning_days: int) -> str:
    if days_left <= 0:
        return "shut down"
    if days_left <= warning_days:
        return f"within {warning_days} days"
    return "scheduled"


def render(ctx: PageContext, data: ScheduleData) -> None:
    st.subheader("Scheduled shutdowns (deprecation calendar)")
    if data.problem:
        st.error(f"The calendar cannot be read against the current settings: {fmt.plain(data.problem)}")
    elif not data.rows:
        st.success("No model in the registry or in the attempt log has a shutdown in the calendar.")
    else:
        for row in data.rows:
            if row["When"] != "scheduled" and not row["Used by tasks"].startswith("not in"):
                verb = "was shut down" if row["When"] == "shut down" else "shuts down"
                st.warning(
                    f"**{fmt.plain(row['Model'])}** {verb} on {fmt.plain(row['Shutdown'])} and is used by: "
                    f"{fmt.plain(row['Used by tasks'])} (replacement: {fmt.plain(row['Replacement'])})."
                )
        st.dataframe(pd.DataFrame(data.rows), hide_index=True, key="scheduled_table")
    if data.entries:
        with st.expander(f"The whole calendar ({fmt.count(len(data.entries))} entries)"):
            st.dataframe(
                pd.DataFrame(
                    [
                        {
                            "Model": e.model,
                            "Shutdown": e.shutdown.isoformat(),
                            "Replacements": ", ".join(e.replacements),
                            "Tiers": e.tiers or "all",
                            "Source": e.source or "",
                        }
                        for e in data.entries
                    ]
                ),
                hide_index=True,
                key="calendar_table",
            )
    _latest_check(data.check)


def _latest_check(check: StoredCheck | None) -> None:
    st.subheader("Latest `taskrouter check`")
    if check is None:
        st.info(
            "No check stored in this database yet. Run `taskrouter check` (add `--strict` in CI) to compare "
            "the registry with the calendar and Groq's model list."
        )
        return
    verdict = (
        f"{fmt.plain(fmt.when(check.checked_at))}: {fmt.plain(check.summary)} (exit code {fmt.plain(check.exit_code)})"
    )
    if check.exit_code == 0:
        st.success(verdict)
    elif check.exit_code == 1:
        st.warning(verdict)
    else:
        st.error(verdict)
    problems = [
        {"Model": model, "Severity": p.get("severity"), "Source": p.get("source"), "Problem": p.get("message")}
        for model, body in (check.report.get("models") or {}).items()
        for p in body.get("problems", [])
    ] + [
        {"Model": "", "Severity": p.get("severity"), "Source": p.get("source"), "Problem": p.get("message")}
        for p in check.report.get("problems", [])
    ]
    if problems:
        st.dataframe(pd.DataFrame(problems), hide_index=True, key="check_problems_table")

"""The sidebar filters (time range, task, model, auto-refresh): they apply to every page.

Each widget is bound to a query parameter, so a filtered view is a URL that can be shared or bookmarked; the custom
dates and the refresh period are kept while they are hidden.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import streamlit as st

from dashboard.timeframe import CUSTOM, DEFAULT_RANGE, PRESETS

REFRESH_CHOICES = {"10 s": 10, "30 s": 30, "1 min": 60, "5 min": 300}


@dataclass(frozen=True, slots=True)
class Selection:
    range_label: str
    custom: tuple[date, date] | None
    tasks: tuple[str, ...]
    models: tuple[str, ...]
    refresh_seconds: int | None  # None: no auto-refresh


def sidebar_filters(task_options: list[str], model_options: list[str]) -> Selection:
    sidebar = st.sidebar
    sidebar.subheader("Filters")
    labels = [*PRESETS, CUSTOM]
    label = sidebar.selectbox(
        "Time range (UTC)", labels, index=labels.index(DEFAULT_RANGE), key="range", bind="query-params"
    )
    custom = None
    if label == CUSTOM:
        today = datetime.now(UTC).date()
        picked = sidebar.date_input(
            "Days", (today - timedelta(days=7), today), key="days", bind="query-params", persist_state="session"
        )
        if isinstance(picked, tuple) and len(picked) == 2:
            custom = (picked[0], picked[1])
        elif isinstance(picked, tuple) and len(picked) == 1:  # the second click has not happened yet
            custom = (picked[0], picked[0])
    tasks = sidebar.multiselect("Task", task_options, key="task", placeholder="All tasks", bind="query-params")
    models = sidebar.multiselect("Model", model_options, key="model", placeholder="All models", bind="query-params")
    refresh = None
    if sidebar.toggle("Auto-refresh", key="refresh", bind="query-params"):
        choice = sidebar.selectbox(
            "Every", list(REFRESH_CHOICES), index=1, key="every", bind="query-params", persist_state="session"
        )
        refresh = REFRESH_CHOICES[choice]
    return Selection(label, custom, tuple(tasks), tuple(models), refresh)

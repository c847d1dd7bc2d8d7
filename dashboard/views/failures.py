"""Failures: the most recent failed attempts (and, on request, skips), filterable by error kind on top of the
sidebar's time, task and model filters; each row links to its whole request (views/request.py). Messages are shown
as logged: the router redacts them before writing. The filters are in the URL, as the sidebar's are, and kept
while another page is shown."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app.types import ErrorKind
from dashboard import charts, fmt, queries
from dashboard.context import PageContext
from dashboard.views.request import LINK, link

LIMITS = (100, 500, 2000)
# Raw column -> what the table calls it, in display order; beside the request id, a link to its drill-down.
NAMES = {
    "created_at": "UTC",
    "task_type": "Task",
    "model": "Model",
    "attempt": "Position",
    "outcome": "Outcome",
    "error_kind": "Error kind",
    "status_code": "Status",
    "error_message": "Message",
    "latency_ms": "Latency (ms)",
    "request_id": "Request",
}


@dataclass(frozen=True, slots=True)
class FailuresData:
    kinds: dict[str, int]  # error kind -> rows in range (the chart shows them all, whatever kinds are picked)
    rows: list[dict]


def load(
    ctx: PageContext, include_skips: bool = False, kinds: tuple[str, ...] = (), limit: int = LIMITS[0]
) -> FailuresData:
    outcomes = queries.FAILED_OUTCOMES if include_skips else ("failure",)
    counts = queries.failure_kinds(ctx.conn, ctx.scope, outcomes)
    rows = queries.recent_failures(ctx.conn, ctx.scope, outcomes, kinds, limit)
    return FailuresData(counts, [dict(r) for r in rows])


def table(data: FailuresData) -> pd.DataFrame:
    frame = pd.DataFrame(data.rows, columns=list(queries.FAILURE_COLUMNS))[list(NAMES)]
    frame["created_at"] = frame["created_at"].str.replace("T", " ").str.rstrip("Z")
    frame["status_code"] = frame["status_code"].astype("Int64")  # 429, not 429.0, beside the missing ones
    frame["Attempts"] = frame["request_id"].map(link)
    return frame.rename(columns=NAMES)


def render(ctx: PageContext) -> None:
    st.header("Failures")
    left, middle, right = st.columns([3, 1, 1])
    include_skips = middle.toggle(
        "Include skips",
        key="skips",
        bind="query-params",
        persist_state="session",
        help="Models the router passed over without calling (cooling down, deprecated, over budget...).",
    )
    limit = right.selectbox(
        "Latest", LIMITS, key="limit", bind="query-params", persist_state="session", help="Rows shown, newest first"
    )
    kinds = left.multiselect(
        "Error kind",
        [k.value for k in ErrorKind],
        key="kind",
        bind="query-params",
        persist_state="session",
        placeholder="All error kinds",
    )
    data = load(ctx, include_skips, tuple(kinds), limit)
    total = sum(data.kinds.values())
    what = "failed or skipped attempts" if include_skips else "failed calls"
    st.caption(
        f"{fmt.plain(ctx.window.label)}: {total:,} {what} in range; newest first. "
        "A request id opens every attempt of that request."
    )
    if not total:
        st.success("No failures in this range.")
        return
    st.altair_chart(charts.kinds_bar(data.kinds, "Attempts"), width="stretch")
    st.dataframe(
        table(data),
        hide_index=True,
        key="failures_table",
        placeholder=fmt.DASH,
        column_config={
            "Latency (ms)": st.column_config.NumberColumn(format="localized"),
            "Message": st.column_config.TextColumn(width="large"),
            "Attempts": LINK,
        },
    )

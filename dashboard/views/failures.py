"""Failures: the most recent failed attempts (and, on request, skips), filterable by error kind on top of the
sidebar's time, task and model filters. Messages are shown as logged: the router redacts them before writing."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app.types import ErrorKind
from dashboard import fmt, queries
from dashboard.context import PageContext

LIMITS = (100, 500, 2000)


@dataclass(frozen=True, slots=True)
class FailuresData:
    kinds: dict[str, int]  # error kind -> rows in range (the chart shows them all, whatever kinds are picked)
    rows: list[dict]


def load(ctx: PageContext, include_skips: bool = False, kinds: tuple[str, ...] = (), limit: int = LIMITS[0]
         ) -> FailuresData:
    outcomes = queries.FAILED_OUTCOMES if include_skips else ("failure",)
    counts = queries.failure_kinds(ctx.conn, ctx.scope, outcomes)
    rows = queries.recent_failures(ctx.conn, ctx.scope, outcomes, kinds, limit)
    return FailuresData(counts, [dict(r) for r in rows])


def render(ctx: PageContext) -> None:
    st.header("Failures")
    left, middle, right = st.columns([3, 1, 1])
    include_skips = middle.toggle("Include skips", key="failures_skips",
                                  help="Models the router passed over without calling (cooling down, deprecated, "
                                       "over budget...).")
    limit = right.selectbox("Show", LIMITS, key="failures_limit", format_func=lambda n: f"latest {n}")
    kinds = left.multiselect("Error kind", [k.value for k in ErrorKind], key="failures_kinds",
                             placeholder="All error kinds")
    data = load(ctx, include_skips, tuple(kinds), limit)
    total = sum(data.kinds.values())
    what = "failed or skipped attempts" if include_skips else "failed calls"
    st.caption(f"{fmt.plain(ctx.window.label)}: {total:,} {what} in range; newest first.")
    if not total:
        st.success("No failures in this range.")
        return
    by_kind = pd.DataFrame({"rows": data.kinds}).rename_axis("error kind")
    st.bar_chart(by_kind, horizontal=True, height=max(140, 36 * len(by_kind)))
    frame = pd.DataFrame(data.rows, columns=list(queries.FAILURE_COLUMNS))
    frame["created_at"] = frame["created_at"].str.replace("T", " ").str.rstrip("Z")
    st.dataframe(frame, hide_index=True, key="failures_table", placeholder=fmt.DASH, column_config={
        "created_at": st.column_config.TextColumn("UTC"),
        "latency_ms": st.column_config.NumberColumn("latency ms", format="%.0f"),
        "error_message": st.column_config.TextColumn("message", width="large"),
    })

"""Failures: the most recent failed attempts (and, on request, skips), filterable by error kind on top of the
sidebar's time, task and model filters. Clicking any cell of a row shows that whole request below the table, in
the same tab (views/request.py's drill-down: every attempt, the whole message); the Request page shows the same
on a page of its own. Messages are shown as logged: the router redacts them before writing. The filters are in the
URL, as the sidebar's are, and kept while another page is shown.

Calls cut short (a hedge's slower call, a cancelled request) are not failures of the model: they are counted apart
and left out unless their kind is picked in the filter, as the Models page counts them."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app.types import ErrorKind
from dashboard import charts, fmt, queries, words
from dashboard.context import PageContext
from dashboard.views import request
from dashboard.views.request import LINK, link

LIMITS = (100, 500, 2000)
# Raw column -> what the table calls it, in display order: the columns read first come first, so a 1280 px window
# shows the kind and the message beside when and where; the link to the request's own page last.
NAMES = {
    "created_at": "UTC",
    "error_kind": "Error kind",
    "error_message": "Message",
    "model": "Model",
    "task_type": "Task",
    "status_code": "Status",
    "attempt": "Position",
    "outcome": "Outcome",
    "latency_ms": "Latency (ms)",
    "request_id": "Request",
}
TABLE_KEY = "failures_table"


@dataclass(frozen=True, slots=True)
class FailuresData:
    kinds: dict[str, int]  # error kind -> rows in range (the chart shows them all, whatever kinds are picked)
    rows: list[dict]
    cut_short: int  # calls cut short in range, left out of `kinds` and `rows` unless picked


def load(
    ctx: PageContext, include_skips: bool = False, kinds: tuple[str, ...] = (), limit: int = LIMITS[0]
) -> FailuresData:
    outcomes = queries.FAILED_OUTCOMES if include_skips else ("failure",)
    counts = queries.failure_kinds(ctx.conn, ctx.scope, outcomes)
    picked_cut_short = any(words.is_cut_short(k) for k in kinds)
    cut_short = sum(n for k, n in counts.items() if words.is_cut_short(k))
    if not picked_cut_short:
        counts = {k: n for k, n in counts.items() if not words.is_cut_short(k)}
    leave_out = () if picked_cut_short else queries.CUT_SHORT
    rows = queries.recent_failures(ctx.conn, ctx.scope, outcomes, kinds, limit, leave_out=leave_out)
    return FailuresData(counts, [dict(r) for r in rows], 0 if picked_cut_short else cut_short)


def table(data: FailuresData) -> pd.DataFrame:
    frame = pd.DataFrame(data.rows, columns=list(queries.FAILURE_COLUMNS))[list(NAMES)]
    frame["created_at"] = frame["created_at"].str[:19].str.replace("T", " ")  # to the second: a reader's time
    frame["status_code"] = frame["status_code"].astype("Int64")  # 429, not 429.0, beside the missing ones
    frame["error_kind"] = frame["error_kind"].map(words.kind)
    frame["Attempts"] = frame["request_id"].map(link)
    return frame.rename(columns=NAMES)


def chosen_request(data: FailuresData, event: object) -> str | None:
    """The request of the row whose cell was clicked, if any."""
    row = request.picked_row(event, len(data.rows))
    return None if row is None else data.rows[row]["request_id"]


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
    # The options are the words (the URL carries them too); each maps back to its code name for the query.
    by_word = {words.kind(k.value): k.value for k in ErrorKind}
    picked = left.multiselect(
        "Error kind",
        list(by_word),
        key="kind",
        bind="query-params",
        persist_state="session",
        placeholder="All error kinds",
        help=fmt.plain(words.kinds_help()),
    )
    data = load(ctx, include_skips, tuple(by_word[w] for w in picked), limit)
    total = sum(data.kinds.values())
    what = "failed or skipped attempts" if include_skips else "failed calls"
    apart = (
        f" {data.cut_short:,} calls {fmt.plain(words.CUT_SHORT)} (a hedge's slower call, a cancelled request) are not "
        "failures and are left out."
        if data.cut_short
        else ""
    )
    st.caption(
        f"{fmt.plain(ctx.window.label)}: {total:,} {what} in range; newest first.{apart} Click any cell of a row "
        "to see its whole request below the table."
    )
    if not total:
        st.success("No failures in this range.")
        return
    st.altair_chart(charts.kinds_bar(data.kinds, "Attempts"), width="stretch")
    event = st.dataframe(
        table(data),
        hide_index=True,
        key=TABLE_KEY,
        placeholder=fmt.DASH,
        on_select="rerun",
        selection_mode="single-cell",
        column_config={
            "Error kind": st.column_config.TextColumn(help=fmt.plain(words.kinds_help())),
            "Message": st.column_config.TextColumn(width="large", help="Click it: the whole message shows below"),
            "Latency (ms)": st.column_config.NumberColumn(format="%.0f"),
            "Attempts": LINK,
        },
    )
    chosen = chosen_request(data, event)
    if chosen is None:
        return
    st.subheader(f"Request {fmt.plain(chosen)}")
    request.show(request.load(ctx, chosen))

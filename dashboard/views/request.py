"""Request: every attempt of one request, in the order the router made them. The id is in the URL
(`?page=Request&request=<id>`), so a request can be linked; the Failures page shows the same drill-down under its
table when a row is clicked (`show`). Without an id, the latest requests with a failed call (within the sidebar's
filters) to pick from.

Each attempt reads as a card, top to bottom (model, outcome, error kind in words with its code name, status,
latency, override, the whole message as typed): a 1280 px window shows every field without scrolling sideways."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

import pandas as pd
import streamlit as st

from dashboard import fmt, queries, words
from dashboard.context import PageContext

RECENT = 20
# Raw column -> what the table calls it, in display order.
NAMES = {
    "attempt": "Position",
    "retry": "Retry",
    "model": "Model",
    "outcome": "Outcome",
    "error_kind": "Error kind",
    "status_code": "Status",
    "latency_ms": "Latency (ms)",
    "first_token_ms": "First token (ms)",
    "total_tokens": "Tokens",
    "cost_usd": "Cost ($)",
    "error_message": "Message",
    "override_source": "Override",
    "is_fallback": "Fallback list",
    "hedged": "Hedged",
    "created_at": "UTC",
}
# The id itself stays a text column, as logged and copyable; this column beside it opens the drill-down.
LINK = st.column_config.LinkColumn(
    "Attempts", display_text="open ↗", width="small", help="Every attempt of this request, on a page of its own"
)


def link(request_id: str) -> str:
    """The drill-down's address, relative to the dashboard's own."""
    return "?page=Request&request=" + quote(request_id, safe="")


@dataclass(frozen=True, slots=True)
class RequestData:
    request_id: str | None
    attempts: list[dict]  # empty: no request has exactly this id
    similar: list[str]  # ids starting with what was typed, when none matches exactly
    recent: list[dict]  # the latest requests with a failed call, when no id was given


def load(ctx: PageContext, request_id: str | None = None) -> RequestData:
    if not request_id:
        failures = queries.recent_failures(ctx.conn, ctx.scope, ("failure",), (), RECENT * 5)
        recent: dict[str, dict] = {}
        for row in failures:
            recent.setdefault(row["request_id"], dict(row))
        return RequestData(None, [], [], list(recent.values())[:RECENT])
    attempts = queries.request_attempts(ctx.conn, request_id)
    similar = [] if attempts else queries.request_ids_starting(ctx.conn, request_id)
    return RequestData(request_id, attempts, similar, [])


def attempts_table(data: RequestData) -> pd.DataFrame:
    frame = pd.DataFrame(data.attempts, columns=list(queries.REQUEST_COLUMNS))[list(NAMES)].rename(columns=NAMES)
    frame["UTC"] = frame["UTC"].str.replace("T", " ").str.rstrip("Z")
    for column in ("Status", "Tokens"):
        frame[column] = frame[column].astype("Int64")  # 429, not 429.0, beside the missing ones
    for column in ("Fallback list", "Hedged"):
        frame[column] = frame[column].map(lambda v: "yes" if v else "")
    frame["Error kind"] = frame["Error kind"].map(lambda k: words.kind(k) if k else None)
    return frame


def attempt_line(row: dict) -> str:
    """One attempt's facts in one line of plain text (no Markdown): what a card's heading says."""
    parts = [f"Position {row['attempt']}" + (f", retry {row['retry']}" if row.get("retry") else ""), row["model"]]
    outcome = row["outcome"]
    if outcome == "failure" and words.is_cut_short(row["error_kind"]):
        outcome = words.CUT_SHORT  # not a failure of the model
    parts.append(outcome)
    if row["error_kind"]:
        parts.append(words.kind_with_code(row["error_kind"]))
    if row["status_code"] is not None:
        parts.append(f"HTTP {row['status_code']}")
    if row["latency_ms"] is not None:
        parts.append(fmt.ms(row["latency_ms"]))
    if row["override_source"]:
        parts.append(f"override: {row['override_source']}")
    parts.append(fmt.when(row["created_at"]))
    return " · ".join(str(p) for p in parts)


def _summary(data: RequestData) -> None:
    rows = data.attempts
    first = rows[0]
    answer = next((r for r in rows if r["outcome"] == "success"), None)
    task = first["task_type"] + (f":{first['variant']}" if first["variant"] else "")
    calls = sum(1 for r in rows if r["outcome"] != "skipped")
    verdict = (
        f"answered by {fmt.plain(answer['model'])} at position {fmt.count(answer['attempt'])}"
        if answer
        else "not answered"
    )
    st.caption(
        f"Task {fmt.plain(task)} · {fmt.count(len(rows))} rows, {fmt.count(calls)} calls · "
        f"{verdict} · from {fmt.plain(fmt.when(first['created_at']))} "
        f"to {fmt.plain(fmt.when(max(r['created_at'] for r in rows)))}"
    )
    if answer:
        st.success("Answered.")
    else:
        st.error("No model answered this request: every position failed or was skipped.")
    cost = sum(r["cost_usd"] or 0 for r in rows)
    tokens = sum(r["total_tokens"] or 0 for r in rows)
    st.caption(f"Tokens {fmt.count(tokens)} · cost ${cost:.6f} (known prices)")


def picked_row(event: object, rows: int) -> int | None:
    """The row of the cell a person clicked in a table drawn with single-cell selection, if any."""
    cells = getattr(getattr(event, "selection", None), "cells", None) or []
    row = cells[0][0] if cells else None
    return row if row is not None and 0 <= row < rows else None


def show(data: RequestData) -> None:
    """The drill-down of one request: its summary, one card per attempt (the whole message as typed), then the
    table of every column."""
    _summary(data)
    for row in data.attempts:
        with st.container(border=True):
            st.text(attempt_line(row))  # st.text: shown as typed, never Markdown
            if row["error_message"]:
                st.code(row["error_message"], language=None, wrap_lines=True)


def render(ctx: PageContext) -> None:
    st.header("Request")
    typed = st.text_input(
        "Request id",
        key="request",
        bind="query-params",
        placeholder="Paste a request id, or its first characters",
        help="As logged in the attempts table (the Failures page links each row here).",
    )
    data = load(ctx, typed.strip() or None)
    if data.request_id is None:
        st.caption(
            f"The latest requests with a failed call ({fmt.plain(ctx.window.label.lower())}, within the "
            "sidebar's filters). A request itself is shown whole, whatever the filters."
        )
        if not data.recent:
            st.success("No failed call in this range.")
            return
        frame = pd.DataFrame(
            [
                {
                    "Request": r["request_id"],
                    "Attempts": link(r["request_id"]),
                    "Last failure (UTC)": fmt.when(r["created_at"]),
                    "Task": r["task_type"],
                    "Model": r["model"],
                    "Error kind": words.kind(r["error_kind"]),
                }
                for r in data.recent
            ]
        )
        st.caption("Click any cell of a row to see that request below, in this tab.")
        event = st.dataframe(
            frame,
            hide_index=True,
            key="recent_requests_table",
            on_select="rerun",
            selection_mode="single-cell",
            column_config={
                "Attempts": LINK,
                "Error kind": st.column_config.TextColumn(help=fmt.plain(words.kinds_help())),
            },
        )
        chosen = picked_row(event, len(data.recent))
        if chosen is not None:
            picked = data.recent[chosen]["request_id"]
            st.subheader(f"Request {fmt.plain(picked)}")
            show(load(ctx, picked))
        return
    if not data.attempts:
        if data.similar:
            st.info(f"No request has exactly this id; {fmt.count(len(data.similar))} start with it.")
            st.dataframe(
                pd.DataFrame({"Request": data.similar, "Attempts": [link(r) for r in data.similar]}),
                hide_index=True,
                key="similar_requests_table",
                column_config={"Attempts": LINK},
            )
        else:
            st.warning(f"No request with the id {fmt.plain(data.request_id)} in this database.")
        return
    show(data)
    st.dataframe(
        attempts_table(data),
        hide_index=True,
        key="request_table",
        placeholder=fmt.DASH,
        column_config={
            "Position": st.column_config.NumberColumn(help="The model's place in the chain (1 = first)"),
            "Retry": st.column_config.NumberColumn(help="0: the first call to this model; n: its n-th retry"),
            "Latency (ms)": st.column_config.NumberColumn(format="localized"),
            "First token (ms)": st.column_config.NumberColumn(format="localized", help="Streams only"),
            "Tokens": st.column_config.NumberColumn(format="localized"),
            "Cost ($)": st.column_config.NumberColumn(format="%.6f"),
            "Message": st.column_config.TextColumn(width="large"),
            "Override": st.column_config.TextColumn(help="Where a forced or first model came from"),
        },
    )

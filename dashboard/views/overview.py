"""Overview: first what is true right now (views/now.py: verdicts, overrides, budget, shutdowns, the last check),
then the models the router is avoiding, then the selected range: requests, success, fallbacks, latency, tokens and
cost, their trend, and the change against the previous period of the same length."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st

from dashboard import charts, fmt, queries, registry, words
from dashboard.context import PageContext
from dashboard.queries import Latency, Totals
from dashboard.status import AVOIDED, DEPRECATED, NOT_FOUND
from dashboard.views import now


@dataclass(frozen=True, slots=True)
class OverviewData:
    totals: Totals
    latency: Latency
    previous: Totals | None
    previous_latency: Latency | None
    trend: list[tuple[datetime, Totals]]  # (bucket start, totals in the bucket)
    status: dict[str, dict]
    now: now.NowData
    rolled: bool  # most of the range comes from the rollups (percentiles within 2 %)


def load(ctx: PageContext) -> OverviewData:
    bounds = ctx.trend_buckets()
    per_bucket = queries.trend(ctx.conn, ctx.scope, [(lo, hi) for _, lo, hi in bounds])
    total = sum(per_bucket, Totals())
    if not bounds:  # an empty range (custom dates in the future)
        total = queries.totals(ctx.conn, ctx.scope)
    previous = previous_latency = None
    if ctx.previous is not None:
        previous = queries.totals(ctx.conn, ctx.previous)
        previous_latency = queries.latency(ctx.conn, ctx.previous) if previous.answered else None
    return OverviewData(
        totals=total,
        latency=queries.latency(ctx.conn, ctx.scope),
        previous=previous,
        previous_latency=previous_latency,
        trend=[(label, t) for (label, _, _), t in zip(bounds, per_bucket, strict=True)],
        status=queries.model_status(ctx.conn),
        now=now.load(ctx),
        rolled=queries.reads_rollups(ctx.conn, ctx.scope),
    )


def render(ctx: PageContext) -> None:
    st.header("Overview: right now")
    data = load(ctx)
    now.render(ctx, data.now)
    _attention(ctx, data)
    st.subheader("Selected range")
    compared = "compared with the previous period of the same length" if ctx.previous else "no comparison"
    st.caption(
        f"{fmt.plain(ctx.window.label)}: {fmt.plain(fmt.when(ctx.scope.start or ctx.first_row))} to "
        f"{fmt.plain(fmt.when(ctx.scope.end))} · {compared}"
    )
    if data.rolled:
        st.caption(fmt.plain(queries.ROLLUPS_NOTE))
    if data.totals.attempts == 0:
        st.info(
            "No attempts in this range. The newest attempt in the database is from "
            f"{fmt.plain(fmt.when(ctx.last_row))}: "
            "widen the time range or clear the task/model filters."
        )
        return
    _metrics(data)
    _trend(data)


def forced(data: OverviewData) -> bool:
    """A force is in effect: a request has one model and no fallback, so a low fallback rate is not good news."""
    return any(o.kind == "force" for o in data.now.overrides)


def _metrics(data: OverviewData) -> None:
    t, p = data.totals, data.previous
    lat, plat = data.latency, data.previous_latency
    cols = st.columns(4)
    cols[0].metric(
        "Requests",
        fmt.count(t.requests),
        fmt.delta_count(t.requests, p.requests if p else None),
        delta_color="off",
        help="Requests with attempts in the range, each counted once.",
    )
    cols[1].metric(
        "Success rate",
        fmt.pct(t.success_rate),
        fmt.delta_points(t.success_rate, p.success_rate if p else None),
        help="Requests answered by some model in the chain.",
    )
    cols[2].metric(
        "Fallback rate (a force is in effect)" if forced(data) else "Fallback rate",
        fmt.pct(t.fallback_rate),
        fmt.delta_points(t.fallback_rate, p.fallback_rate if p else None),
        # Under a force a request cannot fall back: a rate going down then says nothing good.
        delta_color="off" if forced(data) else "inverse",
        help="Answers that came from a model after the first in the chain."
        + (" A force is in effect: the forced model has no fallback." if forced(data) else ""),
    )
    cols[3].metric(
        "Failed attempts",
        fmt.count(t.failures),
        fmt.delta_count(t.failures, p.failures if p else None),
        delta_color="inverse",
        help=f"Calls that failed; {fmt.count(t.skipped)} more models were skipped.",
    )
    cols = st.columns(4)
    for col, name in zip(cols, ("p50", "p95", "p99"), strict=False):
        now_value = getattr(lat, name)
        before = getattr(plat, name) if plat else None
        col.metric(
            f"Latency {fmt.plain(name)}",
            fmt.ms(now_value),
            fmt.delta_ms(now_value, before),
            delta_color="inverse",
            help="Time of the call that answered (successful calls only), "
            + ("within 2 % (from the rollups)." if data.rolled else "to the millisecond."),
        )
    cols[3].metric(
        "Answers", fmt.count(t.answered), fmt.delta_count(t.answered, p.answered if p else None), delta_color="off"
    )
    cols = st.columns(4)
    cols[0].metric("Tokens", fmt.count(t.tokens), fmt.delta_count(t.tokens, p.tokens if p else None), delta_color="off")
    cols[1].metric(
        "Cost",
        fmt.usd(t.cost),
        fmt.delta_count(t.cost, p.cost if p else None),
        delta_color="inverse",
        help="Known prices only: answers from a model without a price are counted apart.",
    )
    cols[2].metric(
        "Unpriced answers",
        fmt.count(t.unpriced),
        help="Answers from models with no price in MODEL_CATALOG: their cost is unknown, not $0.",
    )
    cols[3].metric(
        "Cost per answer", fmt.usd(t.cost / (t.answered - t.unpriced)) if t.answered > t.unpriced else fmt.DASH
    )


def _trend(data: OverviewData) -> None:
    if len(data.trend) < 2:
        return
    frame = pd.DataFrame(
        {
            "answered": [t.answered for _, t in data.trend],
            "not answered": [max(t.requests - t.answered, 0) for _, t in data.trend],  # a request may span buckets
            "success %": [(t.success_rate or 0) * 100 if t.requests else None for _, t in data.trend],
            "fallback %": [(t.fallback_rate or 0) * 100 if t.answered else None for _, t in data.trend],
            "cost $": [t.cost for _, t in data.trend],
            "tokens": [t.tokens for _, t in data.trend],
        },
        index=pd.Index(_labels([label for label, _ in data.trend]), name="UTC"),
    )
    left, right = st.columns(2)
    x_label = f"Start of each {_step_name(data.trend)} (UTC)"
    left.subheader("Requests")
    left.altair_chart(
        charts.trend(frame[["answered", "not answered"]], x_title=x_label, y_title="Requests"), width="stretch"
    )
    right.subheader("Success and fallback rate (%)")
    right.altair_chart(
        charts.trend(frame[["success %", "fallback %"]], x_title=x_label, y_title="%", mark="line"),
        width="stretch",
    )
    left.subheader("Cost ($, known prices)")
    left.altair_chart(charts.trend(frame[["cost $"]], x_title=x_label, y_title="USD"), width="stretch")
    right.subheader("Tokens")
    right.altair_chart(charts.trend(frame[["tokens"]], x_title=x_label, y_title="Tokens"), width="stretch")


def _step_name(trend: list[tuple[datetime, Totals]]) -> str:
    step = trend[1][0] - trend[0][0]
    if step < timedelta(hours=1):
        return f"{step.seconds // 60} min" if step > timedelta(minutes=1) else "minute"
    return "hour" if step == timedelta(hours=1) else "day" if step == timedelta(days=1) else "week"


def _labels(starts: list[datetime]) -> list[str]:
    """Bucket names as sortable text: on a time axis the first and last bars would be cut in half at its ends."""
    step = starts[1] - starts[0]
    pattern = (
        "%m-%d %H:%M"
        if step < timedelta(hours=1)
        else "%m-%d %H:00"
        if step < timedelta(days=1)
        else "%Y-%m-%d"
        if step < timedelta(weeks=1)
        else "wk %Y-%m-%d"
    )
    return [start.strftime(pattern) for start in starts]


def _avoided(ctx: PageContext, data: OverviewData) -> list[tuple[str, str, str, str]]:
    """(model, state, where, detail) for each model the router is avoiding now, within the model filter."""
    in_registry = set(registry.registry_models())
    out = []
    for model, (state, detail) in sorted(data.now.states.items()):
        if ctx.scope.models and model not in ctx.scope.models:
            continue
        if state in AVOIDED:
            where = "still in the registry" if model in in_registry else "no longer in the registry"
            replacement = data.now.replacements.get(model)
            if state in (DEPRECATED, NOT_FOUND):
                where += f"; replacement: {replacement}" if replacement else "; no replacement in the calendar"
            out.append((model, state, where, detail))
    return out


def _attention(ctx: PageContext, data: OverviewData) -> None:
    """Models the router is avoiding: disabled, retired, missing, cooling down, circuit open."""
    avoided = _avoided(ctx, data)
    if not avoided:
        return
    with st.container(border=True):
        st.markdown("**Needs attention**")
        for model, state, where, detail in avoided:
            st.warning(
                f"**{fmt.plain(model)}** {fmt.plain(words.is_in(state))} ({fmt.plain(where)}). {fmt.plain(detail)}"
            )

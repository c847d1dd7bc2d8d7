"""Models: which models are failing and why. Per model its calls, share, success, failures by kind, latency,
tokens, cost, and its state right now (healthy, cooling down until T, deprecated, not found)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd
import streamlit as st

from app.store.overrides import Override, read_active
from dashboard import charts, fmt, queries, registry, words
from dashboard.context import PageContext
from dashboard.queries import ModelAnswers
from dashboard.status import HEALTHY, disabled_models, state_of

if TYPE_CHECKING:  # what st.column_config's builders return; streamlit exports no public name for it
    from streamlit.elements.lib.column_types import ColumnConfig

MS = "%.0f"  # whole milliseconds: a percentile's fraction of a millisecond is noise
COLUMNS = {
    "Model": st.column_config.TextColumn(pinned=True),
    "State": st.column_config.TextColumn(help=fmt.plain(words.STATE_HELP)),
    "Top failure kinds": st.column_config.TextColumn(help=fmt.plain(words.kinds_help())),
    "Calls": st.column_config.NumberColumn(format="localized"),
    "Failed": st.column_config.NumberColumn(format="localized"),
    "Skipped": st.column_config.NumberColumn(format="localized"),
    "Success %": st.column_config.NumberColumn(format="%.1f%%"),
    "Share %": st.column_config.NumberColumn(format="%.1f%%", help="Share of all calls in the range"),
    "p50 ms": st.column_config.NumberColumn(format=MS, help="Latency of the successful calls"),
    "p95 ms": st.column_config.NumberColumn(format=MS, help="Latency of the successful calls"),
    "p99 ms": st.column_config.NumberColumn(format=MS, help="Latency of the successful calls"),
    "TTFT p50 ms": st.column_config.NumberColumn(format=MS, help="Streams: time to the first token"),
    "TTFT p95 ms": st.column_config.NumberColumn(format=MS, help="Streams: time to the first token"),
    "Cost $": st.column_config.NumberColumn(format="$%.4f", help="Known prices only"),
    "Tokens": st.column_config.NumberColumn(format="localized"),
    "Cut short": st.column_config.NumberColumn(
        format="localized",
        help="Calls the router or the caller ended, not failures of the model: a hedge's "
        "slower call (hedge_lost), a cancelled request",
    ),
}


@dataclass(frozen=True, slots=True)
class ModelsData:
    answers: dict[str, ModelAnswers]
    failures: dict[str, Counter[str]]  # model -> error_kind -> failed calls
    cut_short: dict[str, Counter[str]]  # model -> hedge_lost / cancelled -> calls
    skips: dict[str, Counter[str]]  # model -> reason -> skips (the model was not called)
    status: dict[str, dict]
    first_token: dict[str, queries.Latency]  # model -> time to first token of its answered streams
    rolled: bool  # most of the range comes from the rollups (percentiles within 2 %)
    disabled: dict[str, Override]  # model -> its disable override in effect


def load(ctx: PageContext) -> ModelsData:
    failures: dict[str, Counter[str]] = defaultdict(Counter)
    cut_short: dict[str, Counter[str]] = defaultdict(Counter)
    skips: dict[str, Counter[str]] = defaultdict(Counter)
    for model, outcome, kind, rows in queries.not_answered_by_model(ctx.conn, ctx.scope):
        if outcome != "failure":
            skips[model][kind or "unknown"] += rows
        else:
            (cut_short if kind in queries.CUT_SHORT else failures)[model][kind or "unknown"] += rows
    return ModelsData(
        queries.answers_by_model(ctx.conn, ctx.scope),
        dict(failures),
        dict(cut_short),
        dict(skips),
        queries.model_status(ctx.conn),
        queries.first_token_by_model(ctx.conn, ctx.scope),
        queries.reads_rollups(ctx.conn, ctx.scope),
        disabled_models(read_active(ctx.db_path)),
    )


def state(ctx: PageContext, data: ModelsData, model: str) -> tuple[str, str]:
    return state_of(data.status.get(model), ctx.now, disabled=data.disabled.get(model))


def _models_shown(ctx: PageContext, data: ModelsData) -> list[str]:
    """Traffic in range, plus the registry's models (a configured model with no traffic is news too) for the
    selected tasks, plus any model the router is avoiding right now; narrowed to the model filter."""
    configured = registry.models_for_tasks(ctx.scope.tasks) if ctx.scope.tasks else registry.registry_models()
    names = dict.fromkeys([*data.answers, *data.failures, *data.cut_short, *data.skips, *configured])
    names.update(
        dict.fromkeys(
            m
            for m in [*data.status, *data.disabled]
            if state(ctx, data, m)[0] != HEALTHY and (not ctx.scope.tasks or m in configured)
        )
    )
    if ctx.scope.models:
        names = {m: None for m in names if m in ctx.scope.models}
    return list(names)


def table(ctx: PageContext, data: ModelsData) -> pd.DataFrame:
    calls_total = sum(a.latency.count for a in data.answers.values()) + sum(
        sum(c.values()) for c in data.failures.values()
    )
    rows = []
    for model in _models_shown(ctx, data):
        answers = data.answers.get(model)
        ok = answers.latency.count if answers else 0
        failed = sum(data.failures.get(model, Counter()).values())
        calls = ok + failed
        shown, detail = state(ctx, data, model)
        kinds = data.failures.get(model, Counter()).most_common()
        # The columns read first come first: a 1024 px window shows them without scrolling, 1280 px the
        # time to first token and the kinds of failure too.
        rows.append(
            {
                "Model": model,
                "State": shown,
                "Calls": calls,
                "Success %": ok / calls * 100 if calls else None,
                "Failed": failed,
                "p50 ms": answers.latency.p50 if answers else None,
                "p95 ms": answers.latency.p95 if answers else None,
                "TTFT p50 ms": ttft.p50 if (ttft := data.first_token.get(model)) else None,
                "Top failure kinds": ", ".join(f"{words.kind(k)} {n:,}" for k, n in kinds[:3]),
                "Cut short": sum(data.cut_short.get(model, Counter()).values()),
                "Cost $": answers.cost if answers and answers.unpriced < ok else None,
                "Share %": calls / calls_total * 100 if calls_total else None,
                "Skipped": sum(data.skips.get(model, Counter()).values()),
                "p99 ms": answers.latency.p99 if answers else None,
                "TTFT p95 ms": ttft.p95 if ttft else None,
                "Tokens": answers.tokens if answers else 0,
                "Detail": detail,
                "Listed by": ", ".join(registry.listed_by(model)) or "not in the registry",
            }
        )
    frame = pd.DataFrame(rows)
    return frame.sort_values(["Calls", "Model"], ascending=[False, True], ignore_index=True) if rows else frame


def render(ctx: PageContext) -> None:
    st.header("Models")
    data = load(ctx)
    st.caption(
        f"{fmt.plain(ctx.window.label)}. A call is an attempt that reached the provider; skipped models were "
        "not called. Latency is of successful calls; TTFT, of streamed ones: the time to their first token."
    )
    if data.rolled:
        st.caption(fmt.plain(queries.ROLLUPS_NOTE))
    frame = table(ctx, data)
    if frame.empty:
        st.info("No model matches the filters.")
        return
    avoided = frame[frame["State"] != HEALTHY]
    for _, row in avoided.iterrows():
        st.warning(
            f"**{fmt.plain(row['Model'])}** {fmt.plain(words.is_in(row['State']))}: "
            f"{fmt.plain(row['Detail'] or 'no detail recorded')}"
        )
    st.dataframe(frame, hide_index=True, column_config=COLUMNS, key="models_table", placeholder=fmt.DASH)

    st.subheader("Failures by error kind")
    kinds = pd.DataFrame(data.failures).fillna(0).astype(int).T if data.failures else pd.DataFrame()
    if kinds.empty:
        st.success("No failed calls in this range.")
    else:
        kinds.index.name = "Model"
        st.altair_chart(charts.kinds_by_model(data.failures), width="stretch")
        st.dataframe(kinds.reset_index(), hide_index=True, key="failure_kinds_table", column_config=_counts(kinds))
    if data.skips:
        st.subheader("Skips by reason")
        st.caption("The router did not call these models: cooling down, deprecated, over budget, ...")
        skips = pd.DataFrame(data.skips).fillna(0).astype(int).T
        skips.index.name = "Model"
        st.dataframe(skips.reset_index(), hide_index=True, key="skips_table", column_config=_counts(skips))


def _counts(frame: pd.DataFrame) -> dict[str, ColumnConfig]:
    """Thousands separators for every count column, headed by the kind in words (its code name in the help); the
    model column pinned."""
    return {
        "Model": st.column_config.TextColumn(pinned=True),
        **{
            str(c): st.column_config.NumberColumn(
                words.kind(str(c)), format="localized", help=fmt.plain(f"Code name: {c}")
            )
            for c in frame.columns
        },
    }

"""Spend: what the range cost per task and tier, the tier mix, how often answers were refused and escalated, the
response cache's hit rate, the dollars saved, all against a single-model baseline: each answered request's tokens
priced at its task's strongest model (the most expensive priced model of the task's own list in MODEL_REGISTRY, at
the router's catalog prices)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app.registry.catalog import ModelInfo, cost_usd
from app.registry.chain import TIERS
from app.types import Usage
from dashboard import charts, fmt, queries, registry
from dashboard.context import PageContext
from dashboard.queries import Scope, Spend, SpendReport

NO_TIER = "no tier"  # rows of requests that ran on no tier (the task's own list, fallback, an untiered task)
NOT_KEPT = "not kept"  # hours read from the rollups, which do not keep the tier
TIER_ORDER = (*TIERS, NO_TIER, NOT_KEPT)

COLUMNS = {
    "Task": st.column_config.TextColumn(pinned=True),
    "Requests": st.column_config.NumberColumn(format="localized"),
    "Answered": st.column_config.NumberColumn(format="localized", help="Answers the models gave (success rows)"),
    "Cache hits": st.column_config.NumberColumn(format="localized", help="Answers served from the response cache"),
    "Cache hit %": st.column_config.NumberColumn(format="%.1f%%", help="Cache hits per request"),
    "Escalated": st.column_config.NumberColumn(
        format="localized",
        help="Requests whose answer was refused (error kind refused or validation) and that "
        "another model then answered",
    ),
    "Escalation %": st.column_config.NumberColumn(format="%.1f%%", help="Escalated requests per request"),
    "Cost $": st.column_config.NumberColumn(format="$%.4f", help="Every call, known prices only"),
    "Baseline model": st.column_config.TextColumn(
        help="The task's strongest model: the most expensive priced model of its own list"
    ),
    "Baseline $": st.column_config.NumberColumn(
        format="$%.4f", help="The answers' tokens at the baseline model's prices, one call each"
    ),
    "vs baseline %": st.column_config.NumberColumn(
        format="%+.1f%%", help="Cost against the baseline: negative is cheaper"
    ),
    "Saved $": st.column_config.NumberColumn(
        format="$%.4f",
        help="saved_usd added up: each answer against the task's first model, each cache hit its "
        "original answer's cost",
    ),
    "Tier": st.column_config.TextColumn(),
    "Share %": st.column_config.NumberColumn(format="%.1f%%", help="Share of the task's answers"),
    "Unpriced": st.column_config.NumberColumn(
        format="localized", help="Answers of models without a price: their cost is unknown, not 0"
    ),
}


@dataclass(frozen=True, slots=True)
class TaskLine:
    task: str
    requests: int
    spend: Spend  # every tier's
    escalated: int  # over `escalation_scope`
    escalation_requests: int  # requests over the same part of the range
    strongest: str | None
    baseline: float | None  # None: the task's strongest model is unknown or unpriced

    @property
    def versus(self) -> float | None:
        """Cost against the baseline, as a share of it; None when either is incomplete."""
        if self.baseline is None or not self.baseline or self.spend.unpriced:
            return None
        return (self.spend.cost - self.baseline) / self.baseline


@dataclass(frozen=True, slots=True)
class SpendData:
    report: SpendReport
    tasks: list[TaskLine]
    escalation_scope: Scope  # the part of the range whose raw rows are kept
    catalog_problem: str | None  # MODEL_CATALOG_FILE does not load: the shipped prices are used
    rolled: bool  # some of the range comes from the rollups


def baseline(spend: Spend, info: ModelInfo | None) -> float | None:
    usage = Usage(
        prompt_tokens=spend.prompt_tokens,
        completion_tokens=spend.completion_tokens,
        total_tokens=spend.prompt_tokens + spend.completion_tokens,
        cached_tokens=spend.cached_tokens,
    )
    return cost_usd(info, usage)


def load(ctx: PageContext) -> SpendData:
    report = queries.spend(ctx.conn, ctx.scope)
    requests = {task: depth.requests for task, depth in queries.task_depths(ctx.conn, ctx.scope, 1).items()}
    escalated, escalation_requests, kept = queries.escalations(ctx.conn, ctx.scope, requests)
    catalog, problem = registry.catalog(ctx.settings)
    per_task: dict[str, Spend] = {}
    for (task, _), found in report.by_tier.items():
        per_task[task] = per_task.get(task, Spend()) + found
    lines = []
    for task in sorted(set(per_task) | set(requests)):
        spend = per_task.get(task, Spend())
        strongest = registry.strongest(task, catalog)
        lines.append(
            TaskLine(
                task,
                requests.get(task, 0),
                spend,
                escalated.get(task, 0),
                escalation_requests.get(task, 0),
                strongest,
                baseline(spend, catalog.get(strongest)) if strongest else None,
            )
        )
    return SpendData(report, lines, kept, problem, queries.reads_rollups(ctx.conn, ctx.scope))


def _rate(part: int, whole: int) -> float | None:
    return part / whole * 100 if whole else None


def task_table(data: SpendData) -> pd.DataFrame:
    rows = [
        {
            "Task": line.task,
            "Requests": line.requests,
            "Cost $": line.spend.cost,
            "Baseline $": line.baseline,
            "vs baseline %": None if line.versus is None else line.versus * 100,
            "Saved $": line.spend.saved,
            "Answered": line.spend.answered,
            "Cache hits": line.spend.cache_hits,
            "Cache hit %": _rate(line.spend.cache_hits, line.requests),
            "Escalated": line.escalated,
            "Escalation %": _rate(line.escalated, line.escalation_requests),
            "Unpriced": line.spend.unpriced,
            "Baseline model": line.strongest or "",
        }
        for line in data.tasks
    ]
    return pd.DataFrame(rows)


def tier_name(tier: str | None) -> str:
    return NO_TIER if tier is None else NOT_KEPT if tier == queries.ROLLED_UP else tier


def _tier_rank(tier: str) -> int:
    return TIER_ORDER.index(tier) if tier in TIER_ORDER else len(TIER_ORDER)


def tier_table(data: SpendData) -> pd.DataFrame:
    answered: dict[str, int] = {}
    for (task, _), found in data.report.by_tier.items():
        answered[task] = answered.get(task, 0) + found.answered
    cells = sorted(
        ((task, tier_name(tier), found) for (task, tier), found in data.report.by_tier.items()),
        key=lambda cell: (cell[0], _tier_rank(cell[1]), cell[1]),
    )
    return pd.DataFrame(
        [
            {
                "Task": task,
                "Tier": tier,
                "Answered": found.answered,
                "Share %": _rate(found.answered, answered[task]),
                "Cost $": found.cost,
                "Saved $": found.saved,
                "Cache hits": found.cache_hits,
                "Unpriced": found.unpriced,
            }
            for task, tier, found in cells
        ]
    )


@dataclass(frozen=True, slots=True)
class Headline:
    requests: int
    cost: float
    baseline: float | None  # of the tasks with a baseline
    compared_cost: float  # the cost of those same tasks
    saved: float
    cache_saved: float
    cache_hits: int
    escalated: int
    escalation_requests: int

    @property
    def versus(self) -> float | None:
        return (self.compared_cost - self.baseline) / self.baseline if self.baseline else None


def headline(data: SpendData) -> Headline:
    total = sum((line.spend for line in data.tasks), Spend())
    compared = [line for line in data.tasks if line.baseline is not None and not line.spend.unpriced]
    return Headline(
        requests=sum(line.requests for line in data.tasks),
        cost=total.cost,
        baseline=sum(line.baseline or 0.0 for line in compared) if compared else None,
        compared_cost=sum(line.spend.cost for line in compared),
        saved=total.saved,
        cache_saved=total.cache_saved,
        cache_hits=total.cache_hits,
        escalated=sum(line.escalated for line in data.tasks),
        escalation_requests=sum(line.escalation_requests for line in data.tasks),
    )


def _metrics(top: Headline) -> None:
    cols = st.columns(3)
    cols[0].metric("Cost", fmt.usd(top.cost), help="Every call in the range, at known prices.")
    cols[1].metric(
        "Single-model baseline",
        fmt.usd(top.baseline),
        None if top.versus is None else f"{top.versus * 100:+.1f}% cost against it",
        delta_color="inverse",
        help="Each answered request's tokens at its task's strongest model's prices, one call each; "
        "tasks whose cost or baseline is incomplete (a model without a price) are left out of the "
        "comparison.",
    )
    cols[2].metric(
        "Saved",
        fmt.usd(top.saved),
        f"{fmt.usd(top.cache_saved)} by the cache",
        delta_color="off",
        help="saved_usd added up: each answer against its task's first model for the same tokens, each "
        "cache hit its original answer's cost.",
    )
    cols = st.columns(3)
    cols[0].metric("Requests", fmt.count(top.requests))
    cols[1].metric(
        "Escalation rate",
        fmt.pct(top.escalated / top.escalation_requests if top.escalation_requests else None),
        help="Requests whose answer was refused (error kind refused: the cascade; validation: the "
        "caller's checks) and that another model then answered.",
    )
    cols[2].metric(
        "Cache hit rate",
        fmt.pct(top.cache_hits / top.requests if top.requests else None),
        help="Requests answered from the response cache.",
    )


def render(ctx: PageContext) -> None:
    st.header("Spend")
    data = load(ctx)
    st.caption(
        f"{fmt.plain(ctx.window.label)}. The baseline prices each answered request's tokens at its task's "
        "strongest model (the most expensive priced model of its own list in MODEL_REGISTRY, as it is now), "
        "one call each; cache hits are not in it, their saving is in Saved."
    )
    if data.catalog_problem:
        st.warning(f"MODEL_CATALOG_FILE is left out, the shipped prices are used: {fmt.plain(data.catalog_problem)}")
    if data.rolled:
        st.caption(
            fmt.plain(
                f"{queries.ROLLUPS_NOTE} The rollups keep neither the tier (those hours show as "
                f"'{NOT_KEPT}') nor the cached tokens (the baseline prices them in full)."
            )
        )
    if not data.report.saved_known:
        st.caption(
            "The rollups of this store do not keep saved_usd yet (routers of this version add it): "
            "Saved leaves those hours out."
        )
    if not data.tasks:
        st.info("No requests in this range.")
        return
    _metrics(headline(data))
    if data.escalation_scope.start != ctx.scope.start:
        st.caption(
            f"Escalations are counted from the raw rows, kept from {fmt.plain(fmt.when(data.escalation_scope.start))}."
        )

    st.subheader("Per task")
    st.dataframe(
        task_table(data), hide_index=True, column_config=COLUMNS, key="spend_tasks_table", placeholder=fmt.DASH
    )
    st.caption(
        "vs baseline shows – when the task's strongest model has no price, or some of its answers came from "
        "models without one."
    )

    st.subheader("Per task and tier")
    tiers = tier_table(data)
    st.altair_chart(charts.tier_mix(tiers, TIER_ORDER), width="stretch")
    st.dataframe(tiers, hide_index=True, column_config=COLUMNS, key="spend_tiers_table", placeholder=fmt.DASH)

"""Tasks: each task's chain as configured and as effective now (FORCE_MODEL / DEFAULT_<TASK>_MODEL banners), and
how deep into the chain requests had to go (the `attempt` of a success row is the position that answered)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from app.core.chain import Chain
from dashboard import fmt, queries, registry
from dashboard.context import PageContext
from dashboard.queries import TaskDepth
from dashboard.registry import TaskChains


@dataclass(frozen=True, slots=True)
class TasksData:
    chains: list[TaskChains]
    settings_problem: str | None
    force_model: str | None
    defaults: dict[str, str]
    positions: int
    depths: dict[str, TaskDepth]


def _positions(chains: list[TaskChains]) -> int:
    """Columns of the depth table: the longest chain, at least two; deeper (older) answers join the last one."""
    lengths = [len(c.candidates) for tc in chains for c in (tc.configured, tc.effective) if c is not None]
    return max([2, *lengths])


def load(ctx: PageContext) -> TasksData:
    settings, problem = ctx.settings, ctx.settings_problem
    chains = registry.task_chains(settings) if settings else []
    if ctx.scope.tasks:
        chains = [tc for tc in chains if tc.task.partition(":")[0] in ctx.scope.tasks]
    force, defaults = registry.overrides(settings) if settings else (None, {})
    positions = _positions(chains)
    return TasksData(chains, problem, force, defaults, positions,
                     queries.task_depths(ctx.conn, ctx.scope, positions))


def _ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


def depth_table(data: TasksData) -> pd.DataFrame:
    names = [_ordinal(i) for i in range(1, data.positions)] + [f"{_ordinal(data.positions)}+"]
    rows = []
    for task, depth in sorted(data.depths.items()):
        row: dict[str, object] = {
            "Task": task,
            "Requests": depth.requests,
            "Success %": depth.answered / depth.requests * 100 if depth.requests else None,
            "Answered": depth.answered,
        }
        for name, n in zip(names, depth.by_position, strict=True):
            row[f"{name} %"] = n / depth.answered * 100 if depth.answered else None
        rows.append(row)
    return pd.DataFrame(rows)


def chain_table(data: TasksData) -> pd.DataFrame:
    def show(chain: Chain | None) -> str:
        if chain is None:
            return ""
        return " → ".join(c.model + (" (fallback)" if c.is_fallback else "") for c in chain.candidates)

    return pd.DataFrame([
        {"Task": tc.task, "Configured chain": show(tc.configured), "Effective now": show(tc.effective),
         "Changed": "yes" if tc.problem is None and show(tc.configured) != show(tc.effective) else "",
         "Problem": tc.problem or ""}
        for tc in data.chains
    ])


def render(ctx: PageContext) -> None:
    st.header("Tasks")
    data = load(ctx)
    if data.settings_problem:
        st.error(f"The settings do not load, so the effective chains are unknown: {fmt.plain(data.settings_problem)}")
    if data.force_model:
        st.error(f"FORCE_MODEL is active: every task calls **{fmt.plain(data.force_model)}** only, with no fallback. "
                 "Unset FORCE_MODEL to restore the chains below.", icon="🚨")
    for name, model in data.defaults.items():
        st.warning(f"{fmt.plain(name)} is active: **{fmt.plain(model)}** goes first in its task's chain.", icon="⚠️")

    st.subheader("Chains")
    chains = chain_table(data)
    if data.settings_problem:
        st.caption("Unknown until the settings load (see above).")
    elif chains.empty:
        st.info("No task of MODEL_REGISTRY matches the filters.")
    else:
        st.dataframe(chains, hide_index=True, key="chains_table")

    st.subheader("Fallback depth")
    st.caption(f"{fmt.plain(ctx.window.label)}. Which position in the chain answered, as a share of the answered "
               "requests; skipped positions count, as the router walks past them.")
    depth = depth_table(data)
    if depth.empty:
        st.info("No requests in this range.")
        return
    pct = {c: st.column_config.NumberColumn(format="%.1f%%") for c in depth.columns if c.endswith("%")}
    st.dataframe(depth, hide_index=True, column_config=pct, key="depth_table", placeholder=fmt.DASH)
    shares = depth.set_index("Task")[[c for c in depth.columns if c.endswith("%") and c != "Success %"]]
    st.bar_chart(shares.fillna(0), horizontal=True, stack=True, height=max(180, 64 * len(shares)))

"""Tasks: each task's chain as configured and as effective now (runtime overrides from the store, FORCE_MODEL and
DEFAULT_<TASK>_MODEL, each in a banner with its precedence), how deep into the chain requests had to go (the
`attempt` of a success row is the position that answered), and the audit trail of every override change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pandas as pd
import streamlit as st

from app.registry.chain import Chain
from app.store.overrides import DEFAULT, DISABLE, FORCE, Override, read_active, read_audit
from dashboard import admin, charts, fmt, queries, registry
from dashboard.context import PageContext
from dashboard.queries import TaskDepth
from dashboard.registry import TaskChains
from dashboard.status import override_detail


@dataclass(frozen=True, slots=True)
class TasksData:
    chains: list[TaskChains]
    settings_problem: str | None
    force_model: str | None
    defaults: dict[str, str]
    positions: int
    depths: dict[str, TaskDepth]
    runtime: list[Override]  # in effect in the store
    audit: list[dict]  # newest first
    rolled: bool  # most of the range comes from the rollups


PRECEDENCE = (
    "Precedence, highest first: a runtime force override for the task, one for every task, FORCE_MODEL, "
    "a runtime default override for the task, DEFAULT_<TASK>_MODEL, the registry. Runtime overrides are "
    "in the database and reach every router within MODEL_STATUS_REFRESH_SECONDS; FORCE_MODEL and "
    "DEFAULT_<TASK>_MODEL are each process's own environment, shown here as this dashboard's."
)
AUDIT_ROWS = 100
# Raw column -> heading, in display order: at 1280 px the first six show without scrolling sideways.
AUDIT_NAMES = {
    "at": "UTC",
    "who": "Who",
    "action": "Action",
    "target": "Model",
    "reason": "Why",
    "via": "Via",
    "task": "Task",
    "detail": "Detail",
}


def _positions(chains: list[TaskChains]) -> int:
    """Columns of the depth table: the longest chain, at least two; deeper (older) answers join the last one."""
    lengths = [len(c.candidates) for tc in chains for c in (tc.configured, tc.effective) if c is not None]
    return max([2, *lengths])


def load(ctx: PageContext) -> TasksData:
    settings, problem = ctx.settings, ctx.settings_problem
    runtime = read_active(ctx.db_path)
    chains = registry.task_chains(settings, runtime) if settings else []
    if ctx.scope.tasks:
        chains = [tc for tc in chains if tc.task.partition(":")[0] in ctx.scope.tasks]
    force, defaults = registry.overrides(settings) if settings else (None, {})
    positions = _positions(chains)
    return TasksData(
        chains,
        problem,
        force,
        defaults,
        positions,
        queries.task_depths(ctx.conn, ctx.scope, positions),
        runtime,
        read_audit(ctx.db_path, AUDIT_ROWS),
        queries.reads_rollups(ctx.conn, ctx.scope),
    )


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
    disabled = {o.model for o in data.runtime if o.kind == DISABLE}

    def show(chain: Chain | None, now: bool = False) -> str:
        if chain is None:
            return ""
        return " → ".join(
            c.model
            + (" (fallback)" if c.is_fallback else "")
            + (" (disabled: skipped)" if now and c.model in disabled else "")
            for c in chain.candidates
        )

    return pd.DataFrame(
        [
            {
                "Task": tc.task,
                "Effective now": show(tc.effective, True),
                "Because of": (tc.effective.override_source or "") if tc.effective else "",
                "Changed": "yes" if tc.problem is None and show(tc.configured) != show(tc.effective, True) else "",
                "Configured chain": show(tc.configured),
                "Problem": tc.problem or "",
            }
            for tc in data.chains
        ]
    )


def _banners(data: TasksData, now: datetime) -> None:
    """Every override in force, highest precedence first, each saying whether something above it wins."""
    forces = [o for o in data.runtime if o.kind == FORCE]
    every_task = next((o for o in forces if o.task is None), None)
    for o in forces:
        scope = fmt.plain(o.task) if o.task else "every task"
        st.error(
            f"**{fmt.plain(o.source)}** is active: {scope} calls **{fmt.plain(o.model)}** only, "
            f"with no fallback. {fmt.plain(override_detail(o, now))}",
            icon="🚨",
        )
    if data.force_model:
        above = " A runtime force override takes precedence now." if every_task else ""
        st.error(
            f"FORCE_MODEL is set in this dashboard's environment: every task calls "
            f"**{fmt.plain(data.force_model)}** only, with no fallback.{above}",
            icon="🚨",
        )
    forced_everywhere = bool(every_task or data.force_model)
    for o in data.runtime:
        if o.kind == DEFAULT:
            won = " It has no effect while a force override or FORCE_MODEL is set." if forced_everywhere else ""
            st.warning(
                f"**{fmt.plain(o.source)}** is active: **{fmt.plain(o.model)}** goes first for "
                f"{fmt.plain(o.task)}. {fmt.plain(override_detail(o, now))}{won}",
                icon="⚠️",
            )
        elif o.kind == DISABLE:
            st.warning(
                f"**{fmt.plain(o.source)}** is active: **{fmt.plain(o.model)}** is out of rotation "
                f"(every router skips it). {fmt.plain(override_detail(o, now))}",
                icon="⚠️",
            )
    for name, model in data.defaults.items():
        won = " It has no effect while a force override or FORCE_MODEL is set." if forced_everywhere else ""
        st.warning(
            f"{fmt.plain(name)} is set in this dashboard's environment: **{fmt.plain(model)}** goes first in "
            f"its task's chain unless a runtime default override for the task is set.{won}",
            icon="⚠️",
        )
    if data.runtime:
        st.dataframe(
            pd.DataFrame(
                [
                    {  # read first, first: 1280 px show the override, its scope, its end and its undo
                        "Override": o.source,
                        "Model": o.model,
                        "Task": o.task or ("every task" if o.kind == FORCE else ""),
                        "Expires": fmt.when_relative(o.expires_at, now) if o.expires_at else "when cleared",
                        "Undo with": undo_command(o),
                        "Why": o.reason,
                        "Set by": o.set_by,
                        "Set at": fmt.when_relative(o.set_at, now),
                    }
                    for o in data.runtime
                ]
            ),
            hide_index=True,
            key="overrides_table",
        )
    if data.runtime or data.force_model or data.defaults:
        st.caption(fmt.plain(PRECEDENCE))


def undo_command(o: Override) -> str:
    """The CLI command that ends this override and no other (by its id; the CLI asks for a reason)."""
    return f'taskrouter override end {o.id:d} --reason "why"'


def _changes(data: TasksData) -> None:
    st.subheader("Changes")
    st.caption("Every override set or cleared and every mark lifted by hand, newest first (the audit table).")
    if not data.audit:
        st.info("No change recorded in this database.")
        return
    frame = pd.DataFrame(data.audit, columns=list(AUDIT_NAMES))
    frame["at"] = frame["at"].str[:19].str.replace("T", " ")  # to the second
    st.dataframe(
        frame.rename(columns=AUDIT_NAMES),
        hide_index=True,
        key="audit_table",
        placeholder=fmt.DASH,
        column_config={"Detail": st.column_config.TextColumn(width="large")},
    )


def render(ctx: PageContext) -> None:
    st.header("Tasks")
    data = load(ctx)
    if data.settings_problem:
        st.error(f"The settings do not load, so the effective chains are unknown: {fmt.plain(data.settings_problem)}")
    _banners(data, ctx.now)

    st.subheader("Chains")
    chains = chain_table(data)
    if data.settings_problem:
        st.caption("Unknown until the settings load (see above).")
    elif chains.empty:
        st.info("No task of MODEL_REGISTRY matches the filters.")
    else:
        st.dataframe(chains, hide_index=True, key="chains_table")
    _changes(data)
    admin.render(
        ctx.db_path,
        ctx.settings,
        data.runtime,
        sorted(registry.registry_models()),
        sorted(t for t in registry.registry_tasks() if t != "fallback"),
    )

    st.subheader("Fallback depth")
    st.caption(
        f"{fmt.plain(ctx.window.label)}. Which position in the chain answered, as a share of the answered "
        "requests; skipped positions count, as the router walks past them."
    )
    if data.rolled:
        st.caption(fmt.plain(queries.ROLLUPS_NOTE))
    depth = depth_table(data)
    if depth.empty:
        st.info("No requests in this range.")
        return
    config = {c: st.column_config.NumberColumn(format="%.1f%%") for c in depth.columns if c.endswith("%")}
    config |= {c: st.column_config.NumberColumn(format="localized") for c in ("Requests", "Answered")}
    st.dataframe(depth, hide_index=True, column_config=config, key="depth_table", placeholder=fmt.DASH)
    shares = depth.set_index("Task")[[c for c in depth.columns if c.endswith("%") and c != "Success %"]]
    st.altair_chart(charts.depth_by_task(shares), width="stretch")

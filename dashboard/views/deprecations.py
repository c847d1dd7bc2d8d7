"""Deprecations: what is about to break. First the runtime evidence (models the router found deprecated or not
found, from `model_status` and the attempts that hit them), then the scheduled shutdowns (views/scheduled.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import streamlit as st

from dashboard import fmt, queries, registry
from dashboard.context import PageContext
from dashboard.queries import Evidence
from dashboard.status import is_runtime_deprecated, state_of
from dashboard.views import scheduled


@dataclass(frozen=True, slots=True)
class DeprecationsData:
    status: dict[str, dict]
    evidence: dict[tuple[str, str], Evidence]
    schedule: scheduled.ScheduleData


def load(ctx: PageContext) -> DeprecationsData:
    return DeprecationsData(
        queries.model_status(ctx.conn), queries.deprecation_evidence(ctx.conn, ctx.scope), scheduled.load(ctx)
    )


def _listed(model: str) -> str:
    keys = registry.listed_by(model)
    if not keys:
        return "none (removed from the registry)"
    return ", ".join("fallback (every task)" if k == "fallback" else k for k in keys)


def runtime_table(ctx: PageContext, data: DeprecationsData) -> pd.DataFrame:
    models = {m for m, row in data.status.items() if is_runtime_deprecated(row)}
    models |= {model for model, _ in data.evidence}
    if ctx.scope.models:
        models &= set(ctx.scope.models)
    rows = []
    for model in sorted(models):
        row = data.status.get(model) if is_runtime_deprecated(data.status.get(model)) else None
        state, detail = state_of(row, ctx.now) if row else ("", "")
        hits = {kind: ev for (m, kind), ev in data.evidence.items() if m == model}
        rows.append(
            {
                "Model": model,
                "Status": state if row else "no current mark",
                "Requests affected": sum(ev.rows for ev in hits.values()),
                "Still listed by": _listed(model),
                "First seen": fmt.when(row["first_seen"] if row else min(ev.first for ev in hits.values())),
                "Last seen": fmt.when(row["last_seen"] if row else max(ev.last for ev in hits.values())),
                "Deprecated errors": hits["deprecated"].rows if "deprecated" in hits else 0,
                "Not found errors": hits["not_found"].rows if "not_found" in hits else 0,
                "Marked as": row["status"] if row else "",
                "Detail": detail or (row or {}).get("detail") or "",
            }
        )
    return pd.DataFrame(rows)


def render(ctx: PageContext) -> None:
    st.header("Deprecations")
    data = load(ctx)
    st.subheader("Seen at runtime")
    st.caption(
        "Models the router was told are decommissioned (deprecated) or that answered 404 (not found). "
        f"Requests affected: attempts with that error in the range ({fmt.plain(ctx.window.label.lower())}); "
        "first/last seen and the mark come from model_status."
    )
    table = runtime_table(ctx, data)
    if table.empty:
        st.success("No model has been found deprecated or missing at runtime.")
    else:
        listed = table[~table["Still listed by"].str.startswith("none")]
        for model in listed["Model"]:
            st.error(
                f"**{fmt.plain(model)}** is still in MODEL_REGISTRY but the provider reported it deprecated or "
                "not found: requests pay a failed call (or a skip) before falling back."
            )
        st.dataframe(
            table,
            hide_index=True,
            key="runtime_deprecations_table",
            column_config={
                c: st.column_config.NumberColumn(format="localized")
                for c in ("Requests affected", "Deprecated errors", "Not found errors")
            },
        )
    st.divider()
    scheduled.render(ctx, data.schedule)

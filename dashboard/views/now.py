"""Right now: the top of Overview, what the person paged at night asks first. Is anything down (a verdict per task
and per model over the last 15 minutes, against each one's usual error rate), when did the last attempt happen,
is an override steering traffic (from the store, this process's environment, and what the routers logged), how
much of today's budget is gone, which models shut down soon, and what the last `taskrouter check` said.

All traffic, whatever the sidebar's filters: those narrow the range below, not the verdict.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import streamlit as st
from pandas.io.formats.style import Styler

from app.deprecations import StoredCheck
from app.store.overrides import DISABLE, FORCE, Override, read_active
from dashboard import fmt, queries, registry, words
from dashboard.budget import BudgetToday, budget_line, load_budget
from dashboard.context import PageContext
from dashboard.queries import Health, Latency, OverrideUse, Scope
from dashboard.status import AVOIDED, disabled_models, override_detail, state_of
from dashboard.timeframe import iso
from dashboard.verdict import (
    DEGRADED,
    DOWN,
    IDLE,
    OK,
    SEVERITY,
    Force,
    Pace,
    Verdict,
    forced_but_unusable,
    model_verdict,
    pace,
    task_verdict,
    top_failure,
    worst,
)
from dashboard.views import scheduled

# Light enough to read the verdict's text on, in the light and the dark theme alike.
COLOUR = {DOWN: "#ef9a9a", DEGRADED: "#ffcc80", IDLE: "#e0e0e0", words.DISABLED: "#cfd8dc", OK: "#a5d6a7"}
WINDOW = timedelta(minutes=15)
BASELINE = timedelta(hours=24)
PACE_WINDOW = timedelta(hours=1)  # "slower than usual": the last hour against the 24 hours before it
PRECEDENCE = (
    "runtime force for the task > runtime force for every task > FORCE_MODEL > runtime default for the "
    "task > DEFAULT_<TASK>_MODEL > the registry"
)


@dataclass(frozen=True, slots=True)
class InEffect:
    """One override, with where it is known from and what the routers did under it in the window."""

    source: str  # "runtime force #12", "FORCE_MODEL", "DEFAULT_FAST_MODEL", ...
    kind: str  # force, default or disable
    model: str
    task: str  # a task, or "every task"
    known_from: str
    detail: str
    attempts: int  # rows logged under it in the window
    last: str | None


@dataclass(frozen=True, slots=True)
class NowData:
    tasks: dict[str, Verdict]
    models: dict[str, Verdict]
    last_attempt: str | None
    overrides: list[InEffect]
    budget: BudgetToday | None
    shutdowns: list[scheduled.ShutdownRow]  # calendar rows in the warning window or past, for models tasks use
    replacements: dict[str, str]  # model -> the calendar's replacement, for every model the calendar knows
    check: StoredCheck | None
    schedule_problem: str | None
    states: dict[str, tuple[str, str]]  # model -> (state, detail) in words.py's vocabulary, for every model known
    causes: list[str]  # the facts that explain the verdict, most telling first
    paces: list[Pace]  # per model with answers in the last hour, slower ones first


def _verdicts(ctx: PageContext, disabled: dict[str, str]) -> tuple[dict[str, Verdict], dict[str, Verdict]]:
    """`disabled`: model -> the detail of its disable override; such a model reads "disabled" with or without
    traffic."""
    start = ctx.now - WINDOW
    cells = queries.health_cells(ctx.conn, iso(start), iso(ctx.now))
    usual = queries.health_cells(ctx.conn, iso(start - BASELINE), iso(start))
    by_task: dict[str, list[Health]] = defaultdict(lambda: [Health(), Health()])
    by_model: dict[str, list[Health]] = defaultdict(lambda: [Health(), Health()])
    for i, source in enumerate((cells, usual)):
        for (task, model), health in source.items():
            by_task[task][i] += health
            by_model[model][i] += health
    for model in disabled:
        by_model.setdefault(model, [Health(), Health()])  # a disabled model without traffic gets its line too
    return (
        {t: task_verdict(*h) for t, h in sorted(by_task.items())},
        {m: model_verdict(*h, disabled=disabled.get(m)) for m, h in sorted(by_model.items())},
    )


def _in_effect(ctx: PageContext, uses: list[OverrideUse], active: list[Override]) -> list[InEffect]:
    seen: dict[str | None, list[OverrideUse]] = defaultdict(list)
    for use in uses:
        seen[use.source].append(use)

    def evidence(source: str | None) -> tuple[int, str | None]:
        found = seen.pop(source, [])
        return sum(u.rows for u in found), max((u.last for u in found), default=None)

    out = [
        InEffect(
            o.source,
            o.kind,
            o.model,
            o.task or ("every task" if o.kind == FORCE else ""),
            "the store",
            override_detail(o, ctx.now),
            *evidence(o.source),
        )
        for o in active
    ]
    if ctx.settings is not None:
        force, defaults = registry.overrides(ctx.settings)
        env = "this dashboard's environment; a router's own may differ"
        if force:
            out.append(InEffect("FORCE_MODEL", FORCE, force, "every task", env, "", *evidence("FORCE_MODEL")))
        for name, model in defaults.items():
            task = name.removeprefix("DEFAULT_").removesuffix("_MODEL").lower()
            out.append(InEffect(name, "default", model, task, env, "", *evidence(name)))
    for source, found in sorted(seen.items(), key=lambda kv: str(kv[0])):  # only the routers know of these
        kind = FORCE if source is None or "force" in source.lower() else "default"
        out.append(
            InEffect(
                source or "forced (source not logged)",
                kind,
                ", ".join(sorted({u.model for u in found})),
                ", ".join(sorted({u.task for u in found})),
                "the routers' attempts",
                "",
                sum(u.rows for u in found),
                max(u.last for u in found),
            )
        )
    return out


def _forces(ctx: PageContext, active: list[Override]) -> list[Force]:
    forces = [Force(o.model, o.task, o.source) for o in active if o.kind == FORCE]
    if ctx.settings is not None and ctx.settings.force_model:
        forces.append(Force(ctx.settings.force_model, None, "FORCE_MODEL"))
    return forces


def _causes(
    ctx: PageContext, active: list[Override], states: dict[str, tuple[str, str]], models: dict[str, Verdict]
) -> list[str]:
    """A force on a model the router cannot call first (it explains everything it touches), then each failing
    model with its most frequent kind of failure."""
    causes = forced_but_unusable(_forces(ctx, active), states)
    failing = [m for m, v in models.items() if v.state in (DOWN, DEGRADED) and v.bad]
    if failing:
        kinds: dict[str, dict[str, int]] = defaultdict(dict)
        scope = Scope(iso(ctx.now - WINDOW), iso(ctx.now))
        for model, outcome, kind, rows in queries.not_answered_by_model(ctx.conn, scope):
            if outcome == "failure" and not words.is_cut_short(kind):
                kinds[model][words.kind(kind)] = kinds[model].get(words.kind(kind), 0) + rows
        for model in sorted(failing, key=lambda m: (-SEVERITY[models[m].state], m)):
            causes.append(top_failure(model, models[model], kinds.get(model, {})))
    return causes


def _paces(ctx: PageContext) -> list[Pace]:
    start = ctx.now - PACE_WINDOW
    recent, before = Scope(iso(start), iso(ctx.now)), Scope(iso(start - BASELINE), iso(start))
    latency_now = {m: a.latency for m, a in queries.answers_by_model(ctx.conn, recent).items()}
    latency_usual = {m: a.latency for m, a in queries.answers_by_model(ctx.conn, before).items()}
    ttft_now = queries.first_token_by_model(ctx.conn, recent)
    ttft_usual = queries.first_token_by_model(ctx.conn, before)

    def get(found: dict[str, Latency], model: str) -> Latency | None:
        return found.get(model)

    paces = [
        pace(m, (get(latency_now, m), get(latency_usual, m)), (get(ttft_now, m), get(ttft_usual, m)))
        for m in latency_now
    ]
    return sorted(paces, key=lambda p: (not p.slower, p.model))


def load(ctx: PageContext) -> NowData:
    active = read_active(ctx.db_path)
    disabled = disabled_models(active)
    status = queries.model_status(ctx.conn)
    states = {
        model: state_of(status.get(model), ctx.now, disabled=disabled.get(model))
        for model in sorted({*status, *disabled, *registry.registry_models()})
    }
    tasks, models = _verdicts(ctx, {m: states[m][1] for m in disabled})
    uses = queries.override_uses(ctx.conn, iso(ctx.now - WINDOW))
    schedule = scheduled.load(ctx)
    shutdowns = [r for r in schedule.rows if r["When"] != "scheduled" and not r["Used by tasks"].startswith("not in")]
    calendar = schedule.calendar
    replacements = {}
    if calendar is not None:
        for entry in calendar.entries():
            replacement = calendar.replacement_for(entry.model, ctx.now.date())
            if replacement:
                replacements[entry.model] = replacement
    return NowData(
        tasks,
        models,
        ctx.last_row,
        _in_effect(ctx, uses, active),
        load_budget(ctx.conn, ctx.db_path, ctx.settings, ctx.now),
        shutdowns,
        replacements,
        schedule.check,
        schedule.problem if ctx.settings is not None else None,
        states,
        _causes(ctx, active, states, models),
        _paces(ctx),
    )


# -- drawing -------------------------------------------------------------------------------------------------


def _age(now: datetime, iso_text: str | None) -> str:
    return "never" if not iso_text else fmt.relative(iso_text, now)


def verdict_table(verdicts: dict[str, Verdict], name: str, unit: str) -> pd.DataFrame:
    """The worst first."""
    ordered = sorted(verdicts.items(), key=lambda kv: (-SEVERITY[kv[1].state], kv[0]))
    return pd.DataFrame(
        [
            {
                name: key,
                "Verdict": v.state,
                unit: v.total,
                "Failed %": v.rate * 100 if v.rate is not None else None,
                "Usual %": v.usual_rate * 100 if v.usual_rate is not None else None,
                "Why": v.reason,
            }
            for key, v in ordered
        ],
        columns=[name, "Verdict", unit, "Failed %", "Usual %", "Why"],
    )


def _coloured(frame: pd.DataFrame) -> Styler:
    return frame.style.map(lambda state: f"background-color: {COLOUR[state]}", subset=["Verdict"])


def _headline(ctx: PageContext, data: NowData) -> None:
    verdicts = [*data.tasks.values(), *data.models.values()]
    state = worst(verdicts)

    def named(state: str) -> str:
        return ", ".join(
            f"{kind} {key}"
            for kind, group in (("task", data.tasks), ("model", data.models))
            for key, v in group.items()
            if v.state == state
        )

    # The facts that explain the verdict go in the same box, right under it: the reader sees the cause with it.
    why = fmt.plain("".join(f"\nWhy: {cause}" for cause in data.causes))
    if state == DOWN:
        degraded = named(DEGRADED)
        text = f"Down: {fmt.plain(named(DOWN))}." + (f" Degraded: {fmt.plain(degraded)}." if degraded else "")
        st.error(text + (f"  \n{why}" if why else ""))
    elif state == DEGRADED:
        st.warning(f"Degraded: {fmt.plain(named(DEGRADED))}." + (f"  \n{why}" if why else ""))
    elif why:  # nothing failed in the window, yet something keeps requests from being answered
        st.error(f"Cannot answer.  \n{why}")
    elif all(v.state in (IDLE, words.DISABLED) for v in verdicts):
        st.warning("No traffic in the last 15 minutes.")
    else:
        st.success("OK: every task and model with traffic in the last 15 minutes is answering as usual.")


def _basis(ctx: PageContext, data: NowData) -> None:
    """What the verdict rests on: below the answers, for the reader who asks how it was judged."""
    st.caption(
        f"Last attempt {fmt.plain(_age(ctx.now, data.last_attempt))} "
        f"({fmt.plain(fmt.when(data.last_attempt))}). Verdicts over all traffic in the last 15 minutes, "
        "whatever the sidebar's filters, against each one's error rate over the 24 hours before: down when "
        "every call or request failed, degraded above twice the usual rate and 5%."
    )


def _overrides(data: NowData) -> None:
    for o in data.overrides:
        if o.kind == FORCE:
            scope = "every task calls" if o.task == "every task" else f"{fmt.plain(o.task)} calls"
            what = f"{scope} **{fmt.plain(o.model)}** only, with no fallback"
        elif o.kind == DISABLE:
            what = f"**{fmt.plain(o.model)}** is taken out of rotation"
        else:
            what = f"**{fmt.plain(o.model)}** goes first for {fmt.plain(o.task)}"
        seen = (
            f"{fmt.count(o.attempts)} attempts under it in the last 15 minutes, the last {fmt.plain(fmt.when(o.last))}"
            if o.attempts
            else "no attempt under it in the last 15 minutes"
        )
        text = f"Override **{fmt.plain(o.source)}**, known from {fmt.plain(o.known_from)}: {what}; {seen}." + (
            f" {fmt.plain(o.detail)}" if o.detail else ""
        )
        if o.kind == FORCE:
            st.error(text)
        else:
            st.warning(text)


def _precedence(data: NowData) -> None:
    if data.overrides:
        st.caption(f"Precedence, highest first: {fmt.plain(PRECEDENCE)}. Changes are listed on the Tasks page.")


def replacement_note(replacement: str, states: dict[str, tuple[str, str]]) -> str:
    """Whether the calendar's replacement can take the traffic today: a replacement the router skips is no
    replacement."""
    state = states.get(replacement, (words.HEALTHY, ""))[0]
    if replacement == "none named":
        return "no replacement named: pick one before the date"
    if state in (words.DISABLED, words.DEPRECATED, words.NOT_FOUND):  # lasting: someone has to act
        return f"NOT USABLE: the replacement is {state}"
    if state in AVOIDED:  # passing: the router calls it again by itself
        return f"usable, {state} right now"
    return "usable"


def _deprecations(data: NowData) -> None:
    for row in data.shutdowns:
        verb = "was shut down" if row["When"] == "shut down" else "shuts down"
        days = row["Days left"]
        when = f"{-days:,} days ago" if days < 0 else "today" if days == 0 else f"in {days:,} days"
        note = replacement_note(row["Replacement"], data.states)
        text = (
            f"**{fmt.plain(row['Model'])}** {verb} on {fmt.plain(row['Shutdown'])} ({when}), used by "
            f"{fmt.plain(row['Used by tasks'])}; replacement: {fmt.plain(row['Replacement'])} ({fmt.plain(note)})."
        )
        (st.error if note.startswith("NOT USABLE") else st.warning)(text)
    if data.schedule_problem:
        st.error(f"The deprecation calendar cannot be read: {fmt.plain(data.schedule_problem)}")


def _check(ctx: PageContext, check: StoredCheck | None) -> None:
    if check is None:
        st.caption("No `taskrouter check` stored in this database.")
        return
    text = (
        f"Last taskrouter check {fmt.plain(_age(ctx.now, check.checked_at))}: {fmt.plain(check.summary)} "
        f"(exit code {fmt.plain(check.exit_code)}). Details on the Deprecations page."
    )
    if check.exit_code == 0:
        st.success(text)
    elif check.exit_code == 1:
        st.warning(text)
    else:
        st.error(text)


def pace_table(paces: list[Pace]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "Model": p.model,
                "Pace": "slower than usual" if p.slower else "as usual",
                "Latency p50 (ms), last hour": p.latency_now,
                "Usual (ms), 24 h before": p.latency_usual,
                "First token p50 (ms), last hour": p.ttft_now,
                "Usual first token (ms)": p.ttft_usual,
                "Answers, last hour": p.calls_now,
            }
            for p in paces
        ],
        columns=[
            "Model",
            "Pace",
            "Latency p50 (ms), last hour",
            "Usual (ms), 24 h before",
            "First token p50 (ms), last hour",
            "Usual first token (ms)",
            "Answers, last hour",
        ],
    )


def _pace(data: NowData) -> None:
    """Which model got slower: each one's last hour against its own previous 24 hours."""
    slower = [p for p in data.paces if p.slower]
    for p in slower:
        st.warning(
            f"**{fmt.plain(p.model)}** is slower than usual: {fmt.plain(p.why)} (last hour against the 24 h before)."
        )
    if data.paces and not slower:
        st.caption("No model is slower than usual: each one's last hour against its own previous 24 hours.")


def render(ctx: PageContext, data: NowData) -> None:
    # No heading of its own: the page's heading says it (views/overview.py), and 1280x800 shows the answers above
    # the fold only without one.
    if ctx.settings_problem:
        st.error(f"The settings do not load: {fmt.plain(ctx.settings_problem)}")
    _headline(ctx, data)
    _overrides(data)
    budget_line(data.budget, ctx.now)
    _deprecations(data)
    _pace(data)
    _check(ctx, data.check)
    _basis(ctx, data)
    _precedence(data)
    pct = {c: st.column_config.NumberColumn(format="%.1f%%") for c in ("Failed %", "Usual %")}
    count = st.column_config.NumberColumn(format="localized")
    why = st.column_config.TextColumn(width="large")
    st.dataframe(
        _coloured(verdict_table(data.tasks, "Task", "Requests")),
        hide_index=True,
        key="task_verdicts",
        column_config={**pct, "Requests": count, "Why": why},
        placeholder=fmt.DASH,
    )
    st.dataframe(
        _coloured(verdict_table(data.models, "Model", "Calls")),
        hide_index=True,
        key="model_verdicts",
        column_config={**pct, "Calls": count, "Why": why},
        placeholder=fmt.DASH,
    )
    if data.paces:
        ms = st.column_config.NumberColumn(format="%.0f")
        st.dataframe(
            pace_table(data.paces),
            hide_index=True,
            key="model_pace",
            placeholder=fmt.DASH,
            column_config={
                "Pace": st.column_config.TextColumn(
                    help="Slower than usual: the median grew by half and by 100 ms at least, with 3 answers or "
                    "more in both periods."
                ),
                "Latency p50 (ms), last hour": ms,
                "Usual (ms), 24 h before": ms,
                "First token p50 (ms), last hour": ms,
                "Usual first token (ms)": ms,
                "Answers, last hour": count,
            },
        )

"""Acting from the dashboard, on the Tasks page: off unless DASHBOARD_ADMIN_TOKEN is set.

An operator who enters the token can force a model (every task or one), end a force, disable or enable a model and
lift a mark, each behind a confirmation and written with its audit row (`via` = dashboard), through the same
store functions as the CLI. Without the token, or before it is entered, the dashboard writes nothing and shows the
CLI command for each action instead. The token is compared in constant time and never shown.
"""

from __future__ import annotations

import contextlib
import hmac
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import streamlit as st

from app.store import CLEARED, CLOSED, clear_model_status, open_database, read_model_status, utc_now_iso
from app.store.overrides import DISABLE, FORCE, Override, clear_overrides, record_audit, set_override, who
from dashboard import fmt

if TYPE_CHECKING:
    from app.config import Settings
    from app.store.backend import Connection
    from app.store.target import Target

CLI = """taskrouter override force MODEL [--task TASK] [--ttl 30m] --reason "..."
taskrouter override clear --kind force [--task TASK] [--model MODEL]
taskrouter model disable MODEL [--ttl 2h] --reason "..."
taskrouter model enable MODEL
taskrouter status --clear MODEL"""


def unlocked(settings: Settings | None, entered: str) -> bool:
    token = settings.dashboard_admin_token if settings is not None else None
    if token is None or not entered:
        return False
    return hmac.compare_digest(entered.encode(), token.get_secret_value().encode())


@contextlib.contextmanager
def _writing(path: Target) -> Iterator[Connection]:
    """The dashboard reads through a read-only connection; an action opens the store for writing, briefly."""
    db = open_database(path)
    try:
        yield db.conn
    finally:
        db.conn.close()


def render(
    path: Target, settings: Settings | None, runtime: Sequence[Override], models: Sequence[str], tasks: Sequence[str]
) -> None:
    st.subheader("Act")
    if settings is None or settings.dashboard_admin_token is None:
        st.caption(
            "This dashboard only reads (set DASHBOARD_ADMIN_TOKEN to act from here). The same from a shell, "
            "for every process on this database:"
        )
        st.code(CLI, language="bash")
        return
    entered = st.text_input(
        "Admin token",
        type="password",
        key="admin_token",
        help="DASHBOARD_ADMIN_TOKEN: every change is written to the audit table",
    )
    if not unlocked(settings, entered):
        if entered:
            st.error("Wrong token: nothing can be changed from here.")
        st.caption("Or from a shell:")
        st.code(CLI, language="bash")
        return
    by = f"dashboard ({who()})"
    left, right = st.columns(2)
    with left:
        _force(path, models, tasks, by)
        _end_force(path, [o for o in runtime if o.kind == FORCE], by)
    with right:
        _disable(path, models, [o for o in runtime if o.kind == DISABLE], by)
        # Read only once the actions are unlocked: a read-only dashboard does not pay for it on every render.
        _lift_mark(path, [r["model"] for r in read_model_status(path) if r["status"] not in (CLEARED, CLOSED)], by)


def _confirmed(key: str, what: str) -> bool:
    return st.checkbox(f"Yes, {fmt.plain(what)}", key=f"{key}_confirm")


def _force(path: Target, models: Sequence[str], tasks: Sequence[str], by: str) -> None:
    with st.form("admin_force"):
        st.markdown("**Force a model** (no fallback while forced)")
        model = st.selectbox("Model", list(models), key="admin_force_model")
        task = st.selectbox("Task", ["every task", *tasks], key="admin_force_task")
        ttl = st.number_input("Expires after (minutes, 0 = when cleared)", min_value=0, value=30, key="admin_force_ttl")
        reason = st.text_input("Why", key="admin_force_reason")
        sure = _confirmed("admin_force", "force it for every process on this database")
        if st.form_submit_button("Force", key="admin_force_go") and _ready(sure, model):
            with _writing(path) as conn:
                made = set_override(
                    conn,
                    FORCE,
                    str(model),
                    task=None if task == "every task" else str(task),
                    ttl_seconds=ttl * 60 if ttl else None,
                    reason=reason,
                    by=by,
                    via="dashboard",
                )
            st.success(
                f"Override #{made.id:d} set: {fmt.plain(made.describe())}. Routers follow it within "
                "MODEL_STATUS_REFRESH_SECONDS."
            )


def _end_force(path: Target, forces: Sequence[Override], by: str) -> None:
    if not forces:
        return
    with st.form("admin_end_force"):
        st.markdown("**End a force override**")
        labels = {f"#{o.id} {o.model} ({o.task or 'every task'})": o for o in forces}
        chosen = st.selectbox("Override", list(labels), key="admin_end_force_which")
        sure = _confirmed("admin_end_force", "end it")
        if st.form_submit_button("End", key="admin_end_force_go") and _ready(sure, chosen):
            o = labels[str(chosen)]
            with _writing(path) as conn:
                cleared = [
                    c
                    for c in clear_overrides(conn, kind=FORCE, model=o.model, by=by, via="dashboard")
                    if c.id == o.id or c.task == o.task
                ]
            st.success(f"Ended {len(cleared):d} override(s) on {fmt.plain(o.model)}.")


def _disable(path: Target, models: Sequence[str], disabled: Sequence[Override], by: str) -> None:
    with st.form("admin_disable"):
        st.markdown("**Disable or enable a model**")
        off = {o.model for o in disabled}
        model = st.selectbox("Model", list(models), key="admin_disable_model")
        reason = st.text_input("Why", key="admin_disable_reason")
        sure = _confirmed("admin_disable", "change it for every process on this database")
        disable = st.form_submit_button("Disable", key="admin_disable_go")
        enable = st.form_submit_button("Enable", key="admin_enable_go")
        if (disable or enable) and _ready(sure, model):
            with _writing(path) as conn:
                if disable:
                    set_override(conn, DISABLE, str(model), reason=reason, by=by, via="dashboard")
                    st.success(f"{fmt.plain(model)} is disabled: every router skips it.")
                elif model in off:
                    clear_overrides(conn, kind=DISABLE, model=str(model), reason=reason, by=by, via="dashboard")
                    st.success(f"{fmt.plain(model)} is enabled again.")
                else:
                    st.info(f"{fmt.plain(model)} is not disabled; nothing was changed.")


def _lift_mark(path: Target, marked: Sequence[str], by: str) -> None:
    if not marked:
        return
    with st.form("admin_lift_mark"):
        st.markdown("**Lift a mark** (deprecated, not found, cooling down, circuit open)")
        model = st.selectbox("Model", list(marked), key="admin_mark_model")
        sure = _confirmed("admin_mark", "lift it: routers call the model again")
        if st.form_submit_button("Lift", key="admin_mark_go") and _ready(sure, model):
            with _writing(path) as conn:
                lifted = clear_model_status(conn, [str(model)], utc_now_iso())
                for name, row in lifted.items():
                    record_audit(
                        conn,
                        "mark cleared",
                        name,
                        detail=f"was {row['status']}: {row['detail'] or ''}",
                        by=by,
                        via="dashboard",
                    )
            st.success(f"Lifted the mark on {fmt.plain(model)}." if lifted else "No mark to lift.")


def _ready(sure: bool, choice: object) -> bool:
    if choice is None:
        st.warning("Choose first.")
        return False
    if not sure:
        st.warning("Tick the confirmation first: nothing was changed.")
        return False
    return True

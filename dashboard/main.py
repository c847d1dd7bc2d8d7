"""taskrouter ops dashboard: the Streamlit entry point (`taskrouter dashboard`, or `streamlit run dashboard/main.py`).

Thin on purpose: it finds the database, draws the sidebar, and hands a PageContext to one module per page.
The database is opened read-only; nothing here writes to it, migrates it or creates it.

Text that came from the database, a provider, a file or the environment is shown as typed, never as Markdown:
a page's own wording may be Markdown, and every value put into it goes through `fmt.plain` (tables show values
as they are). A provider or a proxy writes error messages and model names; Markdown from them could make the
browser fetch a URL or show a link to one.
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

# `streamlit run` puts this file's folder first on sys.path. The folder holding `dashboard` and `app` (a source
# checkout, or site-packages) goes before it, so that both packages import from there; this file is not named
# app.py, which would pass for the `app` package from that first folder.
_ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [_ROOT]:
    if _ROOT in sys.path:
        sys.path.remove(_ROOT)
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402

from app.store import diagnose  # noqa: E402
from dashboard import fmt, queries, registry  # noqa: E402
from dashboard.budget import budget_banner  # noqa: E402
from dashboard.context import make_context  # noqa: E402
from dashboard.filters import Selection, sidebar_filters  # noqa: E402
from dashboard.views import PAGES  # noqa: E402

DB_ENV = "TASKROUTER_DASHBOARD_DB"  # set by `taskrouter dashboard --db`; else ATTEMPTS_DB_PATH, as the router


def database_path() -> Path:
    chosen = os.environ.get(DB_ENV)
    if chosen:
        return Path(chosen)
    settings, _ = registry.current_settings()
    return Path(settings.attempts_db_path) if settings else Path(os.environ.get("ATTEMPTS_DB_PATH", "taskrouter.db"))


def empty_state(path: Path, reason: str) -> None:
    st.title("taskrouter ops")
    st.info(f"{fmt.plain(reason)} {fmt.plain(path)}")
    st.markdown("Produce some traffic against the local simulator (no API key needed), then reload this page:")
    st.code("taskrouter demo", language="bash")
    st.markdown("Or point the dashboard at the database your application writes (its `ATTEMPTS_DB_PATH`):")
    st.code("taskrouter dashboard --db path/to/taskrouter.db", language="bash")


def render_page(path: Path, page: str, selection: Selection) -> None:
    # A fresh connection and a fresh "now" per run: an auto-refresh reruns only this function.
    conn = queries.connect(path)
    if conn is None:
        empty_state(path, "The database is gone:")
        return
    try:
        now = datetime.now(UTC)
        settings = registry.current_settings()  # once per run: each load reads .env
        if page != "Overview":  # Overview shows today's spend whenever a budget is set
            budget_banner(path, settings[0], now)
        PAGES[page].render(make_context(conn, path, selection, now, settings))
    finally:
        conn.close()


def main() -> None:
    st.set_page_config(page_title="taskrouter ops", page_icon="📡", layout="wide", initial_sidebar_state="expanded")
    path = database_path()
    problem = diagnose(path, thorough=False)
    if problem is not None:  # what the routers' log says too; `taskrouter status` runs the full check
        st.title("taskrouter ops")
        st.error(f"The attempts database cannot be read: {fmt.plain(problem)}")
        return
    conn = queries.connect(path)
    if conn is None:
        empty_state(path, "No database yet at")
        return
    try:
        reason = queries.why_empty(conn)
        if reason:
            empty_state(path, reason)
            return
        task_options = sorted(set(queries.distinct_values(conn, "task_type"))
                              | {key.partition(":")[0] for key in registry.registry_tasks()})
        model_options = sorted(set(queries.distinct_values(conn, "model")) | set(registry.registry_models()))
    finally:
        conn.close()

    st.sidebar.title("taskrouter ops")
    page = st.sidebar.radio("Page", list(PAGES), key="page", bind="query-params", label_visibility="collapsed")
    selection = sidebar_filters(task_options, model_options)
    st.sidebar.caption(f"Database (read-only): {fmt.plain(path)}")
    if selection.refresh_seconds:
        st.fragment(render_page, run_every=selection.refresh_seconds)(path, page or "Overview", selection)
    else:
        render_page(path, page or "Overview", selection)


main()

"""taskrouter ops dashboard: the Streamlit entry point (`taskrouter dashboard`, or `streamlit run dashboard/main.py`).

Thin on purpose: it finds the store (a SQLite file or a PostgreSQL database), draws the sidebar, and hands a
PageContext to one module per page. The store is opened read-only; nothing here writes to it, migrates it or
creates it. A PostgreSQL URL's password is never shown: the page names the store by its label.

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

from app.errors import ConfigError  # noqa: E402
from app.store import StoreProblem, backend_for  # noqa: E402
from app.store.target import Target, label_of, locate, store_target  # noqa: E402
from dashboard import admin, fmt, queries, registry  # noqa: E402
from dashboard.budget import budget_banner  # noqa: E402
from dashboard.context import make_context  # noqa: E402
from dashboard.filters import Selection, sidebar_filters  # noqa: E402
from dashboard.views import PAGES  # noqa: E402

# Set by `taskrouter dashboard` (a path or a postgresql:// URL); else the router's own: ATTEMPTS_DB_URL when set,
# else ATTEMPTS_DB_PATH.
DB_ENV = "TASKROUTER_DASHBOARD_DB"


def shown_store() -> Target:
    chosen = os.environ.get(DB_ENV)
    if chosen:
        return locate(chosen)
    settings, _ = registry.current_settings()
    if settings:
        return store_target(settings)
    url = os.environ.get("ATTEMPTS_DB_URL")  # the settings do not load: the page says why, and still shows the store
    return locate(url) if url else Path(os.environ.get("ATTEMPTS_DB_PATH", "taskrouter.db"))


def empty_state(path: Target, reason: str) -> None:
    st.title("taskrouter ops")
    st.info(f"{fmt.plain(reason)} {fmt.plain(label_of(path))}")
    st.markdown("Produce some traffic against the local simulator (no API key needed), then reload this page:")
    st.code("taskrouter demo", language="bash")
    st.markdown(
        "Or point the dashboard at the store your application writes (its `ATTEMPTS_DB_PATH`, or its "
        "`ATTEMPTS_DB_URL` for PostgreSQL):"
    )
    st.code("taskrouter dashboard --db path/to/taskrouter.db", language="bash")


def cannot_read(problem: str | StoreProblem) -> None:
    st.title("taskrouter ops")
    st.error(f"The attempts database cannot be read: {fmt.plain(problem)}")


def render_page(path: Target, page: str, selection: Selection) -> None:
    # A fresh connection and a fresh "now" per run: an auto-refresh reruns only this function.
    try:
        conn = queries.connect(path)
    except StoreProblem as problem:  # the PostgreSQL server went away since the page was drawn
        cannot_read(problem)
        return
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
    try:
        path = shown_store()
    except ConfigError as exc:  # ATTEMPTS_DB_URL without psycopg installed: the message says what to install
        cannot_read(str(exc))
        return
    # A file is looked at before SQLite opens it; a PostgreSQL server is checked by connecting, just below.
    problem = backend_for(path).glance()
    if problem is not None:  # what the routers' log says too; `taskrouter status` runs the full check
        cannot_read(problem)
        return
    try:
        conn = queries.connect(path)
    except StoreProblem as unreachable:
        cannot_read(unreachable)
        return
    if conn is None:
        empty_state(path, "No database yet at")
        return
    try:
        reason = queries.why_empty(conn)
        if reason:
            empty_state(path, reason)
            return
        task_options = sorted(
            set(queries.distinct_values(conn, "task_type"))
            | {key.partition(":")[0] for key in registry.registry_tasks()}
        )
        model_options = sorted(set(queries.distinct_values(conn, "model")) | set(registry.registry_models()))
    finally:
        conn.close()

    st.sidebar.title("taskrouter ops")
    page = st.sidebar.radio("Page", list(PAGES), key="page", bind="query-params", label_visibility="collapsed")
    selection = sidebar_filters(task_options, model_options)
    acting = admin.enabled(path, registry.current_settings()[0])  # then the sidebar must not say read-only
    access = "read; the admin actions on the Tasks page write" if acting else "read-only"
    st.sidebar.caption(f"Database ({access}): {fmt.plain(label_of(path))}")
    if selection.refresh_seconds:
        st.fragment(render_page, run_every=selection.refresh_seconds)(path, page or "Overview", selection)
    else:
        render_page(path, page or "Overview", selection)


main()

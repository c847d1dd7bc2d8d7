"""The dashboard as an ASGI app: dashboard/main.py behind dashboard/guard.py's HostGuard (`taskrouter dashboard` runs
`streamlit run` on this file; its docstring in guard.py says why this way).

`streamlit run` finds `app` below by reading this file, then imports it as a module of its own: its folder
comes first on sys.path, so the folder holding `dashboard` and `app` is put before it, as main.py does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if sys.path[:1] != [_ROOT]:
    if _ROOT in sys.path:
        sys.path.remove(_ROOT)
    sys.path.insert(0, _ROOT)

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402
from streamlit import config as streamlit_config  # noqa: E402

from app.config import load_settings  # noqa: E402
from app.errors import ConfigError  # noqa: E402
from dashboard.guard import HOSTS_ENV, HostGuard, allowed_hosts, token_problem  # noqa: E402


def _allowed() -> tuple[str, ...]:
    """The names `taskrouter dashboard` worked out; else (a plain `streamlit run` of this file) the same rule here."""
    given = os.environ.get(HOSTS_ENV)
    if given:
        return tuple(name for name in given.split(",") if name)
    try:
        configured = load_settings().dashboard_allowed_hosts
    except ConfigError:  # the page says what is wrong; the loopback names and the bind address still answer
        configured = ""
    return allowed_hosts(bind=str(streamlit_config.get_option("server.address") or ""), configured=configured)


def _refuse_a_weak_token() -> None:
    try:
        token = load_settings().dashboard_admin_token
    except ConfigError:  # no settings, no admin actions: nothing for a token to guard
        return
    problem = token_problem(token.get_secret_value()) if token is not None else None
    if problem:
        raise SystemExit(f"taskrouter dashboard: {problem}")


_refuse_a_weak_token()
app = st.App(Path(__file__).with_name("main.py"), middleware=[Middleware(HostGuard, allowed=_allowed())])

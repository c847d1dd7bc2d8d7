"""`taskrouter dashboard`: the ops dashboard (Streamlit), on 127.0.0.1 unless told otherwise.

It reads the store read-only: --db (a SQLite file or a postgresql:// URL), else ATTEMPTS_DB_URL when set, else
ATTEMPTS_DB_PATH. A URL reaches the Streamlit process through its environment, never its command line, and is
printed and shown without its password. Reading needs no login: bind it to another address only behind
something that authenticates.

It answers only to the names it is reached by (loopback, the bind address, DASHBOARD_ALLOWED_HOSTS; any other Host
or Origin gets 403), forbids framing, and refuses to start with a weak DASHBOARD_ADMIN_TOKEN
(dashboard/guard.py).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from pathlib import Path
from typing import Any

from app.config import Settings, load_settings
from app.errors import ConfigError
from app.store.backend import StoreBackend, backend_for
from app.store.target import store_target
from dashboard.guard import HOSTS_ENV, allowed_hosts, is_wildcard, token_problem

DB_ENV = "TASKROUTER_DASHBOARD_DB"  # read by dashboard/main.py
DEFAULT_PORT = 8501


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboard",
        help="open the ops dashboard: usage, reliability, cost and deprecations (Streamlit)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--db",
        default=None,
        help="the store to show: a SQLite file or a postgresql:// URL (default: ATTEMPTS_DB_URL, "
        "else ATTEMPTS_DB_PATH, taskrouter.db); a URL with a password is better kept in "
        "ATTEMPTS_DB_URL than on a command line other users can list",
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    parser.set_defaults(func=func)


def streamlit_command(
    store: StoreBackend, host: str, port: int, *, allowed: tuple[str, ...]
) -> tuple[list[str], dict[str, str]]:
    """The `streamlit run` command line and its environment: headless (no browser opened, no e-mail prompt),
    no usage statistics sent anywhere, no file watcher (an ops tool, not a dev session). It runs dashboard/serve.py,
    the page behind the Host guard. Streamlit's own checks are set too, so that no config.toml turns them off: the
    websocket's Host among `allowed` and its Origin the page's own, the XSRF cookie, no agent API (an HTTP door to
    the widgets)."""
    import dashboard

    script = Path(dashboard.__file__).resolve().parent / "serve.py"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(script),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--server.enableCORS",
        "true",
        "--server.enableXsrfProtection",
        "true",
        "--server.enableAgentApi",
        "false",
    ]
    for name in allowed:
        command += ["--server.allowedHosts", name]
    env = {
        **os.environ,
        DB_ENV: store.locator,
        HOSTS_ENV: ",".join(allowed),
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    }
    return command, env


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def chosen(db: str | None) -> StoreBackend:
    """--db when given (the settings are then not needed: a mistake in them is the page's to show), else the
    router's own store, named so that the Streamlit process finds it (it may not share our working directory)."""
    return backend_for(db if db is not None else store_target(load_settings())).resolved()


def _settings() -> Settings | None:
    """The settings when they load; when they do not, the page says why and offers no actions, so there is no
    token to check and only the loopback names and the bind address are allowed."""
    try:
        return load_settings()
    except ConfigError:
        return None


def func(args: argparse.Namespace) -> int:
    store = chosen(args.db)
    settings = _settings()
    token = settings.dashboard_admin_token if settings is not None else None
    problem = token_problem(token.get_secret_value()) if token is not None else None
    if problem:
        print(f"taskrouter dashboard: {problem}", file=sys.stderr)
        return 2
    allowed = allowed_hosts(bind=args.host, configured=settings.dashboard_allowed_hosts if settings else "")
    if not _is_loopback(args.host):
        print(
            f"taskrouter dashboard: warning: listening on {args.host}, the dashboard has no login; anyone who "
            "can reach this address sees the traffic, errors and costs.",
            file=sys.stderr,
        )
    if store.missing():
        print(
            f"taskrouter dashboard: {store.label} does not exist yet; the page explains how to produce data "
            "(taskrouter demo).",
            file=sys.stderr,
        )
    if is_wildcard(args.host) and settings is not None and not settings.dashboard_allowed_hosts:
        print(
            f"taskrouter dashboard: warning: listening on {args.host}, but only {', '.join(allowed)} are answered; "
            "set DASHBOARD_ALLOWED_HOSTS to the names operators type.",
            file=sys.stderr,
        )
    command, env = streamlit_command(store, args.host, args.port, allowed=allowed)
    print(
        f"taskrouter dashboard: http://{args.host}:{args.port}  (database: {store.label}, read-only; Ctrl-C stops)",
        flush=True,
    )
    # Become Streamlit rather than babysit it: Ctrl-C, SIGTERM from a supervisor and the exit code then reach
    # (and come from) the server itself, and no orphan is left behind if this process is killed.
    os.execve(sys.executable, command, env)
    return 0  # not reached

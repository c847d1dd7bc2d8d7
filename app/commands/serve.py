"""`taskrouter serve`: the router as an OpenAI-compatible HTTP service (app/gateway), under uvicorn.

Every call needs an API key (`taskrouter keys create NAME` prints one); point an OpenAI client at it with the key,
naming a task as the model:
    taskrouter serve
    OpenAI(base_url="http://127.0.0.1:8080/v1", api_key="tr-...").chat.completions.create(model="fast", ...)
`--no-auth` serves without keys, on a loopback host only.
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from typing import TYPE_CHECKING

from app.errors import ConfigError

if TYPE_CHECKING:
    from app.config import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve the router as an OpenAI-compatible HTTP API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default: 8080)")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes serving the port, each with its own router; they share what the store holds (default: 1)",
    )
    parser.add_argument(
        "--grace-seconds",
        type=float,
        default=30.0,
        help="on SIGTERM, how long requests and streams in flight may take to finish (default: 30)",
    )
    parser.add_argument(
        "--no-auth",
        action="store_true",
        help="serve without API keys: anyone who can reach the port spends your provider key; loopback hosts only",
    )
    parser.set_defaults(func=serve)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        return False


def check_exposure(host: str, *, no_auth: bool) -> None:
    """Without keys, the gateway answers anyone who reaches it: allowed only where nobody else can."""
    if no_auth and not is_loopback(host):
        raise ConfigError(
            f"--no-auth is allowed on a loopback host only (127.0.0.1, ::1, localhost), not --host {host}: "
            "anyone who reached the port would spend your provider key"
        )


def serve(args: argparse.Namespace) -> int:
    check_exposure(args.host, no_auth=args.no_auth)
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port must be between 1 and 65535, not {args.port}")
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, not {args.workers}")
    if args.grace_seconds < 0:
        raise ConfigError(f"--grace-seconds must be 0 or more, not {args.grace_seconds:g}")
    import uvicorn
    from fastapi import FastAPI

    from app.config import load_settings
    from app.gateway import create_app

    settings = load_settings()  # a wrong setting stops here, once, before any worker starts
    if not args.no_auth:
        _say_if_no_key(settings)
    # One worker serves the application built here; several each build their own from the environment.
    application: FastAPI | str = (
        create_app(settings, require_keys=not args.no_auth)
        if args.workers == 1
        else f"app.gateway.server:{'from_environment_no_auth' if args.no_auth else 'from_environment'}"
    )
    # uvicorn stops on SIGTERM itself: it stops accepting, lets requests in flight finish, and its lifespan closes
    # the router, writing every attempt row. Then it raises the signal again for the handler it replaced; the work
    # is done by then, so that second delivery is ignored and the exit is a clean 0.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    uvicorn.run(
        application,
        factory=args.workers > 1,
        host=args.host,
        port=args.port,
        workers=args.workers,
        timeout_graceful_shutdown=args.grace_seconds,
        log_level="warning",
    )
    return 0


def _say_if_no_key(settings: Settings) -> None:
    """A gateway with no key to accept refuses every call: said at the start rather than found from the 401s."""
    from app.clock import utc_now_iso
    from app.store.api_keys import read_api_keys
    from app.store.target import label_of, store_target

    where = store_target(settings)
    now = utc_now_iso()
    if not any(k.revoked_at is None and not k.expired(now) for k in read_api_keys(where)):
        print(
            f"taskrouter serve: {label_of(where)} holds no API key in use, so every call will be refused (401): "
            "create one with `taskrouter keys create NAME` (the gateway sees it within seconds), or serve with "
            "--no-auth on a loopback host",
            file=sys.stderr,
        )

"""The dashboard server's front door: which Host and Origin it answers, frame headers, and the admin token's strength.

Why an ASGI middleware through `st.App`: Streamlit 1.67 serves on Starlette under uvicorn, and `st.App(script,
middleware=[...])` is its public way to put middleware in front of every route (the page, its assets and the
websocket). `streamlit run` runs a script that defines `app = st.App(...)` as that ASGI app, so `taskrouter
dashboard` runs dashboard/serve.py (which wraps dashboard/main.py) with the same flags as before. Streamlit's own
options do not cover it: `server.allowedHosts` checks the websocket only (the page itself is still served to any
Host), `server.enableCORS` and `server.corsAllowedOrigins` judge an Origin but not the Host, and no option sets
response headers. A reverse proxy of our own would be a second server to keep alive, to shut down and to keep in
step with Streamlit's websocket. The Streamlit options are still set (by the command) as a second lock on the
websocket.

What is refused, with 403 and nothing else: a request whose Host is not one of the allowed names (localhost,
127.0.0.1, ::1, the bind address and DASHBOARD_ALLOWED_HOSTS), or whose Origin names another host. That is the
defence against DNS rebinding: a page on a foreign name that resolves to this machine sends that name as Host
and Origin. A websocket refused before it is accepted is answered 403 by uvicorn. Every response carries
`X-Frame-Options: DENY` and `Content-Security-Policy: frame-ancestors 'none'`: no other site can frame the page
and trick a click on an action.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("taskrouter.dashboard.guard")

ALWAYS_ALLOWED = ("localhost", "127.0.0.1", "::1")
# Set by `taskrouter dashboard` for the Streamlit process: the allowed names, comma separated.
HOSTS_ENV = "TASKROUTER_DASHBOARD_HOSTS"
FRAME_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
)
MIN_TOKEN_LENGTH = 24
MIN_TOKEN_DISTINCT = 10
MAKE_A_TOKEN = 'python -c "import secrets; print(secrets.token_urlsafe(32))"'
# Refused names logged at most this many times per process: a rebinding page can retry for ever.
_LOGGED_AT_MOST = 100

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def token_problem(token: str) -> str | None:
    """Why DASHBOARD_ADMIN_TOKEN is too weak to guard writes, or None. Says how to make a good one, never what the
    token is or how long it is."""
    if len(token) >= MIN_TOKEN_LENGTH and len(set(token)) >= MIN_TOKEN_DISTINCT:
        return None
    return (
        f"DASHBOARD_ADMIN_TOKEN is too weak to guard the dashboard's actions: it needs at least {MIN_TOKEN_LENGTH} "
        f"characters, {MIN_TOKEN_DISTINCT} of them different. Make one with: {MAKE_A_TOKEN}"
    )


def is_wildcard(address: str) -> bool:
    """0.0.0.0 or ::, every address of the machine: no browser sends it as Host."""
    try:
        return ipaddress.ip_address(address).is_unspecified
    except ValueError:
        return False


def allowed_hosts(*, bind: str, configured: str) -> tuple[str, ...]:
    """The names the dashboard answers to: the loopback names, the bind address (unless it is 0.0.0.0 or ::,
    which no browser sends as Host) and DASHBOARD_ALLOWED_HOSTS (already normalised by the settings)."""
    names = [*ALWAYS_ALLOWED]
    if bind and not is_wildcard(bind):
        names.append(_normalised(bind))
    names.extend(name for name in configured.split(",") if name)
    return tuple(dict.fromkeys(names))


def _normalised(name: str) -> str:
    name = name.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    try:
        return str(ipaddress.ip_address(name))
    except ValueError:
        return name


def host_name(host: str) -> str | None:
    """The name in a Host header (`127.0.0.1:8501`, `[::1]:8501`, `Dash.example.`), or None when it is not one."""
    try:
        parts = urlsplit(f"//{host}")
        parts.port  # noqa: B018 -- raises on a port that is not a number
    except ValueError:
        return None
    if not parts.hostname or parts.username is not None or parts.path or parts.query or parts.fragment:
        return None
    return _normalised(parts.hostname)


def origin_name(origin: str) -> str | None:
    """The host name of an Origin header (`http://127.0.0.1:8501`), or None for `null` or anything else."""
    try:
        parts = urlsplit(origin)
        parts.port  # noqa: B018
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.username is not None:
        return None
    return _normalised(parts.hostname)


def refusal(headers: Iterable[tuple[bytes, bytes]], allowed: tuple[str, ...]) -> str | None:
    """Why a request is refused (the name it came for, for the log), or None to let it through."""
    host: str | None = None
    origins: list[str] = []
    hosts_seen = 0
    for key, value in headers:
        name = key.lower()
        if name == b"host":
            hosts_seen += 1
            host = value.decode("latin-1")
        elif name == b"origin":
            origins.append(value.decode("latin-1"))
    if hosts_seen != 1 or host is None:
        return "a request without exactly one Host header"
    if host_name(host) not in allowed:
        return f"Host {host[:100]!r}"
    for origin in origins:
        if origin_name(origin) not in allowed:
            return f"Origin {origin[:100]!r}"
    return None


class HostGuard:
    """ASGI middleware: refuses foreign Host/Origin (HTTP and websocket), adds the frame headers to responses."""

    def __init__(self, app: ASGIApp, *, allowed: tuple[str, ...]) -> None:
        self.app = app
        self.allowed = allowed
        self._logged: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        why = refusal(scope.get("headers", []), self.allowed)
        if why is not None:
            self._log(why, scope)
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})  # before accept: uvicorn answers 403
            else:
                await _forbidden(send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-frame-options"]
                message["headers"] = [*kept, *FRAME_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _log(self, why: str, scope: Scope) -> None:
        if why in self._logged or len(self._logged) >= _LOGGED_AT_MOST:
            return
        self._logged.add(why)
        client = scope.get("client")
        log.warning(
            "dashboard refused %s from %s: not one of the allowed names %s (DASHBOARD_ALLOWED_HOSTS)",
            why,
            client[0] if client else "an unknown client",
            ", ".join(self.allowed),
        )


async def _forbidden(send: Send) -> None:
    body = b"403 Forbidden: this dashboard answers only to the names in DASHBOARD_ALLOWED_HOSTS and loopback.\n"
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *FRAME_HEADERS,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})

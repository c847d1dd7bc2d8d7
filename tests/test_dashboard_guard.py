"""The dashboard server's front door: the admin token's strength at start, the names it answers to (Host and
Origin, on the page and the websocket), the frame headers, and the per-client sign-in throttle."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import load_settings
from app.errors import ConfigError
from dashboard import throttle
from dashboard.guard import (
    FRAME_HEADERS,
    MAKE_A_TOKEN,
    HostGuard,
    allowed_hosts,
    host_name,
    origin_name,
    refusal,
    token_problem,
)
from dashboard.throttle import LOCKOUT_SECONDS, Throttle, client_of

GOOD_TOKEN = secrets.token_urlsafe(32)
LOOPBACK = ("localhost", "127.0.0.1", "::1")
ROOT = Path(__file__).resolve().parents[1]


# -- the admin token's strength --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weak",
    ["x", "s3cret", "correct-horse-battery", "a" * 64, "ab" * 20, "0123456789" + "0" * 13],
)
def test_a_weak_token_is_named_with_how_to_make_one_and_never_shown(weak: str) -> None:
    problem = token_problem(weak)
    assert problem is not None
    assert "at least 24 characters, 10 of them different" in problem
    assert MAKE_A_TOKEN in problem
    assert weak not in problem
    assert problem == token_problem("x")  # one message for every weak token: it tells nothing about this one


@pytest.mark.parametrize(
    "strong",
    [GOOD_TOKEN, secrets.token_hex(16), "s3cret-admin-token-for-tests"],
    ids=["token_urlsafe", "token_hex", "fixed"],  # not the random values: every xdist worker must collect the same ids
)
def test_a_strong_token_passes(strong: str) -> None:
    assert token_problem(strong) is None


def _run_command(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", "dashboard", "--db", str(tmp_path / "x.db"), "--port", "1"],
        cwd=tmp_path,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.slow  # another process
def test_the_command_refuses_to_start_with_a_weak_token(tmp_path: Path) -> None:
    weak = "hunter2-hunter2"
    done = _run_command(tmp_path, DASHBOARD_ADMIN_TOKEN=weak)
    assert done.returncode == 2
    assert done.stdout == ""  # refused before the "listening on" line, before Streamlit
    assert done.stderr.startswith("taskrouter dashboard: DASHBOARD_ADMIN_TOKEN is too weak")
    assert 'python -c "import secrets; print(secrets.token_urlsafe(32))"' in done.stderr
    assert weak not in done.stderr


def test_a_weak_token_in_dot_env_is_refused_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from app.cli import main

    calls: list[Any] = []
    monkeypatch.setattr(os, "execve", lambda *args: calls.append(args))
    (tmp_path / ".env").write_text("DASHBOARD_ADMIN_TOKEN=changeme\n", encoding="utf-8")
    assert main(["dashboard", "--db", str(tmp_path / "x.db")]) == 2
    assert calls == []


def test_a_strong_token_starts_streamlit_on_the_guarded_script(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append((exe, argv, env)))
    monkeypatch.setenv("DASHBOARD_ADMIN_TOKEN", GOOD_TOKEN)
    monkeypatch.setenv("DASHBOARD_ALLOWED_HOSTS", "Dash.Example.com")
    assert main(["dashboard", "--db", str(tmp_path / "x.db"), "--host", "10.1.2.3"]) == 0
    ((_, argv, env),) = calls
    assert Path(argv[argv.index("run") + 1]) == ROOT / "dashboard" / "serve.py"
    names = ("localhost", "127.0.0.1", "::1", "10.1.2.3", "dash.example.com")
    assert env["TASKROUTER_DASHBOARD_HOSTS"] == ",".join(names)
    assert [argv[i + 1] for i, arg in enumerate(argv) if arg == "--server.allowedHosts"] == list(names)
    assert argv[argv.index("--server.enableCORS") + 1] == "true"
    assert argv[argv.index("--server.enableXsrfProtection") + 1] == "true"
    assert argv[argv.index("--server.enableAgentApi") + 1] == "false"
    assert GOOD_TOKEN not in " ".join(argv)
    printed = capsys.readouterr()
    assert GOOD_TOKEN not in printed.out + printed.err


def test_listening_everywhere_without_names_says_who_is_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    monkeypatch.setattr(os, "execve", lambda *args: None)
    assert main(["dashboard", "--db", str(tmp_path / "x.db"), "--host", "0.0.0.0"]) == 0
    err = capsys.readouterr().err
    assert "only localhost, 127.0.0.1, ::1 are answered; set DASHBOARD_ALLOWED_HOSTS" in err


# -- the allowed names -------------------------------------------------------------------------------------------


def test_allowed_names_are_loopback_the_bind_address_and_the_setting() -> None:
    assert allowed_hosts(bind="127.0.0.1", configured="") == LOOPBACK
    assert allowed_hosts(bind="0.0.0.0", configured="") == LOOPBACK
    assert allowed_hosts(bind="::", configured="") == LOOPBACK
    assert allowed_hosts(bind="[0:0::1]", configured="") == LOOPBACK
    assert allowed_hosts(bind="10.0.0.5", configured="ops.example.com") == (*LOOPBACK, "10.0.0.5", "ops.example.com")


def test_the_setting_is_normalised_and_a_bad_name_says_what_to_write() -> None:
    settings = load_settings(None, dashboard_allowed_hosts=" Ops.Example.COM., [fe80::0001], ops.example.com,")
    assert settings.dashboard_allowed_hosts == "ops.example.com,fe80::1"
    for bad in ("https://ops.example.com", "ops.example.com:8501", "*.example.com", "ops/x", "a b"):
        with pytest.raises(ConfigError, match=r"DASHBOARD_ALLOWED_HOSTS: .*without scheme, port, path or wildcard"):
            load_settings(None, dashboard_allowed_hosts=bad)


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("127.0.0.1:8501", "127.0.0.1"),
        ("LOCALHOST", "localhost"),
        ("[::1]:8501", "::1"),
        ("ops.example.com.", "ops.example.com"),
        ("evil.example:80", "evil.example"),
        ("user@127.0.0.1", None),
        ("127.0.0.1/x", None),
        ("127.0.0.1:port", None),
        ("", None),
    ],
)
def test_host_header_names(header: str, name: str | None) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("http://127.0.0.1:8501", "127.0.0.1"),
        ("https://[::1]", "::1"),
        ("null", None),
        ("file://", None),
        ("http://evil.example", "evil.example"),
    ],
)
def test_origin_header_names(header: str, name: str | None) -> None:
    assert origin_name(header) == name


def _headers(**given: str) -> list[tuple[bytes, bytes]]:
    return [(k.encode(), v.encode()) for k, v in given.items()]


def test_refusal_judges_host_and_every_origin() -> None:
    assert refusal(_headers(host="127.0.0.1:8501"), LOOPBACK) is None
    assert refusal(_headers(host="localhost:8501", origin="http://localhost:8501"), LOOPBACK) is None
    assert refusal(_headers(host="rebound.example:8501"), LOOPBACK) == "Host 'rebound.example:8501'"
    assert refusal(_headers(host="127.0.0.1", origin="http://rebound.example"), LOOPBACK) == (
        "Origin 'http://rebound.example'"
    )
    assert refusal(_headers(host="127.0.0.1", origin="null"), LOOPBACK) == "Origin 'null'"
    assert refusal([], LOOPBACK) == "a request without exactly one Host header"
    two = [(b"host", b"127.0.0.1"), (b"host", b"evil.example")]
    assert refusal(two, LOOPBACK) == "a request without exactly one Host header"


# -- the middleware, as ASGI ---------------------------------------------------------------------------------------


class _Inner:
    """The app behind the guard: records that it was reached and answers 200 with a header of its own."""

    def __init__(self) -> None:
        self.reached: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.reached.append(scope["type"])
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"x-frame-options", b"SAMEORIGIN")]})
            await send({"type": "http.response.body", "body": b"page"})


async def _call(guard: HostGuard, kind: str, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    await guard({"type": kind, "headers": headers, "client": ("203.0.113.9", 5000)}, receive, send)
    return sent


@pytest.mark.anyio
async def test_the_guard_refuses_a_foreign_host_before_the_page_and_the_websocket(
    caplog: pytest.LogCaptureFixture,
) -> None:
    inner = _Inner()
    guard = HostGuard(inner, allowed=LOOPBACK)
    with caplog.at_level(logging.WARNING, logger="taskrouter.dashboard.guard"):
        page = await _call(guard, "http", _headers(host="rebound.example:8501"))
        socket_ = await _call(guard, "websocket", _headers(host="rebound.example:8501"))
        await _call(guard, "http", _headers(host="rebound.example:8501"))  # the same name: logged once
    assert inner.reached == []
    assert page[0]["status"] == 403
    assert set(FRAME_HEADERS) <= set(page[0]["headers"])
    assert b"DASHBOARD_ALLOWED_HOSTS" in page[1]["body"]
    assert socket_ == [{"type": "websocket.close", "code": 1008}]
    refused = [r.getMessage() for r in caplog.records]
    assert refused == [
        "dashboard refused Host 'rebound.example:8501' from 203.0.113.9: not one of the allowed names "
        "localhost, 127.0.0.1, ::1 (DASHBOARD_ALLOWED_HOSTS)"
    ]


@pytest.mark.anyio
async def test_the_guard_passes_an_allowed_host_and_adds_the_frame_headers() -> None:
    inner = _Inner()
    guard = HostGuard(inner, allowed=LOOPBACK)
    page = await _call(guard, "http", _headers(host="127.0.0.1:8501", origin="http://127.0.0.1:8501"))
    await _call(guard, "websocket", _headers(host="localhost:8501", origin="http://localhost:8501"))
    assert inner.reached == ["http", "websocket"]
    headers = page[0]["headers"]
    assert (b"x-frame-options", b"DENY") in headers
    assert (b"x-frame-options", b"SAMEORIGIN") not in headers  # one answer, the strict one
    assert (b"content-security-policy", b"frame-ancestors 'none'") in headers
    assert page[1]["body"] == b"page"


# -- the sign-in throttle -------------------------------------------------------------------------------------------


def test_twenty_wrong_tokens_from_one_client_are_throttled_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    wrong = "not-the-token-" + secrets.token_hex(8)
    gate = Throttle()
    now = 1000.0
    waits: list[float] = []
    refused_unseen = 0
    with caplog.at_level(logging.WARNING, logger="taskrouter.dashboard.sign_in"):
        for _ in range(20):
            wait = gate.check("198.51.100.7", now)
            if wait > 0:  # the caller refuses without comparing; the guesser comes back when told
                refused_unseen += 1
                now += wait
                assert gate.check("198.51.100.7", now) == 0.0
            gate.failed("198.51.100.7", now)
            waits.append(gate.check("198.51.100.7", now))
            now += 0.125  # a scripted guesser: as fast as it is let
    assert waits[:3] == [0.0, 0.0, 0.0]  # three typos are free
    assert waits[3:9] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
    assert waits[9:] == [LOCKOUT_SECONDS] * 11  # from the tenth on, each failure locks out again
    assert refused_unseen == 16
    assert now > 1000 + 10 * LOCKOUT_SECONDS  # twenty guesses took hours, not two seconds
    assert gate.failures("198.51.100.7", now) == 20
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 20
    assert lines[0] == "dashboard sign-in failed from 198.51.100.7 (1 in a row): next attempt in 0 s"
    assert lines[4] == "dashboard sign-in failed from 198.51.100.7 (5 in a row): next attempt in 2 s"
    assert lines[19] == "dashboard sign-in failed from 198.51.100.7 (20 in a row): locked out for 900 s"
    assert all(wrong not in line for line in lines)
    assert all(r.levelno == logging.WARNING for r in caplog.records)


def test_a_right_token_after_lockout_still_waits() -> None:
    gate = Throttle()
    for _ in range(10):
        gate.failed("local", 50.0)
    # The caller's sequence: check first; a wait refuses the attempt, right secret or not.
    assert gate.check("local", 50.0 + 60) == pytest.approx(LOCKOUT_SECONDS - 60)
    assert gate.check("local", 50.0 + LOCKOUT_SECONDS - 1) == pytest.approx(1.0)
    assert gate.check("local", 50.0 + LOCKOUT_SECONDS) == 0.0  # served its time: one attempt may be looked at
    gate.succeeded("local")
    assert gate.check("local", 50.0 + LOCKOUT_SECONDS) == 0.0
    assert gate.failures("local", 50.0 + LOCKOUT_SECONDS) == 0
    gate.failed("local", 50.0 + LOCKOUT_SECONDS)  # a fresh count after a success: a typo is free again
    assert gate.check("local", 50.0 + LOCKOUT_SECONDS) == 0.0


def test_clients_are_counted_apart_and_forgotten_after_a_quiet_hour() -> None:
    gate = Throttle()
    for _ in range(10):
        gate.failed("198.51.100.7", 0.0)
    assert gate.check("203.0.113.5", 0.0) == 0.0
    assert gate.check(client_of(None), 0.0) == 0.0
    assert client_of(None) == "this machine"
    assert client_of("203.0.113.5") == "203.0.113.5"
    assert gate.failures("198.51.100.7", LOCKOUT_SECONDS + throttle.FORGET_AFTER_SECONDS - 1) == 10
    assert gate.failures("198.51.100.7", LOCKOUT_SECONDS + throttle.FORGET_AFTER_SECONDS) == 0


def test_a_flood_of_addresses_cannot_grow_the_table_past_its_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(throttle, "MAX_CLIENTS", 3)
    gate = Throttle()
    for i in range(5):
        gate.failed(f"198.51.100.{i}", float(i))
    assert [gate.failures(f"198.51.100.{i}", 5.0) for i in range(5)] == [0, 0, 1, 1, 1]


# -- a real `taskrouter dashboard` ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    log = (tmp_path / "dashboard.log").open("w")
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "DASHBOARD_ADMIN_TOKEN": GOOD_TOKEN}
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "dashboard", "--db", str(tmp_path / "x.db"), "--port", str(port)],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "dashboard.log").read_text()
            try:
                if httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the dashboard did not answer /_stcore/health within 30 s"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
        assert GOOD_TOKEN not in (tmp_path / "dashboard.log").read_text()


def _upgrade_status(url: str, host: str, origin: str) -> str:
    """The status line a websocket upgrade of Streamlit's stream gets, from a raw handshake."""
    port = int(url.rsplit(":", 1)[1])
    request = (
        "GET /_stcore/stream HTTP/1.1\r\n"
        f"Host: {host}\r\nOrigin: {origin}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Protocol: streamlit\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return answer.split(b"\r\n", 1)[0].decode()


@pytest.mark.slow  # a real dashboard server
def test_a_real_dashboard_refuses_a_foreign_host_on_the_page_and_the_websocket(dashboard_url: str) -> None:
    port = dashboard_url.rsplit(":", 1)[1]
    page = httpx.get(dashboard_url, timeout=10)
    assert page.status_code == 200
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["content-security-policy"] == "frame-ancestors 'none'"

    rebound = httpx.get(dashboard_url, headers={"Host": f"rebound.example:{port}"}, timeout=10)
    assert rebound.status_code == 403
    assert "<html" not in rebound.text.lower()
    assert rebound.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{dashboard_url}/static/index.html", headers={"Host": "rebound.example"}).status_code == 403

    same = f"http://127.0.0.1:{port}"
    assert _upgrade_status(dashboard_url, f"127.0.0.1:{port}", same) == "HTTP/1.1 101 Switching Protocols"
    assert _upgrade_status(dashboard_url, f"rebound.example:{port}", f"http://rebound.example:{port}").startswith(
        "HTTP/1.1 403"
    )
    assert _upgrade_status(dashboard_url, f"127.0.0.1:{port}", f"http://rebound.example:{port}").startswith(
        "HTTP/1.1 403"
    )


@pytest.mark.slow  # starts Streamlit
def test_streamlit_run_of_the_guarded_script_refuses_a_weak_token_too(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard" / "serve.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(_free_port()),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
        ],
        cwd=tmp_path,
        env={**os.environ, "DASHBOARD_ADMIN_TOKEN": "letmein"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "taskrouter dashboard: DASHBOARD_ADMIN_TOKEN is too weak" in done.stderr
    assert "letmein" not in done.stdout + done.stderr

"""One real browser: `taskrouter dashboard` on loopback, headless Chromium driven over the DevTools protocol.

Streamlit renders client-side over a websocket, so the test waits (through CDP) until the script run is over
and the page holds what it should, rather than trusting a fixed delay. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_dashboard import BIG, QWEN, RETIRED, SMALL, seed_database

CHROMIUM = Path("/usr/bin/chromium")
MODELS = (SMALL, BIG, QWEN, RETIRED)
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(),
                                reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)")

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "--window-size=1600,2000"]
# The page is done when Streamlit's "running" widget is gone; textContent includes the data grids' cells.
PAGE_TEXT = ("(document.body && document.querySelector('[data-testid=stApp]') && "
             "!document.querySelector('[data-testid=stStatusWidget]')) ? document.body.textContent : ''")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "browser.db"
    seed_database(db)
    port = _free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "streamlit.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "app", "dashboard", "--db", str(db), "--port", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"dashboard exited: {(tmp_path / 'streamlit.log').read_text()}")
        try:
            return httpx.get(f"{url}/_stcore/health", timeout=1).text == "ok"
        except httpx.HTTPError:
            return False

    try:
        _wait(healthy, 30, "the dashboard to answer /_stcore/health")
        yield url
    finally:
        server.terminate()  # `taskrouter dashboard` exec'd into Streamlit: this stops the server itself
        server.wait(timeout=15)
        log.close()


class Browser:
    """Just enough of the Chrome DevTools Protocol: navigate, evaluate, screenshot."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == call_id:
                assert "error" not in message, message
                return message["result"]

    def text(self) -> str:
        return self.call("Runtime.evaluate", expression=PAGE_TEXT, returnByValue=True)["result"].get("value") or ""

    def open(self, url: str, *expected: str, timeout: float = 45) -> str:
        self.call("Page.navigate", url=url)
        text = _wait(lambda: (t := self.text()) and all(e in t for e in expected) and t, timeout,
                     f"{url} to show {expected}")
        time.sleep(1.5)  # charts draw after the data arrives
        return text

    def screenshot(self, path: Path) -> None:
        # The window is tall enough for these pages; capturing beyond it resizes the viewport, which makes
        # Streamlit fold its sidebar away mid-shot.
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))


@contextmanager
def chromium(profile: Path) -> Iterator[Browser]:
    from websockets.sync.client import connect  # a dependency of Streamlit

    process = subprocess.Popen([str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        active = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        port = _wait(lambda: active.exists() and active.read_text().split()[:1], 30, "Chromium's DevTools port")[0]
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        page = next(p for p in pages if p["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
            yield Browser(ws)
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_dashboard_renders_in_a_real_browser(dashboard_url: str, tmp_path: Path) -> None:
    with chromium(tmp_path / "chromium-profile") as browser:
        models = browser.open(f"{dashboard_url}/?page=Models", "Failures by error kind", *MODELS)
        assert "cooling down" in models and "deprecated" in models
        browser.screenshot(tmp_path / "models.png")

        page = browser.open(f"{dashboard_url}/?page=Deprecations", "Seen at runtime", RETIRED,
                            "Scheduled shutdowns (deprecation calendar)")
        assert "Requests affected" in page and "none (removed from the registry)" in page  # the runtime table
        assert "Latest taskrouter check" in page
        browser.screenshot(tmp_path / "deprecations.png")

        overview = browser.open(dashboard_url, "Success rate", "83.3%")
        assert "Needs attention" in overview and RETIRED in overview
        browser.screenshot(tmp_path / "overview.png")
    for name in ("models.png", "deprecations.png", "overview.png"):
        shot = tmp_path / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, name

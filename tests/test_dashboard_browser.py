"""One real browser: `taskrouter dashboard` on loopback, headless Chromium driven over the DevTools protocol.

Streamlit renders client-side over a websocket, so the test waits (through CDP) until the script run is over
and the page holds what it should, rather than trusting a fixed delay. Screenshots land in the test's tmp dir.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from night_store import BUDGET, FAILED_REQUEST, LONG_MESSAGE, SHUTDOWN_DAYS, seed_night
from test_dashboard import BIG, QWEN, RETIRED, SMALL, seed_database

from app.store import open_database

WORD_JOINER = "\u2060"  # fmt.plain's, invisible: the page's text is compared without it

CHROMIUM = Path("/usr/bin/chromium")
MODELS = (SMALL, BIG, QWEN, RETIRED)
pytestmark = [
    pytest.mark.slow,  # a real browser and a real dashboard server
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (apt-get install -y chromium)"
    ),
]

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]
# The page is done when Streamlit's "running" widget is gone; textContent includes the data grids' cells.
PAGE_TEXT = (
    "(document.body && document.querySelector('[data-testid=stApp]') && "
    "!document.querySelector('[data-testid=stStatusWidget]')) ? document.body.textContent : ''"
)


# Every chart on the page drawn: Vega-Lite puts its canvas (or SVG) in the chart's element once it has rendered.
CHARTS_DRAWN = (
    "Array.from(document.querySelectorAll('[data-testid=stVegaLiteChart]')).every(c => {"
    " const drawn = c.querySelector('canvas, svg'); return !!drawn && drawn.getBoundingClientRect().width > 0; })"
)


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


@contextmanager
def serve_dashboard(db: Path, tmp_path: Path, **env: str) -> Iterator[str]:
    """`taskrouter dashboard` on a free loopback port, with these environment variables added; yields its URL."""
    port = _free_port()
    log_path = tmp_path / "streamlit.log"
    log = log_path.open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "dashboard", "--db", str(db), "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
    )
    url = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        if server.poll() is not None:
            raise AssertionError(f"dashboard exited: {log_path.read_text()}")
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


SOON = (datetime.now(UTC) + timedelta(days=12)).date().isoformat()


def seed_right_now(db: Path, calendar: Path) -> None:
    """What Overview's top answers: summarization failing on qwen in the last minutes (down), a force override in
    the store, and a shutdown in 12 days in the calendar."""
    from app.store.overrides import set_override

    at = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    database = open_database(db)
    with database.conn:
        database["attempts"].insert_all(
            [
                {
                    "request_id": f"now{i}",
                    "task_type": "summarization",
                    "model": QWEN,
                    "provider": "groq",
                    "attempt": 1,
                    "outcome": "failure",
                    "error_kind": "server_error",
                    "status_code": 503,
                    "error_message": "boom",
                    "is_fallback": 0,
                    "forced": 0,
                    "latency_ms": 40,
                    "cost_usd": 0.0,
                    "created_at": at,
                }
                for i in range(3)
            ]
        )
    set_override(database.conn, "force", BIG, task="reasoning", ttl_seconds=3600, reason="incident 42", by="ops@host")
    database.conn.close()
    calendar.write_text(f'[models."{BIG}"]\nshutdown = {SOON}\nreplacements = ["{QWEN}"]\n')


@pytest.fixture
def dashboard_url(tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "browser.db"
    calendar = tmp_path / "calendar.toml"
    seed_database(db)
    seed_right_now(db, calendar)
    with serve_dashboard(db, tmp_path, DAILY_BUDGET_USD="1", DEPRECATIONS_FILE=str(calendar)) as url:
        yield url


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

    def evaluate(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def open(self, url: str, *expected: str, timeout: float = 45) -> str:
        self.call("Page.navigate", url=url)
        text = _wait(
            lambda: (t := self.text()) and all(e in t for e in expected) and t, timeout, f"{url} to show {expected}"
        )
        _wait(lambda: self.evaluate(CHARTS_DRAWN), timeout, f"{url}'s charts to be drawn")  # after the data comes
        return text

    def screenshot(self, path: Path) -> None:
        # The window is tall enough for these pages; capturing beyond it resizes the viewport, which makes
        # Streamlit fold its sidebar away mid-shot.
        shot = self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        kept = os.environ.get("TASKROUTER_ARTIFACTS")  # CI keeps them past the test's tmp dir
        if kept:
            Path(kept).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(kept) / path.name)

    def click(self, x: float, y: float) -> None:
        """A left click at viewport coordinates, as a person's: the data grids draw on a canvas."""
        for event in ("mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", type=event, x=x, y=y, button="left", clickCount=1)


@contextmanager
def chromium(profile: Path, width: int = 1600, height: int = 2000) -> Iterator[Browser]:
    from websockets.sync.client import connect  # a dependency of Streamlit

    process = subprocess.Popen(
        [
            str(CHROMIUM),
            *CHROMIUM_FLAGS,
            f"--window-size={width},{height}",
            f"--user-data-dir={profile}",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        active = profile / "DevToolsActivePort"  # Chromium writes the port it picked here
        port = _wait(lambda: active.exists() and active.read_text().split()[:1], 30, "Chromium's DevTools port")[0]
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        page = next(p for p in pages if p["type"] == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as ws:
            browser = Browser(ws)
            # The page itself gets width x height (the window's frame would take some of it otherwise).
            browser.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False
            )
            yield browser
    finally:
        process.terminate()
        process.wait(timeout=15)


def test_the_dashboard_renders_in_a_real_browser(dashboard_url: str, tmp_path: Path) -> None:
    with chromium(tmp_path / "chromium-profile") as browser:
        models = browser.open(f"{dashboard_url}/?page=Models", "Failures by error kind", *MODELS)
        assert "cooling down" in models and "deprecated" in models
        browser.screenshot(tmp_path / "models.png")

        page = browser.open(
            f"{dashboard_url}/?page=Deprecations",
            "Seen at runtime",
            RETIRED,
            "Scheduled shutdowns (deprecation calendar)",
        )
        assert "Requests affected" in page and "none (removed from the registry)" in page  # the runtime table
        assert "Latest taskrouter check" in page
        browser.screenshot(tmp_path / "deprecations.png")

        # Waited for together: the metrics can come in after the tables.
        browser.open(
            f"{dashboard_url}/?page=Spend",
            "Single-model baseline",
            "Per task and tier",
            "no tier",
            "Escalation rate",
            "Cache hit rate",
        )
        browser.screenshot(tmp_path / "spend.png")

        overview = browser.open(dashboard_url, "Success rate", "55.6%").replace(WORD_JOINER, "")
        assert "Needs attention" in overview and RETIRED in overview
        # The top answers the night-time questions: the verdict, the override in the store, today's spend against
        # the budget, and the shutdown with its replacement.
        assert f"Down: task summarization, model {QWEN}." in overview
        assert (
            f"Override runtime force #1, known from the store: reasoning calls {BIG} only, with no fallback" in overview
        )
        assert "Daily budget: $" in overview and "of $1.0000 spent today (UTC)" in overview
        assert "Projected by midnight UTC: $" in overview
        shutdown = re.search(
            f"{re.escape(BIG)} shuts down on {SOON} \\(in 12 days\\), used by ([^;]*); "
            f"replacement: {re.escape(QWEN)} \\(usable[^)]*\\)\\.",
            overview,
        )
        assert shutdown and "reasoning" in shutdown[1].split(", ")  # the served app has the shipped registry
        browser.screenshot(tmp_path / "overview.png")
    # At 1024 px, with the sidebar open, the Models table shows the columns read first (a data grid leaves the
    # columns out of view out of the DOM) and the chart names each model in full.
    with chromium(tmp_path / "chromium-narrow", 1024) as browser:
        narrow = browser.open(f"{dashboard_url}/?page=Models", "Failures by error kind", "p95 ms", *MODELS)
        for column in ("State", "Calls", "Success %", "Failed", "p50 ms", "p95 ms"):
            assert column in narrow, column
        browser.screenshot(tmp_path / "models-1024.png")
    for name in ("models.png", "deprecations.png", "spend.png", "overview.png", "models-1024.png"):
        shot = tmp_path / name
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, name


# -- text from the database, a provider or a file is never Markdown -------------------------------------------


@contextmanager
def counting_server() -> Iterator[tuple[int, list[str]]]:
    """A loopback HTTP server that records every connection and request it gets: the hostile payloads point at
    it, so any fetch or preconnect a payload caused shows up here."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def answer(self) -> None:
            hits.append(f"{self.command} {self.path}")
            self.send_response(204)
            self.end_headers()

        do_GET = do_HEAD = do_POST = do_OPTIONS = answer

        def log_message(self, format: str, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        def process_request(self, request: Any, client_address: Any) -> None:
            hits.append(f"connection from {client_address[0]}")
            super().process_request(request, client_address)

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hits
    finally:
        server.shutdown()
        server.server_close()


def hostile(field: str, port: int) -> str:
    """What a hostile provider or proxy could put in `field`: every construct Streamlit's Markdown acts on."""
    url = f"http://127.0.0.1:{port}/{field}"
    return (
        f"{field}: ![x]({url}/img) [Click to fix]({url}/link) <img src={url}/html> **bold** _it_ $x^2$ "
        f":red[alarm] :material/warning: :smile: {url}/bare ops@{field}.example"
    )


def seed_hostile(db: Path, port: int, calendar: Path) -> dict[str, str]:
    """Hostile text in every text field the dashboard reads: attempts, model_status, the stored check, and a
    DEPRECATIONS_FILE; returns field -> the text seeded there."""
    from app.deprecations import save_check

    text = {
        f: hostile(f, port)
        for f in (
            "request",
            "task",
            "variant",
            "model",
            "provider",
            "kind",
            "message",
            "detail",
            "summary",
            "checked-model",
            "check-source",
            "problem",
            "calendar-source",
            "replacement",
            "note",
            "tiers",
            "forced",
            "default",
        )
    }
    t = datetime.now(UTC) - timedelta(minutes=20)
    row = {
        "request_id": text["request"],
        "task_type": text["task"],
        "variant": text["variant"],
        "provider": text["provider"],
        "is_fallback": 0,
        "forced": 0,
        "created_at": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    seed_database(db)
    database = open_database(db)
    with database.conn:
        database["attempts"].insert_all(
            [
                {
                    **row,
                    "model": text["model"],
                    "attempt": 1,
                    "outcome": "failure",
                    "error_kind": text["kind"],
                    "status_code": 400,
                    "error_message": text["message"],
                    "latency_ms": 30,
                },
                {
                    **row,
                    "model": text["model"],
                    "attempt": 2,
                    "outcome": "failure",
                    "error_kind": "deprecated",
                    "status_code": 404,
                    "error_message": text["message"],
                    "latency_ms": 20,
                },
                {**row, "model": SMALL, "attempt": 3, "outcome": "success", "latency_ms": 90, "total_tokens": 10},
            ]
        )
        database["model_status"].insert(
            {
                "model": text["model"],
                "status": "deprecated",
                "detail": text["detail"],
                "until": None,
                "first_seen": row["created_at"],
                "last_seen": row["created_at"],
                "hits": 2,
            }
        )
    database.conn.close()
    save_check(
        db,
        {
            "checked_at": row["created_at"],
            "exit_code": 1,
            "errors": 0,
            "warnings": 2,
            "summary": text["summary"],
            "models": {
                text["checked-model"]: {
                    "problems": [{"severity": "warning", "source": text["check-source"], "message": text["problem"]}]
                }
            },
            "problems": [{"severity": "warning", "source": "live", "message": text["problem"]}],
        },
    )
    soon = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    calendar.write_text(
        json.dumps(
            {
                "source": text["calendar-source"],
                "models": {
                    SMALL: {
                        "shutdown": soon,
                        "replacement": text["replacement"],
                        "note": text["note"],
                        "tiers": text["tiers"],
                    },
                    text["forced"]: {"shutdown": soon, "replacement": BIG},
                },
            }
        )
    )
    return text


# Where each page shows the seeded fields: in its Markdown (alerts, captions: fmt.plain) and anywhere (tables too).
# Not shown anywhere: variant, provider; the collapsed calendar (its source) is not in the DOM.
IN_MARKDOWN = {
    "Overview": ("forced", "model", "detail"),
    "Models": ("model", "detail"),
    "Tasks": ("forced", "default"),
    "Deprecations": ("forced", "replacement", "summary"),
    "Failures": (),
}
ON_PAGE = {
    "Overview": IN_MARKDOWN["Overview"],
    "Models": ("model", "detail", "kind"),
    "Tasks": ("forced", "default", "task"),
    "Deprecations": (
        "forced",
        "replacement",
        "summary",
        "model",
        "checked-model",
        "check-source",
        "problem",
        "note",
        "tiers",
    ),
    "Failures": ("task", "model", "kind", "message", "request"),
}
DOM_REPORT = """(() => {
  const port = %d;
  const mine = (u) => (u || '').includes('127.0.0.1:' + port) || (u || '').startsWith('mailto:');
  const md = [...document.querySelectorAll('[data-testid=stMarkdownContainer]')];
  const inMd = (selector) => md.flatMap((m) => [...m.querySelectorAll(selector)]);
  return {
    links: [...document.querySelectorAll('a')].map((a) => a.href).filter(mine),
    images: [...document.querySelectorAll('img, source, image, iframe, video, audio')]
      .map((e) => e.src || e.srcset || e.getAttribute('href') || '').filter(mine),
    katex: document.querySelectorAll('.katex, math').length,
    formatted: inMd('strong, b, em, i').map((e) => e.textContent).filter((t) => t === 'bold' || t === 'it'),
    directives: inMd('.stMarkdownColoredText, .stMarkdownColoredBackground, span[role=img]').length,
    markdown: md.map((m) => m.textContent).join('\\n'),
    page: document.body.textContent,
  };
})()"""


def test_hostile_text_shows_as_typed_on_every_page(tmp_path: Path) -> None:
    problems: dict[str, dict[str, Any]] = {}
    with counting_server() as (port, hits):
        db = tmp_path / "hostile.db"
        calendar = tmp_path / "calendar.json"
        text = seed_hostile(db, port, calendar)
        env = {"DEPRECATIONS_FILE": str(calendar), "FORCE_MODEL": text["forced"], "DEFAULT_FAST_MODEL": text["default"]}
        # Wide enough for every column of the tables (a data grid leaves the columns out of view out of the DOM).
        with serve_dashboard(db, tmp_path, **env) as url, chromium(tmp_path / "chromium-profile", 2600) as browser:
            pages = [
                ("Overview", "Success rate"),
                ("Models", "Failures by error kind"),
                ("Tasks", "Fallback depth"),
                ("Deprecations", "Latest taskrouter check"),
                ("Failures", "failed calls in range"),
            ]
            for page, ready in pages:
                # The Tasks page also picks the hostile task in the sidebar's filter: an option shown as a chip.
                query = "&task=" + quote(text["task"]) if page == "Tasks" else ""
                browser.open(f"{url}/?page={page}{query}", ready)
                deadline = time.monotonic() + 15  # data grids fill their cells a moment after the page settles
                while True:
                    found = browser.call("Runtime.evaluate", expression=DOM_REPORT % port, returnByValue=True)[
                        "result"
                    ]["value"]
                    in_markdown = found.pop("markdown").replace(WORD_JOINER, "")
                    on_page = found.pop("page").replace(WORD_JOINER, "")
                    if all(text[f] in on_page for f in ON_PAGE[page]) or time.monotonic() > deadline:
                        break
                    time.sleep(0.5)
                browser.screenshot(tmp_path / f"hostile-{page.lower()}.png")
                wrong = {what: value for what, value in found.items() if value}
                wrong["not in its Markdown as typed"] = [f for f in IN_MARKDOWN[page] if text[f] not in in_markdown]
                wrong["not on the page as typed"] = [f for f in ON_PAGE[page] if text[f] not in on_page]
                wrong["emoji"] = "😄" in on_page
                wrong["requests to the payloads' server so far"] = list(hits)
                problems[page] = {what: value for what, value in wrong.items() if value}
    assert problems == {page: {} for page in IN_MARKDOWN}, json.dumps(problems, indent=1, ensure_ascii=False)
    assert hits == []  # nothing came in late either


# -- the night of issue 25: six questions from the first screen, or one click ----------------------------------

# Where an element holding `text` is: its top against the window's height (above it: seen without scrolling).
WHERE = """(() => {
  const text = %s;
  const found = [...document.querySelectorAll('[data-testid=stAlert], [data-testid=stCaptionContainer], p')]
    .filter((e) => e.textContent.replace(/\u2060/g, '').includes(text));
  if (!found.length) return null;
  return {top: found[0].getBoundingClientRect().top, height: window.innerHeight};
})()"""
# The failures table's first row, in the middle of its Message cell: where a person clicks.
FIRST_ROW = """(() => {
  const grid = document.querySelector('[data-testid=stDataFrame]');
  const box = grid.getBoundingClientRect();
  return {x: box.left + box.width * 0.4, y: box.top + 35 + 17};
})()"""
CODE = "[...document.querySelectorAll('[data-testid=stCode] code')].map((c) => c.textContent.trim())"
HEADERS = "[...document.querySelectorAll('[data-testid=stDataFrame] [role=columnheader]')].map((h) => h.textContent)"


@pytest.fixture
def night_url(tmp_path: Path) -> Iterator[str]:
    db = tmp_path / "night.db"
    calendar = tmp_path / "calendar.toml"
    seed_night(db, calendar)
    with serve_dashboard(db, tmp_path, DAILY_BUDGET_USD=BUDGET, DEPRECATIONS_FILE=str(calendar)) as url:
        yield url


# Drawn for good: no placeholder left (the sidebar's widgets and the grids fill in after the script's run).
SETTLED = (
    "!document.querySelector('[data-testid=stSkeleton], [data-testid=stSkeletonElement], [data-testid=stStatusWidget]')"
)


def _settled_shot(browser: Browser, path: Path) -> None:
    _wait(lambda: browser.evaluate(SETTLED), 30, "the page to settle")
    browser.screenshot(path)


def _on_first_screen(browser: Browser, text: str) -> None:
    where = browser.evaluate(WHERE % json.dumps(text))
    assert where is not None, f"{text!r} is not on the page"
    assert 0 <= where["top"] < where["height"], f"{text!r} is below the fold: {where}"


def test_the_six_questions_at_1280_by_800(night_url: str, tmp_path: Path) -> None:
    with chromium(tmp_path / "chromium-night", 1280, 800) as browser:
        overview = browser.open(night_url, "Overview: right now", "slower than usual").replace(WORD_JOINER, "")
        _settled_shot(browser, tmp_path / "night-overview.png")
        # 1. What is broken, and why: the explaining fact in the verdict's own box.
        cause = f"Why: The only forced model for every task, {BIG} (runtime force #1), has its circuit open"
        assert "Down: task fast, task reasoning, task summarization" in overview and cause in overview
        assert "nothing can answer every task" in overview
        _on_first_screen(browser, cause)
        # 2. What is forced or disabled, and until when, from now.
        assert re.search(r"Override runtime force #1, known from the store: every task calls \S+ only", overview)
        assert re.search(r"Until \S+ \S+ UTC \(in (29|30) min\); set by dana", overview)
        assert re.search(f"{re.escape(QWEN)} is taken out of rotation.*Until \\S+ \\S+ UTC \\(in 2.0 h\\)", overview)
        _on_first_screen(browser, "Override runtime force #1")
        _on_first_screen(browser, "Override runtime disable #2")
        # 3. The budget, and when it runs out at the current rate.
        assert "$0.8500 of $1.0000 spent today (UTC), 85%" in overview
        assert re.search(r"At this rate it runs out at about \d\d:\d\d UTC \(in \d+ (min|s)\)", overview)
        _on_first_screen(browser, "At this rate it runs out at about")
        # 4. The next shutdown, and whether its replacement is usable.
        shutdown = f"{BIG} shuts down on"
        assert f"(in {SHUTDOWN_DAYS} days)" in overview
        assert f"replacement: {QWEN} (NOT USABLE: the replacement is disabled)" in overview
        _on_first_screen(browser, shutdown)
        # 6. Which model got slower: its last hour against its own previous 24 hours.
        slower = f"{QWEN} is slower than usual: latency p50 1,200 ms against 300 ms usually"
        assert slower in overview
        _on_first_screen(browser, slower)

        # 5. Why request X failed: Failures is one click in the sidebar; a click on its row shows the whole request
        # below, in the same tab.
        browser.open(f"{night_url}/?page=Failures", "failed calls in range", "Error kind")
        assert not browser.evaluate(CODE)  # no request picked yet
        headers = _wait(lambda: browser.evaluate(HEADERS), 30, "the failures table's headers")
        for column in ("UTC", "Error kind", "Message", "Model", "Task"):  # read first, seen at 1280 px
            assert any(column in h for h in headers), (column, headers)
        point = browser.evaluate(FIRST_ROW)
        browser.click(point["x"], point["y"])
        # The whole message, in a block of its own, under the request's facts.
        assert _wait(lambda: browser.evaluate(CODE), 30, "the request's drill-down") == [LONG_MESSAGE]
        detail = browser.text().replace(WORD_JOINER, "")
        assert f"Request {FAILED_REQUEST}" in detail
        assert "provider error (server_error) · HTTP 503 · 900 ms · override: runtime force #1" in detail
        assert "page=Failures" in browser.evaluate("location.href")  # the same tab, the same page
        _settled_shot(browser, tmp_path / "night-failures.png")

        # Every page at 1280x800, kept: the states read the same everywhere.
        for page, ready in (
            ("Models", "Failures by error kind"),
            ("Tasks", "Fallback depth"),
            ("Spend", "Single-model baseline"),
            ("Deprecations", "Latest taskrouter check"),
            ("Request", "Request id"),
        ):
            text = browser.open(f"{night_url}/?page={page}", ready)
            _settled_shot(browser, tmp_path / f"night-{page.lower()}.png")
            if page == "Models":
                assert "disabled" in text and "circuit open" in text
    for page in ("overview", "failures", "models", "tasks", "spend", "deprecations", "request"):
        shot = tmp_path / f"night-{page}.png"
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000, page

"""Alerts (ALERT_WEBHOOK_URL): the real router against the simulator posts each event once to a local receiver,
however often its condition repeats, and again once it has cleared and come back; a receiver that is down, slow or
answers 500 never affects a call and is logged once; no setting, no alert and no thread."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import TEST_KEY, USER

from app.core import ai_models
from app.core import alerts as alerts_module
from app.core.alerts import Alerts
from app.errors import BudgetExceededError
from app.registry.catalog import ModelInfo
from app.simulator import ModelProfile
from app.store import clear_model_status, get_attempt_log, open_database, utc_now_iso
from app.store.overrides import DISABLE, FORCE, clear_overrides, set_override
from app.types import LLMResponse

pytestmark = pytest.mark.anyio

A, B, C = "sim/primary", "sim/secondary", "sim/third"
SECRET_PATH = "/services/T000/B000/webhook-secret-path"


class Receiver:
    """A webhook on 127.0.0.1: records each POSTed body; answers `status`, after `release` is set."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.posts = 0
        self.status = 200
        self.release = threading.Event()
        self.release.set()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.release.wait(30)
                receiver.posts += 1
                if receiver.status == 200:
                    receiver.bodies.append(json.loads(body))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}{SECRET_PATH}"
        # serve_forever looks for shutdown() every poll_interval: its default half second would be each test's wait.
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        self.thread.start()

    @property
    def texts(self) -> list[str]:
        return [body["text"] for body in self.bodies]

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(autouse=True)
def _alerts_closed(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test gets its own senders (no de-duplication carried over) and leaves no sender thread behind."""
    monkeypatch.setattr(alerts_module, "_ALERTS", {})
    ai_models.MODEL_REGISTRY.clear()
    ai_models.MODEL_REGISTRY.update({"pair": [A, B], "solo": [A], "other": [C, B], "fallback": []})
    yield
    for sender in alerts_module._ALERTS.values():
        assert sender.close(10)
    assert not [t for t in threading.enumerate() if t.name == "taskrouter-alerts"]


def delivered(router, timeout: float = 10.0) -> None:
    assert router.alerts.flush(timeout), "alerts not delivered in time"


async def calls(router, n: int, task: str = "pair") -> list[LLMResponse]:
    """`n` calls of `task`, one after the other: their answers."""
    return [await router.execute(task, USER) for _ in range(n)]


def alerts_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "taskrouter.alerts" and r.levelno >= logging.WARNING]


# -- each event, once -------------------------------------------------------------------------------------------


async def test_ten_calls_to_a_decommissioned_model_post_one_alert(sim, make_router, receiver):
    sim.set_profile(A, ModelProfile(retired="decommissioned"))
    router = make_router(alert_webhook_url=receiver.url)
    answers = await asyncio.gather(*(router.execute("pair", USER) for _ in range(5)))  # concurrent: all meet it
    answers += [await router.execute("pair", USER) for _ in range(5)]
    assert {a.model_used for a in answers} == {B}
    delivered(router)
    [text] = receiver.texts
    assert text.startswith(f"[taskrouter {socket.gethostname()}] Model {A} is decommissioned (seen on task pair): ")
    assert "has been decommissioned" in text  # the provider's words
    assert "Every router on this database skips it for good" in text
    assert f'`taskrouter status --clear {A} --reason "why"`' in text and "MODEL_REGISTRY" in text
    assert TEST_KEY not in text


async def test_a_not_found_mark_cleared_and_back_posts_again(sim, make_router, receiver, db_path):
    sim.set_profile(A, ModelProfile(retired="not_found"))
    router = make_router(alert_webhook_url=receiver.url, model_status_refresh_seconds=0)
    await calls(router, 10)
    delivered(router)
    assert len(receiver.texts) == 1
    assert receiver.texts[0].startswith(
        f"[taskrouter {socket.gethostname()}] Model {A} was not found (seen on task pair): "
    )
    assert "Routers skip it until" in receiver.texts[0] and "Check its name in MODEL_REGISTRY" in receiver.texts[0]

    assert get_attempt_log(db_path).flush(30)
    db = open_database(db_path)
    clear_model_status(db.conn, [A], utc_now_iso())  # `taskrouter status --clear`: the condition clears
    db.conn.close()
    await calls(router, 10)  # the refresh drops the mark, the next call meets the 404 again
    delivered(router)
    assert len(receiver.texts) == 2
    assert receiver.texts[1].split(" until ")[0] == receiver.texts[0].split(" until ")[0]


async def test_a_circuit_open_past_the_threshold_posts_once_while_open(sim, make_router, receiver, db_path):
    router = make_router(
        alert_webhook_url=receiver.url,
        alert_circuit_open_seconds=60,
        breaker_cooldown_seconds=600,
        model_status_refresh_seconds=0,
        breaker_open_after_connection_errors=1,
    )
    opened = time.time()
    sim.script(A, {"fault": "disconnect"})
    await calls(router, 10)  # the first opens the circuit; the others skip A
    health = router.health
    health.refresh_if_due(opened + 30)  # an injected clock: half the threshold
    delivered(router)
    assert receiver.texts == []
    for later in (opened + 120, opened + 130):
        health.refresh_if_due(later)
    delivered(router)
    [text] = receiver.texts
    assert f"] Circuit open for model {A} for 2 min: " in text
    assert "1 request in a row saw it lose i" in text
    assert f'`taskrouter status --clear {A} --reason "why"` lifts it' in text

    assert get_attempt_log(db_path).flush(30)
    db = open_database(db_path)
    clear_model_status(db.conn, [A], utc_now_iso())  # closed by ops: a new opening is a new event
    db.conn.close()
    health.refresh_if_due(opened + 140)  # the clock stays injected: a refresh is due after the last one
    assert (await router.execute("pair", USER)).model_used == A
    reopened = time.time()
    sim.script(A, {"fault": "disconnect"})
    await calls(router, 3)
    health.refresh_if_due(reopened + 200)
    delivered(router)
    assert len(receiver.texts) == 2 and f"Circuit open for model {A} for 3 min" in receiver.texts[1]


async def test_a_circuit_that_opens_and_closes_is_not_posted(sim, make_router, receiver):
    # No cooldown: each opening is followed by a probe that answers and closes it again.
    router = make_router(
        alert_webhook_url=receiver.url,
        alert_circuit_open_seconds=1,
        breaker_cooldown_seconds=0,
        model_status_refresh_seconds=0,
    )
    sim.script(A, *[{"fault": "disconnect"}, "ok"] * 5)
    models = [(await router.execute("pair", USER)).model_used for _ in range(10)]
    assert models == [B, A] * 5  # opened five times, closed five times
    router.health.refresh_if_due(time.time() + 3600)
    delivered(router)
    assert receiver.texts == []


async def test_the_budget_alert_ratio_and_the_spent_budget_post_once_each(sim, make_router, receiver):
    ai_models.MODEL_CATALOG[A] = ModelInfo(input_price=100.0, output_price=0.0)  # $0.01 per 100-token prompt
    sim.set_profile(A, ModelProfile())
    for _ in range(10):
        sim.script(A, {"fault": "ok", "prompt_tokens": 100, "completion_tokens": 5})
    router = make_router(alert_webhook_url=receiver.url, daily_budget_usd=0.05, budget_alert_ratio=0.5)
    await calls(router, 2, "solo")
    delivered(router)
    assert receiver.texts == []
    await calls(router, 3, "solo")  # $0.03: past half; $0.05: spent
    for _ in range(5):
        with pytest.raises(BudgetExceededError):
            await router.execute("solo", USER)
    delivered(router)
    ratio, spent = receiver.texts
    assert "] Daily budget alert: $0.0300 of $0.05 spent today (60%, BUDGET_ALERT_RATIO=0.5). " in ratio
    assert "raise DAILY_BUDGET_USD before calls are refused" in ratio
    assert "] Daily budget spent: $0.0500 of $0.05 today. Every call now raises BudgetExceededError" in spent


async def test_a_registry_model_entering_the_retirement_window_posts_once(sim, make_router, receiver, tmp_path):
    today = datetime.now(UTC).date()
    calendar = tmp_path / "deprecations.toml"
    calendar.write_text(
        f'[models."{A}"]\nshutdown = {today + timedelta(days=10)}\nreplacements = ["{B}"]\n\n'
        f'[models."{C}"]\nshutdown = {today + timedelta(days=40)}\nreplacements = ["{B}"]\n'
    )
    settings = {"alert_webhook_url": receiver.url, "deprecations_file": calendar, "retirement_warning_days": 30}
    router = make_router(**settings)
    make_router(**settings)  # another router of the process: the same event, not posted twice
    await calls(router, 3)
    router.health.refresh_if_due(time.time() + 60)  # a later refresh the same day: nothing new
    delivered(router)
    [a_soon] = receiver.texts
    assert (
        f"] Deprecation radar: model={A} tasks=pair,solo shuts down on {today + timedelta(days=10)} (in 10 days); "
        f"replacement: {B}. Move its tasks to the replacement in MODEL_REGISTRY; `taskrouter check` lists every "
        "use."
    ) in a_soon

    in_20_days = time.time() + 20 * 86400  # an injected clock: the first refresh of a later day
    router.health.refresh_if_due(in_20_days)
    router.health.refresh_if_due(in_20_days + 60)
    delivered(router)
    assert len(receiver.texts) == 3
    retired, c_soon = sorted(receiver.texts[1:], key=lambda t: C in t)
    assert f"model={A} tasks=pair,solo was shut down on {today + timedelta(days=10)}" in retired
    assert "Take it out of MODEL_REGISTRY" in retired
    assert f"model={C} tasks=other shuts down on {today + timedelta(days=40)} (in 20 days)" in c_soon


async def test_an_override_set_and_cleared_posts_once_each(sim, make_router, receiver, db_path):
    db = open_database(db_path)
    set_override(db.conn, DISABLE, C, reason="before start")  # in effect when the router starts: no change
    router = make_router(alert_webhook_url=receiver.url, model_status_refresh_seconds=0)
    await calls(router, 2)
    set_override(db.conn, FORCE, B, task="pair", reason="incident 42")
    assert {a for a in [(await router.execute("pair", USER)).model_used for _ in range(10)]} == {B}
    clear_overrides(db.conn, kind=FORCE, reason="resolved")
    assert {(await router.execute("pair", USER)).model_used for _ in range(10)} == {A}
    db.conn.close()
    delivered(router)
    in_effect, ended = receiver.texts
    assert f"] Runtime override in effect: force {B} for pair, set by " in in_effect
    assert (
        '(incident 42). Routing changed without a restart; undo: `taskrouter override end 2 --reason "why"`.'
        in in_effect
    )
    assert f"] Runtime override ended (cleared or expired): force {B} for pair, " in ended
    assert "`taskrouter override list` shows what is left" in ended


async def test_a_provider_message_is_posted_with_no_mention_link_image_or_second_line(sim, make_router, receiver):
    """The message is the provider's (or a proxy's): it must not page a channel, hide a link, show an image or
    forge a line of its own, on any receiver (Slack, Mattermost, Teams, Discord)."""
    hostile = (
        "The model `x` has been decommissioned @channel <!here> <@U024BE7LH> see [the notice](https://evil.example/x) "
        "![](https://evil.example/p.png) <https://evil.example|docs>\nAll clear: nothing to do"
    )
    sim.script(A, {"fault": "decommissioned", "message": hostile})
    router = make_router(alert_webhook_url=receiver.url)
    assert (await router.execute("pair", USER)).model_used == B
    delivered(router)
    [body] = receiver.bodies
    assert list(body) == ["text"]
    assert body["text"] == (
        f"[taskrouter {socket.gethostname()}] Model {A} is decommissioned (seen on task pair): The model 'x' has "
        "been decommissioned ＠channel ‹!here› ‹＠U024BE7LH› see [the notice] (hxxps[:]//evil[.]example/x) ! [] "
        "(hxxps[:]//evil[.]example/p[.]png) ‹hxxps[:]//evil[.]example¦docs› ⏎ All clear: nothing to do. Every router "
        f"on this database skips it for good. Replace it in MODEL_REGISTRY (`taskrouter check` names the "
        f'replacement); if the mark is wrong, `taskrouter status --clear {A} --reason "why"`.'
    )


async def test_an_operators_reason_and_name_are_posted_neutralised_and_without_a_key(
    sim, make_router, receiver, db_path
):
    router = make_router(alert_webhook_url=receiver.url, model_status_refresh_seconds=0)
    await calls(router, 1)
    db = open_database(db_path)
    reason = f"@here see https://status.evil.example/x (key {TEST_KEY})\nAll clear"
    set_override(db.conn, FORCE, B, task="pair", reason=reason, by="<!channel>")
    db.conn.close()
    assert (await router.execute("pair", USER)).model_used == B
    delivered(router)
    [text] = receiver.texts
    assert f"] Runtime override in effect: force {B} for pair, set by ‹!channel› at " in text
    assert "(＠here see hxxps[:]//status[.]evil[.]example/x (key [redacted]) ⏎ All clear). Routing changed" in text
    assert 'undo: `taskrouter override end 1 --reason "why"`.' in text


# -- a receiver that fails never affects a call -------------------------------------------------------------------


@pytest.mark.slow
async def test_a_receiver_answering_500_is_retried_logged_once_and_never_slows_a_call(
    sim, make_router, receiver, caplog
):
    caplog.set_level(logging.WARNING, "taskrouter.alerts")
    receiver.status = 500
    sim.set_profile(A, ModelProfile(retired="decommissioned"))
    sim.set_profile(C, ModelProfile(retired="not_found"))
    router = make_router(alert_webhook_url=receiver.url)
    receiver.release.clear()  # no post is answered until every call has returned: none of them waited for one
    answers = await calls(router, 10) + await calls(router, 5, "other")
    assert {a.model_used for a in answers} == {B} and receiver.posts == 0
    receiver.release.set()
    delivered(router)
    assert receiver.posts == 6  # two alerts, three tries each
    assert receiver.texts == []
    [line] = alerts_log(caplog)
    assert line == (
        f"alerts: could not post to http://127.0.0.1:{receiver.server.server_port} (it answered 500); the "
        "alert is dropped, and further failures are not logged until a post succeeds"
    )
    receiver.status = 200
    sim.set_profile(B, ModelProfile(retired="not_found"))
    with pytest.raises(Exception):  # noqa: B017 (every model of the chain is gone: what matters is the alert)
        await router.execute("pair", USER)
    delivered(router)
    assert len(receiver.texts) == 1 and f"Model {B} was not found" in receiver.texts[0]
    assert alerts_log(caplog)[1:] == [
        f"alerts: http://127.0.0.1:{receiver.server.server_port} takes alerts again (2 dropped meanwhile)"
    ]
    assert SECRET_PATH not in caplog.text


@pytest.mark.slow
async def test_a_receiver_that_is_down_is_logged_once_and_every_call_is_answered(sim, make_router, caplog):
    caplog.set_level(logging.WARNING, "taskrouter.alerts")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    sim.set_profile(A, ModelProfile(retired="decommissioned"))
    router = make_router(alert_webhook_url=f"http://127.0.0.1:{port}{SECRET_PATH}")
    assert {a.model_used for a in await calls(router, 10)} == {B}
    delivered(router)
    assert router.alerts.dropped == 1 and router.alerts.sent == 0
    [line] = alerts_log(caplog)
    assert line.startswith(f"alerts: could not post to http://127.0.0.1:{port} (") and "refused" in line
    assert SECRET_PATH not in caplog.text


async def test_a_slow_receiver_never_holds_a_call(sim, make_router, receiver):
    receiver.release.clear()  # it reads the alert and answers nothing until released
    sim.set_profile(A, ModelProfile(retired="decommissioned"))
    async with make_router(alert_webhook_url=receiver.url) as router:
        assert {a.model_used for a in await calls(router, 10)} == {B}
        assert receiver.texts == [] and receiver.posts == 0  # every call answered while the post is still held
        receiver.release.set()
    # aclose() gave the queued alert its time and ended the sender thread.
    assert len(receiver.texts) == 1 and f"Model {A} is decommissioned" in receiver.texts[0]
    assert not [t for t in threading.enumerate() if t.name == "taskrouter-alerts"]


async def test_no_setting_no_alert_and_no_thread(sim, make_router, receiver):
    sim.set_profile(A, ModelProfile(retired="decommissioned"))
    router = make_router()
    assert router.alerts is None and router.health.alerts is None
    await calls(router, 10)
    assert receiver.posts == 0
    assert not [t for t in threading.enumerate() if t.name == "taskrouter-alerts"]


# -- the sender itself ------------------------------------------------------------------------------------------


def test_the_queue_is_bounded_and_the_text_carries_no_key(receiver, caplog):
    caplog.set_level(logging.WARNING, "taskrouter.alerts")
    receiver.release.clear()
    sender = Alerts(receiver.url, max_queued=5)
    sender.remember(TEST_KEY)
    # The receiver holds the first post: a notify that waited for room would return only after a post was answered.
    queued = [sender.notify(f"k{i}", f"event {i}: <!channel> Authorization: Bearer {TEST_KEY}") for i in range(20)]
    assert receiver.posts == 0
    assert sender.notify("k0", "again") is False  # the same key: not posted twice
    receiver.release.set()
    assert sender.flush(10) and sender.close(10)
    assert 5 <= queued.count(True) <= 6  # five waiting, maybe one already taken by the sender
    assert len(receiver.texts) == queued.count(True) and sender.dropped == 20 - queued.count(True)
    assert alerts_log(caplog)[0].startswith("alerts: 5 alerts are waiting for http://127.0.0.1:")
    for text in receiver.texts:
        assert TEST_KEY not in text and "‹!channel›" in text and "<" not in text
    sender.resolve("k0")  # the condition cleared: it may be posted again
    assert sender.notify("k0", "back") and sender.close(10)
    assert receiver.texts[-1].endswith("] back")


def test_a_webhook_url_must_be_http_and_is_never_shown(monkeypatch):
    from app.config import load_settings
    from app.errors import ConfigError

    monkeypatch.setenv("ALERT_WEBHOOK_URL", "hooks.slack.com/services/T/B/secret-token")
    with pytest.raises(ConfigError, match="ALERT_WEBHOOK_URL: Value error, must start with http") as caught:
        load_settings(env_file=None)
    assert "secret-token" not in str(caught.value)
    monkeypatch.setenv("ALERT_WEBHOOK_URL", " ")
    assert load_settings(env_file=None).alert_webhook_url is None
    monkeypatch.setenv("ALERT_WEBHOOK_URL", "https://hooks.slack.com/services/T/B/secret-token")
    assert "secret-token" not in repr(load_settings(env_file=None))

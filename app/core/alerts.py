"""Alerts: one line posted to ALERT_WEBHOOK_URL (Slack-compatible JSON, `{"text": ...}`) when something happens in
this process that an operator should act on: a model marked deprecated or not found, a circuit open for longer
than ALERT_CIRCUIT_OPEN_SECONDS, the daily budget at its alert ratio or spent, a registry model entering the
retirement warning window, a runtime override set or ended.

`notify(key, text)` posts once per key until `resolve(key)` says the condition cleared: the same event seen by
every failing call, or by every router of the process, is one post. Posts go out from a daemon thread fed by a
bounded queue, so nothing here blocks or fails a call. A receiver that is down, slow or answers an error gets a
few tries with a backoff, then the alert is dropped; that is logged once per run of failures, naming only the
receiver's host (the path of a Slack webhook is its secret).

Every text from outside that an alert quotes (a provider's message, an operator's reason, a calendar entry) is
neutralised for every chat convention at once (app/text.py): the receiver's kind is not configured, and the
Slack-compatible body reaches Slack, Mattermost, Teams and Discord alike. Such a text cannot mention a channel,
show a link or an image, or forge a second line; the whole post is one line.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import queue
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from app.deprecations import DeprecationCalendar, RetirementNotice, retirement_notices
from app.providers.redaction import redact
from app.text import Flavour, chat_line, neutralise

if TYPE_CHECKING:
    from app.config import Settings
    from app.core.model_health import ModelHealth
    from app.store.overrides import Override

logger = logging.getLogger("taskrouter.alerts")

TIMEOUT_SECONDS = 5.0  # per post: connect, send, the receiver's answer
TRIES = 3  # per alert, for a receiver that is down or answers 429 / 5xx
BACKOFF_SECONDS = 0.5  # before the second try; doubled before each further one
MAX_QUEUED = 100  # alerts waiting for a slow receiver; beyond this, new ones are dropped
CLOSE_SECONDS = 5.0  # at exit or aclose: how long the queued alerts may take to go out
FLAVOUR: Flavour = "any"  # the receiver's kind is not configured: safe for each of them


class _Flush:
    __slots__ = ("done",)

    def __init__(self) -> None:
        self.done = threading.Event()


_STOP = object()


class Alerts:
    def __init__(
        self,
        url: str,
        *,
        timeout: float = TIMEOUT_SECONDS,
        tries: int = TRIES,
        backoff: float = BACKOFF_SECONDS,
        max_queued: int = MAX_QUEUED,
    ) -> None:
        self._url = url
        self.receiver = _origin(url)  # what logs may show of the URL
        self._timeout = timeout
        self._tries = max(1, tries)
        self._backoff = backoff
        self._queue: queue.Queue[object] = queue.Queue(max_queued)
        self._posted: set[str] = set()  # keys posted whose condition has not cleared since
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()  # one try per queued alert, no backoff: the process is ending
        self._failing = False  # the last alert was dropped: the next failures are not logged again
        self._full = False  # the queue overflowed: said once until a post succeeds
        self._source = f"[taskrouter {socket.gethostname()}] "
        self.sent = 0
        self.dropped = 0

    def remember(self, secret: str | None) -> None:
        """A key that must never appear in a post (texts are redacted of known key shapes anyway)."""
        if secret and secret not in self._secrets:
            self._secrets = (*self._secrets, secret)

    def notify(self, key: str, text: str) -> bool:
        """Post `text` unless `key` was posted and not resolved since. True when it was queued."""
        with self._lock:
            if key in self._posted:
                return False
            self._posted.add(key)
        text = chat_line(redact(self._source + text, *self._secrets))
        logger.info("Alert: %s", text)
        body = json.dumps({"text": text}).encode()
        try:
            self._queue.put_nowait(body)
        except queue.Full:
            self.dropped += 1
            if not self._full:
                self._full = True
                logger.warning(
                    "alerts: %d alerts are waiting for %s already; new ones are dropped until it takes them",
                    self._queue.maxsize,
                    self.receiver,
                )
            return False
        self._start()
        return True

    def resolve(self, key: str) -> None:
        """The condition behind `key` cleared: if it comes back, it is posted again."""
        with self._lock:
            self._posted.discard(key)

    def flush(self, timeout: float = CLOSE_SECONDS) -> bool:
        """Wait until every alert queued so far is posted or dropped. False if the timeout ran out."""
        marker = _Flush()
        try:
            self._queue.put(marker, timeout=timeout)
        except queue.Full:
            return False
        self._start()
        return marker.done.wait(timeout)

    def close(self, timeout: float = CLOSE_SECONDS) -> bool:
        """Give the queued alerts one try each within `timeout`, then end the sender thread (a later alert starts
        it again). False, with one line saying so, when the receiver did not take them in time."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return True
        deadline = time.monotonic() + timeout
        self._closing.set()
        with contextlib.suppress(queue.Full):  # a stuck receiver and a full queue: the join below times out
            self._queue.put(_STOP, timeout=timeout)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            logger.warning(
                "alerts: %s did not take the last alerts within %gs; %d are dropped",
                self.receiver,
                timeout,
                self._queue.qsize(),
            )
            return False
        with self._lock:
            self._thread = None
            self._closing.clear()
        return True

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="taskrouter-alerts", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, _Flush):
                item.done.set()
            elif isinstance(item, bytes):
                self._deliver(item)

    def _deliver(self, body: bytes) -> None:
        why = "not tried"
        for attempt in range(self._tries):
            if attempt and self._closing.wait(self._backoff * 2 ** (attempt - 1)):
                break
            why, retry = self._post(body)
            if not why:
                self.sent += 1
                if self._failing or self._full:
                    logger.warning("alerts: %s takes alerts again (%d dropped meanwhile)", self.receiver, self.dropped)
                self._failing = self._full = False
                return
            if not retry or self._closing.is_set():
                break
        self.dropped += 1
        if not self._failing:
            self._failing = True
            logger.warning(
                "alerts: could not post to %s (%s); the alert is dropped, and further failures are not "
                "logged until a post succeeds",
                self.receiver,
                why,
            )

    def _post(self, body: bytes) -> tuple[str, bool]:
        """('', _) when the receiver took it; otherwise why not, and whether another try may help."""
        request = urllib.request.Request(
            self._url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", "User-Agent": "taskrouter-alerts"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._timeout):
                return "", False
        except urllib.error.HTTPError as exc:
            exc.close()
            return f"it answered {exc.code}", exc.code == 429 or exc.code >= 500
        except TimeoutError:
            return f"no answer within {self._timeout:g}s", True
        except urllib.error.URLError as exc:
            # Only the reason's own words: an exception's text may hold the URL, whose path is a secret.
            reason = exc.reason
            if isinstance(reason, TimeoutError):
                return f"no answer within {self._timeout:g}s", True
            return (
                reason.strerror or type(reason).__name__ if isinstance(reason, OSError) else "the URL could not be used"
            ), True
        except Exception as exc:  # a malformed answer, a broken socket: never let the sender thread die
            return type(exc).__name__, True


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def _outside(text: str) -> str:
    """A text this program did not write, as an alert may quote it: no key shape (redacted before neutralising,
    which would break a URL's password out of the pattern that finds it), nothing a chat receiver acts on."""
    return neutralise(redact(text), flavour=FLAVOUR)


_ALERTS: dict[str, Alerts] = {}
_ALERTS_LOCK = threading.Lock()


def alerts_from(settings: Settings) -> Alerts | None:
    """The process's sender for ALERT_WEBHOOK_URL (one per URL, so that routers of one process post an event
    once), or None when the setting is unset."""
    if settings.alert_webhook_url is None:
        return None
    url = settings.alert_webhook_url.get_secret_value()
    with _ALERTS_LOCK:
        alerts = _ALERTS.get(url)
        if alerts is None:
            alerts = _ALERTS[url] = Alerts(url)
    alerts.remember(settings.api_key())
    return alerts


@atexit.register
def _close_all_at_exit() -> None:
    deadline = time.monotonic() + CLOSE_SECONDS
    for alerts in list(_ALERTS.values()):
        alerts.close(max(0.1, deadline - time.monotonic()))


# -- what each alert says: what happened, to which model or task, and what to do ---------------------------------


def mark_text(model: str, deprecated: bool, detail: str, task: str, until: float | None) -> str:
    model, detail, task = _outside(model), _outside(detail), _outside(task)
    seen = f" (seen on task {task})" if task else ""
    if deprecated or until is None:
        return (
            f"Model {model} is decommissioned{seen}: {detail}. Every router on this database skips it for good. "
            f"Replace it in MODEL_REGISTRY (`taskrouter check` names the replacement); if the mark is wrong, "
            f'`taskrouter status --clear {model} --reason "why"`.'
        )
    return (
        f"Model {model} was not found{seen}: {detail}. Routers skip it until "
        f"{datetime.fromtimestamp(until, UTC):%Y-%m-%d %H:%M} UTC. Check its name in MODEL_REGISTRY and "
        f"DEFAULT_*_MODEL (a typo, no access, or a retirement: `taskrouter check`)."
    )


def circuit_text(model: str, open_seconds: float, detail: str) -> str:
    model, detail = _outside(model), _outside(detail)
    return (
        f"Circuit open for model {model} for {open_seconds / 60:.0f} min: {detail}. Routers skip it and use the "
        f"rest of each chain. Check the provider's status; `taskrouter status` shows the breaker, "
        f'`taskrouter status --clear {model} --reason "why"` lifts it.'
    )


def budget_text(spent: float, limit: float, ratio: float | None) -> str:
    if ratio is not None:
        return (
            f"Daily budget alert: ${spent:.4f} of ${limit:.2f} spent today ({100 * spent / limit:.0f}%, "
            f"BUDGET_ALERT_RATIO={ratio:g}). Check what spends (dashboard, Budget) or raise DAILY_BUDGET_USD "
            f"before calls are refused."
        )
    return (
        f"Daily budget spent: ${spent:.4f} of ${limit:.2f} today. Every call now raises BudgetExceededError "
        f"until 00:00 UTC; raise DAILY_BUDGET_USD to resume."
    )


def override_text(override: Override, in_effect: bool) -> str:
    # An operator's reason and name are typed text: quoted as a provider's message would be.
    described = _outside(override.describe())
    if in_effect:
        undo = f'`taskrouter override end {override.id:d} --reason "why"`'  # this one only, by its id
        return f"Runtime override in effect: {described}. Routing changed without a restart; undo: {undo}."
    return (
        f"Runtime override ended (cleared or expired): {described}. Routing is back to what the "
        f"environment and the registry say; `taskrouter override list` shows what is left."
    )


def retirement_text(notice: RetirementNotice) -> str:
    todo = "Take it out of MODEL_REGISTRY" if notice.retired else "Move its tasks to the replacement in MODEL_REGISTRY"
    return f"{_outside(notice.line)}. {todo}; `taskrouter check` lists every use."


def watch_retirements(
    alerts: Alerts,
    health: ModelHealth,
    registry: Callable[[], Mapping[str, Sequence[str]]],
    settings: Settings,
    calendar: DeprecationCalendar,
) -> None:
    """Post each registry model that is retired or within RETIREMENT_WARNING_DAYS of its shutdown: now, and on
    the first refresh of each later UTC day (a model enters the window on a day, not at a call). The day is the
    health's clock's (`ModelHealth(clock=...)`), so a test moves it by moving that clock."""

    def check(day: date) -> None:
        for notice in retirement_notices(registry(), settings, day, calendar=calendar):
            state = "retired" if notice.retired else "retiring"
            alerts.notify(f"{state}:{notice.model}:{notice.shutdown.isoformat()}", retirement_text(notice))

    health.every_day(check, health.clock.today())

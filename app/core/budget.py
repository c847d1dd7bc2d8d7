"""The daily spend limit (DAILY_BUDGET_USD): reserve an attempt's estimate before the call, settle the actual after.

Spend per UTC day is the sum of `cost_usd` in the attempt log, so it survives restarts. Between reads of the log
this process counts its own settled spend; a read never lowers the count (rows may still be queued for writing).
With N calls in flight when the limit is reached, spend can pass it by at most what those N calls cost.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from app.core.alerts import budget_text
from app.store import read_only_uri

if TYPE_CHECKING:
    from app.core.alerts import Alerts

logger = logging.getLogger("taskrouter")

RESYNC_SECONDS = 10.0


class BudgetReached(Exception):
    def __init__(self, spent: float, limit: float) -> None:
        super().__init__(f"daily budget reached: ${spent:.6f} spent or reserved of ${limit:.6f} (DAILY_BUDGET_USD)")
        self.spent = spent
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Reservation:
    day: str
    amount: float


def spent_on(db_path: Path | None, day: str, after_id: int = 0) -> tuple[float, int]:
    """(logged cost for one UTC day 'YYYY-MM-DD' in rows with id > after_id, the highest id seen or after_id).

    With after_id, only the rows appended since are read, by rowid: the re-sync runs on the event loop every
    RESYNC_SECONDS, and summing a busy day through the created_at index costs ~200 ms at a million rows."""
    if db_path is None or not Path(db_path).exists():
        return 0.0, after_id
    next_day = (datetime.fromisoformat(day) + timedelta(days=1)).date().isoformat()
    try:
        conn = sqlite3.connect(read_only_uri(db_path), uri=True, timeout=5)
        try:
            # NOT INDEXED: walk the rowid range (the new rows), never the created_at index over the whole day.
            source = "attempts NOT INDEXED" if after_id else "attempts"
            # One statement, one snapshot: a row committed in between is either summed or above `last`.
            spent, last = conn.execute(
                f"SELECT (SELECT COALESCE(SUM(cost_usd), 0) FROM {source} "
                "WHERE id > ? AND created_at >= ? AND created_at < ?), (SELECT MAX(id) FROM attempts)",
                (after_id, day, next_day),
            ).fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        logger.error("budget: could not read today's spend from %s (%s); counting from 0", db_path, exc)
        return 0.0, after_id
    return float(spent), max(after_id, int(last or 0))


class DailyBudget:
    def __init__(self, limit_usd: float, alert_ratio: float, db_path: Path | None,
                 alerts: Alerts | None = None) -> None:
        self.limit = limit_usd
        self.alert_ratio = alert_ratio
        self._db_path = db_path
        self._alerts = alerts
        self._lock = threading.Lock()
        self._day = _today()
        self._logged, self._last_id = spent_on(db_path, self._day)  # every process's logged spend today
        self._spent = self._logged
        self._reserved = 0.0
        self._next_sync = time.monotonic() + RESYNC_SECONDS
        self._alerted = False
        self._exhausted = False  # said (alerts only) that today's budget is spent

    def reserve(self, estimate: float) -> Reservation:
        """Raises BudgetReached when today's spend plus in-flight reservations has reached the limit."""
        self._sync_if_due()
        with self._lock:
            if self._spent + self._reserved >= self.limit:
                raise BudgetReached(self._spent + self._reserved, self.limit)
            self._reserved += estimate
            return Reservation(self._day, estimate)

    def settle(self, reservation: Reservation, actual: float | None) -> None:
        with self._lock:
            if reservation.day == self._day:
                self._reserved = max(self._reserved - reservation.amount, 0.0)
                self._spent += actual or 0.0
            crossed = self._crossed()
        if crossed is not None:
            self._announce(*crossed)

    def _crossed(self) -> tuple[bool, bool, float, str] | None:
        """Under the lock: whether spend has just reached BUDGET_ALERT_RATIO (logged, and posted to
        ALERT_WEBHOOK_URL) or the whole budget (posted), each said once a day; by this process's calls or by
        other processes' rows read at a re-sync."""
        alert = not self._alerted and self._spent >= self.alert_ratio * self.limit
        exhausted = self._alerts is not None and not self._exhausted and self._spent >= self.limit
        if not (alert or exhausted):
            return None
        self._alerted = self._alerted or alert
        self._exhausted = self._exhausted or exhausted
        return alert, exhausted, self._spent, self._day

    def _announce(self, alert: bool, exhausted: bool, spent: float, day: str) -> None:
        if alert:
            logger.warning("Budget alert: $%.4f of the $%.4f daily budget spent (%.0f%%, BUDGET_ALERT_RATIO=%s)",
                           spent, self.limit, 100 * spent / self.limit, self.alert_ratio)
            if self._alerts is not None:
                self._alerts.notify(f"budget:{day}:ratio", budget_text(spent, self.limit, self.alert_ratio))
        if exhausted and self._alerts is not None:
            self._alerts.notify(f"budget:{day}:spent", budget_text(spent, self.limit, None))

    def status(self) -> tuple[float, float]:
        """(spent today, reserved by calls in flight)."""
        with self._lock:
            return self._spent, self._reserved

    def _sync_if_due(self) -> None:
        now = time.monotonic()
        today = _today()
        if today == self._day and now < self._next_sync:
            return
        if today != self._day:
            logged, last_id = spent_on(self._db_path, today)
        else:
            added, last_id = spent_on(self._db_path, today, self._last_id)
            logged = self._logged + added
        with self._lock:
            self._next_sync = now + RESYNC_SECONDS
            self._logged, self._last_id = logged, last_id
            if today != self._day:
                self._day, self._spent, self._reserved, self._alerted = today, logged, 0.0, False
                self._exhausted = False
            else:
                self._spent = max(self._spent, logged)
            crossed = self._crossed()
        if crossed is not None:
            self._announce(*crossed)


def _today() -> str:
    return datetime.now(UTC).date().isoformat()

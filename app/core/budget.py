"""The daily spend limit (DAILY_BUDGET_USD): reserve an attempt's estimate before the call, settle the actual after.

Spend per UTC day is what the store says (app/store/spend.py), so it survives restarts.
- `DailyBudget` (a SQLite store, one host): between reads of the log this process counts its own settled spend;
  a read never lowers the count (rows may still be queued for writing). With N calls in flight when the limit
  is reached, spend can pass it by at most what those N calls cost.
- `SharedBudget` (PostgreSQL, any number of hosts): each reservation is taken atomically in the database against
  every host's spend and reservations, so the same bound holds for the calls in flight on all hosts together.
  While the server cannot be reached it counts like `DailyBudget` (this host only) and says so once.
"""

from __future__ import annotations

import atexit
import logging
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.clock import SYSTEM_CLOCK, Clock
from app.core.alerts import budget_text
from app.store.backend import backend_for
from app.store.rows import Release
from app.store.spend import spent_on
from app.store.target import Target

if TYPE_CHECKING:
    from app.config import Settings
    from app.core.alerts import Alerts
    from app.store import AttemptLog
    from app.store.backend import SpendLedger, SpendSession

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
    shared: bool = False  # taken in the database (SharedBudget): released there too


def budget_from(
    settings: Settings, target: Target, log: AttemptLog | None, alerts: Alerts | None, *, clock: Clock = SYSTEM_CLOCK
) -> DailyBudget | None:
    """DAILY_BUDGET_USD's budget for this store, or None when unset: shared by every host when the store keeps a
    ledger of spend and reservations (StoreBackend.spend_ledger), else counted from the rows on this host. `clock`
    gives the budget its UTC day and times its re-reads."""
    if not settings.daily_budget_usd:
        return None
    store = backend_for(target)
    if store.spend_ledger is not None and log is not None:
        return SharedBudget(
            settings.daily_budget_usd,
            settings.budget_alert_ratio,
            store.spend_ledger,
            store.label,
            log,
            alerts,
            clock=clock,
        )
    return DailyBudget(
        settings.daily_budget_usd, settings.budget_alert_ratio, target if log is not None else None, alerts, clock=clock
    )


class DailyBudget:
    def __init__(
        self,
        limit_usd: float,
        alert_ratio: float,
        db_path: Target | None,
        alerts: Alerts | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.limit = limit_usd
        self.alert_ratio = alert_ratio
        self._db_path = db_path
        self._alerts = alerts
        self._clock = clock  # the UTC day the spend counts for, and when to re-read the log
        self._lock = threading.Lock()
        self._day = self._today()
        self._logged, self._last_id = spent_on(db_path, self._day)  # every process's logged spend today
        self._spent = self._logged
        self._reserved = 0.0
        self._next_sync = clock.monotonic() + RESYNC_SECONDS
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
            logger.warning(
                "Budget alert: $%.4f of the $%.4f daily budget spent (%.0f%%, BUDGET_ALERT_RATIO=%s)",
                spent,
                self.limit,
                100 * spent / self.limit,
                self.alert_ratio,
            )
            if self._alerts is not None:
                self._alerts.notify(f"budget:{day}:ratio", budget_text(spent, self.limit, self.alert_ratio))
        if exhausted and self._alerts is not None:
            self._alerts.notify(f"budget:{day}:spent", budget_text(spent, self.limit, None))

    def status(self) -> tuple[float, float]:
        """(spent today, reserved by calls in flight)."""
        with self._lock:
            return self._spent, self._reserved

    def close(self) -> None:
        """Nothing held outside this process (a shared budget gives its lease back)."""

    def _today(self) -> str:
        return self._clock.today().isoformat()

    def _sync_if_due(self) -> None:
        now = self._clock.monotonic()
        today = self._today()
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


class SharedBudget(DailyBudget):
    """See the module docstring. Each host leases a share of the day's budget from the database (LEASE_SHARE of the
    limit, or a call's estimate if more) and reserves its calls from the lease in memory: a call costs the database
    nothing until the lease runs low, and then a thread takes the next one, so a call's reservation almost never
    waits on the server. What the database holds as reserved is every host's unspent lease plus its calls in
    flight, so hosts together never reserve past the limit, and spend passes it by at most what calls in flight
    were estimated to cost (a call that costs more than its estimate). Near the limit a host may refuse a call while
    another still holds part of its lease: at most LEASE_SHARE of the limit per host goes unspent that way, and a
    lease goes back when its router closes. A connection is made on a thread, never on the event loop; calls count
    on this host alone until one is made, and while the server cannot be reached (said once)."""

    LEASE_SHARE = 0.01  # of the daily limit, per lease
    RETRY_SECONDS = 5.0  # after the server failed, how long reservations are counted on this host only
    FIRST_CONNECT_SECONDS = 2.0  # the first call waits this long, once, for the first connection

    def __init__(
        self,
        limit_usd: float,
        alert_ratio: float,
        ledger: SpendLedger,
        label: str,
        log: AttemptLog,
        alerts: Alerts | None = None,
        *,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        super().__init__(limit_usd, alert_ratio, None, alerts, clock=clock)  # spend is read with each lease
        self._ledger = ledger
        self._label = label  # how messages name the store
        self._log = log
        log.costs_reserved = True
        self._conn: SpendSession | None = None
        self._conn_lock = threading.Lock()
        self._connecting = False
        self._refilling = False
        self._first_try = threading.Event()  # set once the first connection attempt has ended
        self._local_until = 0.0  # the server failed: count on this host until then
        self._reported = False
        self._lease = 0.0  # the unreserved part of this host's lease for _lease_day
        self._lease_day = ""
        # Registered after the attempt log's exit hook, so run before it: the lease's return is then written.
        atexit.register(_close_at_exit, weakref.ref(self))

    def reserve(self, estimate: float) -> Reservation:
        day = self._today()
        with self._lock:
            if day != self._lease_day:  # a lease is for its day only
                self._lease_day, self._lease = day, 0.0
            taken = self._lease > 0 and self._lease >= estimate
            if taken:
                self._lease -= estimate
                self._reserved += estimate
                low = self._lease < self.LEASE_SHARE * self.limit / 2
        if taken:
            if low:
                self._refill_in_background(day)
            return Reservation(day, estimate, shared=True)
        seen = self._lease_now(day, estimate)
        if seen is None:
            return super().reserve(estimate)
        granted, spent, reserved = seen
        with self._lock:
            if day != self._day:
                self._day, self._spent, self._reserved, self._alerted, self._exhausted = day, 0.0, 0.0, False, False
            self._spent = max(self._spent, spent)
            if granted > 0:
                self._lease += granted - estimate
                self._reserved += estimate
            crossed = self._crossed()
        if crossed is not None:
            self._announce(*crossed)
        if granted <= 0:
            raise BudgetReached(spent + reserved, self.limit)
        return Reservation(day, estimate, shared=True)

    def settle(self, reservation: Reservation, actual: float | None) -> None:
        if reservation.shared:
            unused = reservation.amount - (actual or 0.0)  # the actual cost leaves `reserved` with its row
            with self._lock:
                mine = reservation.day == self._lease_day
                if mine:
                    self._lease += unused
            if not mine:  # a lease of a day gone by: give the rest back
                self._log.record(Release(reservation.day, unused))
        super().settle(reservation, actual)

    def _lease_now(self, day: str, estimate: float) -> tuple[float, float, float] | None:
        """(granted, spent, reserved) from the database; None while it cannot be reached."""
        if self._conn is None:
            if self._clock.monotonic() >= self._local_until:
                self._connect_in_background()
            if not self._first_try.is_set():
                self._first_try.wait(self.FIRST_CONNECT_SECONDS)
        return self._take_lease(day, estimate)

    def _take_lease(self, day: str, estimate: float) -> tuple[float, float, float] | None:
        with self._conn_lock:
            conn = self._conn
            if conn is None:
                return None
            try:
                return conn.lease(day, self.LEASE_SHARE * self.limit, estimate, self.limit)
            except Exception as exc:  # the server is down, slow or unreachable: never fail a call for it
                self._conn = None
                conn.close()
                self._failed(exc)
                return None

    def _refill_in_background(self, day: str) -> None:
        with self._conn_lock:
            if self._refilling or self._conn is None:
                return
            self._refilling = True
        threading.Thread(target=self._refill, args=(day,), name="taskrouter-budget-lease", daemon=True).start()

    def _refill(self, day: str) -> None:
        try:
            seen = self._take_lease(day, 0.0)
            if seen is not None and seen[0] > 0:
                with self._lock:
                    if day == self._lease_day:
                        self._lease += seen[0]
                        self._spent = max(self._spent, seen[1])
                        seen = None
                if seen is not None:  # the day turned meanwhile: that lease is of no use
                    self._log.record(Release(day, seen[0]))
        finally:
            self._refilling = False

    def _connect_in_background(self) -> None:
        with self._conn_lock:
            if self._connecting or self._conn is not None:
                return
            self._connecting = True
        threading.Thread(target=self._connect, name="taskrouter-budget-connect", daemon=True).start()

    def _connect(self) -> None:
        try:
            conn = self._ledger.open()  # migrated first: the first call may precede the writer's open
        except Exception as exc:
            self._failed(exc)
        else:
            with self._conn_lock:
                self._conn = conn
            if self._reported:
                logger.warning("budget: %s takes reservations again", self._label)
                self._reported = False
        finally:
            self._connecting = False
            self._first_try.set()

    def _failed(self, exc: BaseException) -> None:
        self._local_until = self._clock.monotonic() + self.RETRY_SECONDS
        if not self._reported:
            self._reported = True
            logger.error(
                "budget: %s cannot take reservations (%s); counting this host's spend only until it can",
                self._label,
                type(exc).__name__,
            )

    def _sync_if_due(self) -> None:
        """Nothing to read: each lease returns the day's spend across hosts."""

    def close(self) -> None:
        """Give the unreserved part of the lease back (written by the attempt log) and close the connection."""
        with self._lock:
            left, self._lease = self._lease, 0.0
            day = self._lease_day
        if left > 0:
            self._log.record(Release(day, left))
        with self._conn_lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()


def _close_at_exit(budget: weakref.ref[SharedBudget]) -> None:
    alive = budget()
    if alive is not None:
        alive.close()

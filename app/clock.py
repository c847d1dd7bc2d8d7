"""Time, in one place: the clock the core reads and waits on (`Clock`, injectable so that tests drive it), and
timestamps as the store writes them: UTC ISO-8601 to the millisecond, `2026-11-22T06:26:55.123Z` (sorts as text)."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Clock:
    """Where the core reads the time and waits: the breaker's and the marks' expiry, cooldowns, retry backoffs,
    deadlines and latencies, the budget's day. The default is the system's; `app.testing.FakeClock` gives one that
    a test moves by hand. The fields are plain callables, so reading the system clock costs no extra call."""

    wall: Callable[[], float] = time.time  # seconds since the epoch: marks, cooldowns, the budget's day
    monotonic: Callable[[], float] = time.perf_counter  # seconds, for deadlines and latencies
    sleep: Callable[[float], Awaitable[object]] = asyncio.sleep  # the wait before a retry

    def today(self) -> date:
        """The UTC date now: the budget's day and the deprecation calendar's."""
        return datetime.fromtimestamp(self.wall(), UTC).date()


SYSTEM_CLOCK = Clock()

_second: tuple[int, str] = (-1, "")  # the last whole second formatted: strftime once a second, not once a row


def utc_now_iso() -> str:
    """Now as `2026-11-22T06:26:55.123Z` (what `created_at` holds), in well under a microsecond."""
    return iso_millis(time.time())


def iso_millis(epoch: float) -> str:
    """`iso_from_epoch`, to the same character, at a fraction of datetime's cost."""
    global _second
    frac, seconds = math.modf(epoch)  # split, then round, exactly as datetime.fromtimestamp does
    whole, micros = int(seconds), round(frac * 1e6)
    if micros >= 1_000_000:
        whole, micros = whole + 1, micros - 1_000_000
    cached, prefix = _second
    if whole != cached:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, prefix)
    return f"{prefix}.{micros // 1000:03d}Z"


def iso_from_epoch(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_from_iso(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

"""Time ranges: the presets, the previous period to compare with, and the trend buckets. Pure functions, UTC.

Bounds are strings in the attempt log's own format (`2026-11-22T10:00:00.000Z`) so that SQL compares them with
`created_at` as text and the created_at indexes apply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

PRESETS: dict[str, timedelta | None] = {
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
    "Last 30 days": timedelta(days=30),
    "All time": None,
}
CUSTOM = "Custom dates"
DEFAULT_RANGE = "Last 24 hours"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True, slots=True)
class Window:
    """[start, end) in UTC; start None = since the first row ever written."""

    start: datetime | None
    end: datetime
    label: str

    @property
    def start_iso(self) -> str | None:
        return iso(self.start) if self.start else None

    @property
    def end_iso(self) -> str:
        return iso(self.end)

    def previous(self) -> Window | None:
        """The period of the same length just before, for "change against the previous period"."""
        if self.start is None:
            return None
        length = self.end - self.start
        return Window(self.start - length, self.start, f"previous {self.label.lower()}")


def resolve(label: str, now: datetime, custom: tuple[date, date] | None = None) -> Window:
    if label == CUSTOM and custom:
        first, last = sorted(custom)
        start = datetime.combine(first, time.min, UTC)
        end = datetime.combine(last + timedelta(days=1), time.min, UTC)  # the last day is included
        return Window(start, min(end, now) if start < now else end, f"{first} to {last}")
    length = PRESETS.get(label, PRESETS[DEFAULT_RANGE])
    return Window(None if length is None else now - length, now, label)


def bucket_size(start: datetime, end: datetime) -> timedelta:
    """A minute up to an hour, five minutes up to six hours (traffic that stopped minutes ago shows), hourly up to
    two days, daily up to four months, weekly beyond: a chart of 24 to ~150 points."""
    span = end - start
    if span <= timedelta(hours=1):
        return timedelta(minutes=1)
    if span <= timedelta(hours=6):
        return timedelta(minutes=5)
    if span <= timedelta(days=2):
        return timedelta(hours=1)
    if span <= timedelta(days=120):
        return timedelta(days=1)
    return timedelta(weeks=1)


def buckets(start: datetime, end: datetime) -> list[tuple[datetime, datetime, datetime]]:
    """(label, from, to) per bucket: labels aligned to whole hours/days/weeks, bounds clipped to [start, end)
    so the buckets add up to the range exactly."""
    size = bucket_size(start, end)
    if size < timedelta(hours=1):
        step = int(size.total_seconds() // 60)
        label = start.replace(minute=start.minute - start.minute % step, second=0, microsecond=0)
    elif size == timedelta(hours=1):
        label = start.replace(minute=0, second=0, microsecond=0)
    else:
        label = datetime.combine(start.date(), time.min, UTC)
        if size == timedelta(weeks=1):
            label -= timedelta(days=label.weekday())  # weeks start on Monday
    out = []
    while label < end:
        nxt = label + size
        out.append((label, max(label, start), min(nxt, end)))
        label = nxt
    return out

"""What a page needs to draw itself: the read-only connection and the resolved filters, fixed for one run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from app.config import Settings
from app.store.target import Target
from dashboard.filters import Selection
from dashboard.queries import Scope, first_and_last
from dashboard.timeframe import Window, buckets, iso, parse_iso, resolve

if TYPE_CHECKING:
    from app.store.backend import Connection


@dataclass(frozen=True, slots=True)
class PageContext:
    conn: Connection
    db_path: Target  # the store: a SQLite file, or a PostgreSQL database (its label hides the password)
    now: datetime
    window: Window
    scope: Scope
    previous: Scope | None  # the period just before, same length; None for "All time"
    first_row: str | None  # created_at of the oldest and newest rows in the whole database
    last_row: str | None
    settings: Settings | None  # loaded once per run; None with `settings_problem` saying why
    settings_problem: str | None

    def trend_buckets(self) -> list[tuple[datetime, str, str]]:
        """(label, from, to) covering the range; "All time" starts at the first row."""
        start = self.window.start or (parse_iso(self.first_row) if self.first_row else self.window.end)
        return [(label, iso(lo), iso(hi)) for label, lo, hi in buckets(start, self.window.end)]


def make_context(
    conn: Connection, db_path: Target, selection: Selection, now: datetime, settings: tuple[Settings | None, str | None]
) -> PageContext:
    window = resolve(selection.range_label, now, selection.custom)
    previous = window.previous()
    first, last = first_and_last(conn)

    def scope_of(w: Window) -> Scope:
        return Scope(w.start_iso, w.end_iso, selection.tasks, selection.models)

    return PageContext(
        conn, db_path, now, window, scope_of(window), scope_of(previous) if previous else None, first, last, *settings
    )

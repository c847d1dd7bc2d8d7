"""Deprecation radar (stub until the radar lands): the calendar of model shutdowns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Retirement:
    model: str
    shutdown: date
    replacement: str | None  # followed to a model that is still live; None when Groq named none


class DeprecationCalendar:
    def retirement_for(self, model: str, today: date) -> Retirement | None:
        """The retirement of `model` if its shutdown date is on or before `today`."""
        return None


def load_calendar(extra_file: Path | None = None) -> DeprecationCalendar:
    return DeprecationCalendar()

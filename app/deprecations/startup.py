"""Start-up warnings: one line per registry model that is shut down or shutting down soon. Calendar only, no
network: it runs whenever a Router is built, so a retirement shows in the logs weeks before it bites."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from app.deprecations.calendar import DeprecationCalendar, load_calendar
from app.deprecations.usage import ChainModel, registry_tasks, task_chain
from app.errors import TaskRouterError

if TYPE_CHECKING:
    from app.config import Settings

logger = logging.getLogger("taskrouter.deprecations")


@dataclass(frozen=True, slots=True)
class RetirementNotice:
    model: str
    shutdown: date
    retired: bool  # already shut down; otherwise within RETIREMENT_WARNING_DAYS
    line: str


def startup_warnings(
    registry: Mapping[str, Sequence[str]],
    settings: Settings,
    today: date | None = None,
    *,
    calendar: DeprecationCalendar | None = None,
) -> list[str]:
    """Log (at WARNING) and return one line per model of the effective registry that the calendar says is
    retired, or retiring within RETIREMENT_WARNING_DAYS. Never raises for a malformed registry entry: the
    router reports that, with context, on the first call of that task."""
    lines = []
    for notice in retirement_notices(registry, settings, today, calendar=calendar):
        logger.warning("%s", notice.line)
        lines.append(notice.line)
    return lines


def retirement_notices(
    registry: Mapping[str, Sequence[str]],
    settings: Settings,
    today: date | None = None,
    *,
    calendar: DeprecationCalendar | None = None,
) -> list[RetirementNotice]:
    """What `startup_warnings` says, per model, without logging it (the alerts post it)."""
    today = today or datetime.now(UTC).date()
    calendar = calendar if calendar is not None else load_calendar(settings.deprecations_file)
    tasks_of: dict[str, list[str]] = {}
    for task in registry_tasks(registry):
        try:
            chain: list[ChainModel] = task_chain(task, registry, settings)
        except TaskRouterError:  # ConfigError, UnknownTaskError: raised again, in context, when the task runs
            continue
        for item in chain:
            tasks_of.setdefault(item.model, []).append(task)
    notices = []
    for model, tasks in tasks_of.items():
        notice = _notice(calendar, model, tasks, settings, today)
        if notice is not None:
            notices.append(notice)
    return notices


def _notice(
    calendar: DeprecationCalendar, model: str, tasks: list[str], settings: Settings, today: date
) -> RetirementNotice | None:
    where = f"model={model} tasks={','.join(tasks)}"
    retired = calendar.retirement_for(model, today)
    if retired is not None:
        effect = (
            "skipped, not called (SKIP_RETIRED_MODELS=true)"
            if settings.skip_retired_models
            else "still called (SKIP_RETIRED_MODELS=false)"
        )
        return RetirementNotice(
            model,
            retired.shutdown,
            True,
            f"Deprecation radar: {where} was shut down on {retired.shutdown.isoformat()}; "
            f"{retired.suggestion()}; {effect}{_tiers(retired.tiers)}",
        )
    soon = calendar.upcoming(model, today, settings.retirement_warning_days)
    if soon is not None:
        days = soon.days_left(today)
        return RetirementNotice(
            model,
            soon.shutdown,
            False,
            f"Deprecation radar: {where} shuts down on {soon.shutdown.isoformat()} "
            f"(in {days} day{'s' if days != 1 else ''}); {soon.suggestion()}"
            f"{_tiers(soon.tiers)}",
        )
    return None


def _tiers(tiers: str | None) -> str:
    return f" [applies to: {tiers}]" if tiers else ""

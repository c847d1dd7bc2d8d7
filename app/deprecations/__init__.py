"""Deprecation radar: know a model is going away before it fails.

- `calendar`: the shutdown calendar (package data `calendar.toml`, extended by DEPRECATIONS_FILE);
- `startup`: one warning per registry model that is retired or retiring soon, when a Router is built (and the
  notices the alerts post);
- `audit` / `live`: the `taskrouter check` report (calendar, GET /models, runtime evidence);
- `history`: stored checks, for the dashboard (`latest_check`).
"""

from app.deprecations.audit import (
    ERROR,
    EXIT_ERRORS,
    EXIT_HEALTHY,
    EXIT_WARNINGS,
    HEALTHY,
    WARNING,
    CheckReport,
    ModelCheck,
    Problem,
    build_report,
    run_check,
)
from app.deprecations.calendar import (
    PACKAGE_CALENDAR,
    CalendarEntry,
    DeprecationCalendar,
    Retirement,
    load_calendar,
)
from app.deprecations.history import StoredCheck, latest_check, recent_checks, save_check
from app.deprecations.startup import RetirementNotice, retirement_notices, startup_warnings
from app.deprecations.usage import ChainModel, registry_chains

__all__ = [
    "ERROR",
    "EXIT_ERRORS",
    "EXIT_HEALTHY",
    "EXIT_WARNINGS",
    "HEALTHY",
    "PACKAGE_CALENDAR",
    "WARNING",
    "CalendarEntry",
    "ChainModel",
    "CheckReport",
    "DeprecationCalendar",
    "ModelCheck",
    "Problem",
    "Retirement",
    "RetirementNotice",
    "StoredCheck",
    "build_report",
    "latest_check",
    "load_calendar",
    "recent_checks",
    "registry_chains",
    "retirement_notices",
    "run_check",
    "save_check",
    "startup_warnings",
]

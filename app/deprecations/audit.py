"""The registry health check behind `taskrouter check`: three kinds of evidence per model, one verdict.

1. the calendar (no network): shut down -> error, shutting down within N days -> warning;
2. Groq's model list (with a key): not listed or `active: false` -> error; limits recorded;
3. what the router itself saw (`model_status`): deprecated -> error, not found -> warning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from app.deprecations.calendar import DeprecationCalendar, Retirement, load_calendar
from app.deprecations.live import FAILED, OK, LiveListing, LiveModel, fetch_listing
from app.deprecations.usage import BYPASSED, DISABLED, ChainModel, models_in_use, registry_chains
from app.registry.catalog import ModelInfo
from app.store import read_model_status, utc_now_iso
from app.store.overrides import Override
from app.store.target import label_of, store_target

if TYPE_CHECKING:
    from app.config import Settings

ERROR = "error"
WARNING = "warning"
HEALTHY = "ok"

EXIT_HEALTHY = 0
EXIT_WARNINGS = 1  # only with --strict
EXIT_ERRORS = 2

DEPRECATIONS_PAGE = "https://console.groq.com/docs/deprecations"
_RUNTIME_STATES = {"deprecated": ERROR, "not_found": WARNING}


@dataclass(frozen=True, slots=True)
class Problem:
    severity: str  # error | warning
    source: str  # calendar | live | runtime | catalog
    message: str

    def to_json(self) -> dict[str, str]:
        return {"severity": self.severity, "source": self.source, "message": self.message}


@dataclass(slots=True)
class ModelCheck:
    model: str
    provider: str
    tasks: list[str]
    retirement: Retirement | None = None  # scheduled, whether or not it has happened
    live: LiveModel | None = None
    live_checked: bool = False  # False: no key, the listing failed, or not a Groq model
    runtime: dict[str, Any] | None = None  # the model_status row, when it holds deprecation evidence
    problems: list[Problem] = field(default_factory=list)

    @property
    def status(self) -> str:
        severities = {p.severity for p in self.problems}
        return ERROR if ERROR in severities else WARNING if WARNING in severities else HEALTHY

    def to_json(self, today: date) -> dict[str, Any]:
        retirement = None
        if self.retirement is not None:
            r = self.retirement
            retirement = {
                "shutdown": r.shutdown.isoformat(),
                "days_left": r.days_left(today),
                "replacement": r.replacement,
                "named": list(r.named),
                "source": r.source,
                "tiers": r.tiers,
                "note": r.note,
            }
        live = self.live.to_json() if self.live else ({"listed": False} if self.live_checked else None)
        return {
            "status": self.status,
            "provider": self.provider,
            "tasks": self.tasks,
            "retirement": retirement,
            "live": live,
            "runtime": self.runtime,
            "problems": [p.to_json() for p in self.problems],
        }


@dataclass(slots=True)
class CheckReport:
    checked_at: str
    today: date
    days: int
    strict: bool
    calendar: DeprecationCalendar
    live: LiveListing
    db_path: str  # the store as messages name it: a path, or a URL without its password
    runtime_rows: int
    chains: dict[str, list[ChainModel]]
    models: dict[str, ModelCheck]
    problems: list[Problem]  # not tied to one model (the listing failed, say)

    def count(self, severity: str) -> int:
        per_model = sum(1 for m in self.models.values() for p in m.problems if p.severity == severity)
        return per_model + sum(1 for p in self.problems if p.severity == severity)

    @property
    def exit_code(self) -> int:
        if self.count(ERROR):
            return EXIT_ERRORS
        return EXIT_WARNINGS if self.strict and self.count(WARNING) else EXIT_HEALTHY

    @property
    def summary(self) -> str:
        errors, warnings = self.count(ERROR), self.count(WARNING)
        scope = f"{_plural(len(self.models), 'model')} in {_plural(len(self.chains), 'task')}"
        if not errors and not warnings:
            return f"healthy: {scope}"
        return f"{_plural(errors, 'error')}, {_plural(warnings, 'warning')} across {scope}"

    def suggestion(self, item: ChainModel) -> str | None:
        """What to use instead of `item.model` in its task, when it has a problem."""
        check = self.models[item.model]
        if check.status == HEALTHY:
            return None
        if all(p.source == "catalog" for p in check.problems):
            return "update its MODEL_CATALOG entry (or MODEL_CATALOG_FILE) to Groq's values"
        replacement = check.retirement.replacement if check.retirement else None
        if replacement:
            live = self.models.get(replacement)
            unlisted = self.live.status == OK and (
                replacement not in self.live.models or not self.live.models[replacement].active
            )
            flag = " (but GET /models does not list it as active)" if unlisted else ""
            flag += f" (also {live.status} here)" if live is not None and live.status != HEALTHY else ""
            return f"use {replacement}{flag}"
        chain = self.chains[item.task]
        later = [
            c.model
            for c in chain
            if c.position > item.position
            and c.place not in (BYPASSED, DISABLED)
            and self.models[c.model].status == HEALTHY
        ]
        if later:
            return f"no calendar replacement; remove it and {later[0]} takes over"
        return f"no replacement known: pick one from GET /models (see {DEPRECATIONS_PAGE})"

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "today": self.today.isoformat(),
            "days": self.days,
            "strict": self.strict,
            "exit_code": self.exit_code,
            "errors": self.count(ERROR),
            "warnings": self.count(WARNING),
            "summary": self.summary,
            "calendar": {"sources": list(self.calendar.sources), "entries": len(self.calendar)},
            "live": self.live.to_json(),
            "runtime": {"db_path": str(self.db_path), "evidence_rows": self.runtime_rows},
            "problems": [p.to_json() for p in self.problems],
            "tasks": {
                task: [
                    {
                        "model": c.model,
                        "place": c.place,
                        "position": c.position,
                        "status": self.models[c.model].status,
                        "suggestion": self.suggestion(c),
                    }
                    for c in chain
                ]
                for task, chain in self.chains.items()
            },
            "models": {name: check.to_json(self.today) for name, check in self.models.items()},
        }


async def run_check(
    settings: Settings,
    registry: Mapping[str, Sequence[str]],
    catalog: Mapping[str, ModelInfo],
    *,
    today: date,
    days: int | None = None,
    strict: bool = False,
    runtime: Sequence[Override] = (),
) -> CheckReport:
    """Check every model of the effective registry, `runtime` overrides applied (app/store/overrides.py).
    Raises ConfigError for a bad registry or calendar file."""
    chains = registry_chains(registry, settings, runtime)
    calendar = load_calendar(settings.deprecations_file)
    live = await fetch_listing(settings)
    return build_report(
        settings,
        chains,
        catalog,
        calendar,
        live,
        today=today,
        days=settings.retirement_warning_days if days is None else days,
        strict=strict,
        checked_at=utc_now_iso(),
    )


def build_report(
    settings: Settings,
    chains: dict[str, list[ChainModel]],
    catalog: Mapping[str, ModelInfo],
    calendar: DeprecationCalendar,
    live: LiveListing,
    *,
    today: date,
    days: int,
    strict: bool,
    checked_at: str,
) -> CheckReport:
    store = store_target(settings)
    evidence = {row["model"]: row for row in read_model_status(store) if row.get("status") in _RUNTIME_STATES}
    models: dict[str, ModelCheck] = {}
    for model, tasks in models_in_use(chains).items():
        info = catalog.get(model)
        check = ModelCheck(model, info.provider if info else "groq", tasks)
        _calendar_evidence(check, calendar, today, days)
        if check.provider == "groq" and live.status == OK:
            _live_evidence(check, live, info)
        _runtime_evidence(check, evidence.get(model))
        models[model] = check
    problems = []
    if live.status == FAILED:
        # A bad key is a broken deployment; a network hiccup in CI should not fail the build on its own.
        problems.append(Problem(ERROR if live.fatal else WARNING, "live", live.detail))
    runtime_rows = sum(1 for m in models if m in evidence)
    return CheckReport(
        checked_at, today, days, strict, calendar, live, label_of(store), runtime_rows, chains, models, problems
    )


def _calendar_evidence(check: ModelCheck, calendar: DeprecationCalendar, today: date, days: int) -> None:
    check.retirement = calendar.scheduled(check.model, today)
    retired = calendar.retirement_for(check.model, today)
    tiers = f" (applies to: {check.retirement.tiers})" if check.retirement and check.retirement.tiers else ""
    if retired is not None:
        check.problems.append(
            Problem(
                ERROR, "calendar", f"shut down on {retired.shutdown.isoformat()} per the deprecation calendar{tiers}"
            )
        )
        return
    soon = calendar.upcoming(check.model, today, days)
    if soon is not None:
        left = soon.days_left(today)
        check.problems.append(
            Problem(WARNING, "calendar", f"shuts down on {soon.shutdown.isoformat()}, in {_plural(left, 'day')}{tiers}")
        )


def _live_evidence(check: ModelCheck, live: LiveListing, info: ModelInfo | None) -> None:
    check.live_checked = True
    listed = live.models.get(check.model)
    check.live = listed
    if listed is None:
        check.problems.append(
            Problem(ERROR, "live", "not listed by GET /models (retired, unknown, or not available to this key)")
        )
        return
    if not listed.active:
        check.problems.append(Problem(ERROR, "live", "listed by GET /models with active: false"))
    if info is None:
        return
    for name, ours, theirs in (
        ("context_window", info.context_window, listed.context_window),
        ("max_completion_tokens", info.max_completion_tokens, listed.max_completion_tokens),
    ):
        if ours is not None and theirs is not None and ours != theirs:
            check.problems.append(Problem(WARNING, "catalog", f"MODEL_CATALOG says {name}={ours}, Groq says {theirs}"))


def _runtime_evidence(check: ModelCheck, row: Mapping[str, Any] | None) -> None:
    if row is None:
        return
    status = row["status"]
    check.runtime = {key: row.get(key) for key in ("status", "hits", "first_seen", "last_seen", "until", "detail")}
    hits = row.get("hits") or 1
    # The provider's message stays in the JSON (runtime.detail): in the table it would drown the verdict.
    seen = f"first {row.get('first_seen')}, last {row.get('last_seen')}"
    check.problems.append(
        Problem(_RUNTIME_STATES[status], "runtime", f"the router saw {status} {_plural(hits, 'time')} ({seen})")
    )


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"

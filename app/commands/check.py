"""`taskrouter check`: is every model of the registry still going to answer? For humans and for CI.

Exit codes: 0 healthy (warnings allowed), 1 warnings with --strict, 2 errors (or a bad setting).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.config import load_settings
from app.deprecations import HEALTHY, CheckReport, ModelCheck, run_check, save_check
from app.registry.catalog import load_catalog_file
from app.text import plain_terminal

if TYPE_CHECKING:
    from app.registry.chain import EnvOverride
    from app.store.overrides import Override

_HEADERS = ("#", "MODEL", "PLACE", "STATUS", "CONTEXT", "MAX OUT", "FINDINGS")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check every registry model against the deprecation calendar, GET /models and runtime evidence",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--days",
        type=_non_negative,
        default=None,
        help="warn about shutdowns within this many days (default: RETIREMENT_WARNING_DAYS, 30)",
    )
    parser.add_argument("--strict", action="store_true", help="exit 1 on warnings (default: only errors fail)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of tables")
    parser.add_argument(
        "--today",
        type=_iso_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="check as of this date, e.g. to preview next month (default: today, UTC)",
    )
    parser.add_argument(
        "--no-store",
        action="store_true",
        help="do not record this check in ATTEMPTS_DB_PATH (the dashboard shows the latest)",
    )
    parser.set_defaults(func=func)


def func(args: argparse.Namespace) -> int:
    from app.core import ai_models  # read at call time: tests and plugins edit the tables in place

    settings = load_settings()
    today = args.today or datetime.now(UTC).date()
    catalog = dict(ai_models.MODEL_CATALOG)
    if settings.model_catalog_file:
        # As the router sees it: a catalog file can move a model to another provider or change its limits.
        catalog.update(load_catalog_file(Path(settings.model_catalog_file), catalog))
    from app.registry.chain import environment_overrides
    from app.store.overrides import read_active
    from app.store.target import store_target

    store = store_target(settings)
    runtime = read_active(store)  # read-only: a store not created yet holds none
    env = environment_overrides(settings)
    report = asyncio.run(
        run_check(
            settings,
            ai_models.MODEL_REGISTRY,
            catalog,
            today=today,
            days=args.days,
            strict=args.strict,
            runtime=runtime,
        )
    )
    document = report.to_json()
    document["overrides"] = {"runtime": [o.to_json() for o in runtime], "environment": [e.to_json() for e in env]}
    stored = _store(store, document, enabled=settings.attempt_logging and not args.no_store)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        # The live API's and the calendar's words reach the terminal: no escape sequence of theirs does.
        print(plain_terminal(render(report, stored, runtime=runtime, env=env), multiline=True))
    return report.exit_code


def _store(db_path: Any, document: dict[str, Any], *, enabled: bool) -> str:
    if not enabled:
        return "not stored (--no-store or ATTEMPT_LOGGING=false)"
    from app.store.database import problem_of
    from app.store.target import label_of

    try:
        save_check(db_path, document)
    except Exception as exc:  # sqlite3's, psycopg's, OSError, StoreProblem: said in words, never a traceback
        # The verdict matters more than its record: report the failure, keep the exit code.
        problem = problem_of(db_path, exc)
        print(f"taskrouter check: could not store the result: {problem}", file=sys.stderr)
        return f"NOT stored: {problem}"
    return f"stored in {label_of(db_path)} (table checks)"


def render(
    report: CheckReport, stored: str = "", *, runtime: Sequence[Override] = (), env: Sequence[EnvOverride] = ()
) -> str:
    from app.commands.levers import disabled, override_lines

    evidence = f"{report.runtime_rows} registry model{'' if report.runtime_rows == 1 else 's'}"
    lines = [
        f"taskrouter check: as of {report.today.isoformat()}, warning window {report.days} days",
        f"calendar: {len(report.calendar)} entries from {', '.join(report.calendar.sources)}",
        f"live:     {plain_terminal(report.live.detail)}",
        f"runtime:  {report.db_path}: deprecation evidence for {evidence}",
    ]
    levers = override_lines(runtime, env) + [f"#{o.id} {plain_terminal(o.describe())}" for o in disabled(runtime)]
    lines += [f"{'overrides:' if i == 0 else '':<11}{lever}" for i, lever in enumerate(levers or ["none in effect"])]
    off = {o.model: o for o in disabled(runtime)}
    for task, chain in report.chains.items():
        rows: list[tuple[tuple[str, ...], list[str]]] = []
        for item in chain:
            check = report.models[item.model]
            findings = [plain_terminal(f"{p.source}: {p.message}") for p in check.problems]
            if item.model in off:
                enable = f'`taskrouter model enable {item.model} --reason "why"`'
                findings.insert(0, f"skipped: {off[item.model].source}; {enable} puts it back")
            findings = findings or ["-"]
            suggestion = report.suggestion(item)
            if suggestion:
                findings.append(f"-> {plain_terminal(suggestion)}")
            rows.append(((str(item.position), item.model, item.place, _status(check), *_limits(check)), findings))
        lines += ["", f"task {task}", *_table(rows)]
    if report.problems:
        lines += ["", "not tied to one model:"]
        lines += [plain_terminal(f"  {p.severity.upper()} {p.source}: {p.message}") for p in report.problems]
    verdict = {0: "healthy", 1: "warnings (--strict)", 2: "errors"}[report.exit_code]
    lines += ["", f"result: {report.summary} -> exit {report.exit_code} ({verdict})"]
    if stored:
        lines.append(stored)
    return "\n".join(lines)


def _status(check: ModelCheck) -> str:
    return check.status if check.status == HEALTHY else check.status.upper()


def _limits(check: ModelCheck) -> tuple[str, str]:
    if check.live is None:
        return "-", "-"
    return (str(check.live.context_window or "-"), str(check.live.max_completion_tokens or "-"))


def _table(rows: list[tuple[tuple[str, ...], list[str]]]) -> list[str]:
    """Fixed columns, then the findings: the first on the row, the others aligned under it."""
    widths = [max(len(h), *(len(cells[i]) for cells, _ in rows)) for i, h in enumerate(_HEADERS[:-1])]
    right = {0, 4, 5}  # numbers

    def line(cells: tuple[str, ...], last: str) -> str:
        fixed = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return ("  " + "  ".join(fixed) + "  " + last).rstrip()

    out = [line(_HEADERS[:-1], _HEADERS[-1])]
    indent = " " * (2 + sum(widths) + 2 * len(widths))
    for cells, findings in rows:
        out.append(line(cells, findings[0]))
        out += [indent + finding for finding in findings[1:]]
    return out


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number of days >= 0, got {text!r}")
    return value

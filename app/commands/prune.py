"""`taskrouter prune`: roll the attempt log up into hourly and daily totals, delete the raw rows older than
ATTEMPTS_RETENTION_DAYS (or --days), and give the space back to the disk.

Routers do this by themselves about once an hour while they run; this is for a cron job, a first run on a big
file, or a look at what it would do (--dry-run). The dashboard keeps showing the removed hours from the rollups.
The audit trail, checks, marks and overrides are never removed.

Exit codes: 0 done, 1 the database cannot be used, 2 bad input (no database where --db or the settings say).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from app.commands.store_arg import add_store_option
from app.config import load_settings
from app.store.retention import MAX_RETENTION_DAYS

if TYPE_CHECKING:
    from app.store.backend import StoreBackend

_VACUUM_ADVICE = (
    "run `taskrouter prune --vacuum` once to shrink it (it rewrites the file; routers' rows wait in "
    "memory meanwhile, none lost) and to let later prunes shrink it too"
)


def _days(text: str) -> int:
    try:
        days = int(text)
    except ValueError:
        days = 0
    if not 1 <= days <= MAX_RETENTION_DAYS:
        raise argparse.ArgumentTypeError(
            f"must be a whole number of days from 1 to {MAX_RETENTION_DAYS} (got "
            f"{text!r}); to keep raw rows for ever, set ATTEMPTS_RETENTION_DAYS=0 and "
            "do not prune"
        )
    return days


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "prune",
        help="roll up the attempt log, delete raw rows past ATTEMPTS_RETENTION_DAYS and free the space",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_option(parser)
    parser.add_argument(
        "--days",
        type=_days,
        default=None,
        metavar="N",
        help="keep raw rows of the last N days (default: ATTEMPTS_RETENTION_DAYS, 30)",
    )
    parser.add_argument("--dry-run", action="store_true", help="say what would be removed; change nothing")
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="then rewrite a file created before auto_vacuum was set, so that it shrinks (once)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=func)


def func(args: argparse.Namespace) -> int:
    from app.commands.store_arg import unusable_store
    from app.store import StoreProblem, backend_for
    from app.store.target import chosen_store

    if args.vacuum and args.dry_run:
        return _fail("--vacuum rewrites the file, which --dry-run promises not to do: give one or the other", 2)
    settings = load_settings()
    store = backend_for(chosen_store(args.db, settings))
    if args.vacuum and store.why_no_vacuum is not None:
        return _fail(f"--vacuum rewrites a SQLite file; {store.label} is {store.why_no_vacuum}", 2)
    if (code := unusable_store(store.target, "prune", thorough=False)) is not None:
        return code
    days = args.days if args.days is not None else settings.attempts_retention_days
    try:
        if days == 0:
            return _rollup_only(store, args)
        return _prune(store, days, args)
    except StoreProblem as problem:
        return _fail(f"the attempts database cannot be used: {problem}", 1)


def _fail(message: str, code: int) -> int:
    print(f"taskrouter prune: {message}", file=sys.stderr)
    return code


def _rollup_only(store: StoreBackend, args: argparse.Namespace) -> int:
    report = store.rollup(dry_run=args.dry_run)
    if args.json:
        print(
            json.dumps(
                {
                    "path": store.label,
                    "dry_run": args.dry_run,
                    "retention_days": 0,
                    "rows_removed": 0,
                    "hours_rolled_up": report.hours,
                    "rolled_up_through": report.through_hour,
                },
                indent=2,
            )
        )
        return 0
    verb = "would roll" if args.dry_run else "rolled"
    print(
        f"{store.label}: ATTEMPTS_RETENTION_DAYS is 0, so raw rows are kept for ever and none was removed "
        f"(--days N removes those older than N days).\n{verb} up {_count(report.hours, 'closed hour')} "
        f"({_count(report.rows, 'row')}){_through(report.through_hour)}"
    )
    return 0


def _prune(store: StoreBackend, days: int, args: argparse.Namespace) -> int:
    report = store.prune(days, dry_run=args.dry_run)
    vacuumed = store.vacuum() if args.vacuum and report.auto_vacuum != "incremental" else None
    if args.json:
        document = report.to_json()
        if vacuumed is not None:
            document["vacuum"] = {"file_before": vacuumed[0], "file_after": vacuumed[1]}
        print(json.dumps(document, indent=2))
        return 0
    lines = render(report, vacuumed)
    if args.vacuum and vacuumed is None:
        lines.append("--vacuum: not needed, this file already shrinks as rows are removed (auto_vacuum = incremental)")
    print("\n".join(lines))
    return 0


def render(report: Any, vacuumed: tuple[int, int] | None = None) -> list[str]:
    would = "would " if report.dry_run else ""
    lines = [
        f"{report.path}: {'dry run, nothing changed. ' if report.dry_run else ''}raw rows older than "
        f"{_count(report.retention_days, 'day')} (before {_when(report.cutoff)})"
    ]
    if report.hours_rolled_up:
        lines.append(
            f"{'would roll' if report.dry_run else 'rolled'} up "
            f"{_count(report.hours_rolled_up, 'closed hour')} first{_through(report.rolled_up_through)}"
        )
    if not report.rows_removed:
        oldest = f"the oldest is from {_when(report.oldest_kept)}" if report.oldest_kept else "the log is empty"
        lines.append(f"no raw row is that old: nothing {'would be ' if report.dry_run else ''}removed; {oldest}")
        return [*lines, *_vacuumed(vacuumed)]
    batches = (
        ""
        if report.dry_run
        else (
            f" in {_count(report.batches, 'batch', 'batches')} (the longest held the "
            f"write lock {report.longest_batch_ms:,.0f} ms)"
        )
    )
    lines.append(
        f"{'would remove' if report.dry_run else 'removed'} {_count(report.rows_removed, 'row')} from "
        f"{_when(report.removed_from)} to {_when(report.removed_to)}{batches}"
    )
    if report.oldest_kept:
        lines.append(f"oldest row {'that would be ' if report.dry_run else ''}kept: {_when(report.oldest_kept)}")
    else:
        lines.append(
            f"no raw row {'would be' if report.dry_run else 'is'} left: the rollups hold the totals of every "
            "removed hour"
        )
    about = "about " if report.dry_run else ""
    if report.auto_vacuum == "partitions":  # PostgreSQL: whole days dropped, the others' rows deleted
        lines.append(
            f"{would}give {about}{_size(report.freed)} back to the disk (the days dropped; the space of rows "
            "deleted from a day kept is reused by new rows)"
        )
    elif report.auto_vacuum == "incremental":
        lines.append(
            f"{would}free {about}{_size(report.freed)}, returned to the disk (the file: "
            f"{_size(report.size_before)} -> {about}{_size(report.size_after)})"
        )
    else:
        lines.append(
            f"{would}free {about}{_size(report.freed)} inside the file, which new rows reuse; the file keeps "
            f"its size ({_size(report.size_before)}) because it was created before auto_vacuum was set: "
            + ("done now with --vacuum" if vacuumed else _VACUUM_ADVICE)
        )
    return [*lines, *_vacuumed(vacuumed)]


def _vacuumed(vacuumed: tuple[int, int] | None) -> list[str]:
    if vacuumed is None:
        return []
    return [
        f"vacuumed: the file went from {_size(vacuumed[0])} to {_size(vacuumed[1])}; later prunes shrink it "
        "(auto_vacuum = incremental)"
    ]


def _count(count: int, word: str, plural: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else plural or word + 's'}"


def _through(hour: str | None) -> str:
    return f" (the rollups reach {hour.replace('T', ' ')}:00 UTC)" if hour else ""


def _when(text: str | None) -> str:
    return f"{text[:19].replace('T', ' ')} UTC" if text else "-"


def _size(count: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:,.1f} {unit}"
    return f"{count:,} bytes"

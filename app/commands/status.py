"""`taskrouter status`: the models the router is leaving alone (model_status), and clearing a mark by hand.

A 400 `model_decommissioned` marks a model deprecated for good; every process sharing the database then skips
it. When that was wrong (a gateway's error page, a model brought back), `--clear MODEL` lifts the mark: routers
drop their own older mark at their next refresh (MODEL_STATUS_REFRESH_SECONDS), and a new failure marks it again.

Exit codes: 0 done, 2 a model to clear has no mark (nothing is changed) or a bad setting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from datetime import UTC, datetime
from typing import Any

from app.config import load_settings

_COLUMNS = ("model", "status", "until", "hits", "first_seen", "last_seen", "detail")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status", help="list the models the router skips (deprecated, not found, cooling down, circuit open); "
        "clear a mark",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--db", default=None,
                        help="the store: a SQLite file or a postgresql:// URL (default: ATTEMPTS_DB_URL, else "
                             "ATTEMPTS_DB_PATH, taskrouter.db)")
    parser.add_argument("--clear", nargs="+", metavar="MODEL", default=[],
                        help="lift these models' marks (all or nothing: an unmarked name changes nothing)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.set_defaults(func=func)


def func(args: argparse.Namespace) -> int:
    from app.store import CLEARED, CLOSED, clear_model_status, diagnose, open_database, read_model_status, utc_now_iso
    from app.store.overrides import record_audit
    from app.store.target import chosen_store, label_of

    settings = load_settings()
    db_path = chosen_store(args.db, settings)
    where = label_of(db_path)
    problem = diagnose(db_path)
    if problem is not None:
        print(f"taskrouter status: the attempts database cannot be used: {problem}", file=sys.stderr)
        return 1
    if args.clear:
        marked = {r["model"]: r for r in read_model_status(db_path) if r["status"] not in (CLEARED, CLOSED)}
        unknown = [m for m in args.clear if m not in marked]
        if unknown:
            listed = ", ".join(sorted(marked)) or "none"
            print(f"taskrouter status: no mark to clear for {', '.join(unknown)} in {where} (marked: {listed}); "
                  "nothing was changed", file=sys.stderr)
            return 2
        db = open_database(db_path)
        with contextlib.closing(db.conn):
            cleared = clear_model_status(db.conn, list(dict.fromkeys(args.clear)), utc_now_iso())
            for model, row in cleared.items():
                record_audit(db.conn, "mark cleared", model, detail=f"was {row['status']}: {row['detail'] or ''}")
        for model, row in cleared.items():
            print(f"cleared {model} (was {row['status']}); routers drop their mark within "
                  f"{settings.model_status_refresh_seconds:g} s")
    rows = read_model_status(db_path)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not args.clear:
        print(render(rows, datetime.now(UTC)) if rows else f"no model marks in {where}")
    return 0


def render(rows: list[dict[str, Any]], now: datetime) -> str:
    from app.store import epoch_from_iso

    def cell(row: dict[str, Any], column: str) -> str:
        value = row.get(column)
        if column == "until":
            if row["status"] in ("cleared", "closed"):
                return "-"
            if value is None:
                return "for good"
            expired = (epoch_from_iso(value) or 0) <= now.timestamp()
            return f"{value[:19]}{' (over)' if expired else ''}"
        if column in ("first_seen", "last_seen"):
            return str(value or "")[:19]
        text = "" if value is None else str(value)
        return text if len(text) <= 70 else text[:69] + "…"

    table = [_COLUMNS] + [tuple(cell(r, c) for c in _COLUMNS) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table)

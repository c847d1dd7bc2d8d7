"""`taskrouter status`: the models the router is leaving alone (model_status), and clearing a mark by hand.

A 400 `model_decommissioned` marks a model deprecated for good; every process sharing the database then skips
it. When that was wrong (a gateway's error page, a model brought back), `--clear MODEL --reason TEXT` lifts the
mark: routers drop their own older mark at their next refresh (MODEL_STATUS_REFRESH_SECONDS), and a new failure
marks it again. The audit row keeps the reason and who (`--by` a named operator, else the OS account).

Also listed: the models switched off with `taskrouter model disable`, the runtime overrides and the environment's
(FORCE_MODEL, DEFAULT_<TASK>_MODEL): every lever in effect.

Stored text (a provider's message, an operator's reason) is printed without its control characters and escape
sequences, and a line break in it as a space: it cannot forge a line of the listing.

Exit codes: 0 done, 1 the database cannot be used, 2 no database where --db or the settings say, a model to clear
has no mark, --clear without a reason or --by no operator (nothing is changed then) or a bad setting.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from app.commands.acting import acting, add_acting_options, missing_reason
from app.commands.store_arg import add_store_option
from app.config import load_settings
from app.text import plain_terminal

if TYPE_CHECKING:
    from app.registry.chain import EnvOverride
    from app.store.overrides import Override

_COLUMNS = ("model", "status", "until", "hits", "first_seen", "last_seen", "detail")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status",
        help="list the models the router skips (marked deprecated, not found, cooling down, circuit open; "
        "disabled by hand) and the overrides in effect; clear a mark",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_store_option(parser)
    parser.add_argument(
        "--clear",
        nargs="+",
        metavar="MODEL",
        default=[],
        help="lift these models' marks (all or nothing: an unmarked name changes nothing)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    add_acting_options(parser, required_with="--clear")
    parser.set_defaults(func=func)


def func(args: argparse.Namespace) -> int:
    from app.commands.store_arg import unusable_store
    from app.registry.chain import environment_overrides
    from app.store import CLEARED, CLOSED, clear_model_status, open_database, read_model_status, utc_now_iso
    from app.store.overrides import read_marks_and_overrides, record_audit
    from app.store.target import chosen_store, label_of

    settings = load_settings()
    db_path = chosen_store(args.db, settings)
    where = label_of(db_path)
    if args.clear and (code := missing_reason(args, "status --clear")) is not None:
        return code
    if (code := unusable_store(db_path, "status")) is not None:
        return code
    if args.clear:
        marked = {r["model"]: r for r in read_model_status(db_path) if r["status"] not in (CLEARED, CLOSED)}
        unknown = [m for m in args.clear if m not in marked]
        if unknown:
            listed = plain_terminal(", ".join(sorted(marked)) or "none")
            print(
                f"taskrouter status: no mark to clear for {plain_terminal(', '.join(unknown))} in {where} "
                f"(marked: {listed}); nothing was changed",
                file=sys.stderr,
            )
            return 2
        if (by := acting(args, db_path, "status --clear")) is None:
            return 2
        db = open_database(db_path)
        with contextlib.closing(db.conn):
            cleared = clear_model_status(db.conn, list(dict.fromkeys(args.clear)), utc_now_iso())
            for model, row in cleared.items():
                detail = f"was {row['status']}: {row['detail'] or ''}"
                record_audit(db.conn, "mark cleared", model, detail=detail, reason=by.reason, by=by.by, via=by.via)
        for model, row in cleared.items():
            print(
                f"cleared {plain_terminal(model)} (was {plain_terminal(str(row['status']))}); routers drop their "
                f"mark within {settings.model_status_refresh_seconds:g} s"
            )
    rows, runtime = read_marks_and_overrides(db_path, utc_now_iso())
    env = environment_overrides(settings)
    if args.json:
        print(
            json.dumps(
                {
                    "store": where,
                    "marks": rows,
                    "runtime": [o.to_json() for o in runtime],
                    "environment": [e.to_json() for e in env],
                },
                indent=2,
            )
        )
    elif not args.clear:
        print(render_all(where, rows, runtime, env, datetime.now(UTC)))
    return 0


def render_all(
    where: str, rows: list[dict[str, Any]], runtime: Sequence[Override], env: Sequence[EnvOverride], now: datetime
) -> str:
    """Every lever in effect: the marks routers set, the models switched off by hand, the overrides."""
    from app.commands.levers import disabled, override_lines

    lines = [f"model marks in {where}:", render(rows, now)] if rows else [f"no model marks in {where}"]
    off = disabled(runtime)
    if off:
        lines.append(
            "disabled models (every router skips them; `taskrouter model enable MODEL --reason TEXT` puts one back):"
        )
        lines += [f"  #{o.id} {plain_terminal(o.describe())}" for o in off]
    else:
        lines.append("disabled models: none")
    overrides = override_lines(runtime, env)
    if overrides:
        lines.append("overrides in effect (highest precedence first):")
        lines += [f"  {line}" for line in overrides]
    else:
        lines.append("overrides: none")
    return "\n".join(lines)


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
            return f"{plain_terminal(value)[:19]}{' (over)' if expired else ''}"
        if column in ("first_seen", "last_seen"):
            return plain_terminal(str(value or ""))[:19]
        text = "" if value is None else plain_terminal(str(value))
        return text if len(text) <= 70 else text[:69] + "…"

    table = [_COLUMNS] + [tuple(cell(r, c) for c in _COLUMNS) for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in table)

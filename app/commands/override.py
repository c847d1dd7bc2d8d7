"""`taskrouter override ...` and `taskrouter model disable|enable`: change routing at runtime, for every process
on the database, without a restart. Each change is an audit row; routers pick it up within
MODEL_STATUS_REFRESH_SECONDS.

Precedence, highest first: a runtime force override for the task, one for every task, FORCE_MODEL, a runtime
default override for the task, DEFAULT_<TASK>_MODEL, MODEL_REGISTRY.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from app.commands.store_arg import unusable_store
from app.config import load_settings
from app.text import plain_terminal


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "override", help="force or reorder models at runtime, for every process on the database (no restart)"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    force = actions.add_parser("force", help="every task (or --task) calls only MODEL")
    force.add_argument("model", help="the model every request calls, alone")
    force.add_argument("--task", help="only this task type (default: every task)")
    default = actions.add_parser("default", help="MODEL goes first in TASK's chain")
    default.add_argument("task", help="the task type from MODEL_REGISTRY, e.g. fast")
    default.add_argument("model", help="the model tried first, before the task's own chain")
    for sub in (force, default):
        sub.add_argument("--ttl", help="expires after this long: 90s, 30m, 2h (default: until cleared)")
        sub.add_argument("--any-model", action="store_true", help="allow a model the catalog does not know")
    clear = actions.add_parser("clear", help="end force and default overrides (all, or those matching)")
    clear.add_argument("--kind", choices=("force", "default"), help="only overrides of this kind (default: both)")
    clear.add_argument("--task", help="only the overrides set for this task type (default: those of every scope)")
    clear.add_argument("--model", help="only the overrides naming this model (default: any)")
    listing = actions.add_parser("list", help="what is in effect: runtime overrides and the environment's")
    listing.add_argument("--json", action="store_true", help="print the overrides as JSON")
    for sub in (force, default, clear):
        _reason(sub)
    for sub in (force, default, clear, listing):
        _db(sub)
    parser.set_defaults(func=run_override)

    model = subparsers.add_parser("model", help="take a model out of rotation, or put it back")
    model_actions = model.add_subparsers(dest="action", metavar="ACTION", required=True)
    disable = model_actions.add_parser("disable", help="every router skips MODEL (logged `disabled`)")
    disable.add_argument("model", help="the model to take out of rotation")
    disable.add_argument("--ttl", help="expires after this long: 90s, 30m, 2h (default: until enabled)")
    disable.add_argument("--any-model", action="store_true", help="allow a model the catalog does not know")
    enable = model_actions.add_parser("enable", help="end a disable")
    enable.add_argument("model", help="the disabled model to put back")
    for sub in (disable, enable):
        _reason(sub)
        _db(sub)
    model.set_defaults(func=run_model)


def _reason(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="", help="why, for the audit trail")


def _db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--db",
        default=None,
        help="the store: a SQLite file or a postgresql:// URL (default: ATTEMPTS_DB_URL, else ATTEMPTS_DB_PATH)",
    )


def _ttl(text: str | None) -> float | None:
    from app.core.failures import parse_duration

    if text is None:
        return None
    seconds = parse_duration(text)
    if seconds is None or seconds <= 0:
        raise SystemExit(f"taskrouter: --ttl {text!r} is not a duration: give e.g. 90s, 30m, 2h or 1h30m")
    return seconds


def _known_model(model: str, allow_unknown: bool) -> None:
    from app.core import ai_models

    known = set(ai_models.MODEL_CATALOG) | {m for chain in ai_models.MODEL_REGISTRY.values() for m in chain}
    if model not in known and not allow_unknown:
        raise SystemExit(
            f"taskrouter: {model!r} is not in MODEL_CATALOG or MODEL_REGISTRY (known: "
            f"{', '.join(sorted(known))}); pass --any-model to use it anyway"
        )


def _known_task(task: str) -> None:
    from app.core import ai_models

    if task not in ai_models.MODEL_REGISTRY or task == "fallback":
        tasks = sorted(k for k in ai_models.MODEL_REGISTRY if k != "fallback")
        raise SystemExit(f"taskrouter: unknown task {task!r}; MODEL_REGISTRY has: {', '.join(tasks)}")


@contextlib.contextmanager
def _connection(args: argparse.Namespace) -> Any:
    from app.store import open_database
    from app.store.target import chosen_store

    db = open_database(chosen_store(args.db, load_settings()))
    try:
        yield db.conn
    finally:
        db.conn.close()


def _unusable(args: argparse.Namespace, command: str) -> int | None:
    """Undoing needs a store that holds something: a missing one is a wrong --db, not a file to create."""
    from app.store.target import chosen_store

    return unusable_store(chosen_store(args.db, load_settings()), command, thorough=False)


def _refresh_note() -> str:
    return f"routers pick it up within {load_settings().model_status_refresh_seconds:g} s"


def run_override(args: argparse.Namespace) -> int:
    from app.store.overrides import DEFAULT, FORCE, clear_overrides, set_override

    if args.action == "list":
        return _list(args)
    if args.action == "force":
        _known_model(args.model, args.any_model)
        if args.task:
            _known_task(args.task)
        with _connection(args) as conn:
            made = set_override(conn, FORCE, args.model, task=args.task, ttl_seconds=_ttl(args.ttl), reason=args.reason)
        print(f"override #{made.id}: {plain_terminal(made.describe())}; {_refresh_note()}")
        return 0
    if args.action == "default":
        _known_task(args.task)
        _known_model(args.model, args.any_model)
        with _connection(args) as conn:
            made = set_override(
                conn, DEFAULT, args.model, task=args.task, ttl_seconds=_ttl(args.ttl), reason=args.reason
            )
        print(f"override #{made.id}: {plain_terminal(made.describe())}; {_refresh_note()}")
        return 0
    if (code := _unusable(args, "override clear")) is not None:
        return code
    kinds = [args.kind] if args.kind else [FORCE, DEFAULT]
    with _connection(args) as conn:
        cleared = [
            o
            for kind in kinds
            for o in clear_overrides(conn, kind=kind, task=args.task, model=args.model, reason=args.reason)
        ]
    if not cleared:
        print("taskrouter override clear: no active override matches; nothing was changed", file=sys.stderr)
        return 1
    for o in cleared:
        print(f"cleared override #{o.id}: {plain_terminal(o.describe())}")
    print(_refresh_note())
    return 0


def run_model(args: argparse.Namespace) -> int:
    from app.store.overrides import DISABLE, clear_overrides, set_override

    if args.action == "disable":
        _known_model(args.model, args.any_model)
        with _connection(args) as conn:
            made = set_override(conn, DISABLE, args.model, ttl_seconds=_ttl(args.ttl), reason=args.reason)
        print(f"override #{made.id}: {plain_terminal(made.describe())}; {_refresh_note()}")
        return 0
    if (code := _unusable(args, "model enable")) is not None:
        return code
    with _connection(args) as conn:
        cleared = clear_overrides(conn, kind=DISABLE, model=args.model, reason=args.reason)
    if not cleared:
        print(f"taskrouter model enable: {args.model} is not disabled; nothing was changed", file=sys.stderr)
        return 1
    print(f"enabled {args.model}; {_refresh_note()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from app.commands.levers import PRECEDENCE, disabled, environment_overrides, override_json, override_lines
    from app.store.overrides import read_active
    from app.store.target import chosen_store

    settings = load_settings()
    where = chosen_store(args.db, settings)
    if (code := unusable_store(where, "override list", thorough=False)) is not None:
        return code
    runtime = read_active(where)
    env = environment_overrides(settings)
    if args.json:
        print(
            json.dumps(
                {"runtime": [override_json(o) for o in runtime], "environment": [e.to_json() for e in env]}, indent=2
            )
        )
        return 0
    print(f"precedence: {PRECEDENCE}")
    lines = override_lines(runtime, env) + [f"#{o.id} {plain_terminal(o.describe())}" for o in disabled(runtime)]
    print("\n".join(lines) if lines else "no override in effect")
    return 0

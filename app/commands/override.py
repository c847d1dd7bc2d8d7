"""`taskrouter override ...` and `taskrouter model disable|enable`: change routing at runtime, for every process
on the database, without a restart. Each change is an audit row; routers pick it up within
MODEL_STATUS_REFRESH_SECONDS.

Every change needs a reason and records who made it (app/commands/acting.py: `--reason`, `--by`). `override end
ID` ends exactly the override with that id (`override list` shows them); `override clear` ends every one matching
its filters and names each one it ended.

Precedence, highest first: a runtime force override for the task, one for every task, FORCE_MODEL, a runtime
default override for the task, DEFAULT_<TASK>_MODEL, MODEL_REGISTRY.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from typing import Any

from app.commands.acting import EXIT_BAD_INPUT, Acting, acting, add_acting_options, missing_reason
from app.commands.store_arg import add_store_option, unusable_store
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
    end = actions.add_parser("end", help="end exactly one override, by its id (`override list` shows ids)")
    end.add_argument("id", type=_override_id, metavar="ID", help="the override's id, e.g. 3 or #3")
    clear = actions.add_parser(
        "clear", help="end every force and default override matching the filters (all without one); names each"
    )
    clear.add_argument("--kind", choices=("force", "default"), help="only overrides of this kind (default: both)")
    clear.add_argument("--task", help="only the overrides set for this task type (default: those of every scope)")
    clear.add_argument("--model", help="only the overrides naming this model (default: any)")
    listing = actions.add_parser("list", help="what is in effect: runtime overrides and the environment's")
    listing.add_argument("--json", action="store_true", help="print the overrides as JSON")
    for sub in (force, default, end, clear):
        add_acting_options(sub)
    for sub in (force, default, end, clear, listing):
        add_store_option(sub)
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
        add_acting_options(sub)
        add_store_option(sub)
    model.set_defaults(func=run_model)


def _override_id(text: str) -> int:
    try:
        number = int(text.removeprefix("#"))
    except ValueError:
        number = 0
    if number <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an override id: give the number `override list` shows")
    return number


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


def _refresh_note() -> str:
    return f"routers pick it up within {load_settings().model_status_refresh_seconds:g} s"


def _who(args: argparse.Namespace, command: str, *, existing: bool) -> Acting | int:
    """Who makes this change and why, or the exit code after saying what to fix; nothing is opened before the reason
    is there. `existing`: the change undoes something, and a missing store is a wrong --db, not a file to create."""
    from app.store.target import chosen_store

    if (code := missing_reason(args, command)) is not None:
        return code
    where = chosen_store(args.db, load_settings())
    if existing and (code := unusable_store(where, command, thorough=False)) is not None:
        return code
    return acting(args, where, command) or EXIT_BAD_INPUT


def run_override(args: argparse.Namespace) -> int:
    if args.action == "list":
        return _list(args)
    command = f"override {args.action}"
    if args.action in ("force", "default"):
        if args.task:
            _known_task(args.task)
        _known_model(args.model, args.any_model)
        ttl = _ttl(args.ttl)
        by = _who(args, command, existing=False)
        return by if isinstance(by, int) else _set(args, by, ttl)
    by = _who(args, command, existing=True)
    if isinstance(by, int):
        return by
    return _end(args, by) if args.action == "end" else _clear(args, by)


def _set(args: argparse.Namespace, by: Acting, ttl: float | None) -> int:
    from app.store.overrides import DEFAULT, FORCE, set_override

    kind = FORCE if args.action == "force" else DEFAULT
    with _connection(args) as conn:
        made = set_override(
            conn, kind, args.model, task=args.task, ttl_seconds=ttl, reason=by.reason, by=by.by, via=by.via
        )
    print(f"override #{made.id}: {plain_terminal(made.describe())}; {_refresh_note()}")
    return 0


def _end(args: argparse.Namespace, by: Acting) -> int:
    from app.store.overrides import end_override

    with _connection(args) as conn:
        ended = end_override(conn, args.id, reason=by.reason, by=by.by, via=by.via)
    if ended is None:
        print(
            f"taskrouter override end: no override #{args.id} is in effect (never set, ended or expired; "
            "`taskrouter override list` shows those that are); nothing was changed",
            file=sys.stderr,
        )
        return 1
    print(f"ended override #{ended.id}: {plain_terminal(ended.describe())}; {_refresh_note()}")
    return 0


def _clear(args: argparse.Namespace, by: Acting) -> int:
    from app.store.overrides import DEFAULT, FORCE, clear_overrides

    kinds = [args.kind] if args.kind else [FORCE, DEFAULT]
    with _connection(args) as conn:
        cleared = [
            o
            for kind in kinds
            for o in clear_overrides(
                conn, kind=kind, task=args.task, model=args.model, reason=by.reason, by=by.by, via=by.via
            )
        ]
    if not cleared:
        print("taskrouter override clear: no active override matches; nothing was changed", file=sys.stderr)
        return 1
    ids = ", ".join(f"#{o.id}" for o in cleared)
    print(f"ended {len(cleared)} override{'s' if len(cleared) > 1 else ''}: {ids}")
    for o in cleared:
        print(f"  #{o.id} {plain_terminal(o.describe())}")
    print(_refresh_note())
    return 0


def run_model(args: argparse.Namespace) -> int:
    from app.store.overrides import DISABLE, clear_overrides, set_override

    command = f"model {args.action}"
    if args.action == "disable":
        _known_model(args.model, args.any_model)
        ttl = _ttl(args.ttl)
        by = _who(args, command, existing=False)
        if isinstance(by, int):
            return by
        with _connection(args) as conn:
            made = set_override(conn, DISABLE, args.model, ttl_seconds=ttl, reason=by.reason, by=by.by, via=by.via)
        print(f"override #{made.id}: {plain_terminal(made.describe())}; {_refresh_note()}")
        return 0
    by = _who(args, command, existing=True)
    if isinstance(by, int):
        return by
    with _connection(args) as conn:
        cleared = clear_overrides(conn, kind=DISABLE, model=args.model, reason=by.reason, by=by.by, via=by.via)
    if not cleared:
        print(
            f"taskrouter model enable: {plain_terminal(args.model)} is not disabled; nothing was changed",
            file=sys.stderr,
        )
        return 1
    ended = ", ".join(f"#{o.id}" for o in cleared)
    print(f"enabled {plain_terminal(args.model)} (ended override {ended}); {_refresh_note()}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from app.commands.levers import PRECEDENCE, disabled, override_lines
    from app.registry.chain import environment_overrides
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
            json.dumps({"runtime": [o.to_json() for o in runtime], "environment": [e.to_json() for e in env]}, indent=2)
        )
        return 0
    print(f"precedence: {PRECEDENCE}")
    lines = override_lines(runtime, env) + [f"#{o.id} {plain_terminal(o.describe())}" for o in disabled(runtime)]
    if runtime:
        lines.append('end one by its id: taskrouter override end ID --reason "why"')
    print("\n".join(lines) if lines else "no override in effect")
    return 0

"""`taskrouter keys create|list|revoke`: the API keys `taskrouter serve` asks of every client.

`create NAME` prints the key once; the store keeps only a hash of it (app/store/api_keys.py). A client sends it as
`Authorization: Bearer <key>` (the OpenAI SDKs' `api_key`). Each attempt row of its requests carries the key's name.
A key may be limited to some tasks (`--tasks`), given its own daily budget beside DAILY_BUDGET_USD
(`--daily-budget-usd`), an expiry (`--expires 30d`), and the admin right, which the management API's changes need
(`--admin`). `revoke NAME --reason TEXT` ends it in every gateway within a few seconds; like every other change from
the CLI it needs a reason and records who made it (app/commands/acting.py).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from app.commands.acting import EXIT_BAD_INPUT, Acting, acting, add_acting_options, missing_reason
from app.commands.store_arg import add_store_option, unusable_store
from app.config import load_settings

if TYPE_CHECKING:
    from app.store.target import Target

_LASTING = re.compile(r"([1-9][0-9]{0,4})([dh])")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("keys", help="the API keys taskrouter serve asks of clients: create, list, revoke")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="a new API key; prints it once")
    create.add_argument("name", help="letters, digits and . _ @ + -; written on every attempt row of its requests")
    create.add_argument(
        "--daily-budget-usd",
        type=float,
        default=None,
        metavar="USD",
        help="what the key's requests may cost per UTC day, beside DAILY_BUDGET_USD (default: no limit of its own)",
    )
    create.add_argument(
        "--tasks", default=None, metavar="A,B", help="the only tasks the key may name as the model (default: every)"
    )
    create.add_argument(
        "--expires",
        default=None,
        metavar="30d",
        help="how long the key lasts: days (30d) or hours (12h) (default: no end)",
    )
    create.add_argument(
        "--admin", action="store_true", help="the key may also change routing through the management API"
    )
    listing = actions.add_parser("list", help="every key, revoked ones too (never the key itself)")
    listing.add_argument("--json", action="store_true", help="print the keys as JSON")
    revoke = actions.add_parser("revoke", help="end a key (every gateway refuses it within a few seconds)")
    revoke.add_argument("name", help="the key to revoke")
    add_acting_options(revoke)
    for sub in (create, listing, revoke):
        add_store_option(sub)
    parser.set_defaults(func=run_keys)


def run_keys(args: argparse.Namespace) -> int:
    from app.store.target import chosen_store

    command = f"keys {args.action}"
    if args.action == "revoke" and (code := missing_reason(args, command)) is not None:
        return code  # before the store is looked at: a refused change reads and writes nothing
    where = chosen_store(args.db, load_settings())
    if args.action == "create":
        return _create(where, args)
    if (code := unusable_store(where, command, thorough=False)) is not None:
        return code
    if args.action == "list":
        return _list(where, as_json=args.json)
    by = acting(args, where, command)
    return _revoke(where, args.name, by) if by is not None else EXIT_BAD_INPUT


def expiry(text: str, now: datetime) -> str:
    """`30d` or `12h` from `now`, as the store's UTC ISO-8601 text; ValueError saying what to write."""
    match = _LASTING.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"--expires {text!r} is not a duration: write days or hours, e.g. 30d or 12h")
    amount, unit = int(match[1]), match[2]
    until = now + (timedelta(days=amount) if unit == "d" else timedelta(hours=amount))
    return until.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _tasks(text: str) -> tuple[str, ...]:
    """The tasks of --tasks, each a task of MODEL_REGISTRY; ValueError naming the known ones."""
    from app.core import ai_models
    from app.registry.chain import FALLBACK_KEY

    known = sorted(k for k in ai_models.MODEL_REGISTRY if k != FALLBACK_KEY and ":" not in k)
    tasks = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    if not tasks:
        raise ValueError("--tasks is empty: name one or more tasks, e.g. --tasks fast,reasoning")
    for task in tasks:
        if task not in known:
            raise ValueError(
                f"--tasks names {task!r}, which is not a task of MODEL_REGISTRY: name tasks among {', '.join(known)} "
                "(a key for a task may use its variants too)"
            )
    return tasks


def _create(where: Target, args: argparse.Namespace) -> int:
    from app.store import open_database
    from app.store.api_keys import ApiKeyError, check_key_name, create_api_key

    try:
        name = check_key_name(args.name)  # before the store is opened: bad input creates nothing
        tasks = _tasks(args.tasks) if args.tasks is not None else None
        expires_at = expiry(args.expires, datetime.now(UTC)) if args.expires is not None else None
        budget = args.daily_budget_usd
        if budget is not None and not budget > 0:
            raise ValueError(f"--daily-budget-usd must be more than 0, not {budget:g}")
    except ValueError as exc:  # ApiKeyError too
        print(f"taskrouter keys create: {exc}; nothing was created", file=sys.stderr)
        return EXIT_BAD_INPUT
    db = open_database(where)
    try:
        key = create_api_key(
            db.conn, name, tasks=tasks, daily_budget_usd=budget, expires_at=expires_at, admin=args.admin
        )
    except ApiKeyError as exc:
        print(f"taskrouter keys create: {exc}", file=sys.stderr)
        return 1
    finally:
        db.conn.close()
    print(f"API key {name} created. The key, shown this once (the store keeps only a hash of it):")
    print(key)
    print("Clients send it as `Authorization: Bearer <key>` (an OpenAI SDK's api_key); keep it like a password.")
    return 0


def _list(where: Target, *, as_json: bool) -> int:
    from app.clock import utc_now_iso
    from app.store.api_keys import read_api_keys

    keys = read_api_keys(where)
    if as_json:
        fields = ("name", "prefix", "daily_budget_usd", "admin", "expires_at", "created_at", "created_by")
        print(
            json.dumps(
                [
                    {
                        **{f: getattr(k, f) for f in fields},
                        "tasks": list(k.tasks) if k.tasks is not None else None,
                        "revoked_at": k.revoked_at,
                        "revoked_by": k.revoked_by,
                    }
                    for k in keys
                ],
                indent=2,
            )
        )
        return 0
    if not keys:
        print("no API key: create one with `taskrouter keys create NAME`")
        return 0
    now = utc_now_iso()
    for k in keys:
        if k.revoked_at is not None:
            state = f"revoked at {k.revoked_at} by {k.revoked_by}"
        elif k.expired(now):
            state = f"expired at {k.expires_at}"
        else:
            state = "active" + (f" until {k.expires_at}" if k.expires_at else "")
        limits = [f"tasks {','.join(k.tasks)}" if k.tasks is not None else "every task"]
        if k.daily_budget_usd is not None:
            limits.append(f"${k.daily_budget_usd:g} a day")
        if k.admin:
            limits.append("admin")
        print(f"{k.name} ({k.prefix}...): {state}; {', '.join(limits)}; created at {k.created_at} by {k.created_by}")
    return 0


def _revoke(where: Target, name: str, by: Acting) -> int:
    from app.store import open_database
    from app.store.api_keys import revoke_api_key

    db = open_database(where)
    try:
        revoked = revoke_api_key(db.conn, name, reason=by.reason, by=by.by, via=by.via)
    finally:
        db.conn.close()
    if not revoked:
        print(f"taskrouter keys revoke: no API key in use is named {name!r}; nothing was changed", file=sys.stderr)
        return 1
    print(f"API key {name.lower()} revoked: every gateway refuses it within a few seconds")
    return 0

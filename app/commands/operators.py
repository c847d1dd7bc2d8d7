"""`taskrouter operators create|list|revoke`: the named people who may act from the dashboard.

`create NAME` prints the operator's secret once; the store keeps only a hash of it (app/store/operators.py). The
operator signs in on the dashboard's Tasks page with the name and that secret, and every change they make is
recorded under their name. `revoke NAME --reason TEXT` ends it at once, in every dashboard session signed in under
it; like every other change from the CLI it needs a reason and records who made it (app/commands/acting.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from app.commands.acting import EXIT_BAD_INPUT, Acting, acting, add_acting_options, missing_reason
from app.commands.store_arg import add_store_option, unusable_store
from app.config import load_settings

if TYPE_CHECKING:
    from app.store.target import Target


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "operators", help="the named people who may act from the dashboard: create, list, revoke"
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="a new operator; prints its secret once")
    create.add_argument("name", help="letters, digits and . _ @ + - (an e-mail address for an OIDC login)")
    listing = actions.add_parser("list", help="every operator, revoked ones too")
    listing.add_argument("--json", action="store_true", help="print the operators as JSON")
    revoke = actions.add_parser("revoke", help="end an operator at once (its dashboard sessions can no longer act)")
    revoke.add_argument("name", help="the operator to revoke")
    add_acting_options(revoke)
    for sub in (create, listing, revoke):
        add_store_option(sub)
    parser.set_defaults(func=run_operators)


def run_operators(args: argparse.Namespace) -> int:
    from app.store.target import chosen_store

    command = f"operators {args.action}"
    if args.action == "revoke" and (code := missing_reason(args, command)) is not None:
        return code  # before the store is looked at: a refused change reads and writes nothing
    where = chosen_store(args.db, load_settings())
    if args.action == "create":
        return _create(where, args.name)
    if (code := unusable_store(where, command, thorough=False)) is not None:
        return code
    if args.action == "list":
        return _list(where, as_json=args.json)
    by = acting(args, where, command)
    return _revoke(where, args.name, by) if by is not None else EXIT_BAD_INPUT


def _create(where: Target, name: str) -> int:
    from app.store import open_database
    from app.store.operators import OperatorError, check_name, create_operator

    try:
        check_name(name)  # before the store is opened: a bad name creates nothing
    except OperatorError as exc:
        print(f"taskrouter operators create: {exc}", file=sys.stderr)
        return 2
    db = open_database(where)
    try:
        secret = create_operator(db.conn, name)
    except OperatorError as exc:
        print(f"taskrouter operators create: {exc}", file=sys.stderr)
        return 1
    finally:
        db.conn.close()
    print(f"operator {name.lower()} created. Its secret, shown this once (the store keeps only a hash of it):")
    print(secret)
    print("Sign in on the dashboard's Tasks page with the name and this secret; hand it over as you would a password.")
    return 0


def _list(where: Target, *, as_json: bool) -> int:
    from app.store.operators import read_operators

    operators = read_operators(where)
    if as_json:
        print(
            json.dumps(
                [
                    {
                        "name": o.name,
                        "created_at": o.created_at,
                        "created_by": o.created_by,
                        "revoked_at": o.revoked_at,
                        "revoked_by": o.revoked_by,
                    }
                    for o in operators
                ],
                indent=2,
            )
        )
        return 0
    if not operators:
        print("no operator: create one with `taskrouter operators create NAME`")
        return 0
    for o in operators:
        state = f"revoked at {o.revoked_at} by {o.revoked_by}" if o.revoked_at else "active"
        print(f"{o.name}: {state}; created at {o.created_at} by {o.created_by}")
    return 0


def _revoke(where: Target, name: str, by: Acting) -> int:
    from app.store import open_database
    from app.store.operators import revoke_operator

    db = open_database(where)
    try:
        revoked = revoke_operator(db.conn, name, reason=by.reason, by=by.by, via=by.via)
    finally:
        db.conn.close()
    if not revoked:
        print(
            f"taskrouter operators revoke: no active operator is named {name!r}; nothing was changed", file=sys.stderr
        )
        return 1
    print(f"operator {name.lower()} revoked: it can no longer act from the dashboard")
    return 0

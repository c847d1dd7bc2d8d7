"""Who changes routing from the CLI, and why: the options every write takes (`override force|default|end|clear`,
`model disable|enable`, `status --clear`) and the audit row's `who` and `via` they give.

Every write needs a non-empty `--reason`: without one the command says what to add, exits 2 and writes nothing.
`--by NAME` names the person, a named operator of the store (`taskrouter operators create NAME`) that is not
revoked; the OS account is then only in `via` ("cli as ops@host"), as the dashboard records its own. Without
`--by`, the OS account is the person and `via` is "cli".
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.store.target import Target

EXIT_BAD_INPUT = 2


@dataclass(frozen=True, slots=True)
class Acting:
    """Who makes a change, through what, and why: what each audit row of the change records."""

    by: str
    via: str
    reason: str


def add_acting_options(parser: argparse.ArgumentParser, *, required_with: str = "") -> None:
    """`required_with`: the option that makes the command a change, when it is not always one (status --clear)."""
    needed = f"required with {required_with}" if required_with else "required"
    parser.add_argument(
        "--reason", default=None, metavar="TEXT", help=f"why, for the audit trail ({needed}, not empty)"
    )
    parser.add_argument(
        "--by",
        default=None,
        metavar="NAME",
        help="the named operator making the change (taskrouter operators create NAME), recorded as who; "
        "default: this OS account",
    )


def missing_reason(args: argparse.Namespace, command: str) -> int | None:
    """EXIT_BAD_INPUT, after saying what to add on stderr, when --reason is missing or blank; None when given.
    Asked before the store is opened, so a refused change creates nothing."""
    if args.reason is not None and args.reason.strip():
        return None
    given = "--reason is empty" if args.reason is not None else "no --reason given"
    print(
        f'taskrouter {command}: {given}: add --reason "why" (e.g. --reason "incident 42"), which the audit '
        "trail keeps with the change; nothing was changed",
        file=sys.stderr,
    )
    return EXIT_BAD_INPUT


def acting(args: argparse.Namespace, where: Target, command: str) -> Acting | None:
    """Who, through what and why for this change; None, after saying what to fix on stderr, when --by names no
    active operator of the store (the caller exits EXIT_BAD_INPUT and writes nothing)."""
    from app.store.operators import signed_in_operator
    from app.store.overrides import who
    from app.store.target import label_of
    from app.text import plain_terminal

    reason = str(args.reason).strip()
    if args.by is None:
        return Acting(who(), "cli", reason)
    name = signed_in_operator(where, args.by)
    if name is None:
        print(
            f"taskrouter {command}: --by {plain_terminal(args.by)!r} is no active operator of {label_of(where)}: "
            "give a name `taskrouter operators list` shows as active (or `taskrouter operators create NAME` one), "
            "or leave --by out to record this OS account; nothing was changed",
            file=sys.stderr,
        )
        return None
    return Acting(name, f"cli as {who()}", reason)

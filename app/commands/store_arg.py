"""The store a command is pointed at (`--db`, else the settings'), for the commands that read what routers left."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.store.target import Target

EXIT_MISSING_STORE = 2  # a wrong --db or setting: bad input
EXIT_UNUSABLE_STORE = 1  # there, but unreadable (damaged, not a database, the server refuses)


def add_store_option(parser: argparse.ArgumentParser) -> None:
    """`--db`, worded once for every command that reads or writes the store."""
    parser.add_argument(
        "--db",
        default=None,
        help="the store: a SQLite file or a postgresql:// URL (default: ATTEMPTS_DB_URL, else ATTEMPTS_DB_PATH, "
        "taskrouter.db)",
    )


def unusable_store(where: Target, command: str, *, thorough: bool = True) -> int | None:
    """The exit code, after saying why on stderr, when `where` cannot be read; None when it can. Never creates it.

    A SQLite file that does not exist is an error here: a command that reads or undoes what routers wrote has
    nothing to show then, and "no marks" or "no override" would read as all clear after a typo in --db.
    `thorough`: also run SQLite's quick_check, which reads every page."""
    from app.store import diagnose
    from app.store.backend import store_missing
    from app.store.target import label_of

    if store_missing(where):
        print(
            f"taskrouter {command}: there is no attempts database at {label_of(where)}: give --db the store the "
            "routers write (their ATTEMPTS_DB_PATH or ATTEMPTS_DB_URL), or set those; nothing was read or "
            "created",
            file=sys.stderr,
        )
        return EXIT_MISSING_STORE
    problem = diagnose(where, thorough=thorough)
    if problem is not None:
        print(f"taskrouter {command}: the attempts database cannot be used: {problem}", file=sys.stderr)
        return EXIT_UNUSABLE_STORE
    return None

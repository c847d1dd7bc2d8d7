"""`taskrouter` (and `python -m app`): one subcommand per module in app/commands/."""

from __future__ import annotations

import argparse
import importlib
import logging
import signal
import sys
from types import FrameType

from app.errors import ConfigError
from app.text import TerminalFormatter

# Each module defines `register(subparsers)`, which adds its parser and sets `func(args) -> int`.
COMMANDS = (
    "run",
    "demo",
    "check",
    "status",
    "override",
    "operators",
    "keys",
    "dashboard",
    "prune",
    "whatif",
    "simulator",
    "serve",
)


_VERBOSE_HELP = "log every attempt to stderr"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskrouter", description="Resilient, Groq-first LLM task execution.")
    parser.add_argument("-v", "--verbose", action="store_true", help=_VERBOSE_HELP)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"app.commands.{name}").register(subparsers)
    _verbose_anywhere(subparsers)
    return parser


def _verbose_anywhere(subparsers: argparse._SubParsersAction) -> None:
    """`-v` after the subcommand too (`taskrouter demo -v`), however deep. SUPPRESS as the default: a subcommand
    that was not given it leaves the value set before the subcommand alone."""
    for sub in dict.fromkeys(subparsers.choices.values()):  # an alias names the same parser twice
        sub.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help=_VERBOSE_HELP)
        for action in sub._actions:
            if isinstance(action, argparse._SubParsersAction):
                _verbose_anywhere(action)


EXIT_ON_SIGTERM = 128 + signal.SIGTERM


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (`docker stop`, systemd, kill) as a clean exit: Python's default action ends the process at once,
    before the attempt log's exit flush. SystemExit unwinds like Ctrl-C does: calls in flight are cancelled and
    logged as such, and the exit hook writes every pending row (or says where it saved them)."""
    print(
        "taskrouter: SIGTERM received, stopping (pending attempt rows are written first)", file=sys.stderr, flush=True
    )
    raise SystemExit(EXIT_ON_SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()  # stderr; the log lines quote providers' messages: no escape sequence of theirs
    handler.setFormatter(TerminalFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, handlers=[handler])
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        return int(args.func(args) or 0)
    except ConfigError as exc:
        print(f"taskrouter: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

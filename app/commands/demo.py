"""`taskrouter demo`: the router doing its job on a fresh machine, without a key or network.

Starts the Groq-compatible simulator in-process, runs a mixed workload through `execute_task` with a realistic
fault mix (a model decommissioned mid-run, a rate-limited one, transient 5xx, a slow tail), then prints a summary
per task and per model computed from the attempts table, and the command that opens the dashboard on it.

Exit codes: 0 the run completed and the log matches what the callers saw, 1 it does not, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
from pathlib import Path

from app.text import plain_terminal

DEMO_DB = Path("taskrouter-demo.db")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="run a routed workload against the built-in simulator (no key, no network)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--requests", type=_positive, default=400, metavar="N", help="requests to send (400)")
    parser.add_argument("--concurrency", type=_positive, default=10, metavar="C", help="requests in flight (10)")
    parser.add_argument("--seed", type=int, default=0, help="seeds the prompts, faults and latencies (0)")
    parser.add_argument(
        "--db",
        type=_sqlite_file,
        default=DEMO_DB,
        help=f"SQLite file to log to ({DEMO_DB}; never the router's ATTEMPTS_DB_PATH by default: "
        "the run marks a model deprecated there, and the router reads those marks back); a file path, not a "
        "database URL",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=2.0,
        metavar="SECONDS",
        help="LLM_TIMEOUT_SECONDS for the run; hung calls end after it (2)",
    )
    parser.add_argument(
        "--hedge-after-ms",
        type=float,
        default=300.0,
        metavar="MS",
        help="HEDGE_AFTER_MS for the run: a call slower than this gets a second one beside it "
        "(300; 0 turns hedging off)",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from app.demo import DemoOptions, render, run_demo

    db_path = args.db
    options = DemoOptions(
        db_path=db_path,
        requests=args.requests,
        concurrency=args.concurrency,
        seed=args.seed,
        timeout_s=args.timeout,
        hedge_after_ms=args.hedge_after_ms or None,
        quiet_router_logs=not getattr(args, "verbose", False),
    )
    header = sys.stderr if args.json else sys.stdout
    outcome = run_demo(options, progress_stream=sys.stderr, header=header)
    if args.json:
        document = outcome.summary.to_dict()
        document["problems"] = outcome.problems
        print(json.dumps(document, indent=2, default=str))
    else:
        took = outcome.result.seconds
        print(
            f"\nDone in {took:.1f} s ({outcome.result.total / max(took, 1e-9):.0f} req/s). "
            f"Summary from the attempts table of {db_path}:\n"
        )
        print(plain_terminal(render(outcome.summary), multiline=True))  # it quotes the simulated provider
        print(f"\nDatabase: {db_path.resolve()}")
        print(f"Open the dashboard on it:  {taskrouter_command()} dashboard --db {shlex.quote(str(db_path))}")
    for problem in outcome.problems:
        print(f"taskrouter demo: {problem}", file=sys.stderr)
    return 1 if outcome.problems else 0


def taskrouter_command() -> str:
    """How to start this taskrouter from the user's shell: `taskrouter` when PATH finds this installation's script;
    else that script's path (a virtualenv that is not activated: `.venv/bin/taskrouter`); else this interpreter
    with `-m app`."""
    bin_dir = Path(sys.executable).parent  # not resolved: a virtualenv's python is a link to the base interpreter
    script = bin_dir / ("taskrouter.exe" if os.name == "nt" else "taskrouter")
    if not script.is_file():
        return f"{shlex.quote(_shown(Path(sys.executable)))} -m app"
    found = shutil.which("taskrouter")
    if found is not None and Path(found).resolve() == script.resolve():
        return "taskrouter"
    return shlex.quote(_shown(script))


def _shown(path: Path) -> str:
    """Relative to the working directory when it lies below it (`.venv/bin/taskrouter`), else absolute."""
    absolute = path.absolute()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")  # two letters at least: `C:/x` is a Windows path


def _sqlite_file(text: str) -> Path:
    """The demo writes a SQLite file of its own. A URL taken as a path would create directories named after its
    parts, the password among them; refused before anything is created, without repeating it."""
    if _URL.match(text.strip()):
        scheme = text.strip().split("://", 1)[0]
        raise argparse.ArgumentTypeError(
            f"the demo logs to a SQLite file it creates, not to a database URL ({scheme}://...): give a file path "
            f"such as {DEMO_DB}; nothing was created"
        )
    return Path(text)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value

"""Serve the simulator in the foreground until Ctrl-C or SIGTERM: the one implementation behind `taskrouter simulator`
and `python -m app.simulator`, each of which builds its own command line with `add_arguments`.

Point anything that speaks Groq's API at it, the router included:
    GROQ_BASE_URL=http://127.0.0.1:8000 GROQ_API_KEY=anything taskrouter run fast "hello"
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from app.simulator.profiles import DEFAULT_PROFILES_PATH
from app.simulator.simulator import Simulator


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="the address to listen on (127.0.0.1: this machine only; 0.0.0.0: every interface)",
    )
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port (8000)")
    parser.add_argument(
        "--profiles",
        type=Path,
        default=DEFAULT_PROFILES_PATH,
        help="TOML file of model profiles (default: the shipped default_profiles.toml)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds fault and latency draws (0)")
    parser.add_argument("--api-key", default=None, help="require this bearer key (default: accept any)")


def serve(args: argparse.Namespace) -> int:
    try:
        # Nobody reads a foreground server's request log: keep a little of it, not everything.
        sim = Simulator.from_toml(
            args.profiles, seed=args.seed, api_key=args.api_key, host=args.host, port=args.port, max_records=1000
        )
        sim.start()
    except (OSError, ValueError) as exc:
        print(f"simulator: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        done.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        # The URL alone on the first line, flushed: a parent process can read it to know the server is up.
        print(sim.base_url, flush=True)
        print(
            f"serving {args.profiles} (seed {args.seed}); taskrouter and the groq SDK: GROQ_BASE_URL={sim.base_url} "
            f"(the root: the SDK adds /openai/v1); OpenAI SDKs and a catalog's openai_compatible base_url: "
            f"{sim.openai_base_url}. Ctrl-C stops.",
            file=sys.stderr,
            flush=True,
        )
        while not done.wait(0.5):  # a timed wait, so signals are handled promptly on every platform
            pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sim.stop()
    return 0

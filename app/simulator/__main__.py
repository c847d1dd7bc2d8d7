"""`python -m app.simulator`: serve in the foreground, e.g. for a benchmark in another process."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from types import FrameType

from app.simulator.profiles import DEFAULT_PROFILES_PATH
from app.simulator.simulator import Simulator


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.simulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--profiles", default=str(DEFAULT_PROFILES_PATH), help="TOML profile file")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--api-key", default=None, help="require this bearer key (default: accept any)")
    args = parser.parse_args(argv)

    # Nobody reads the request log of a foreground server, so keep only a little of it.
    sim = Simulator.from_toml(
        args.profiles, seed=args.seed, api_key=args.api_key, host=args.host, port=args.port, max_records=1000
    )
    done = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        done.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    with sim:
        # Printed on its own line and flushed, so a parent process can read the address and know
        # the server is ready.
        print(sim.base_url, flush=True)
        done.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

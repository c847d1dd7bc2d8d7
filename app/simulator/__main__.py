"""`python -m app.simulator`: the same as `taskrouter simulator` (serve in the foreground, e.g. for a benchmark
in another process); one implementation, in app/commands/simulator.py."""

from __future__ import annotations

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main(["simulator", *sys.argv[1:]]))

"""`python -m app.simulator`: the same as `taskrouter simulator` (serve in the foreground, e.g. for a benchmark
in another process); one implementation, in app/simulator/serve.py."""

from __future__ import annotations

import argparse
import sys

from app.simulator.serve import add_arguments, serve

if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m app.simulator", description=__doc__)
    add_arguments(parser)
    sys.exit(serve(parser.parse_args()))

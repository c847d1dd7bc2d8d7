"""`taskrouter simulator`: serve the Groq-compatible simulator in the foreground until Ctrl-C (app/simulator/serve.py).

Point anything that speaks Groq's API at it, the router included:
    GROQ_BASE_URL=http://127.0.0.1:8000 GROQ_API_KEY=anything taskrouter run fast "hello"
"""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    from app.simulator.serve import add_arguments, serve

    parser = subparsers.add_parser(
        "simulator",
        help="serve the Groq-compatible simulator in the foreground",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_arguments(parser)
    parser.set_defaults(func=serve)

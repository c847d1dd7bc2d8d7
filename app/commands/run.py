"""`taskrouter run <task> "<prompt>"`: one routed call against real Groq (or GROQ_BASE_URL)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from app.config import load_settings
from app.errors import InvalidMessagesError, TaskFailedError, UnknownTaskError
from app.text import plain_terminal

NO_KEY = """GROQ_API_KEY is not set, so there is no provider to call.
  - For real Groq: export GROQ_API_KEY=gsk_...   (or put it in .env; see .env.example)
  - Without a key: taskrouter demo   (runs the router against the built-in Groq-compatible simulator)"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("run", help="run one prompt on a task's chain (needs GROQ_API_KEY)")
    parser.add_argument("task", help="task type from MODEL_REGISTRY, e.g. fast, reasoning, summarization")
    parser.add_argument("prompt", help="the user message")
    parser.add_argument("--system", help="an optional system message")
    parser.add_argument(
        "--max-tokens",
        type=int,
        default=None,
        metavar="N",
        help="cap the answer's length in tokens (default: the model's own limit)",
    )
    parser.add_argument(
        "--temperature", type=float, default=None, help="sampling temperature, 0 to 2 (default: the provider's)"
    )
    parser.add_argument("--json", action="store_true", help="print the response and attempts as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    if not settings.api_key():
        print(NO_KEY, file=sys.stderr)
        return 2
    from app.core.ai_models import execute_task

    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": args.prompt}
    ]
    params = {k: v for k, v in (("max_tokens", args.max_tokens), ("temperature", args.temperature)) if v is not None}
    try:
        resp = asyncio.run(execute_task(args.task, messages, **params))
    except (TaskFailedError, UnknownTaskError, InvalidMessagesError) as exc:
        print(f"taskrouter: {plain_terminal(str(exc), multiline=True)}", file=sys.stderr)
        return 1
    if args.json:
        print(
            json.dumps(
                {
                    "content": resp.content,
                    "model_used": resp.model_used,
                    "finish_reason": resp.finish_reason,
                    "usage": {
                        "prompt_tokens": resp.usage.prompt_tokens,
                        "completion_tokens": resp.usage.completion_tokens,
                        "total_tokens": resp.usage.total_tokens,
                    },
                    "fallback_used": resp.fallback_used,
                    "latency_ms": round(resp.latency_ms, 1),
                    "cost_usd": resp.cost_usd,
                    "request_id": resp.request_id,
                    "attempts": [a.describe() for a in resp.attempts],
                },
                indent=2,
            )
        )
    else:
        print(plain_terminal(str(resp.content), multiline=True))  # a model's answer may hold escape sequences
        print(
            f"\n[{resp.model_used} · {resp.usage.total_tokens} tokens · {resp.latency_ms:.0f} ms"
            f"{' · fallback' if resp.fallback_used else ''}]",
            file=sys.stderr,
        )
    return 0

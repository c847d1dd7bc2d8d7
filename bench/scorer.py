"""The complexity scorer's own time per call (`app.score_complexity`) on short, typical and long prompts, median and
p99 in microseconds, and the tier it gives each labelled request of bench/workload. Run by hand.

    python bench/scorer.py                      # 20,000 timed calls per prompt kind
    python bench/scorer.py --calls 5000 --medium-at 0.25 --complex-at 0.55

Prompt kinds: short (one question of 30 characters), typical (a system prompt and a user message, 1-3 messages,
a few hundred characters), long (an agent thread of 40 messages, about 100,000 characters with pasted code and tool
results: the scorer reads its last 20 messages and the last 8,000 characters of each), and workload (every request
of bench/workload/requests.jsonl in turn, with its parameters). The kinds are timed in interleaved rounds, so that
a busy machine weighs on each alike; each call is timed alone with perf_counter_ns, and the timer's own cost (the
same loop around a no-op) is printed beside them. The thread's CPU time per call is printed too: it does not count
the time other processes take the core. Target: typical median under 50 us.

The tier mix: the scorer's tier for each request of bench/workload (its `class` label: simple, medium, complex,
breakthrough, the last counted as complex), or of a small labelled set in this file when that folder is absent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.core.complexity import TIERS, score_complexity  # noqa: E402

WORKLOAD = ROOT / "bench" / "workload" / "requests.jsonl"
TARGET_US = 50.0
CLASSES = ("simple", "medium", "complex", "breakthrough")
CLASS_TIER = {"simple": "simple", "medium": "medium", "complex": "complex", "breakthrough": "complex"}
Labelled = list[tuple[str, list[dict[str, Any]], dict[str, Any]]]  # (class, messages, params) per request

SHORT: list[dict[str, Any]] = [{"role": "user", "content": "What is the capital of France?"}]
TYPICAL: list[dict[str, Any]] = [
    {
        "role": "system",
        "content": "You are a customer support agent for an online store. Be concise and friendly. "
        "Never promise a delivery date.",
    },
    {
        "role": "user",
        "content": "Hi! I ordered a pair of running shoes last week (order ORD-18234) and they arrived "
        "in the wrong size. Can you tell me how to return them, and whether you can send the "
        "larger size before I send these back? Also, do I have to pay for the return "
        "shipping? Thanks, Ana",
    },
]


def long_thread() -> list[dict[str, Any]]:
    """An agent thread: a long system prompt, then 13 rounds of a user turn with pasted code, an assistant turn
    calling a tool and the tool's JSON result."""
    code = (
        "```python\n"
        + "".join(f"def step_{i}(state):\n    state['n'] += {i}\n    return state\n\n" for i in range(60))
        + "```\n"
    )
    rules = "".join(
        f"{i}. Always check the order status before answering; never promise a date.\n" for i in range(1, 40)
    )
    messages: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent.\n" + rules}]
    for turn in range(13):
        messages.append(
            {
                "role": "user",
                "content": f"Round {turn}: refactor the steps below, then run the tests "
                f"and explain each failure step by step.\n{code}",
            }
        )
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"call_{turn}",
                        "type": "function",
                        "function": {"name": "run_tests", "arguments": json.dumps({"path": "tests/", "round": turn})},
                    }
                ],
            }
        )
        messages.append(
            {
                "role": "tool",
                "tool_call_id": f"call_{turn}",
                "content": json.dumps(
                    {"passed": 120 - turn, "failed": turn, "log": [f"test_step_{i} ... ok" for i in range(120)]}
                ),
            }
        )
    return messages


# Used when bench/workload is absent: a few requests of each class, as (class, messages, params).
OWN_LABELLED: Labelled = [
    ("simple", SHORT, {}),
    ("simple", TYPICAL, {}),
    ("simple", [{"role": "user", "content": "Translate 'good morning' into Spanish."}], {}),
    (
        "simple",
        [{"role": "user", "content": "Extract the name and the order id: 'Hi, Ana here, order ORD-77.'"}],
        {"response_format": {"type": "json_object"}},
    ),
    (
        "medium",
        [
            {
                "role": "user",
                "content": "Why does this return None? Explain the bug and fix it.\n```python\n"
                "def total(xs):\n    for x in xs:\n        s += x\n```",
            }
        ],
        {},
    ),
    (
        "medium",
        [
            {
                "role": "user",
                "content": "Compare PostgreSQL and MySQL for a write-heavy workload: list the "
                "trade-offs, then recommend one. Answer in at most 5 bullet points.",
            }
        ],
        {},
    ),
    (
        "complex",
        [
            {
                "role": "user",
                "content": "Implement an LRU cache with per-entry TTL that is thread-safe, in "
                "Rust. First explain the design and its trade-offs, then give the code, "
                "then unit tests for every edge case. It must not allocate per get.",
            }
        ],
        {"reasoning_effort": "medium"},
    ),
    (
        "breakthrough",
        [
            {
                "role": "user",
                "content": "Prove or disprove: every tournament on n >= 7 vertices has a "
                "Hamiltonian path. Give a rigorous proof; state each lemma and "
                "justify each step.",
            }
        ],
        {"reasoning_effort": "high"},
    ),
]


def labelled(path: Path) -> tuple[str, Labelled]:
    if not path.exists():
        return "the small labelled set in bench/scorer.py (bench/workload absent)", OWN_LABELLED
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    return name, [(r["class"], r["messages"], r.get("params") or {}) for r in rows]


def percentile(ordered: list[float], p: float) -> float:
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def time_kinds(
    kinds: dict[str, list[Callable[[], object]]], calls: int, rounds: int
) -> dict[str, tuple[list[float], list[float]]]:
    """Per kind, the wall and CPU microseconds of `calls` calls, timed one by one, in `rounds` interleaved rounds."""
    out: dict[str, tuple[list[float], list[float]]] = {name: ([], []) for name in kinds}
    per_round = max(1, calls // rounds)
    for fns in kinds.values():  # warm up: the first calls fill caches
        for fn in fns[:200]:
            fn()
    wall_ns, cpu_ns = time.perf_counter_ns, time.thread_time_ns
    for _ in range(rounds):
        for name, fns in kinds.items():
            walls, cpus = out[name]
            for i in range(per_round):
                fn = fns[i % len(fns)]
                c0 = cpu_ns()
                w0 = wall_ns()
                fn()
                w1 = wall_ns()
                cpus.append((cpu_ns() - c0) / 1000)
                walls.append((w1 - w0) / 1000)
    return out


def revision() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "app/core/complexity.py"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    return (done.stdout.strip() or "?") + (" (app/core/complexity.py modified)" if dirty else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=20_000, help="timed calls per prompt kind (long: a tenth)")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds the calls are split into")
    parser.add_argument("--workload", type=Path, default=WORKLOAD)
    parser.add_argument("--medium-at", type=float, default=0.30)
    parser.add_argument("--complex-at", type=float, default=0.60)
    args = parser.parse_args(argv)
    thresholds = {"medium_at": args.medium_at, "complex_at": args.complex_at}
    source, requests = labelled(args.workload)
    long = long_thread()

    def scorer(messages: list[dict[str, Any]], params: dict[str, Any]) -> Callable[[], object]:
        return lambda: score_complexity(messages, **thresholds, **params)

    kinds: dict[str, list[Callable[[], object]]] = {
        "timer alone (no-op)": [lambda: None],
        "short": [scorer(SHORT, {})],
        "typical": [scorer(TYPICAL, {})],
        "long": [scorer(long, {})],
        "workload": [scorer(messages, params) for _, messages, params in requests],
    }
    timed = time_kinds({k: v for k, v in kinds.items() if k != "long"}, args.calls, args.rounds)
    timed |= time_kinds({"long": kinds["long"]}, max(1, args.calls // 10), args.rounds)

    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"command: python bench/scorer.py {' '.join(sys.argv[1:] if argv is None else argv)}".rstrip())
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}, {platform.system()} {platform.release()}; load average {load} (1/5/15 min)"
    )
    print(f"revision: {revision()}; thresholds medium_at={args.medium_at}, complex_at={args.complex_at}")
    print()
    sizes = {
        "timer alone (no-op)": "-",
        "short": _size(SHORT),
        "typical": _size(TYPICAL),
        "long": _size(long),
        "workload": f"{len(requests):,} requests, median {_median_chars(requests):,} characters",
    }
    head = ("prompt", "size", "calls", "wall p50 us", "wall p99 us", "CPU p50 us", "CPU p99 us")
    rows: list[tuple[str, ...]] = [head]
    for name in ("timer alone (no-op)", "short", "typical", "long", "workload"):
        walls, cpus = (sorted(x) for x in timed[name])
        rows.append(
            (
                name,
                sizes[name],
                f"{len(walls):,}",
                f"{statistics.median(walls):.1f}",
                f"{percentile(walls, 99):.1f}",
                f"{statistics.median(cpus):.1f}",
                f"{percentile(cpus, 99):.1f}",
            )
        )
    print("\n".join(render(rows, left=2)))
    typical_p50 = statistics.median(timed["typical"][0])
    print()
    print(
        f"typical prompt: median {typical_p50:.1f} us per call by the wall clock (target < {TARGET_US:.0f} us) -> "
        f"{'OK' if typical_p50 < TARGET_US else 'MISSED'}"
    )
    print()
    print(f"tier mix over {source}:")
    print()
    print("\n".join(tier_mix(requests, thresholds)))
    return 0


def _size(messages: list[dict[str, Any]]) -> str:
    chars = sum(len(m["content"]) for m in messages if isinstance(m.get("content"), str))
    return f"{len(messages)} message{'s' if len(messages) > 1 else ''}, {chars:,} characters"


def _median_chars(requests: Labelled) -> int:
    return int(
        statistics.median(
            sum(len(m.get("content") or "") for m in messages if isinstance(m.get("content"), str))
            for _, messages, _ in requests
        )
    )


def tier_mix(requests: Labelled, thresholds: dict[str, float]) -> list[str]:
    """Per labelled class, how many requests the scorer puts on each tier, and how many it puts on the class's own
    tier (breakthrough's is complex), below it (the cascade escalates them) or above it (they cost more)."""
    counts: dict[str, Counter[str]] = {c: Counter() for c in CLASSES}
    for cls, messages, params in requests:
        counts.setdefault(cls, Counter())[score_complexity(messages, **thresholds, **params).tier] += 1
    rows: list[tuple[str, ...]] = [
        ("class", "requests", *(f"scored {t}" for t in TIERS), "on its tier", "below", "above")
    ]
    total = Counter[str]()
    for cls, got in counts.items():
        n = sum(got.values())
        if not n:
            continue
        own = TIERS.index(CLASS_TIER.get(cls, "complex"))
        split = {
            "on": got[TIERS[own]],
            "below": sum(got[t] for t in TIERS[:own]),
            "above": sum(got[t] for t in TIERS[own + 1 :]),
        }
        total.update(split)
        total["n"] += n
        rows.append(
            (
                cls,
                f"{n:,}",
                *(_share(got[t], n) for t in TIERS),
                *(_share(split[k], n) for k in ("on", "below", "above")),
            )
        )
    n = total["n"]
    rows.append(("all", f"{n:,}", "", "", "", *(_share(total[k], n) for k in ("on", "below", "above"))))
    return render(rows)


def _share(count: int, n: int) -> str:
    return f"{count:,} ({100 * count / n:.0f}%)"


def render(rows: list[tuple[str, ...]], left: int = 1) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = [
        "| "
        + " | ".join(x.ljust(w) if i < left else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True)))
        + " |"
        for r in rows
    ]
    out.insert(
        1, "|" + "|".join("-" * (w + 2) if i < left else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|"
    )
    return out


if __name__ == "__main__":
    sys.exit(main())

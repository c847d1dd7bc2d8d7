"""How long a response-cache hit takes from the in-process cache, beside a call that reaches a provider, in one run.
Run by hand.

    python bench/cache_hit.py                 # 2,000 hits and 2,000 calls, interleaved in rounds
    python bench/cache_hit.py --calls 500

Both go through the real router (`Router.execute`, the attempt log on a temporary SQLite file, its writer
thread running): a hit is a request for a task in RESPONSE_CACHE_TASKS whose answer is in the in-process cache; a
call is the same request with `cache_ttl=0`, answered by app.testing's scripted provider (in-process, no socket), so
that it measures the router's own path to a provider, the least a call can cost. Target (issue 23): a hit under
1 ms (median). Prints the median and p99 microseconds of each, and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import load_settings
from app.core.router import Router
from app.testing import FakeModels

MESSAGES = [{"role": "user", "content": "Which plan includes priority support?"}]


async def measure(calls: int, rounds: int, db: Path) -> tuple[list[float], list[float]]:
    fake = FakeModels({"*": "The Business plan includes priority support."})
    settings = load_settings(
        env_file=None,
        groq_api_key="gsk_bench_not_a_real_key",
        attempts_db_path=db,
        response_cache_tasks="fast",
        alert_webhook_url=None,
    )
    hits: list[float] = []
    uncached: list[float] = []
    async with Router(settings, providers={"groq": fake, "openai_compatible": fake}) as router:
        await router.execute("fast", MESSAGES)  # fills the cache
        await router.execute("fast", MESSAGES, cache_ttl=0)  # warms the path to the provider
        per_round = max(calls // rounds, 1)
        for _ in range(rounds):
            for _ in range(per_round):
                started = time.perf_counter()
                response = await router.execute("fast", MESSAGES)
                hits.append((time.perf_counter() - started) * 1e6)
                assert response.cached
            for _ in range(per_round):
                started = time.perf_counter()
                response = await router.execute("fast", MESSAGES, cache_ttl=0)
                uncached.append((time.perf_counter() - started) * 1e6)
                assert not response.cached
    return hits, uncached


def p99(values: list[float]) -> float:
    return sorted(values)[max(int(len(values) * 0.99) - 1, 0)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=2000, help="hits, and calls, each (2000)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating rounds of hits and calls (10)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        hits, calls = asyncio.run(measure(args.calls, args.rounds, Path(tmp) / "attempts.db"))
    hit_median, call_median = statistics.median(hits), statistics.median(calls)
    print("| request | median us | p99 us |")
    print("|---|---:|---:|")
    print(f"| cache hit (in-process cache) | {hit_median:.0f} | {p99(hits):.0f} |")
    print(f"| call to an in-process scripted provider | {call_median:.0f} | {p99(calls):.0f} |")
    print(f"\nhit / call: {hit_median / call_median:.2f}")
    ok = hit_median < 1000
    print(
        f"target (a hit under 1 ms, median): {'OK' if ok else 'MISSED'}  (the p99s follow the machine's load and "
        "the attempt log's writer, which both kinds share)"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

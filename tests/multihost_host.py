"""One "host" of the multi-host tests: a router process of its own (its settings from the environment: one
PostgreSQL store, its own simulator, its own spill folder). It makes one warm-up call per worker, prints READY,
waits for a line on stdin (GO, sent once every host is ready), sends fast tasks from `concurrency` workers for
`seconds`, then prints one JSON line: requests answered, failures by exception type, and calls refused by the
budget. Run as `python tests/multihost_host.py SECONDS CONCURRENCY`."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections import Counter

import app
from app.errors import BudgetExceededError, TaskFailedError


async def main(seconds: float, concurrency: int) -> dict[str, object]:
    answered = 0
    failures: Counter[str] = Counter()
    budget_refusals = 0
    router = app.get_router()
    # Warm: the first call builds the SDK's client and connection pool, slow on a loaded machine; READY means
    # every worker can send at once, so the load is on when the test changes a model's health.
    warm = await asyncio.gather(
        *(app.execute_fast_task([{"role": "user", "content": "warm"}], max_tokens=8) for _ in range(concurrency)),
        return_exceptions=True,
    )
    for outcome in warm:
        if isinstance(outcome, BudgetExceededError):  # the other hosts spent the budget while this one started
            budget_refusals += 1
        elif isinstance(outcome, BaseException):
            raise outcome
        else:
            answered += 1
    print("READY", flush=True)
    # The test says GO once every host is ready: on a loaded machine one host's start-up can outlast another's
    # whole run, and the hosts must work at the same time.
    await asyncio.to_thread(sys.stdin.readline)
    end = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal answered, budget_refusals
        i = 0
        while time.monotonic() < end:
            i += 1
            try:
                await app.execute_fast_task([{"role": "user", "content": f"host work {n}-{i}"}], max_tokens=64)
                answered += 1
            except BudgetExceededError:
                budget_refusals += 1
                await asyncio.sleep(0.01)
            except TaskFailedError as exc:
                failures[f"{type(exc).__name__}: {exc}"[:300]] += 1

    await asyncio.gather(*(worker(n) for n in range(concurrency)))
    await router.aclose()
    return {"answered": answered, "failures": dict(failures), "budget_refusals": budget_refusals}


if __name__ == "__main__":
    result = asyncio.run(main(float(sys.argv[1]), int(sys.argv[2])))
    flushed = app.flush_attempt_log(30)
    print(json.dumps({**result, "flushed": flushed}), flush=True)

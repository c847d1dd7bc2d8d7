"""The router process of tests/test_prometheus_server.py: its settings from the environment (the simulator's URL,
METRICS_PORT, an attempt-log file), it sends `requests` requests from `concurrency` workers over the registry's
tasks, every fourth one streamed, flushes the attempt log, prints one JSON line (the requests it sent, by task and by
how each ended), then keeps its router open and /metrics served until its stdin closes. Run as
`python tests/prometheus_router.py REQUESTS CONCURRENCY`."""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter

import app
from app.errors import TaskRouterError

TASKS = ("fast", "reasoning", "summarization")


async def one(n: int) -> str:
    """Request `n`, as the name of how it ended: answered, or the error's class."""
    task = TASKS[n % len(TASKS)]
    messages = [{"role": "user", "content": f"prometheus test request {n}"}]
    try:
        if n % 4 == 1:  # every fourth request streamed: each task has some
            async for _ in app.stream_task(task, messages, max_tokens=32):
                pass
        else:
            await app.execute_task(task, messages, max_tokens=32)
    except TaskRouterError as error:
        return type(error).__name__
    return "answered"


async def main(requests: int, concurrency: int) -> None:
    router = app.get_router()  # the first router starts METRICS_PORT's server
    ended: Counter[str] = Counter()
    queue = iter(range(requests))

    async def worker() -> None:
        for n in queue:
            ended[f"{TASKS[n % len(TASKS)]} {await one(n)}"] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    print(json.dumps({"ended": dict(ended), "flushed": app.flush_attempt_log(30)}), flush=True)
    # The router stays open, its circuits and budget shown at each scrape, until the test closes the pipe.
    await asyncio.to_thread(sys.stdin.read)
    await router.aclose()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2])))

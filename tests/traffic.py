"""Attempt rows as routers write them, for the retention and rollup tests: fixed chains per task (each request
walks its task's chain in order, a row per model it reached), retries, hedges, streams, unpriced models, failures
and skips, spread over whole days up to `end`."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from app.clock import iso_millis
from app.store import open_database

CHAINS = {"fast": ["m/a", "m/b", "m/c"], "reasoning": ["m/b", "m/d"], "summarization": ["m/c", "m/a", "m/d"]}
UNPRICED = "m/d"
KINDS = ["timeout", "rate_limited", "server_error", "hedge_lost", "deprecated"]


def make_traffic(end: datetime, hours: int, *, seed: int = 5, requests: int = 600) -> list[dict]:
    """`requests` requests at random moments of the `hours` before `end`; each request's rows are a few ms apart
    and never straddle an hour (so a request counts in one hour, as the brute-force checks assume)."""
    rnd = random.Random(seed)
    rows: list[dict] = []
    for r in range(requests):
        at = end - timedelta(seconds=rnd.randint(60, hours * 3600 - 60))
        at = at.replace(minute=min(at.minute, 58))
        task = rnd.choice(list(CHAINS))
        step = 0
        for position, model in enumerate(CHAINS[task], 1):
            outcomes = ["success", "failure", "skipped"]
            tries = 1 + (rnd.random() < 0.15)  # a retry of the same model, at the same position
            done = False
            for retry in range(tries):
                step += 1
                outcome = rnd.choices(outcomes, [6, 3, 1])[0]
                called = outcome != "skipped"
                streamed = outcome == "success" and rnd.random() < 0.3
                rows.append(
                    {
                        "request_id": f"req{r}",
                        "task_type": task,
                        "model": model,
                        "provider": "groq",
                        "attempt": position,
                        "retry": retry,
                        "outcome": outcome,
                        "error_kind": None if outcome == "success" else rnd.choice(KINDS),
                        "latency_ms": rnd.lognormvariate(6, 0.8) if called else None,
                        "first_token_ms": rnd.uniform(5, 900) if streamed else None,
                        "prompt_tokens": rnd.randint(10, 900) if called else None,
                        "completion_tokens": rnd.randint(1, 400) if outcome == "success" else None,
                        "total_tokens": None,
                        "hedged": int(rnd.random() < 0.05),
                        "cost_usd": None if model == UNPRICED or not called else rnd.uniform(0, 0.01),
                        "is_fallback": int(position > 1),
                        "forced": 0,
                        "created_at": iso_millis((at + timedelta(milliseconds=step)).timestamp()),
                    }
                )
                row = rows[-1]
                row["total_tokens"] = (row["prompt_tokens"] or 0) + (row["completion_tokens"] or 0) or None
                if outcome == "success":
                    done = True
                    break
            if done:
                break
    rows.sort(key=lambda row: row["created_at"])  # ids in time order, as a live writer gives them
    return rows


def write_traffic(path: Path, rows: list[dict]) -> None:
    db = open_database(path)
    with db.conn:
        db["attempts"].insert_all(rows)
    db.conn.close()

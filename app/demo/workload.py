"""The demo's traffic: seeded prompts per task, sent through `execute_task` (or, for a seeded share, streamed
through `stream_task`, as a chat UI would) by C concurrent workers, with a hand-drawn progress bar on stderr (no
dependency for one line of output)."""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from app.core.ai_models import execute_task, stream_task
from app.errors import TaskFailedError
from app.types import LLMResponse

DEFAULT_MIX: dict[str, float] = {"fast": 0.4, "reasoning": 0.3, "summarization": 0.3}
STREAM_SHARE = 0.25  # of the requests are streamed

_VOCABULARY = (
    "revenue churn cohort pipeline latency invoice region quarter forecast margin customer support ticket "
    "refund shipment warehouse anomaly dashboard release incident outage contract renewal discount segment "
    "conversion funnel retention pricing inventory supplier audit compliance budget headcount roadmap"
)
_WORDS = _VOCABULARY.split()
_FAST = (
    "Classify this ticket as billing, bug or question: {t}",
    "Extract the company name from: {t}",
    "Translate to French: {t}",
    "Is this message spam? Answer yes or no: {t}",
)
_REASONING = (
    "Analyse why {t} changed last quarter and propose three actions, with the trade-offs.",
    "Given {t}, which region should we prioritise next year? Reason step by step.",
    "Find the flaw in this plan: {t}",
)
_SUMMARY = (
    "Summarise the following report in five bullet points:\n\n{t}",
    "Write a one-paragraph executive summary of this meeting transcript:\n\n{t}",
)


def task_mix(registry_tasks: list[str], requested: Mapping[str, float] | None = None) -> dict[str, float]:
    """Normalised weights over the tasks that exist; every task equally when none of the defaults does."""
    wanted = requested or DEFAULT_MIX
    mix = {t: w for t, w in wanted.items() if t in registry_tasks and w > 0}
    if not mix:
        mix = dict.fromkeys(registry_tasks, 1.0)
    total = sum(mix.values())
    return {t: w / total for t, w in mix.items()}


@dataclass(frozen=True, slots=True)
class Job:
    index: int
    task: str
    messages: list[dict[str, str]]
    max_tokens: int
    stream: bool = False


def make_jobs(count: int, mix: Mapping[str, float], seed: int) -> list[Job]:
    rnd = random.Random(seed)
    tasks, weights = list(mix), list(mix.values())
    jobs = []
    for index in range(count):
        task = rnd.choices(tasks, weights)[0]
        if task == "summarization":
            text = " ".join(rnd.choices(_WORDS, k=rnd.randint(300, 900)))  # long input, short output
            prompt, max_tokens = rnd.choice(_SUMMARY).format(t=text), 1024
        elif task == "reasoning":
            text = " ".join(rnd.choices(_WORDS, k=rnd.randint(20, 80)))
            prompt, max_tokens = rnd.choice(_REASONING).format(t=text), 4096
        else:
            text = " ".join(rnd.choices(_WORDS, k=rnd.randint(5, 25)))
            prompt, max_tokens = rnd.choice(_FAST).format(t=text), 2048
        streamed = rnd.random() < STREAM_SHARE
        jobs.append(Job(index, task, [{"role": "user", "content": prompt}], max_tokens, streamed))
    return jobs


@dataclass
class RunResult:
    answered: int = 0
    fallbacks: int = 0
    streamed: int = 0  # requests sent as streams (answered or not)
    failed: Counter[str] = field(default_factory=Counter)  # exception class name -> count
    request_ids: set[str] = field(default_factory=set)  # of answered requests: failures carry no id
    seconds: float = 0.0

    @property
    def total(self) -> int:
        return self.answered + sum(self.failed.values())


class Progress:
    """`[#####-----] 120/300  40%  85 req/s  fallback 12  failed 1`, redrawn in place at most 10 times a second;
    only the final line when stderr is not a terminal (CI logs, tests)."""

    WIDTH = 30

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.stream = stream or sys.stderr
        self.live = bool(getattr(self.stream, "isatty", lambda: False)())
        self.started = time.perf_counter()
        self._drawn = 0.0

    def update(self, result: RunResult, *, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and (not self.live or now - self._drawn < 0.1):
            return
        self._drawn = now
        done = result.total
        filled = self.WIDTH * done // max(self.total, 1)
        rate = done / max(now - self.started, 1e-9)
        line = (
            f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {done}/{self.total} "
            f"{100 * done // max(self.total, 1):3d}%  {rate:5.0f} req/s  fallback {result.fallbacks}  "
            f"failed {sum(result.failed.values())}"
        )
        self.stream.write(("\r" if self.live else "") + line + ("\n" if final else ""))
        self.stream.flush()


async def run_workload(
    jobs: list[Job],
    concurrency: int,
    *,
    on_job: Callable[[Job], None] | None = None,
    progress: Progress | None = None,
    params: Mapping[str, Any] | None = None,
) -> RunResult:
    """Send every job through the router, `concurrency` at a time. Task failures are counted, not raised:
    an AllModelsFailedError is one of the outcomes the demo is there to show."""
    result = RunResult()
    pending = iter(jobs)
    started = time.perf_counter()

    async def worker() -> None:
        for job in pending:  # one shared iterator: each job is taken by exactly one worker
            if on_job is not None:
                on_job(job)
            try:
                if job.stream:
                    result.streamed += 1
                    resp = await _streamed(job, params or {})
                else:
                    resp = await execute_task(job.task, job.messages, max_tokens=job.max_tokens, **(params or {}))
            except TaskFailedError as exc:
                result.failed[type(exc).__name__] += 1
            else:
                result.answered += 1
                result.fallbacks += resp.fallback_used
                result.request_ids.add(resp.request_id)
            if progress is not None:
                progress.update(result)

    await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(jobs))))))
    result.seconds = time.perf_counter() - started
    if progress is not None:
        progress.update(result, final=True)
    return result


async def _streamed(job: Job, params: Mapping[str, Any]) -> LLMResponse:
    """Read a stream to its end, as a chat UI showing the text would; hedging is for execute_task only."""
    options = {k: v for k, v in params.items() if k != "hedge_after_ms"}
    async with stream_task(job.task, job.messages, max_tokens=job.max_tokens, **options) as stream:
        async for _delta in stream:
            pass
    return stream.response

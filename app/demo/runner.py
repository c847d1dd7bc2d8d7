"""One demo run: simulator up, router pointed at it, workload, flush, summary from SQLite, checks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from app.config import load_settings
from app.core.runtime import configure, reset
from app.demo.scenario import BURST_RETRY_AFTER_S, Scenario, build_scenario
from app.demo.summary import Summary, last_attempt_id, summarize
from app.demo.workload import Job, Progress, RunResult, make_jobs, run_workload, task_mix
from app.simulator import Simulator
from app.store import get_attempt_log, utc_now_iso
from app.store.overrides import Override, read_active
from app.text import plain_terminal

# The simulator accepts any key; this one only has to look like one to the SDK.
DEMO_KEY = "gsk_demo_simulator_only"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    db_path: Path
    requests: int = 400
    concurrency: int = 10
    seed: int = 0
    timeout_s: float = 2.0
    hedge_after_ms: float | None = 300.0  # the demo hedges its slow tail; None: off
    quiet_router_logs: bool = True


@dataclass
class DemoOutcome:
    scenario: Scenario
    result: RunResult
    summary: Summary
    base_url: str
    problems: list[str] = field(default_factory=list)  # the log disagrees with what the callers saw


def run_demo(options: DemoOptions, progress_stream: TextIO | None = None, header: TextIO | None = None) -> DemoOutcome:
    from app.core import ai_models  # read at call time, like the router does

    registry = ai_models.MODEL_REGISTRY
    tasks = [t for t in registry if t != "fallback" and ":" not in t]
    mix = task_mix(tasks)
    # Explicit values for everything that would make the demo depend on the user's environment: no forced
    # model, no per-task overrides, no budget, no alerts (its faults are staged: nobody should be paged for them),
    # its own SQLite file even when ATTEMPTS_DB_URL names a shared server (staged failures must not mark models
    # for real routers); the default database location still comes from ATTEMPTS_DB_PATH.
    settings = load_settings(
        groq_api_key=DEMO_KEY,
        attempts_db_path=options.db_path,
        force_model=None,
        default_models={},
        llm_timeout_seconds=options.timeout_s,
        attempt_logging=True,
        log_content=False,
        daily_budget_usd=None,
        hedge_after_ms=options.hedge_after_ms,
        alert_webhook_url=None,
        attempts_db_url=None,
    )
    cleared = _clear_earlier_marks(options.db_path)
    runtime = read_active(options.db_path)  # overrides set on this file by hand apply, as they would to a router
    scenario = build_scenario(registry, settings, options.requests, mix, runtime=runtime)
    jobs = make_jobs(options.requests, mix, options.seed)
    first_id = last_attempt_id(options.db_path)
    since = utc_now_iso()
    sim = Simulator(scenario.profiles, seed=options.seed, max_records=1000)
    with sim, _quiet(options.quiet_router_logs):
        try:
            base_url = sim.base_url
            configure(settings.model_copy(update={"groq_base_url": base_url}))
            if header is not None:
                _print_header(header, sim, options, mix, scenario, cleared, runtime)
            result = asyncio.run(_run(sim, scenario, jobs, options.concurrency, Progress(len(jobs), progress_stream)))
            flushed = get_attempt_log(options.db_path).flush(timeout=30)
        finally:
            reset()  # the process-wide router must not keep pointing at a simulator that is about to stop
    summary = summarize(options.db_path, first_id, since)
    return DemoOutcome(scenario, result, summary, base_url, _cross_check(result, summary, flushed))


async def _run(sim: Simulator, scenario: Scenario, jobs: list[Job], concurrency: int, progress: Progress) -> RunResult:
    bursts = set(scenario.burst_at)

    def on_job(job: Job) -> None:
        if job.index in bursts and scenario.rate_limited:
            # A burst of traffic over the TPM limit: the next call to this model gets Groq's 429.
            sim.script(scenario.rate_limited, {"fault": "rate_limit", "retry_after": BURST_RETRY_AFTER_S})

    # The provider closes this loop's clients itself when asyncio.run shuts the loop down.
    return await run_workload(jobs, concurrency, on_job=on_job, progress=progress)


def _cross_check(result: RunResult, summary: Summary, flushed: bool) -> list[str]:
    problems = []
    if not flushed:
        problems.append("the attempt log did not finish writing within 30 s")
    if summary.requests != result.total:
        problems.append(f"{result.total} requests were sent but {summary.requests} are in the log")
    if summary.answered != result.answered:
        problems.append(f"{result.answered} requests were answered but the log shows {summary.answered}")
    return problems


def _clear_earlier_marks(db_path: Path) -> dict[str, str]:
    """Lift the marks an earlier run left in the file (model -> its status): the run replays its scenario from the
    start, as its banner says, rather than skipping the model a previous run saw decommissioned. Each is cleared
    as `taskrouter status --clear` does it (a `cleared` row and an audit row); the attempts stay."""
    from app.store import CLEARED, CLOSED, clear_model_status, open_database, read_model_status
    from app.store.overrides import record_audit

    now = utc_now_iso()
    marked = [
        r["model"]
        for r in read_model_status(db_path)
        if r["status"] not in (CLEARED, CLOSED) and (r["until"] is None or r["until"] > now)
    ]
    if not marked:
        return {}
    db = open_database(db_path)
    with contextlib.closing(db.conn):
        replaced = clear_model_status(db.conn, marked, now)
        for model, row in replaced.items():
            record_audit(
                db.conn,
                "mark cleared",
                model,
                detail=f"was {row['status']}: {row['detail'] or ''}",
                reason="taskrouter demo: a new run starts from its scenario",
                via="demo",
            )
    return {model: row["status"] for model, row in replaced.items()}


def _print_header(
    out: TextIO,
    sim: Simulator,
    options: DemoOptions,
    mix: dict[str, float],
    scenario: Scenario,
    cleared: dict[str, str],
    runtime: Sequence[Override],
) -> None:
    share = ", ".join(f"{t} {100 * w:.0f}%" for t, w in mix.items())
    print(
        f"Groq-compatible simulator at {sim.base_url} (in-process, seed {options.seed}); no key, no network.", file=out
    )
    print(
        f"{options.requests} requests ({share}) at concurrency {options.concurrency}, "
        f"LLM_TIMEOUT_SECONDS={options.timeout_s:g}, HEDGE_AFTER_MS={options.hedge_after_ms or 'off'}, "
        f"logging to {options.db_path}",
        file=out,
    )
    for line in scenario.describe():
        print(f"  {line}", file=out)
    if cleared:
        marks = ", ".join(f"{model} ({status})" for model, status in sorted(cleared.items()))
        print(
            f"  marks an earlier run left in {options.db_path}, cleared so that this run starts as above: {marks}",
            file=out,
        )
    db = shlex.quote(str(options.db_path))  # the command is there to be copied, whatever the path holds
    for o in runtime:
        end = f'`taskrouter override end {o.id:d} --reason "why" --db {db}`'  # this one only, by its id
        print(f"  in effect from {options.db_path}: #{o.id} {plain_terminal(o.describe())} ({end} ends it)", file=out)
    out.flush()


@contextlib.contextmanager
def _quiet(enabled: bool) -> Iterator[None]:
    """The router logs every failure at WARNING; in a demo that injects hundreds, the summary tells it better."""
    logger = logging.getLogger("taskrouter")
    previous = logger.level
    if enabled:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(previous)

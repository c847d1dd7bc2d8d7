"""`taskrouter demo`: the router against the in-process Groq simulator, with a realistic fault mix, then a
summary computed from the attempts table. No key and no network needed."""

from app.demo.runner import DemoOptions, DemoOutcome, run_demo
from app.demo.scenario import Scenario, build_scenario, pick_roles, task_chains
from app.demo.summary import Stat, Summary, last_attempt_id, percentile, render, summarize
from app.demo.workload import DEFAULT_MIX, Job, Progress, RunResult, make_jobs, run_workload, task_mix

__all__ = [
    "DEFAULT_MIX",
    "DemoOptions",
    "DemoOutcome",
    "Job",
    "Progress",
    "RunResult",
    "Scenario",
    "Stat",
    "Summary",
    "build_scenario",
    "last_attempt_id",
    "make_jobs",
    "percentile",
    "pick_roles",
    "render",
    "run_demo",
    "run_workload",
    "summarize",
    "task_chains",
    "task_mix",
]

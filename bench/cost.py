"""The saving, measured: one workload of agent-like requests through five routing policies (and LiteLLM's complexity
router) side by side in one run, each answer judged by a validator: cost per 1,000 requests, accepted answers,
p50/p99 latency, provider calls, and the complexity scorer's own time per request. Run by hand.

    python bench/cost.py                        # the whole workload (bench/workload/requests.jsonl), every mode
    python bench/cost.py --quick                # 200 requests built by make.py, same mix and repeat rate
    python bench/cost.py --modes a,d,e --concurrency 32 --no-litellm

The workload (bench/workload/, rebuilt by bench/workload/make.py; its README states the mix and the repeat rate):
agent-like requests for six tasks (support, extract, summarize, code, plan, math), each labelled with a difficulty
class (simple 60 %, medium 25 %, complex 10 %, breakthrough 5 %) and a numeric difficulty in [0, 1], which each
call sends as `extra_body={"x_bench_difficulty": d, "x_bench_completion_tokens": n}`. The simulator (its own
process, bench/_common.py; a fresh one per mode, same seed, no faults) judges every answer by its quality model
(app/simulator/quality.py): a model answers acceptably when its capability plus Normal(0, 0.05) noise covers the
difficulty, the draw a function of the seed, the model and the request, so every mode is judged alike; an
unacceptable answer's content starts with "[unacceptable]" and costs what a good one does. The validator refuses
those: an accepted answer is one the request ended with and the validator passed.

Three models, priced as the shipped catalog prices them (Groq's, USD per million tokens in / out), with the
capabilities and median latencies the bench gives them (latencies scaled down so that a run takes minutes):
    simple tier   openai/gpt-oss-20b    $0.075 / $0.30   capability 0.45   30 ms
    medium tier   openai/gpt-oss-120b   $0.15 / $0.60    capability 0.72   60 ms
    complex tier  qwen/qwen3.8-27b      $0.80 / $4.00    capability 0.97   150 ms (the strongest, and dearest)

The modes, each on its own router and a fresh attempts database:
    a  single strongest model: every task -> [qwen/qwen3.8-27b], no fallback; validate= refuses.
    b  the task lists as today, shaped like the shipped registry: support and extract -> [20b], summarize ->
       [20b, 120b], code, plan and math -> [120b, qwen], fallback [20b, 120b]; validate= moves a refused answer to
       the next model, as it does today.
    c  tiers: the same lists plus "<task>:simple" [20b], ":medium" [120b], ":complex" [qwen], and tier="auto" on
       every call; the validator judges the answer after the call, the router does not see it (no cascade).
    d  tiers + cascade: c with validate= passed, so a refused answer escalates to the next tier.
    e  tiers + cascade + cache: d with RESPONSE_CACHE_TASKS=all and cache_ttl= per call; the workload's exact
       repeats (its README's repeat rate) are what a cache can serve.
    o  tiers + cascade, each request told the lowest tier whose model's capability covers its difficulty (an
       oracle, which knows the difficulty but not the noise) instead of the scorer's: about the least d could cost
       with a perfect scorer, so that the table tells the tiers' saving from the scorer's misses.
    L  LiteLLM's complexity router (`auto_router/complexity_router`, its offline rule-based scorer, as its README
       configures it: SIMPLE 20b, MEDIUM 120b, COMPLEX and REASONING qwen), no retries; judged after the call, as c.
A mode whose router feature is not there yet (tier=, cache_ttl= on app.execute_task and Router.execute) is
reported "not available" rather than run.

Cost is what the attempt log says each mode spent (every row's cost_usd, refused calls included, cache hits not:
they call no model), the figure the dashboard shows; LiteLLM's is its answers' usage at the same prices. Provider
calls are the simulator's count. Latency is each request's, answered or not. The scorer's overhead is
`app.score_complexity` over every request of the workload, in process, its mean per request (target <= 50 us).
Targets: d at least 30 % cheaper per 1,000 requests than a, with accepted answers >= 99.5 %.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import importlib.util
import inspect
import json
import logging
import math
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map at import
os.environ.setdefault("LITELLM_TELEMETRY", "False")

from _common import KEY, cpu_name, simulator  # noqa: E402

WORKLOAD = ROOT / "bench" / "workload" / "requests.jsonl"
SMALL, MID, STRONG = "openai/gpt-oss-20b", "openai/gpt-oss-120b", "qwen/qwen3.8-27b"
TIER_MODELS = {"simple": SMALL, "medium": MID, "complex": STRONG}
PRICES = {SMALL: (0.075, 0.30), MID: (0.15, 0.60), STRONG: (0.80, 4.00)}  # USD per million tokens, in / out
CAPABILITY = {SMALL: 0.45, MID: 0.72, STRONG: 0.97}
LATENCY_MS = {SMALL: 30.0, MID: 60.0, STRONG: 150.0}
LATENCY_SIGMA = 0.4
NOISE = 0.05
TASKS = ("support", "extract", "summarize", "code", "plan", "math")
TODAY: dict[str, list[str]] = {
    "support": [SMALL],
    "extract": [SMALL],
    "summarize": [SMALL, MID],
    "code": [MID, STRONG],
    "plan": [MID, STRONG],
    "math": [MID, STRONG],
    "fallback": [SMALL, MID],
}
SINGLE: dict[str, list[str]] = {**{t: [STRONG] for t in TASKS}, "fallback": []}
TIERED: dict[str, list[str]] = {**TODAY, **{f"{t}:{tier}": [m] for t in TASKS for tier, m in TIER_MODELS.items()}}
CACHE_TTL = 3600.0
QUICK = 200
TARGET_SAVING, TARGET_ACCEPTED, TARGET_SCORER_US = 30.0, 99.5, 50.0
CLASSES = ("simple", "medium", "complex", "breakthrough")
UNACCEPTABLE = "[unacceptable]"
LITE_NAME = "smart-router"
REQUEST_CAP_S = 120.0  # the bench's own limit on one request, so that a run cannot hang

Call = Callable[[dict[str, Any]], Awaitable["Outcome"]]


@dataclass(frozen=True, slots=True, kw_only=True)
class Mode:
    key: str
    title: str
    registry: dict[str, list[str]]
    tier: str | None = None  # "auto": tier="auto" on each call; "oracle": oracle_tier(request)
    validate: bool = True  # the validator passed to the router (else judged after the call)
    cache: bool = False


MODES = [
    Mode(key="a", title="single strongest model", registry=SINGLE),
    Mode(key="b", title="task lists as today", registry=TODAY),
    Mode(key="c", title="tiers (tier=auto)", registry=TIERED, tier="auto", validate=False),
    Mode(key="d", title="tiers + cascade", registry=TIERED, tier="auto"),
    Mode(key="e", title="tiers + cascade + cache", registry=TIERED, tier="auto", cache=True),
    Mode(key="o", title="tiers + cascade, an oracle's tier", registry=TIERED, tier="oracle"),
]
LITE_MODE = Mode(key="L", title="LiteLLM complexity router", registry={}, validate=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's end, as the bench sees it."""

    accepted: bool
    error: str | None = None  # the exception's type when the request raised
    tier: str | None = None  # the tier whose model answered
    scored: str | None = None  # the scorer's tier (tier="auto")
    cached: bool = False
    cost_usd: float | None = None  # LiteLLM's only (the router's comes from its attempt log)


@dataclass
class Run:
    mode: Mode
    skipped: str | None = None  # why the mode did not run
    latencies: list[float] = field(default_factory=list)
    outcomes: list[tuple[dict[str, Any], Outcome]] = field(default_factory=list)
    calls: int = 0
    cost_usd: float = 0.0
    unpriced_rows: int = 0
    saved_usd: float | None = None  # the attempt log's own claim, summed
    refused_rows: int = 0
    cache_hit_rows: int = 0
    wall: float = 0.0

    @property
    def requests(self) -> int:
        return len(self.outcomes)

    @property
    def accepted_pct(self) -> float:
        return 100.0 * sum(o.accepted for _, o in self.outcomes) / self.requests if self.requests else math.nan

    @property
    def per_1000(self) -> float:
        return 1000.0 * self.cost_usd / self.requests if self.requests else math.nan

    def pct(self, p: float) -> float:
        """Nearest-rank percentile in ms."""
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1e3 if ordered else math.nan


# -- the workload ------------------------------------------------------------------------------------------------


def quick_workload() -> list[dict[str, Any]]:
    """A workload of QUICK requests built in memory by bench/workload/make.py: the same mix, repeat rate and seed
    as the file's, at a tenth of its size (the file's first 200 would hold few repeats: they come later)."""
    spec = importlib.util.spec_from_file_location("workload_make", WORKLOAD.parent / "make.py")
    assert spec is not None and spec.loader is not None
    make = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = make  # its dataclass looks its module up while the module is being run
    spec.loader.exec_module(make)
    return list(make.build(make.Options(requests=QUICK)))


def load_workload(path: Path, limit: int | None) -> list[dict[str, Any]]:
    if not path.exists():
        raise SystemExit(f"{path} is missing: build it with `python bench/workload/make.py`")
    requests = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return requests[:limit] if limit else requests


def extra_body(request: dict[str, Any]) -> dict[str, Any]:
    return {"x_bench_difficulty": request["difficulty"], "x_bench_completion_tokens": request["completion_tokens"]}


def oracle_tier(request: dict[str, Any]) -> str:
    return next((t for t, m in TIER_MODELS.items() if CAPABILITY[m] >= request["difficulty"]), "complex")


def judge(content: str | None) -> str | None:
    """The validator: why the answer is refused, or None."""
    return "the answer is not good enough" if (content or "").startswith(UNACCEPTABLE) else None


# -- what the installed router offers ----------------------------------------------------------------------------


def features() -> dict[str, str | None]:
    """Per feature, None when the router has it, else why not: tier= and cache_ttl= on app.execute_task and on
    Router.execute (the bench calls the latter, on a router of its own per mode)."""
    import app
    from app.config import Settings
    from app.core.router import Router

    public = inspect.signature(app.execute_task).parameters
    own = inspect.signature(Router.execute).parameters

    def missing(name: str) -> str | None:
        where = [w for w, params in (("app.execute_task", public), ("Router.execute", own)) if name not in params]
        return f"{' and '.join(where)} take no {name}=" if where else None

    cache = missing("cache_ttl") or (
        None if "response_cache_tasks" in Settings.model_fields else "no RESPONSE_CACHE_TASKS setting"
    )
    return {"tier": missing("tier"), "cache": cache}


def unavailable(mode: Mode, found: Mapping[str, str | None]) -> str | None:
    if mode.tier and found["tier"]:
        return found["tier"]
    if mode.cache and found["cache"]:
        return found["cache"]
    return None


# -- the simulator -----------------------------------------------------------------------------------------------


def profiles_toml() -> str:
    out = []
    for model in PRICES:
        out += [
            f'[models."{model}"]',
            f"latency_ms = {LATENCY_MS[model]}",
            f"latency_sigma = {LATENCY_SIGMA}",
            f"capability = {CAPABILITY[model]}",
            f"capability_noise = {NOISE}",
            "",
        ]
    return "\n".join(out)


def catalog() -> dict[str, Any]:
    from app.registry.catalog import ModelInfo

    features_ = frozenset({"tools", "json_mode", "reasoning"})
    return {
        m: ModelInfo(
            input_price=i,
            output_price=o,
            context_window=131_072,
            max_completion_tokens=16_384 if m == STRONG else 65_536,
            capabilities=features_,
        )
        for m, (i, o) in PRICES.items()
    }


# -- the contenders ----------------------------------------------------------------------------------------------


def router_for(mode: Mode, base_url: str, db: Path) -> Any:
    from app.config import load_settings
    from app.core.router import Router

    overrides: dict[str, Any] = dict(
        env_file=None,
        groq_api_key=KEY,
        groq_base_url=base_url,
        attempts_db_path=db,
        attempt_logging=True,
        force_model=None,
        default_models={},
        daily_budget_usd=None,
        model_catalog_file=None,
        hedge_after_ms=None,
        llm_timeout_seconds=30,
    )
    if mode.cache:
        overrides["response_cache_tasks"] = "all"
    registry, prices = mode.registry, catalog()
    return Router(load_settings(**overrides), registry=lambda: registry, catalog=lambda: prices)


def taskrouter_call(mode: Mode, router: Any) -> Call:
    from app.errors import TaskFailedError

    def validator(response: Any) -> str | None:
        return judge(response.content)

    per_call: dict[str, Any] = {}
    if mode.tier == "auto":
        per_call["tier"] = "auto"
    if mode.cache:
        per_call["cache_ttl"] = CACHE_TTL
    if mode.validate:
        per_call["validate"] = validator

    async def call(request: dict[str, Any]) -> Outcome:
        told = {"tier": oracle_tier(request)} if mode.tier == "oracle" else {}
        try:
            response = await router.execute(
                request["task"],
                request["messages"],
                **request["params"],
                extra_body=extra_body(request),
                **per_call,
                **told,
            )
        except TaskFailedError as exc:
            return Outcome(False, error=type(exc).__name__)
        complexity = getattr(response, "complexity", None)
        return Outcome(
            judge(response.content) is None,
            tier=getattr(response, "tier", None),
            scored=getattr(complexity, "tier", None),
            cached=bool(getattr(response, "cached", False)),
        )

    return call


def litellm_ready() -> str | None:
    """None when LiteLLM imports and has its complexity router, else why not."""
    try:
        import litellm
        import litellm.router_strategy.complexity_router
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):  # a line per call otherwise
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return None


def litellm_call(openai_base_url: str) -> Call:
    import litellm

    # One group per model, priced as ours, named by its tier (a group named like a model, "openai/gpt-oss-20b", is
    # looked up in LiteLLM's price map by the complexity router, which does not know it); the complexity router's
    # group maps its four tiers onto them.
    groups = {m: f"tier-{t}" for t, m in TIER_MODELS.items()}
    model_list: list[dict[str, Any]] = [
        {
            "model_name": groups[m],
            "litellm_params": {
                "model": f"openai/{m}",
                "api_base": openai_base_url,
                "api_key": KEY,
                "input_cost_per_token": i / 1e6,
                "output_cost_per_token": o / 1e6,
            },
        }
        for m, (i, o) in PRICES.items()
    ]
    model_list.append(
        {
            "model_name": LITE_NAME,
            "litellm_params": {
                "model": "auto_router/complexity_router",
                # Context compaction (on by default) looks each tier's model up in LiteLLM's own price map, which knows
                # these names only under groq/; the workload's contexts are far below every window, so it is turned off,
                # as the router's README does in its own example.
                "complexity_router_config": {
                    "context_compaction": False,
                    "tiers": {
                        "SIMPLE": groups[SMALL],
                        "MEDIUM": groups[MID],
                        "COMPLEX": groups[STRONG],
                        "REASONING": groups[STRONG],
                    },
                },
            },
        }
    )
    router = litellm.Router(model_list=model_list, num_retries=0)
    tier_of = {m: t for t, m in TIER_MODELS.items()}

    async def call(request: dict[str, Any]) -> Outcome:
        try:
            response = await router.acompletion(
                model=LITE_NAME, messages=request["messages"], **request["params"], extra_body=extra_body(request)
            )
        except Exception as exc:
            return Outcome(False, error=type(exc).__name__)
        model = str(response.model)  # the model the simulator says answered
        usage = response.usage
        price = PRICES.get(model)
        cost = None if price is None else (usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]) / 1e6
        return Outcome(
            judge(response.choices[0].message.content) is None,
            tier=tier_of.get(model),
            scored=tier_of.get(model),
            cost_usd=cost,
        )

    return call


# -- runs --------------------------------------------------------------------------------------------------------


async def drive(run: Run, call: Call, requests: list[dict[str, Any]], concurrency: int) -> None:
    remaining = iter(requests)
    started = time.perf_counter()

    async def worker() -> None:
        for request in remaining:
            t0 = time.perf_counter()
            try:
                async with asyncio.timeout(REQUEST_CAP_S):
                    outcome = await call(request)
            except TimeoutError:
                outcome = Outcome(False, error="bench cap")
            run.latencies.append(time.perf_counter() - t0)
            run.outcomes.append((request, outcome))

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.wall = time.perf_counter() - started


def read_log(run: Run, db: Path) -> None:
    """What the attempt log says the mode spent (refused calls included; cache hits call no model)."""
    conn = sqlite3.connect(db)
    try:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(attempts)")}
        rows = conn.execute(
            "SELECT outcome, error_kind, cost_usd, total_tokens"
            + (", saved_usd" if "saved_usd" in columns else ", NULL")
            + " FROM attempts"
        ).fetchall()
    finally:
        conn.close()
    saved = [s for *_, s in rows if s is not None]
    run.saved_usd = sum(saved) if saved else None
    for outcome, kind, cost, tokens, _ in rows:
        if outcome == "cache_hit":
            run.cache_hit_rows += 1
            continue
        run.refused_rows += kind in ("validation", "refused")
        if cost is None and tokens:
            run.unpriced_rows += 1
        run.cost_usd += cost or 0.0


async def run_mode(
    mode: Mode, requests: list[dict[str, Any]], args: argparse.Namespace, workdir: Path, found: Mapping[str, str | None]
) -> Run:
    why = unavailable(mode, found)
    if why is not None:
        return Run(mode, skipped=f"not available: {why}")
    if mode is LITE_MODE and (why := litellm_ready()) is not None:
        return Run(mode, skipped=f"not available: LiteLLM did not import ({why})")
    run = Run(mode)
    with simulator(profiles_toml(), workdir, f"profiles_{mode.key}", seed=args.seed) as sim:
        if mode is LITE_MODE:
            await drive(run, litellm_call(sim.openai_base_url), requests, args.concurrency)
            run.cost_usd = sum(o.cost_usd or 0.0 for _, o in run.outcomes)
        else:
            db = workdir / f"attempts_{mode.key}.db"
            router = router_for(mode, sim.base_url, db)
            try:
                await drive(run, taskrouter_call(mode, router), requests, args.concurrency)
            finally:
                await router.aclose()  # writes every attempt row
            read_log(run, db)
        run.calls = sim.calls()
    return run


# -- the scorer --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScorerTime:
    mean_us: float  # the thread's CPU time per request, mean over the workload (what the target judges)
    p50_us: float
    p99_us: float
    wall_mean_us: float  # the same calls by the wall clock, which a busy machine stretches
    tiers: dict[str, Counter[str]]  # class -> the scorer's tiers for its requests


def time_scorer(requests: list[dict[str, Any]], rounds: int = 20) -> ScorerTime | str:
    """Each request scored `rounds` times in a row, its time the mean of those: the thread's CPU time (what the
    scorer itself costs, whatever else the machine runs) and the wall clock's. Or why the scorer is not there."""
    try:
        from app.core.complexity import score_complexity
    except ImportError as exc:
        return f"not available: {exc}"
    cpu, wall, tiers = [], [], {c: Counter[str]() for c in CLASSES}
    for request in requests:
        params = {**request["params"], "extra_body": extra_body(request)}  # what the router passes it
        verdict = score_complexity(request["messages"], **params)
        tiers[request["class"]][verdict.tier] += 1
        c0, w0 = time.thread_time_ns(), time.perf_counter_ns()
        for _ in range(rounds):
            score_complexity(request["messages"], **params)
        wall.append((time.perf_counter_ns() - w0) / rounds / 1000)
        cpu.append((time.thread_time_ns() - c0) / rounds / 1000)
    ordered = sorted(cpu)
    return ScorerTime(
        statistics.fmean(cpu),
        ordered[len(ordered) // 2],
        ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)],
        statistics.fmean(wall),
        tiers,
    )


# -- the report --------------------------------------------------------------------------------------------------


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


TABLE_HEAD = (
    "mode",
    "requests",
    "accepted %",
    "$ per 1k req",
    "vs a",
    "p50 ms",
    "p99 ms",
    "provider calls",
    "calls/req",
    "refused calls",
    "cache hits",
    "tiers answered s/m/c %",
)


def table(runs: list[Run]) -> list[str]:
    base = next((r for r in runs if r.mode.key == "a" and r.skipped is None), None)
    rows: list[tuple[str, ...]] = [TABLE_HEAD]
    for r in runs:
        name = f"{r.mode.key} {r.mode.title}"
        if r.skipped is not None:
            rows.append((name, r.skipped, *["-"] * (len(TABLE_HEAD) - 2)))
            continue
        vs = "-" if base is None or r is base else f"{100 * (r.per_1000 / base.per_1000 - 1):+.1f}%"
        answered = Counter(o.tier for _, o in r.outcomes if o.tier)
        mix = "/".join(f"{100 * answered[t] / r.requests:.0f}" for t in TIER_MODELS) if answered else "-"
        hits = sum(o.cached for _, o in r.outcomes)
        rows.append(
            (
                name,
                f"{r.requests:,}",
                f"{r.accepted_pct:.2f}",
                f"{r.per_1000:.4f}",
                vs,
                f"{r.pct(50):,.1f}",
                f"{r.pct(99):,.1f}",
                f"{r.calls:,}",
                f"{r.calls / r.requests:.2f}",
                f"{r.refused_rows:,}",
                f"{hits:,}",
                mix,
            )
        )
    return render(rows)


def by_class(runs: list[Run]) -> list[str]:
    rows: list[tuple[str, ...]] = [("mode", *(f"{c} accepted %" for c in CLASSES))]
    for r in runs:
        if r.skipped is not None:
            continue
        cells = []
        for c in CLASSES:
            mine = [o for q, o in r.outcomes if q["class"] == c]
            cells.append(f"{100 * sum(o.accepted for o in mine) / len(mine):.1f}" if mine else "-")
        rows.append((f"{r.mode.key} {r.mode.title}", *cells))
    return render(rows)


def scorer_lines(scorer: ScorerTime | str) -> list[str]:
    if isinstance(scorer, str):
        return [f"scorer: {scorer}"]
    rows: list[tuple[str, ...]] = [("class", "requests", "scored simple", "scored medium", "scored complex")]
    for c in CLASSES:
        counted = scorer.tiers[c]
        n = sum(counted.values())
        rows.append((c, f"{n:,}", *(f"{100 * counted[t] / n:.0f}%" if n else "-" for t in TIER_MODELS)))
    return [
        f"scorer (app.score_complexity, default thresholds), CPU time per request over the workload: mean "
        f"{scorer.mean_us:.1f} us, p50 {scorer.p50_us:.1f} us, p99 {scorer.p99_us:.1f} us (wall clock: mean "
        f"{scorer.wall_mean_us:.1f} us)",
        "",
        "the scorer's tier by difficulty class:",
        "",
        *render(rows),
    ]


def verdicts(runs: list[Run], scorer: ScorerTime | str) -> tuple[list[str], bool]:
    by = {r.mode.key: r for r in runs if r.skipped is None}
    a, d = by.get("a"), by.get("d")
    lines, ok = [], True
    if a is None or d is None:
        lines.append(
            f"d at least {TARGET_SAVING:g} % cheaper than a: not measured ("
            + ("a" if a is None else "d")
            + " did not run) -> MISSED"
        )
        ok = False
    else:
        saving = 100 * (1 - d.per_1000 / a.per_1000)
        met = saving >= TARGET_SAVING
        lines.append(
            f"d (tiers + cascade) costs {saving:.1f} % less than a (single strongest) per 1,000 requests "
            f"(target >= {TARGET_SAVING:g} %) -> {'OK' if met else 'MISSED'}"
        )
        good = d.accepted_pct >= TARGET_ACCEPTED
        lines.append(
            f"d accepted answers {d.accepted_pct:.2f} % (target >= {TARGET_ACCEPTED:g} %) -> "
            f"{'OK' if good else 'MISSED'}"
        )
        ok &= met and good
    if isinstance(scorer, str):
        lines.append(f"scorer overhead: {scorer} -> MISSED")
        ok = False
    else:
        fast = scorer.mean_us <= TARGET_SCORER_US
        lines.append(
            f"scorer overhead {scorer.mean_us:.1f} us CPU per request, mean over the workload (target <= "
            f"{TARGET_SCORER_US:g} us) -> {'OK' if fast else 'MISSED'}"
        )
        ok &= fast
    return lines, ok


def log_notes(runs: list[Run]) -> list[str]:
    notes = []
    for r in runs:
        if r.skipped is not None:
            continue
        errors = Counter(o.error for _, o in r.outcomes if o.error)
        parts = [f"{r.wall:.1f} s"]
        if errors:
            parts.append("failed: " + ", ".join(f"{k} x{n}" for k, n in errors.most_common()))
        if r.unpriced_rows:
            parts.append(f"{r.unpriced_rows} rows without a cost")
        if r.saved_usd is not None:
            parts.append(f"saved_usd in the log ${r.saved_usd:.4f} (against each task's first model)")
        if r.cache_hit_rows:
            parts.append(f"{r.cache_hit_rows} cache_hit rows")
        notes.append(f"  {r.mode.key}: " + "; ".join(parts))
    return notes


def versions() -> str:
    found = []
    for package in ("groq", "litellm"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def revision() -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        return head + (" (with uncommitted changes)" if dirty else "")
    return "unknown"


def source(args: argparse.Namespace) -> str:
    if args.quick:
        return f"bench/workload/make.py --requests {QUICK} (built in memory)"
    path = args.workload.relative_to(ROOT) if args.workload.is_relative_to(ROOT) else args.workload
    return f"{path}" + (f", its first {args.requests}" if args.requests else "")


def header(args: argparse.Namespace, requests: list[dict[str, Any]], found: Mapping[str, str | None]) -> list[str]:
    n = len(requests)
    classes = Counter(q["class"] for q in requests)
    repeats = sum(q.get("repeat_of") is not None for q in requests)
    models = "; ".join(
        f"{tier} {m} ${PRICES[m][0]:g}/${PRICES[m][1]:g} capability {CAPABILITY[m]:g} {LATENCY_MS[m]:g} ms"
        for tier, m in TIER_MODELS.items()
    )
    have = ", ".join(f"{k}: {'yes' if v is None else v}" for k, v in found.items())
    return [
        f"command: python bench/cost.py {' '.join(sys.argv[1:])}".rstrip(),
        f"machine: {cpu_name()}, {os.cpu_count()} logical cores, Python {platform.python_version()}; {versions()}; "
        f"load average at the start {os.getloadavg()[0]:.1f}",
        f"revision: {revision()}",
        f"workload: {source(args)}, "
        f"{n:,} requests ("
        + ", ".join(f"{c} {100 * classes[c] / n:.0f} %" for c in CLASSES)
        + f"), repeat rate {100 * repeats / n:.1f} % ({repeats:,} exact repeats)",
        f"models (USD per million tokens in/out, capability, median latency, sigma {LATENCY_SIGMA:g}): {models}",
        f"quality noise sd {NOISE:g}; simulator seed {args.seed}, no faults, a fresh process per mode; "
        f"concurrency {args.concurrency}",
        f"router features found: {have}",
        "",
    ]


async def bench(
    args: argparse.Namespace, requests: list[dict[str, Any]], workdir: Path, found: Mapping[str, str | None]
) -> list[Run]:
    chosen = [m for m in MODES if m.key in args.modes]
    if "L" in args.modes and not args.no_litellm:
        chosen.append(LITE_MODE)
    runs = []
    for mode in chosen:
        run = await run_mode(mode, requests, args, workdir, found)
        state = run.skipped or f"{run.wall:.1f} s, accepted {run.accepted_pct:.2f} %, ${run.per_1000:.4f}/1k"
        print(f"  {mode.key} {mode.title}: {state}", file=sys.stderr, flush=True)
        runs.append(run)
    if args.no_litellm:
        runs.append(Run(LITE_MODE, skipped="not run: --no-litellm"))
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workload", type=Path, default=WORKLOAD, help="a JSONL workload (bench/workload/...)")
    parser.add_argument("--requests", type=int, default=None, help="the workload's first N requests (all)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK} requests built in memory by bench/workload/make.py (its defaults)",
    )
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (16)")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's seed: quality noise and latency (7)")
    parser.add_argument(
        "--modes",
        default="a,b,c,d,e,o,L",
        type=lambda t: set(t.split(",")),
        help="comma-separated mode keys (a,b,c,d,e,o,L)",
    )
    parser.add_argument("--no-litellm", action="store_true", help="leave out LiteLLM's complexity router")
    args = parser.parse_args(argv)
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    unknown = args.modes - {m.key for m in MODES} - {"L"}
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; known: a, b, c, d, e, o, L")
    requests = quick_workload() if args.quick else load_workload(args.workload, args.requests)
    # A refused answer is a warning line per attempt: thousands of them, nobody reads them.
    logging.getLogger("taskrouter").setLevel(logging.ERROR)
    found = features()
    lines = header(args, requests, found)
    with tempfile.TemporaryDirectory() as tmp:
        runs = asyncio.run(bench(args, requests, Path(tmp), found))
    scorer = time_scorer(requests)
    notes, ok = verdicts(runs, scorer)
    print(
        "\n".join(
            [
                *lines,
                *table(runs),
                "",
                "accepted answers by difficulty class:",
                "",
                *by_class(runs),
                "",
                *scorer_lines(scorer),
                "",
                *notes,
                "",
                "per mode:",
                *log_notes(runs),
            ]
        )
    )
    print(f"\nall targets met: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

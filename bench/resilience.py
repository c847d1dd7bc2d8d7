"""Resilience under faults: taskrouter and LiteLLM's Router on the same seeded faults, side by side. Run by hand.

    python bench/resilience.py                              # every scenario, 300 requests each (a few minutes)
    python bench/resilience.py --requests 1000 --concurrency 20 --scenarios 1,3
    python bench/resilience.py --no-litellm                 # taskrouter alone
    python bench/resilience.py --hedge-in 3,6               # taskrouter hedging with the hung primary too
    python bench/resilience.py --scenarios 7,7f,8,8b        # the dropped-connection mixes alone

LiteLLM is not a project dependency: `.venv/bin/pip install litellm` puts it beside taskrouter (without it, the
LiteLLM rows say "skipped: did not import").

Scenarios (chain A, B, C = openai/gpt-oss-120b, openai/gpt-oss-20b, qwen/qwen3.8-27b; healthy = log-normal latency
around 75 ms, sigma 0.3; transient = 500 server_error; dropped = the simulator's "disconnect" fault, the server
closes the connection without answering, which aiohttp raises as ServerDisconnectedError):
    0  baseline: the healthy model B alone (its p99 is the yardstick for scenario 3)
    1  no healthy model: [A 30 % transient, B 30 % transient]
    2  one healthy model behind two flaky ones: [A 30 %, B 30 %, C healthy]
    3  hung primary: [A never answers, B healthy], per-attempt timeout 1 s (--hang-timeout)
    4  rate-limited primary: [A answers 429 `retry-after: 2` half the time, B healthy]
    5  single forced flaky model: only A, 30 % transient (taskrouter FORCE_MODEL=A; LiteLLM one group, no fallbacks)
    6  slow-tail primary: [A latency 80 ms, sigma 1.2 (p99 ~1.3 s), B healthy]; taskrouter with HEDGE_AFTER_MS
    7  dropped connections, single model: only A, 30 % dropped (taskrouter chain [A], not forced; LiteLLM one group,
       no fallbacks)
    7f the same, taskrouter FORCE_MODEL=A (as in scenario 5)
    8  dropped connections, two models: [A 30 % dropped, B 30 % dropped]
    8b dropped connections on the primary only: [A 30 % dropped, B healthy]

In the dropped-connection scenarios (7 to 8b) the target against LiteLLM is issue 21's: taskrouter answers at least
as many requests and has the lower p99 (elsewhere "better" is more answered, or as many with the lower p99).

Each scenario runs once per client, each run against a fresh simulator process (fresh state, same --seed, so both
clients draw the same fault and latency sequence per model) and, for taskrouter, a fresh attempts database (the
breaker keeps its state there). The simulator runs in its own process, as in bench/overhead.py, so that it does not
share the clients' GIL; it is bench/_common.py's, which also reports how many calls each model received (the
"calls/req" column: every provider call, retries and hedges included). The in-process `Simulator` would save the
restarts but would put its event loop thread under the clients' GIL, and restarting per run is what gives each
client the same fresh seeded state.

Every request's latency is counted, answered or not (a caller waits for a failure too). "past deadline" counts
requests that returned after --deadline (default 30 s); the bench itself gives up on a request at twice the
deadline (counted as failed and past deadline) so that a run cannot hang.

taskrouter: `Router(settings, registry={"bench": chain, "fallback": []})`, LLM_TIMEOUT_SECONDS = the per-attempt
timeout (30 s, or --hang-timeout in scenario 3). Settings that are not there yet on older code are passed only when
`Settings` has them: LLM_REQUEST_DEADLINE_SECONDS = --deadline, HEDGE_AFTER_MS = --hedge-after-ms (in the
--hedge-in scenarios, 6 by default); the per-call `timeout=` (the request's deadline) only when `Router.execute`
declares it (an undeclared one would reach the provider as a request parameter). Every other setting is its default
or what the environment says (no .env is read); the header prints the ones that matter.

Scenario 3's target is the p99 "after the first timeout": over the requests that started once the first request
that waited out the hung primary's timeout had ended (the table's p99 counts them all). Without hedging, every
request already in flight on the hung primary when its first timeout lands waits the whole attempt timeout: at
concurrency 10 that is about 10 requests, whatever a breaker does afterwards; what the breaker decides is what
every later request sees.

LiteLLM, configured as its Router docs recommend for reliability ("Retries, fallbacks and cooldowns",
docs.litellm.ai/docs/router/learn/reliability; "Configuration and defaults"): one model group per model, each
pointed at the simulator's OpenAI-compatible endpoint (`openai/<model>`, api_base .../v1), and
    Router(model_list, fallbacks=[{A: [B, C]}], num_retries=2, allowed_fails=3, cooldown_time=5, timeout=<per attempt>)
num_retries=2 is its documented default (3 attempts per model group, each retry sleeping the 429's Retry-After or
an exponential backoff from 0.5 s with up to 0.75 s of jitter; the router sets max_retries=0 on the SDK so it is the
only retry loop); allowed_fails=3 and cooldown_time=5 s are its documented defaults (DEFAULT_ALLOWED_FAILS,
DEFAULT_COOLDOWN_TIME_SECONDS), passed explicitly so the table says what ran; timeout is per attempt, the same as
taskrouter's LLM_TIMEOUT_SECONDS in every scenario. A fallback group is tried after the primary group's retries
are spent. LiteLLM has no hedged requests: in scenario 6 it gets the same timeout and fallbacks as everywhere.
Its per-request wall-clock budget (`total_timeout`) is a proxy feature, not the SDK Router's, so it has none.
It runs on its aiohttp transport, as taskrouter does by default. Cost map local, telemetry off, as overhead.py.
What the runs show of it (1.110.2): a retry in a one-deployment group sleeps its backoff (with 30 % transient faults,
p90 ~1 s and p99 ~5 s); a timeout or a 429 puts that deployment in cooldown even though it is its group's only one,
so a hung or rate-limited primary is skipped for cooldown_time (~1.03 calls per request), and a request whose groups
are all cooling down fails with RouterRateLimitError. A dropped connection it raises as InternalServerError and
retries like a 500, backoff included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import inspect
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # no download of the price map at import
os.environ.setdefault("LITELLM_TELEMETRY", "False")

from _common import KEY, cpu_name, simulator  # noqa: E402

Call = Callable[[], Awaitable[Any]]
A, B, C = "openai/gpt-oss-120b", "openai/gpt-oss-20b", "qwen/qwen3.8-27b"
MESSAGES = [{"role": "user", "content": "Classify this ticket as billing, bug or question: my invoice is wrong"}]
MAX_TOKENS = 64
TASK = "bench"
OURS, LITE = "taskrouter", "LiteLLM"
# LiteLLM's documented defaults, passed explicitly (see the docstring).
LITE_NUM_RETRIES, LITE_ALLOWED_FAILS, LITE_COOLDOWN_S = 2, 3, 5.0
TARGET_NO_HEALTHY, TARGET_ONE_HEALTHY, TARGET_HANG_P99_RATIO = 99.0, 99.9, 2.0

HEALTHY: dict[str, Any] = {"latency_ms": 75.0, "latency_sigma": 0.3}


def flaky(rate: float) -> dict[str, Any]:
    return {**HEALTHY, "fault_rates": {"server_error": rate}}


def dropping(rate: float) -> dict[str, Any]:
    return {**HEALTHY, "fault_rates": {"disconnect": rate}}


@dataclass(frozen=True)
class Scenario:
    key: str
    title: str
    chain: tuple[str, ...]
    profiles: dict[str, dict[str, Any]]
    healthy: bool  # a healthy model is in the chain: the success target is TARGET_ONE_HEALTHY, else TARGET_NO_HEALTHY
    hang: bool = False  # per-attempt timeout --hang-timeout instead of 30 s; p99 judged against the baseline's
    forced: bool = False  # taskrouter FORCE_MODEL=chain[0]; LiteLLM one group, no fallbacks
    hedge: bool = False  # taskrouter HEDGE_AFTER_MS by default (--hedge-in)
    dropped: bool = False  # against LiteLLM: at least as many answered and a lower p99, both


SCENARIOS = [
    Scenario("0", "baseline: B alone, healthy", (B,), {B: HEALTHY}, healthy=True),
    Scenario("1", "no healthy model", (A, B), {A: flaky(0.3), B: flaky(0.3)}, healthy=False),
    Scenario("2", "2 flaky, then healthy", (A, B, C), {A: flaky(0.3), B: flaky(0.3), C: HEALTHY}, healthy=True),
    Scenario(
        "3", "hung primary", (A, B), {A: {**HEALTHY, "fault_rates": {"hang": 1.0}}, B: HEALTHY}, healthy=True, hang=True
    ),
    Scenario(
        "4",
        "50% rate-limited primary",
        (A, B),
        {A: {**HEALTHY, "fault_rates": {"rate_limit": 0.5}}, B: HEALTHY},
        healthy=True,
    ),
    Scenario("5", "single forced flaky model", (A,), {A: flaky(0.3)}, healthy=False, forced=True),
    Scenario(
        "6",
        "slow-tail primary, hedging",
        (A, B),
        {A: {"latency_ms": 80.0, "latency_sigma": 1.2}, B: HEALTHY},
        healthy=True,
        hedge=True,
    ),
    Scenario("7", "30% dropped, single model", (A,), {A: dropping(0.3)}, healthy=False, dropped=True),
    Scenario(
        "7f", "30% dropped, single forced model", (A,), {A: dropping(0.3)}, healthy=False, forced=True, dropped=True
    ),
    Scenario(
        "8", "30% dropped on both models", (A, B), {A: dropping(0.3), B: dropping(0.3)}, healthy=False, dropped=True
    ),
    Scenario(
        "8b", "30% dropped primary, healthy B", (A, B), {A: dropping(0.3), B: HEALTHY}, healthy=True, dropped=True
    ),
]
ATTEMPT_TIMEOUT_S = 30.0  # per attempt, except in the hung-primary scenario


@dataclass
class Run:
    scenario: Scenario
    client: str
    latencies: list[float] = field(default_factory=list)  # seconds, every request
    starts: list[float] = field(default_factory=list)  # seconds since the run began, same order as latencies
    answered: int = 0
    past_deadline: int = 0
    calls: int = 0  # provider calls, as the simulator counted them
    wall: float = 0.0
    errors: Counter[str] = field(default_factory=Counter)
    skipped: str | None = None  # why this client did not run

    @property
    def requests(self) -> int:
        return len(self.latencies)

    @property
    def answered_pct(self) -> float:
        return 100.0 * self.answered / self.requests if self.requests else 0.0

    def pct(self, p: float, latencies: list[float] | None = None) -> float:
        """Nearest-rank percentile in ms."""
        ordered = sorted(self.latencies if latencies is None else latencies)
        if not ordered:
            return math.nan
        return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)] * 1e3

    def after_first_slow(self, slow: float) -> list[float]:
        """Latencies of the requests that started after the first request slower than `slow` seconds ended:
        what callers see once the router has had its first timeout to learn from."""
        ends = [t + lat for t, lat in zip(self.starts, self.latencies, strict=True) if lat >= slow]
        if not ends:
            return list(self.latencies)
        first = min(ends)
        return [lat for t, lat in zip(self.starts, self.latencies, strict=True) if t >= first]


# -- the simulator's profiles (bench/_common.py serves them in a process of its own) ---------------------------


def profiles_toml(profiles: dict[str, dict[str, Any]]) -> str:
    out = []
    for model, values in profiles.items():
        out.append(f'[models."{model}"]')
        for key, value in values.items():
            if isinstance(value, dict):
                out.append(f"{key} = {{ " + ", ".join(f"{k} = {float(v)}" for k, v in value.items()) + " }")
            else:
                out.append(f"{key} = {float(value)}")
        out.append("")
    return "\n".join(out)


# -- the contenders -------------------------------------------------------------------------------------------


def new_api() -> tuple[bool, bool, bool]:
    """(LLM_REQUEST_DEADLINE_SECONDS is a setting, HEDGE_AFTER_MS is a setting, Router.execute takes timeout=)."""
    from app.config import Settings
    from app.core.router import Router

    return (
        "llm_request_deadline_seconds" in Settings.model_fields,
        "hedge_after_ms" in Settings.model_fields,
        "timeout" in inspect.signature(Router.execute).parameters,
    )


def taskrouter_settings(scenario: Scenario, base_url: str, db: Path, args: argparse.Namespace) -> Any:
    from app.config import load_settings

    has_deadline, has_hedge, _ = new_api()
    overrides: dict[str, Any] = dict(
        env_file=None,
        groq_api_key=KEY,
        groq_base_url=base_url,
        attempts_db_path=db,
        llm_timeout_seconds=args.hang_timeout if scenario.hang else ATTEMPT_TIMEOUT_S,
        force_model=scenario.chain[0] if scenario.forced else None,
        default_models={},
        daily_budget_usd=None,
        model_catalog_file=None,
        attempt_logging=True,
    )
    # Passed only where they exist: older Settings would not know them.
    if has_deadline:
        overrides["llm_request_deadline_seconds"] = args.deadline
    if has_hedge and scenario.key in args.hedge_in:
        overrides["hedge_after_ms"] = args.hedge_after_ms
    return load_settings(**overrides)


def taskrouter_call(scenario: Scenario, base_url: str, db: Path, args: argparse.Namespace) -> Call:
    from app.core import ai_models
    from app.core.router import Router

    registry = {TASK: list(scenario.chain), "fallback": []}
    router = Router(
        taskrouter_settings(scenario, base_url, db, args),
        registry=lambda: registry,
        catalog=lambda: ai_models.MODEL_CATALOG,
    )
    # An undeclared `timeout=` would reach the provider as a request parameter (and fail every call), so only
    # where execute() declares it.
    per_call = {"timeout": args.deadline} if new_api()[2] else {}

    async def call() -> Any:
        return await router.execute(TASK, MESSAGES, max_tokens=MAX_TOKENS, **per_call)

    return call


def litellm_ready() -> str | None:
    """None when LiteLLM imports, else why not (reported, not fatal, as in overhead.py)."""
    try:
        import litellm
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.disable_aiohttp_transport = False  # its aiohttp transport, like taskrouter's default HTTP_TRANSPORT
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):  # one line per failed attempt otherwise
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return None


def litellm_router_args(scenario: Scenario, args: argparse.Namespace) -> dict[str, Any]:
    chain = scenario.chain[:1] if scenario.forced else scenario.chain
    return dict(
        fallbacks=[{chain[0]: list(chain[1:])}] if len(chain) > 1 else [],
        num_retries=LITE_NUM_RETRIES,
        allowed_fails=LITE_ALLOWED_FAILS,
        cooldown_time=LITE_COOLDOWN_S,
        timeout=args.hang_timeout if scenario.hang else ATTEMPT_TIMEOUT_S,
    )


def litellm_call(scenario: Scenario, openai_base_url: str, args: argparse.Namespace) -> Call:
    import litellm

    chain = scenario.chain[:1] if scenario.forced else scenario.chain
    # One group per model, named as the model: `openai/` makes LiteLLM speak OpenAI's API to api_base and send
    # the rest (the registry name) as the model.
    model_list = [
        {"model_name": m, "litellm_params": {"model": f"openai/{m}", "api_base": openai_base_url, "api_key": KEY}}
        for m in chain
    ]
    router = litellm.Router(model_list=model_list, **litellm_router_args(scenario, args))

    async def call() -> Any:
        return await router.acompletion(model=chain[0], messages=MESSAGES, max_tokens=MAX_TOKENS)

    return call


# -- runs ----------------------------------------------------------------------------------------------------


async def drive(run: Run, call: Call, n: int, concurrency: int, deadline: float) -> None:
    remaining = iter(range(n))
    started = time.perf_counter()

    async def worker() -> None:
        for _ in remaining:
            t0 = time.perf_counter()
            run.starts.append(t0 - started)
            try:
                # The bench's own cap, so that a run cannot hang: a request still going at 2x the deadline is
                # cancelled and counted as failed (and past its deadline).
                async with asyncio.timeout(2 * deadline) as cap:
                    await call()
                run.answered += 1
            except TimeoutError:
                run.errors["bench cap (2x deadline)" if cap.expired() else "TimeoutError"] += 1
            except Exception as exc:
                run.errors[type(exc).__name__] += 1
            elapsed = time.perf_counter() - t0
            run.latencies.append(elapsed)
            run.past_deadline += elapsed > deadline

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    run.wall = time.perf_counter() - started


async def run_one(scenario: Scenario, client: str, args: argparse.Namespace, workdir: Path, n: int) -> Run:
    run = Run(scenario, client)
    with simulator(profiles_toml(scenario.profiles), workdir, f"profiles_{scenario.key}", seed=args.seed) as sim:
        if client == OURS:
            db = workdir / f"attempts_{scenario.key}_{time.monotonic_ns()}.db"  # fresh: the breaker persists there
            call = taskrouter_call(scenario, sim.base_url, db, args)
        else:
            call = litellm_call(scenario, sim.openai_base_url, args)
        await drive(run, call, n, args.concurrency, args.deadline)
        run.calls = sim.calls()
        if client == OURS:
            from app.store import get_attempt_log

            # The log's writer thread must not keep working into the next run's timing.
            get_attempt_log(db).flush(timeout=60)
    return run


async def bench(args: argparse.Namespace, workdir: Path, scenarios: list[Scenario]) -> list[Run]:
    clients = [OURS] + ([] if args.no_litellm or litellm_ready() else [LITE])
    # Warm-up, not recorded: LiteLLM imports much of itself lazily on its first call, and both clients build their
    # HTTP machinery once per process.
    for client in clients:
        await run_one(SCENARIOS[0], client, args, workdir, 2 * args.concurrency)
    runs = []
    for scenario in scenarios:
        for client in clients:
            run = await run_one(scenario, client, args, workdir, args.requests)
            print(
                f"  scenario {scenario.key} {client}: {run.wall:.1f} s, answered {run.answered}/{run.requests}",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
        if LITE not in clients:
            runs.append(Run(scenario, LITE, skipped="--no-litellm" if args.no_litellm else "did not import"))
    return runs


# -- the report ----------------------------------------------------------------------------------------------


def table(runs: list[Run]) -> list[str]:
    head = ("scenario", "client", "answered %", "p50 ms", "p99 ms", "max ms", "past deadline", "calls/req")
    rows: list[tuple[str, ...]] = [head]
    for r in runs:
        name = f"{r.scenario.key} {r.scenario.title}"
        if r.skipped is not None:
            rows.append((name, f"{r.client} (skipped: {r.skipped})", *["-"] * 6))
            continue
        rows.append(
            (
                name,
                r.client,
                f"{r.answered_pct:.2f}",
                f"{r.pct(50):,.0f}",
                f"{r.pct(99):,.0f}",
                f"{r.pct(100):,.0f}",
                str(r.past_deadline),
                f"{r.calls / r.requests:.2f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out = [
        "| "
        + " | ".join(x.ljust(w) if i < 2 else x.rjust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True)))
        + " |"
        for r in rows
    ]
    out.insert(1, "|" + "|".join("-" * (w + 2) if i < 2 else "-" * (w + 1) + ":" for i, w in enumerate(widths)) + "|")
    return out


def better(ours: Run, lite: Run) -> bool:
    """Success rate first; on a tie, the lower p99."""
    if ours.answered != lite.answered:
        return ours.answered > lite.answered
    return ours.pct(99) < lite.pct(99)


def as_many_and_faster(ours: Run, lite: Run) -> bool:
    """At least as many answered and the lower p99 (the dropped-connection scenarios' target)."""
    return ours.answered >= lite.answered and ours.pct(99) < lite.pct(99)


def verdicts(runs: list[Run], hang_timeout: float) -> tuple[list[str], bool]:
    by = {(r.scenario.key, r.client): r for r in runs}
    lines, all_ok = [], True
    for scenario in {r.scenario.key: r.scenario for r in runs}.values():
        ours, lite = by[(scenario.key, OURS)], by.get((scenario.key, LITE))
        target = TARGET_ONE_HEALTHY if scenario.healthy else TARGET_NO_HEALTHY
        checks = [
            (f"answered {ours.answered_pct:.2f}% (target >= {target}%)", ours.answered_pct >= target),
            (f"past deadline {ours.past_deadline} (target 0)", ours.past_deadline == 0),
        ]
        base = by.get(("0", OURS))
        if scenario.hang and base is not None:
            limit = TARGET_HANG_P99_RATIO * base.pct(99)
            after = ours.after_first_slow(0.9 * hang_timeout)
            p99 = ours.pct(99, after)
            checks.append(
                (
                    f"p99 after the first timeout {p99:,.0f} ms over {len(after)} requests (target < "
                    f"{TARGET_HANG_P99_RATIO:g}x the healthy model's p99 {base.pct(99):,.0f} = {limit:,.0f} ms)",
                    p99 < limit,
                )
            )
        if lite is not None and lite.skipped is None and scenario.dropped:
            checks.append(
                (
                    f"vs LiteLLM {lite.answered_pct:.2f}% answered, p99 {lite.pct(99):,.0f} ms "
                    f"(target: as many answered, lower p99)",
                    as_many_and_faster(ours, lite),
                )
            )
        elif lite is not None and lite.skipped is None:
            checks.append(
                (
                    f"vs LiteLLM {lite.answered_pct:.2f}% answered, p99 {lite.pct(99):,.0f} ms (target: better)",
                    better(ours, lite),
                )
            )
        all_ok &= all(ok for _, ok in checks)
        lines.append(
            f"scenario {scenario.key} ({scenario.title}): "
            + "; ".join(f"{text} -> {'OK' if ok else 'MISSED'}" for text, ok in checks)
        )
    return lines, all_ok


def failures(runs: list[Run]) -> list[str]:
    return [
        f"  {r.scenario.key} {r.client}: " + ", ".join(f"{kind} x{n}" for kind, n in r.errors.most_common())
        for r in runs
        if r.errors
    ]


def versions() -> str:
    found = []
    for package in ("groq", "httpx", "aiohttp", "litellm", "openai"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            found.append(f"{package} {importlib.metadata.version(package)}")
    return ", ".join(found)


def machine() -> str:
    cpu = cpu_name()
    return (
        f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}; {versions()}"
    )


def header(args: argparse.Namespace, workdir: Path) -> list[str]:
    has_deadline, has_hedge, has_timeout_kwarg = new_api()
    hedged = [s for s in SCENARIOS if s.key in args.hedge_in]
    probe = taskrouter_settings(hedged[0] if hedged else SCENARIOS[0], "http://127.0.0.1:1", workdir / "p.db", args)
    shown = [
        "llm_max_attempts",
        "llm_request_deadline_seconds",
        "hedge_after_ms",
        "retry_backoff_base_seconds",
        "retry_backoff_max_seconds",
        "server_error_threshold",
        "server_error_cooldown_seconds",
        "breaker_failure_rate",
        "breaker_open_after_timeouts",
        "breaker_open_after_connection_errors",
        "breaker_cooldown_seconds",
        "http_transport",
    ]
    present = ", ".join(f"{name}={getattr(probe, name)}" for name in shown if hasattr(probe, name))
    lite = litellm_router_args(SCENARIOS[2], args)
    hedge = (
        f"{args.hedge_after_ms:g} ms in scenario(s) {', '.join(s.key for s in hedged) or 'none'}"
        if has_hedge
        else "not a setting yet"
    )
    return [
        f"command: python bench/resilience.py {' '.join(sys.argv[1:])}".rstrip(),
        f"machine: {machine()}",
        f"seed {args.seed}; {args.requests} requests per scenario and client at concurrency {args.concurrency}; "
        f"deadline {args.deadline:g} s; per-attempt timeout {ATTEMPT_TIMEOUT_S:g} s ({args.hang_timeout:g} s with the "
        f"hung primary); simulator in its own process, restarted for every run; healthy model: latency "
        f"{HEALTHY['latency_ms']:g} ms, sigma {HEALTHY['latency_sigma']:g}",
        f"taskrouter: {present}; LLM_REQUEST_DEADLINE_SECONDS {'set' if has_deadline else 'not a setting yet'}, "
        f"HEDGE_AFTER_MS {hedge}, per-call timeout= "
        f"{'passed' if has_timeout_kwarg else 'not declared by Router.execute, not passed'}",
        f"LiteLLM Router (scenario 2): fallbacks={lite['fallbacks']}, num_retries={lite['num_retries']}, "
        f"allowed_fails={lite['allowed_fails']}, cooldown_time={lite['cooldown_time']:g}, "
        f"timeout={lite['timeout']:g} (per attempt)",
        "",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=300, help="requests per scenario and client (300)")
    parser.add_argument("--concurrency", type=int, default=10, help="requests in flight (10)")
    parser.add_argument("--deadline", type=float, default=30.0, help="per-request deadline, seconds (30)")
    parser.add_argument("--seed", type=int, default=7, help="the simulator's fault and latency seed (7)")
    parser.add_argument("--hang-timeout", type=float, default=1.0, help="per-attempt timeout with a hung primary (1)")
    parser.add_argument("--hedge-after-ms", type=float, default=200.0, help="taskrouter HEDGE_AFTER_MS (200)")
    parser.add_argument(
        "--hedge-in",
        type=lambda t: set(t.split(",")),
        default={s.key for s in SCENARIOS if s.hedge},
        help="scenarios where taskrouter hedges (6)",
    )
    parser.add_argument("--scenarios", default=",".join(s.key for s in SCENARIOS), help="comma-separated (all)")
    parser.add_argument("--no-litellm", action="store_true")
    args = parser.parse_args()
    keys = set(args.scenarios.split(","))
    if "3" in keys:
        keys.add("0")  # the hung-primary target is relative to the healthy model's own p99
    scenarios = [s for s in SCENARIOS if s.key in keys]
    # The router logs a warning per failed attempt and LiteLLM an error: thousands of lines, nobody reads them.
    logging.getLogger("taskrouter").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        lines = header(args, workdir)
        runs = asyncio.run(bench(args, workdir, scenarios))
    notes, ok = verdicts(runs, args.hang_timeout)
    print("\n".join(lines + table(runs)) + "\n")
    print("\n".join(notes))
    print("\nfailures by kind:\n" + "\n".join(failures(runs) or ["  none"]))
    print(f"\nall targets met: {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""The router's own CPU per call on the happy path, this work tree against a base revision, in one run. By hand.

    python bench/own_cpu.py                       # this work tree against e8a5bd2 (3-4 minutes)
    python bench/own_cpu.py --base HEAD~3 --keep  # another base; keep its worktree for the next run

"Own CPU" is what `execute_task` (attempt logging on) costs over its provider layer alone: a worker process
measures the process CPU (`time.process_time()`: every thread, so the attempt log's writer thread too) of N
`Router.execute("fast", ...)` calls, flushing the attempt log inside the window, and of N bare `run_llm` calls
(what every attempt goes through), in many short alternating windows (default 40 pairs of 100 calls at
concurrency 1, of 150 at 50), and reports the median over pairs of execute - run_llm per call.

The base revision is checked out with `git worktree add --detach /tmp/own_cpu_base_<rev>`. One simulator process
(this tree's, zero latency, no faults, on a free loopback port) serves every worker. Each worker is this script
with `--worker`, run with PYTHONPATH=<that tree> from a scratch directory, so it imports that tree's `app` (the
first worker of each tree prints `app.__file__` to prove it). The machine is noisy, so the revisions alternate
(base, new, new, base, ...) over --rounds rounds and every figure is the median over rounds. The target: the own
CPU per call grows by at most 10 % from base to new.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import _common
from _common import KEY, cpu_name

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
MESSAGES = [{"role": "user", "content": "Classify this ticket as billing, bug or question: my invoice is wrong"}]
MAX_TOKENS = 64
TASK = "fast"
MAX_GROWTH = 1.10  # new own CPU / base own CPU
PACKAGES = ("groq", "aiohttp", "httpx", "pydantic", "pydantic-settings")
Call = Callable[[], Awaitable[Any]]


# -- the worker: one tree, one concurrency -----------------------------------------------------------------


def clean_environment(settings_fields: Iterable[str]) -> None:
    """Drop the caller's settings variables (GROQ_*, LLM_*, DEFAULT_<TASK>_MODEL, ...): load_settings reads the
    environment even with env_file=None, and both revisions must run the same configuration."""
    names = {name.upper() for name in settings_fields}
    for var in list(os.environ):
        if var.upper() in names or re.fullmatch(r"DEFAULT_[A-Z0-9_]+_MODEL", var.upper()):
            del os.environ[var]


async def cpu_us_per_call(call: Call, n: int, concurrency: int, flush: Callable[[], bool]) -> float:
    """Process CPU per call over n calls from `concurrency` lanes; the flush is inside the window so the writer
    thread's work for these calls is counted here, not in the next window."""
    remaining = iter(range(n))

    async def lane() -> None:
        for _ in remaining:
            await call()

    cpu = time.process_time()
    await asyncio.gather(*(lane() for _ in range(concurrency)))
    if not flush():
        raise RuntimeError("attempt log did not flush")
    return (time.process_time() - cpu) / n * 1e6


def calls_under_test(port: int, db: Path, **settings: Any) -> tuple[Call, Call, Any, str]:
    """(execute, run_llm, the attempt log, the model): a call through the router on its happy path, and the same
    call through the provider layer alone, against the simulator at `port`. `settings` are added to the ones both
    revisions know. Imported here, not at the top: PYTHONPATH picks the tree, and the parent never needs them."""
    from app.config import Settings, load_settings
    from app.core import ai_models
    from app.core.router import Router
    from app.providers import Endpoint, run_llm
    from app.store import get_attempt_log

    clean_environment(Settings.model_fields)
    # Only settings both revisions know; the rest are each revision's defaults, which is what ships.
    loaded = load_settings(
        env_file=None,
        groq_api_key=KEY,
        groq_base_url=f"http://127.0.0.1:{port}",
        attempts_db_path=db,
        force_model=None,
        default_models={},
        daily_budget_usd=None,
        attempt_logging=True,
        **settings,
    )
    router = Router(loaded, registry=lambda: ai_models.MODEL_REGISTRY, catalog=lambda: ai_models.MODEL_CATALOG)
    endpoint = Endpoint("groq", loaded.groq_base_url, loaded.api_key(), loaded.http_transport)
    model = ai_models.MODEL_REGISTRY[TASK][0]

    async def execute() -> Any:
        return await router.execute(TASK, MESSAGES, max_tokens=MAX_TOKENS)

    async def provider() -> Any:
        return await run_llm(endpoint, model, MESSAGES, {"max_tokens": MAX_TOKENS}, loaded.llm_timeout_seconds)

    return execute, provider, get_attempt_log(db), model


async def worker(
    port: int, calls: int, concurrency: int, pairs: int, warmup: int, one_commit_per_window: bool = False
) -> dict[str, Any]:
    import app
    from app.providers import get_provider

    if one_commit_per_window:
        import app.store.attempt_log as attempt_log_module

        attempt_log_module.LINGER_SECONDS = 3600.0  # type: ignore[attr-defined]

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "own_cpu.db"
        execute, provider, log, model = calls_under_test(port, db)

        # The happy path, or the comparison is meaningless: one attempt, on the model run_llm calls.
        first = await execute()
        if first.model_used != model or len(first.attempts) != 1:
            raise RuntimeError(f"not the happy path: {first.model_used}, {len(first.attempts)} attempts")
        executed = 1
        for call in (execute, provider):  # connections opened, caches and the database warm; not measured
            await cpu_us_per_call(call, warmup, concurrency, log.flush)
        executed += warmup
        execute_us: list[float] = []
        run_llm_us: list[float] = []
        for p in range(pairs):
            # execute, run_llm, then run_llm, execute: a drift within the process favours neither.
            for name in ("execute", "run_llm") if p % 2 == 0 else ("run_llm", "execute"):
                if name == "execute":
                    execute_us.append(await cpu_us_per_call(execute, calls, concurrency, log.flush))
                    executed += calls
                else:
                    run_llm_us.append(await cpu_us_per_call(provider, calls, concurrency, log.flush))
        with contextlib.closing(sqlite3.connect(db)) as conn:
            rows = int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])
        if rows != executed:
            raise RuntimeError(f"attempt log: {rows} rows for {executed} execute calls")
        await get_provider("groq").aclose()  # type: ignore[attr-defined]  # else aiohttp warns at exit
    return {
        "execute_us": statistics.median(execute_us),
        "run_llm_us": statistics.median(run_llm_us),
        "own_us": statistics.median(e - r for e, r in zip(execute_us, run_llm_us, strict=True)),
        "execute_windows": execute_us,
        "run_llm_windows": run_llm_us,
        "app_file": app.__file__,
        "model": model,
    }


# -- the parent: worktree, simulator, interleaved rounds, the table ------------------------------------------


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@contextlib.contextmanager
def base_tree(rev: str, keep: bool) -> Iterator[tuple[Path, str]]:
    """A detached worktree at `rev` (reused if one is already there at that commit), removed afterwards."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = Path(tempfile.gettempdir()) / f"own_cpu_base_{re.sub(r'[^A-Za-z0-9._-]', '_', rev)}"
    if path.exists():
        if git("rev-parse", "HEAD", cwd=path) != sha:
            raise SystemExit(f"{path} exists at another commit; remove it (git worktree remove --force {path})")
    else:
        git("worktree", "add", "--detach", str(path), sha)
    try:
        yield path, sha
    finally:
        if not keep:
            git("worktree", "remove", "--force", str(path))


@contextlib.contextmanager
def simulator(workdir: Path) -> Iterator[int]:
    """This tree's simulator in its own process (it must not share a GIL with the workers), every model at zero
    latency; yields its port."""
    sys.path.insert(0, str(ROOT))
    from app.core import ai_models

    models = dict.fromkeys(m for chain in ai_models.MODEL_REGISTRY.values() for m in chain)
    profiles = "".join(f'[models."{m}"]\nlatency_ms = 0.0\n\n' for m in models)
    with _common.simulator(profiles, workdir, "profiles") as sim:
        yield sim.port


@dataclass
class Results:
    name: str
    tree: Path
    by_conc: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    app_file: str | None = None

    def median(self, c: int, key: str) -> float:
        return statistics.median(r[key] for r in self.by_conc[c])

    def spread(self, c: int) -> float:
        """(max - min) / median of own CPU over rounds: how far identical rounds disagree."""
        own = [r["own_us"] for r in self.by_conc[c]]
        return (max(own) - min(own)) / statistics.median(own)


def fingerprint(tree: Path) -> str:
    """A hash of the tree's app/ sources: teammates edit this work tree, and a change mid-run mixes two "new"s.
    app/simulator/ is left out: it is loaded once, before the rounds, and the workers never import it."""
    digest = hashlib.sha256()
    for path in sorted((tree / "app").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.parent.name != "simulator":
            digest.update(str(path.relative_to(tree)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def run_worker(side: Results, port: int, args: argparse.Namespace, c: int, scratch: Path) -> None:
    calls = args.calls_c1 if c == 1 else args.calls
    # PYTHONPATH replaced, not extended: only that tree's `app` may be found (ahead of the venv's editable
    # install of this tree, which is a meta-path finder consulted after sys.path).
    env = dict(os.environ, PYTHONPATH=str(side.tree), PYTHONDONTWRITEBYTECODE="1")
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--worker",
        "--port",
        str(port),
        "--calls",
        str(calls),
        "--concurrency",
        str(c),
        "--pairs",
        str(args.pairs),
        "--warmup",
        str(args.warmup),
        *(["--one-commit-per-window"] if args.one_commit_per_window else []),
    ]
    done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{side.name} worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])  # the JSON is the last line; warnings may precede it
    if not Path(result["app_file"]).resolve().is_relative_to(side.tree.resolve()):
        raise RuntimeError(f"{side.name} worker imported {result['app_file']}, not {side.tree}'s app")
    if side.app_file is None:
        side.app_file = result["app_file"]
        print(f"{side.name}: app imported from {side.app_file}", file=sys.stderr, flush=True)
    side.by_conc.setdefault(c, []).append(result)


def header(args: argparse.Namespace, base_sha: str) -> list[str]:
    cpu = cpu_name()
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (absent)")
    dirty = git("status", "--porcelain", "--", "app")
    new = git("log", "-1", "--format=%h %s") + (" + uncommitted changes in app/" if dirty else "")
    return [
        f"command: {shlex.join(['python', 'bench/own_cpu.py', *sys.argv[1:]])}",
        f"machine: {cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}; {', '.join(versions)}",
        f"base: {git('log', '-1', '--format=%h %s', base_sha)[:110]}",
        f"new:  {new[:110]} (the work tree)",
        f"simulator: this tree's, own process, zero latency, no faults; HTTP_TRANSPORT each revision's default; "
        f"{args.rounds} rounds (base/new order alternating), {args.pairs} execute/run_llm pairs per worker; "
        f"calls per window {args.calls_c1} at concurrency 1, {args.calls} above; medians",
        "",
    ]


def own_list(side: Results, c: int) -> str:
    return ", ".join(f"{r['own_us']:.0f}" for r in side.by_conc[c])


def round_ratios(base: Results, new: Results, c: int) -> list[float]:
    """new/base own CPU within each round: neighbouring workers, the same machine state."""
    return [n["own_us"] / b["own_us"] for b, n in zip(base.by_conc[c], new.by_conc[c], strict=True)]


def table(base: Results, new: Results, concurrencies: list[int]) -> tuple[list[str], bool]:
    head = (
        "conc",
        "base own us",
        "new own us",
        "ratio new/base",
        "verdict (<= 1.10)",
        "base execute us",
        "new execute us",
        "base run_llm us",
        "new run_llm us",
        "own spread base",
        "own spread new",
    )
    rows: list[tuple[str, ...]] = [head]
    ok = True
    for c in concurrencies:
        ratio = new.median(c, "own_us") / base.median(c, "own_us")
        ok &= ratio <= MAX_GROWTH
        # How many rounds, each compared within itself (neighbouring workers), land on the same side of the target
        # as the medians do: 5/5 is a clear verdict, 3/5 a coin toss the noise could flip.
        agree = sum((r <= MAX_GROWTH) == (ratio <= MAX_GROWTH) for r in round_ratios(base, new, c))
        verdict = f"{'OK' if ratio <= MAX_GROWTH else 'GREW'} ({agree}/{len(base.by_conc[c])} rounds)"
        rows.append(
            (
                str(c),
                f"{base.median(c, 'own_us'):,.0f}",
                f"{new.median(c, 'own_us'):,.0f}",
                f"{ratio:.3f}",
                verdict,
                f"{base.median(c, 'execute_us'):,.0f}",
                f"{new.median(c, 'execute_us'):,.0f}",
                f"{base.median(c, 'run_llm_us'):,.0f}",
                f"{new.median(c, 'run_llm_us'):,.0f}",
                f"{base.spread(c):.0%}",
                f"{new.spread(c):.0%}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out = ["| " + " | ".join(x.rjust(w) for x, w in zip(r, widths, strict=True)) + " |" for r in rows]
    out.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    out.append("")
    for c in concurrencies:
        paired = round_ratios(base, new, c)
        out.append(
            f"concurrency {c}: new/base own CPU per round {', '.join(f'{x:.2f}' for x in paired)} "
            f"(median {statistics.median(paired):.3f}); own us per round base "
            f"{own_list(base, c)}, new {own_list(new, c)}"
        )
    out.append(
        "own = execute CPU/call - run_llm CPU/call in the same worker; spread = (max - min) / median of own "
        "over rounds, the noise between identical runs"
    )
    return out, ok


def parent(args: argparse.Namespace) -> int:
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="own_cpu_")))
        tree, sha = stack.enter_context(base_tree(args.base, args.keep))
        port = stack.enter_context(simulator(scratch))
        base, new = Results("base", tree), Results("new", ROOT)
        lines = header(args, sha)
        before = fingerprint(ROOT)
        for r in range(args.rounds):
            for c in concurrencies:
                # base, new, then new, base: a drift of the machine favours neither revision.
                for side in (base, new) if r % 2 == 0 else (new, base):
                    run_worker(side, port, args, c, scratch)
            print(
                f"round {r + 1}/{args.rounds} done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True
            )
        changed = fingerprint(ROOT) != before
    rows, ok = table(base, new, concurrencies)
    if changed:
        rows.append("WARNING: app/ in the work tree changed during the run, so rounds ran different code: rerun")
    print("\n".join([*lines, f"app: base {base.app_file}, new {new.app_file}", "", *rows]))
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; target (own CPU/call grows <= 10 %): "
        f"{'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="e8a5bd2", help="the base revision (e8a5bd2)")
    parser.add_argument("--rounds", type=int, default=5, help="workers per revision per concurrency (5)")
    parser.add_argument("--concurrency", default="1,50", help="comma-separated (1,50); one value with --worker")
    # Many short windows rather than a few long ones: machine noise comes in bursts longer than a window, so
    # neighbouring execute and run_llm windows see the same state and the burst cancels in their difference.
    parser.add_argument("--calls", type=int, default=150, help="calls per window at concurrency > 1 (150)")
    parser.add_argument("--calls-c1", type=int, default=100, help="calls per window at concurrency 1 (100)")
    parser.add_argument("--pairs", type=int, default=40, help="execute/run_llm window pairs per worker (40)")
    parser.add_argument("--warmup", type=int, default=200, help="unmeasured calls of each kind per worker (200)")
    parser.add_argument("--keep", action="store_true", help="keep the base worktree afterwards")
    parser.add_argument(
        "--one-commit-per-window",
        action="store_true",
        help="the attempt log commits once per window (its flush), not after each linger "
        "(LINGER_SECONDS): takes the commit cadence, which varies with the machine's speed, out "
        "of the comparison",
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = asyncio.run(
            worker(args.port, args.calls, int(args.concurrency), args.pairs, args.warmup, args.one_commit_per_window)
        )
        print(json.dumps(result))
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())

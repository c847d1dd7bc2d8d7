"""The router's own instructions per call on the happy path, this work tree against a base revision. By hand.

    python bench/own_instructions.py                  # this work tree against e8a5bd2 (about 10 minutes)
    python bench/own_instructions.py --base HEAD~3    # another base
    python bench/own_instructions.py --new 5f9fa23    # a committed revision instead of the work tree

`bench/own_cpu.py` measures the same thing in CPU seconds, and on a shared 2-core VM its rounds disagree by
15-50 %: too much to tell a 10 % growth from noise. This script counts machine instructions instead, with
valgrind's callgrind, which gives the same count for the same work whatever else the machine is doing.

"Own" is what `execute_task` (attempt logging on, its writer thread included) costs over the provider layer
alone: a worker process (one per revision and concurrency, run under callgrind with PYTHONHASHSEED=0) makes,
after a warm-up, alternating windows of N `Router.execute("fast", ...)` calls (flushing the attempt log inside
the window) and N bare `run_llm` calls, against one zero-latency simulator in its own process (not counted).
Each window is delimited by a call to `os.getppid()`, and callgrind is told to dump its counters before every
call of that C function (`--dump-before=os_getppid`), so every window's count is exact. Own instructions per
call = median over window pairs of (execute window - run_llm window) / N.

Instructions are not seconds (a cache miss costs many cycles and no extra instruction), so this is the
repeatable half of the picture and own_cpu.py the timed half. Needs valgrind (Debian's package) and a Python
built with its symbols (pyenv's and Debian's are).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from own_cpu import MAX_GROWTH, base_tree, calls_under_test, git, simulator

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = Path(__file__).resolve()
MARKER = "os_getppid"  # the C function behind os.getppid(): nothing else in a worker calls it


async def worker(port: int, calls: int, concurrency: int, pairs: int, warmup: int) -> dict[str, Any]:
    import app

    # The writer commits a batch after lingering LINGER_SECONDS of wall time; valgrind slows a worker many times
    # over, by how much depending on the machine's load, so the number of commits per window (and the instructions)
    # would too. One batch per window (the flush at its end) makes the count the same whatever the load.
    import app.store.attempt_log as attempt_log_module
    from app.providers import get_provider

    attempt_log_module.LINGER_SECONDS = 3600.0  # type: ignore[attr-defined]
    # Likewise the refresh of marks (and overrides) from the database, every MODEL_STATUS_REFRESH_SECONDS of wall
    # time: many times as many per call under valgrind as in a real run, where it is a few calls in thousands.
    # Both revisions read it once, at their first call, here.
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "own_instructions.db"
        execute, provider, log, model = calls_under_test(port, db, model_status_refresh_seconds=3600.0)

        async def window(call: Any, n: int) -> None:
            remaining = iter(range(n))

            async def lane() -> None:
                for _ in remaining:
                    await call()

            await asyncio.gather(*(lane() for _ in range(concurrency)))
            # Under valgrind the writer's first open of a new file (sqlite-utils, the migrations) takes minutes.
            if not log.flush(timeout=900):
                raise RuntimeError("attempt log did not flush")

        first = await execute()
        if first.model_used != model or len(first.attempts) != 1:
            raise RuntimeError(f"not the happy path: {first.model_used}, {len(first.attempts)} attempts")
        for call in (execute, provider):
            await window(call, warmup)
        order: list[str] = []
        for p in range(pairs):
            for name in ("execute", "run_llm") if p % 2 == 0 else ("run_llm", "execute"):
                gc.collect()  # every window starts from the same heap: a full collection lands in none of them
                os.getppid()  # callgrind dumps here: the next part is this window alone
                await window(execute if name == "execute" else provider, calls)
                order.append(name)
        gc.collect()
        os.getppid()
        await get_provider("groq").aclose()  # type: ignore[attr-defined]
    return {"order": order, "app_file": app.__file__}


def parts(prefix: Path) -> list[int]:
    """Instructions of each dumped part, in order (callgrind numbers them .1, .2, ...)."""
    counts = []
    for path in sorted(prefix.parent.glob(prefix.name + ".*"), key=lambda p: int(p.suffix[1:])):
        match = re.search(r"^totals:\s*(\d+)", path.read_text(errors="replace"), re.MULTILINE)
        if match is None:
            raise RuntimeError(f"no totals in {path}")
        counts.append(int(match.group(1)))
    return counts


def run_worker(tree: Path, port: int, args: argparse.Namespace, c: int, scratch: Path) -> dict[str, Any]:
    prefix = scratch / f"cg_{tree.name}_{c}_{time.monotonic_ns()}"
    env = dict(os.environ, PYTHONPATH=str(tree), PYTHONDONTWRITEBYTECODE="1", PYTHONHASHSEED="0")
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--dump-before={MARKER}",
        f"--callgrind-out-file={prefix}",
        sys.executable,
        str(SCRIPT),
        "--worker",
        "--port",
        str(port),
        "--calls",
        str(args.calls),
        "--concurrency",
        str(c),
        "--pairs",
        str(args.pairs),
        "--warmup",
        str(args.warmup),
    ]
    done = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"worker failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(result["app_file"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"worker imported {result['app_file']}, not {tree}'s app")
    counts = parts(prefix)
    # Part 1 runs up to the first marker (start-up, warm-up); then one part per window; the last part runs from
    # the final marker to exit.
    windows = counts[1 : 1 + len(result["order"])]
    execute = [n for n, name in zip(windows, result["order"], strict=True) if name == "execute"]
    run_llm = [n for n, name in zip(windows, result["order"], strict=True) if name == "run_llm"]
    own = [(e - r) / args.calls for e, r in zip(execute, run_llm, strict=True)]
    return {
        "own": statistics.median(own),
        "execute": statistics.median(execute) / args.calls,
        "run_llm": statistics.median(run_llm) / args.calls,
        "own_windows": own,
    }


def parent(args: argparse.Namespace) -> int:
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    started = time.perf_counter()
    lines = [f"command: python bench/own_instructions.py {' '.join(sys.argv[1:])}".rstrip()]
    ok = True
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="own_instr_")))
        tree, sha = stack.enter_context(base_tree(args.base, args.keep))
        new_tree, new_sha = (
            stack.enter_context(base_tree(args.new, args.keep)) if args.new else (ROOT, git("rev-parse", "HEAD"))
        )
        port = stack.enter_context(simulator(scratch))
        dirty = git("status", "--porcelain", "--", "app")
        lines += [
            f"base: {git('log', '-1', '--format=%h %s', sha)[:110]}",
            f"new:  {git('log', '-1', '--format=%h %s', new_sha)[:110]}"
            + (" + uncommitted app/" if dirty and not args.new else ""),
            f"{args.pairs} execute/run_llm window pairs of {args.calls} calls per worker, after {args.warmup} "
            "warm-up calls of each; instructions counted by callgrind, all threads",
            "",
            "| conc | base own instr/call | new own instr/call | ratio new/base | verdict (<= 1.10) | "
            "base execute | new execute | base run_llm | new run_llm | own windows base | own windows new |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|",
        ]
        for c in concurrencies:
            base = run_worker(tree, port, args, c, scratch)
            print(f"conc {c}: base done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
            new = run_worker(new_tree, port, args, c, scratch)
            print(f"conc {c}: new done ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
            ratio = new["own"] / base["own"]
            ok &= ratio <= MAX_GROWTH
            windows = [", ".join(f"{x:,.0f}" for x in side["own_windows"]) for side in (base, new)]
            lines.append(
                f"| {c} | {base['own']:,.0f} | {new['own']:,.0f} | {ratio:.3f} | "
                f"{'OK' if ratio <= MAX_GROWTH else 'GREW'} | {base['execute']:,.0f} | "
                f"{new['execute']:,.0f} | {base['run_llm']:,.0f} | {new['run_llm']:,.0f} | "
                f"{windows[0]} | {windows[1]} |"
            )
    lines.append("")
    lines.append(
        "own = (execute window - run_llm window) / calls, median over pairs; a column of windows shows "
        "how far identical windows disagree"
    )
    print("\n".join(lines))
    print(
        f"\nwall time {time.perf_counter() - started:.0f} s; target (own instructions/call grow <= 10 %): "
        f"{'OK' if ok else 'MISSED'}"
    )
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default="e8a5bd2", help="the base revision (e8a5bd2)")
    parser.add_argument("--new", help="a revision to measure instead of the work tree (checked out like --base)")
    parser.add_argument("--concurrency", default="1,50", help="comma-separated (1,50); one value with --worker")
    parser.add_argument("--calls", type=int, default=100, help="calls per window (100)")
    parser.add_argument("--pairs", type=int, default=4, help="execute/run_llm window pairs per worker (4)")
    parser.add_argument("--warmup", type=int, default=100, help="unmeasured calls of each kind per worker (100)")
    parser.add_argument("--keep", action="store_true", help="keep the base worktree for the next run")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = asyncio.run(worker(args.port, args.calls, int(args.concurrency), args.pairs, args.warmup))
        print(json.dumps(result))
        return 0
    return parent(args)


if __name__ == "__main__":
    sys.exit(main())

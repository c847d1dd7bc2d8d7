"""Cold start: a fresh process making one call, from spawn to its answer, side by side. Run by hand.

    python bench/cold_start.py                  # 15 interleaved rounds (two to three minutes with LiteLLM)
    python bench/cold_start.py --rounds 40 --no-litellm
    python bench/cold_start.py --base aa05b33~3  # + taskrouter at an earlier revision, in the same rounds

What a CLI, a cron job or a serverless function pays on every run. Each contender is a fresh interpreter
(`python -c ...`, from a scratch folder, so no .env is read) that makes one chat call and prints a line when it has
the answer; the figure is the time from just before the spawn to that line ("to answer"), and to the process's exit
("to exit": what a script's caller waits for, the attempt log's last write included):
    bare interpreter   `python -c pass` (to answer = to exit): the floor every contender pays
    bare AsyncGroq     groq.AsyncGroq(max_retries=0), chat.completions.create: the yardstick
    taskrouter         execute_fast_task, on an attempts database that earlier runs created (the usual case)
    taskrouter, new db the same on a database file that does not exist yet (the first run of all: it is created)
    LiteLLM Router     litellm.Router with one model group pointed at the simulator's OpenAI-compatible endpoint,
                       as bench/overhead.py configures it, acompletion
    taskrouter at REV  (--base) the same as "taskrouter", from a worktree of REV (PYTHONPATH): before and after
Rounds are interleaved (every contender once per round, the order reversed every other round, after one warm-up
round that fills the disk cache and compiles bytecode): the machine is noisy. Figures are medians over rounds;
the ratio taskrouter/AsyncGroq is taken within each round, then its median (target <= 1.3).

The deadline check: a fresh process whose first call goes to models that never answer must end that call within
its deadline, the router's build included. Each variant runs --deadline-runs times against a second simulator on
which every model hangs; the child measures from just before its first call to the DeadlineExceededError:
    timeout=1.5 on execute_reasoning_task; LLM_REQUEST_DEADLINE_SECONDS=1.5; timeout=1.5 on execute_task_sync
(with --base, the same at REV, shown and not judged).

Both simulators run in their own process (bench/_common.py), on 127.0.0.1, as in bench/resilience.py: they do not
share the contenders' CPU time slices through a GIL.

LiteLLM is not a dependency of taskrouter: install it into the venv for this run (`.venv/bin/pip install litellm`);
without it its row says it was skipped.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.metadata
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import KEY, cpu_name, simulator  # noqa: E402
from own_cpu import base_tree, git  # noqa: E402

MODEL = "openai/gpt-oss-20b"  # the fast task's first model
TARGET_RATIO = 1.3
DEADLINE = 1.5
DEADLINE_ALLOWANCE = 0.1  # the loop's own wake-up and the exception's way out, on a loaded 2-core machine
ANSWERS = f'[models."{MODEL}"]\nlatency_ms = 0.0\n'
HANGS = "[default]\nfault_rates = { hang = 1.0 }\n"
MESSAGES = '[{"role": "user", "content": "Classify this ticket as billing, bug or question: my invoice is wrong"}]'

BARE_PYTHON = "print('answer', flush=True)"  # `python -c pass`, and the line the parent waits for
ASYNC_GROQ = f"""
import asyncio, os
from groq import AsyncGroq

async def main():
    client = AsyncGroq(api_key=os.environ["GROQ_API_KEY"], base_url=os.environ["GROQ_BASE_URL"], max_retries=0)
    reply = await client.chat.completions.create(model="{MODEL}", messages={MESSAGES}, max_tokens=64)
    print("answer", len(reply.choices[0].message.content), flush=True)

asyncio.run(main())
"""
# What must stay off a first call's path (sqlite-utils loads pandas): the child says which it had loaded.
OFF_THE_PATH = ("sqlite_utils", "pandas", "numpy", "psycopg")
TASKROUTER = f"""
import asyncio, sys
from app import execute_fast_task

async def main():
    reply = await execute_fast_task({MESSAGES}, max_tokens=64)
    loaded = [name for name in {OFF_THE_PATH!r} if name in sys.modules]
    print("answer", len(reply.content), ",".join(loaded) or "-", flush=True)

asyncio.run(main())
"""
LITELLM = f"""
import asyncio, os
import litellm

litellm.telemetry = False
litellm.suppress_debug_info = True
router = litellm.Router(model_list=[{{"model_name": "m0", "litellm_params": {{
    "model": "openai/{MODEL}", "api_base": os.environ["GROQ_BASE_URL"] + "/v1",
    "api_key": os.environ["GROQ_API_KEY"]}}}}], num_retries=0)

async def main():
    reply = await router.acompletion(model="m0", messages={MESSAGES}, max_tokens=64)
    print("answer", len(reply.choices[0].message.content), flush=True)

asyncio.run(main())
"""
# The deadline children: the clock starts before the first call, after `import app` (which loads nothing heavy).
DEADLINE_ASYNC = """
import asyncio, sys, time
from app import execute_reasoning_task
from app.errors import DeadlineExceededError

async def main():
    try:
        await execute_reasoning_task({messages}, {timeout})
    except DeadlineExceededError:
        return "DeadlineExceededError"
    return "answered"

started = time.perf_counter()
outcome = asyncio.run(main())
print("answer", outcome, time.perf_counter() - started, flush=True)
"""
DEADLINE_SYNC = """
import sys, time
from app import execute_task_sync
from app.errors import DeadlineExceededError

started = time.perf_counter()
try:
    execute_task_sync("reasoning", {messages}, timeout={deadline})
    outcome = "answered"
except DeadlineExceededError:
    outcome = "DeadlineExceededError"
print("answer", outcome, time.perf_counter() - started, flush=True)
"""


@dataclass
class Contender:
    name: str
    code: str
    env: dict[str, str] = field(default_factory=dict)
    new_db: bool = False  # a database path that does not exist yet, every run
    tree: Path | None = None  # another revision's work tree, put first on PYTHONPATH
    to_answer: list[float] = field(default_factory=list)
    to_exit: list[float] = field(default_factory=list)
    said: list[str] = field(default_factory=list)  # the answer line, after "answer"


def child_env(base_url: str, extra: dict[str, str]) -> dict[str, str]:
    """Only what a fresh shell would have, plus the contender's settings: none of this process's taskrouter
    settings leak into a child."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    env = {name: os.environ[name] for name in keep if name in os.environ}
    env.update(
        GROQ_API_KEY=KEY,
        GROQ_BASE_URL=base_url,
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        LITELLM_TELEMETRY="False",
        PYTHONDONTWRITEBYTECODE="",
    )
    env.update(extra)
    return env


def spawn(code: str, env: dict[str, str], cwd: str, limit: float = 60.0) -> tuple[float, float, str]:
    """(seconds from spawn to the answer line, to exit, what followed "answer")."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", code], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        answered = time.perf_counter()
        _, err = proc.communicate(timeout=limit)
        exited = time.perf_counter()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    if not line.startswith("answer"):
        raise RuntimeError(f"the child gave no answer (exit {proc.returncode}): {err.strip()[-2000:]}")
    return answered - started, exited - started, line[len("answer") :].strip()


# -- the runs ---------------------------------------------------------------------------------------------------


def contenders(litellm: bool, base: tuple[Path, str] | None) -> tuple[list[Contender], str]:
    found = [
        Contender("bare interpreter", BARE_PYTHON),
        Contender("bare AsyncGroq", ASYNC_GROQ),
        Contender("taskrouter", TASKROUTER),
        Contender("taskrouter, new db", TASKROUTER, new_db=True),
    ]
    if base is not None:
        found.append(Contender(f"taskrouter at {base[1][:7]}", TASKROUTER, tree=base[0]))
    note = ""
    if litellm:
        try:
            version = importlib.metadata.version("litellm")
        except importlib.metadata.PackageNotFoundError:
            note = "LiteLLM Router: skipped (not installed: .venv/bin/pip install litellm)"
        else:
            found.append(Contender(f"LiteLLM Router {version}", LITELLM))
    else:
        note = "LiteLLM Router: skipped (--no-litellm)"
    return found, note


def run_rounds(found: list[Contender], base_url: str, rounds: int, workdir: Path) -> None:
    scratch = str(workdir)
    db = workdir / "attempts.db"
    for r in range(-1, rounds):  # round -1: the warm-up, not recorded
        for c in found if r % 2 == 0 else found[::-1]:
            path = workdir / f"new-{r}-{len(c.to_answer)}.db" if c.new_db else db
            extra = {"ATTEMPTS_DB_PATH": str(path)} | ({"PYTHONPATH": str(c.tree)} if c.tree else {})
            answer, exited, said = spawn(c.code, child_env(base_url, extra), scratch)
            if r >= 0:
                c.to_answer.append(answer)
                c.to_exit.append(exited)
                c.said.append(said)
        if r >= 0:
            print(f"  round {r + 1}/{rounds}", file=sys.stderr, flush=True)


def deadline_checks(base_url: str, runs: int, workdir: Path, tree: Path | None = None, label: str = "") -> list[Check]:
    workdir.mkdir(exist_ok=True)
    messages = '[{"role": "user", "content": "Analyse my sales"}]'
    variants = [
        (
            f"execute_reasoning_task(timeout={DEADLINE:g})",
            DEADLINE_ASYNC.format(messages=messages, timeout=f"timeout={DEADLINE}"),
            {},
        ),
        (
            f"LLM_REQUEST_DEADLINE_SECONDS={DEADLINE:g}",
            DEADLINE_ASYNC.format(messages=messages, timeout=""),
            {"LLM_REQUEST_DEADLINE_SECONDS": str(DEADLINE)},
        ),
        (f"execute_task_sync(timeout={DEADLINE:g})", DEADLINE_SYNC.format(messages=messages, deadline=DEADLINE), {}),
    ]
    results = []
    for name, code, extra in variants:
        elapsed, outcomes = [], []
        for _ in range(runs):
            env = child_env(
                base_url,
                {"ATTEMPTS_DB_PATH": str(workdir / "deadline.db"), **extra}
                | ({"PYTHONPATH": str(tree)} if tree else {}),
            )
            _, _, said = spawn(code, env, str(workdir))
            outcome, seconds = said.split()
            outcomes.append(outcome)
            elapsed.append(float(seconds))
        results.append((name + label, elapsed, outcomes))
    return results


# -- the report -------------------------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:,.0f}"


Check = tuple[str, list[float], list[str]]  # variant, elapsed seconds per run, outcome per run


def report(found: list[Contender], rounds: int, checks: list[Check], base_checks: list[Check], note: str) -> bool:
    by_name = {c.name: c for c in found}
    bare, ours = by_name["bare AsyncGroq"], by_name["taskrouter"]
    print("| contender | to answer, median ms | min | max | to exit, median ms | / bare AsyncGroq (paired median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for c in found:
        ratio = statistics.median(a / b for a, b in zip(c.to_answer, bare.to_answer, strict=True))
        print(
            f"| {c.name} | {ms(c.to_answer)} | {min(c.to_answer) * 1000:,.0f} | {max(c.to_answer) * 1000:,.0f} "
            f"| {ms(c.to_exit)} | {ratio:.2f} |"
        )
    print(f"\n{note}" if note else "")
    for c in (ours, by_name["taskrouter, new db"]):
        loaded = sorted({name for said in c.said for name in said.split()[-1].split(",") if name != "-"})
        print(f"{c.name}: loaded by the answer, of {', '.join(OFF_THE_PATH)}: {', '.join(loaded) or 'none'}")
    ratio = statistics.median(a / b for a, b in zip(ours.to_answer, bare.to_answer, strict=True))
    cold_ok = ratio <= TARGET_RATIO
    print(
        f"\ntaskrouter/bare AsyncGroq, spawn to answer: {ratio:.2f} (paired median over {rounds} rounds; ratio of "
        f"medians {statistics.median(ours.to_answer) / statistics.median(bare.to_answer):.2f}); "
        f"target <= {TARGET_RATIO}: {'OK' if cold_ok else 'MISSED'}"
    )
    limit = DEADLINE + DEADLINE_ALLOWANCE
    print(
        f"\ndeadline check: a fresh process's first call on models that never answer, elapsed from before the call "
        f"(limit {DEADLINE:g} s + {DEADLINE_ALLOWANCE:g} s)\n"
    )
    print("| variant | runs | outcome | median s | max s | within |")
    print("|---|---:|---|---:|---:|---|")
    deadline_ok = True
    for judged, rows in ((True, checks), (False, base_checks)):
        for name, elapsed, outcomes in rows:
            kinds = ", ".join(sorted(set(outcomes)))
            within = max(elapsed) <= limit and kinds == "DeadlineExceededError"
            deadline_ok &= within or not judged
            verdict = ("OK" if within else "MISSED") if judged else ("within" if within else "past") + " (reference)"
            print(
                f"| {name} | {len(elapsed)} | {kinds} | {statistics.median(elapsed):.3f} | {max(elapsed):.3f} "
                f"| {verdict} |"
            )
    print(f"\nall targets met: {'yes' if cold_ok and deadline_ok else 'no'}")
    return cold_ok and deadline_ok


def machine() -> str:
    cpu = cpu_name()
    versions = ", ".join(f"{name} {importlib.metadata.version(name)}" for name in ("groq", "httpx", "aiohttp"))
    return (
        f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}; {versions}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15, help="interleaved rounds (15)")
    parser.add_argument("--deadline-runs", type=int, default=5, help="fresh processes per deadline variant (5)")
    parser.add_argument("--no-litellm", action="store_true", help="leave LiteLLM's Router out")
    parser.add_argument("--base", help="also run taskrouter at this revision (a temporary git worktree)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "log", "-1", "--format=%h"], cwd=ROOT, capture_output=True, text=True).stdout
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(f"command: python bench/cold_start.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"commit: {commit.strip()}{' (app/ has uncommitted changes)' if dirty else ''}")
    print(f"machine: {machine()}\n")
    with contextlib.ExitStack() as stack:
        base = stack.enter_context(base_tree(args.base, keep=False)) if args.base else None
        if base is not None:
            print(f"base: {git('log', '-1', '--format=%h %s', base[1])[:100]}\n")
        found, note = contenders(not args.no_litellm, base)
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        with simulator(ANSWERS, workdir, "answers") as sim:
            run_rounds(found, sim.base_url, args.rounds, workdir)
        with simulator(HANGS, workdir, "hangs") as sim:
            checks = deadline_checks(sim.base_url, args.deadline_runs, workdir)
            base_checks = (
                []
                if base is None
                else deadline_checks(sim.base_url, args.deadline_runs, workdir / "base", base[0], f", at {base[1][:7]}")
            )
    return 0 if report(found, args.rounds, checks, base_checks, note) else 1


if __name__ == "__main__":
    sys.exit(main())

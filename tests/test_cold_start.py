"""A fresh process's first call honours its deadline: building the process-wide router (the imports, the settings,
the attempt log's writer, the provider's SDK and TLS context) happens inside that call, and its deadline counts
from the moment the call was made. Each case is a real fresh interpreter calling the simulator on loopback, where
every model of the chain hangs; the child measures from just before its first call."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap

import pytest
from conftest import TEST_KEY

from app.core import ai_models
from app.simulator import ModelProfile

pytestmark = pytest.mark.slow  # a fresh interpreter per test

DEADLINE = 1.5
# The router's own 50 ms past the deadline (as tests/test_resilience.py allows), and as much again for a loaded
# machine's scheduling delay in a process that is still loading modules on another thread.
ALLOWANCE = 0.1

ASYNC_CALL = """
import asyncio, json, time
from app import execute_reasoning_task
from app.errors import DeadlineExceededError

async def main():
    try:
        await execute_reasoning_task([{"role": "user", "content": "Analyse my sales"}]TIMEOUT)
    except DeadlineExceededError as error:
        return type(error).__name__, error.request_id
    return "answered", None

started = time.perf_counter()  # before the first call: nothing of the router is built yet
outcome, request_id = asyncio.run(main())
print(json.dumps({"outcome": outcome, "elapsed": time.perf_counter() - started, "request_id": request_id}))
"""
SYNC_CALL = """
import json, time
from app import execute_task_sync
from app.errors import DeadlineExceededError

started = time.perf_counter()
try:
    execute_task_sync("reasoning", [{"role": "user", "content": "Analyse my sales"}]TIMEOUT)
    outcome, request_id = "answered", None
except DeadlineExceededError as error:
    outcome, request_id = type(error).__name__, error.request_id
print(json.dumps({"outcome": outcome, "elapsed": time.perf_counter() - started, "request_id": request_id}))
"""


@pytest.mark.parametrize(("code", "how"), [
    (ASYNC_CALL, "timeout="),
    (ASYNC_CALL, "LLM_REQUEST_DEADLINE_SECONDS"),
    (SYNC_CALL, "timeout="),
], ids=["async-timeout", "async-setting", "sync-timeout"])
def test_the_first_call_of_a_fresh_process_honours_a_deadline(sim, tmp_path, code, how):
    chain = [*ai_models.MODEL_REGISTRY["reasoning"], *ai_models.MODEL_REGISTRY["fallback"]]
    for model in chain:
        sim.set_profile(model, ModelProfile(fault_rates={"hang": 1.0}))
    db = tmp_path / "attempts.db"
    env = dict(os.environ, GROQ_API_KEY=TEST_KEY, GROQ_BASE_URL=sim.base_url, ATTEMPTS_DB_PATH=str(db))
    if how == "timeout=":
        code = code.replace("TIMEOUT", f", timeout={DEADLINE}")
    else:
        code, env["LLM_REQUEST_DEADLINE_SECONDS"] = code.replace("TIMEOUT", ""), str(DEADLINE)
    try:
        # run() kills the child should it outlive its timeout: no process is left behind either way.
        done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=60)
        called = {r.model for r in sim.requests}
    finally:
        sim.reset()  # the hanging profiles go: the session's simulator answers again
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["outcome"] == "DeadlineExceededError"
    assert DEADLINE <= report["elapsed"] <= DEADLINE + ALLOWANCE
    assert called and called <= set(chain)  # models were called, and hung
    # The writer opened the store in the background and wrote the call's rows before the process ended.
    with sqlite3.connect(db) as conn:
        kinds = [r[0] for r in conn.execute("SELECT error_kind FROM attempts WHERE request_id = ? ORDER BY id",
                                            (report["request_id"],))]
    assert kinds and kinds[-1] == "deadline"


@pytest.mark.anyio
async def test_the_deadline_counts_from_when_the_caller_began(sim, make_router):
    """`started` is how execute_* hand the router the moment they were called: time spent before begin() (building
    the router) is the request's time."""
    import time

    from app.errors import ConfigError, DeadlineExceededError

    ai_models.MODEL_REGISTRY["solo"] = ["sim/hangs"]
    ai_models.MODEL_REGISTRY["fallback"] = []
    sim.script("sim/hangs", {"fault": "hang", "seconds": 30})
    router = make_router(llm_timeout_seconds=5)
    began = time.perf_counter() - 0.8  # as if a build had taken 0.8 s of a 1 s deadline
    with pytest.raises(DeadlineExceededError, match="deadline of 1s"):
        await router.execute("solo", [{"role": "user", "content": "hi"}], timeout=1.0, started=began)
    assert 1.0 <= time.perf_counter() - began < 1.0 + ALLOWANCE
    for wrong in (time.time(), time.perf_counter() + 60, "now", True):
        with pytest.raises(ConfigError, match=r"started must be time\.perf_counter\(\)"):
            await router.execute("solo", [{"role": "user", "content": "hi"}], started=wrong)

"""A fresh process's first call honours its deadline: building the process-wide router (the imports, the settings,
the attempt log's writer, the provider's SDK and TLS context) happens inside that call, and its deadline counts
from the moment the call was made. Each case is a real fresh interpreter calling the simulator on loopback, where
every model of the chain hangs. Its first call has a deadline of a millisecond, which the build alone spends: no
model may be called. Its second, warm, waits on the hung models until its deadline cuts them."""

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

ASYNC_CALL = """
import asyncio, json
from app import execute_reasoning_task
from app.errors import DeadlineExceededError

async def call(**options):
    try:
        await execute_reasoning_task([{"role": "user", "content": "Analyse my sales"}], **options)
    except DeadlineExceededError as error:
        return {"outcome": type(error).__name__, "message": str(error), "request_id": error.request_id}
    return {"outcome": "answered"}

async def main():
    return [await call(timeout=0.001), await call(TIMEOUT)]

print(json.dumps(asyncio.run(main())))
"""
SYNC_CALL = """
import json
from app import execute_task_sync
from app.errors import DeadlineExceededError

def call(**options):
    try:
        execute_task_sync("reasoning", [{"role": "user", "content": "Analyse my sales"}], **options)
    except DeadlineExceededError as error:
        return {"outcome": type(error).__name__, "message": str(error), "request_id": error.request_id}
    return {"outcome": "answered"}

print(json.dumps([call(timeout=0.001), call(TIMEOUT)]))
"""


@pytest.mark.parametrize(
    ("code", "how"),
    [
        (ASYNC_CALL, "timeout="),
        (ASYNC_CALL, "LLM_REQUEST_DEADLINE_SECONDS"),
        (SYNC_CALL, "timeout="),
    ],
    ids=["async-timeout", "async-setting", "sync-timeout"],
)
def test_the_first_call_of_a_fresh_process_honours_a_deadline(sim, tmp_path, code, how):
    chain = [*ai_models.MODEL_REGISTRY["reasoning"], *ai_models.MODEL_REGISTRY["fallback"]]
    for model in chain:
        sim.set_profile(model, ModelProfile(fault_rates={"hang": 1.0}))
    db = tmp_path / "attempts.db"
    env = dict(os.environ, GROQ_API_KEY=TEST_KEY, GROQ_BASE_URL=sim.base_url, ATTEMPTS_DB_PATH=str(db))
    if how == "timeout=":
        code = code.replace("TIMEOUT", f"timeout={DEADLINE}")
    else:
        code, env["LLM_REQUEST_DEADLINE_SECONDS"] = code.replace("TIMEOUT", ""), str(DEADLINE)
    try:
        # run() kills the child should it outlive its timeout: no process is left behind either way.
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        called = {r.model for r in sim.requests}
    finally:
        sim.reset()  # the hanging profiles go: the session's simulator answers again
    assert done.returncode == 0, done.stderr
    first, report = json.loads(done.stdout.strip().splitlines()[-1])
    # Counted from the call, the millisecond was spent building the router; counted from after the build, a model
    # would have been called with what was left of it.
    assert first["outcome"] == "DeadlineExceededError" and "no provider call was sent" in first["message"]
    assert report["outcome"] == "DeadlineExceededError"
    assert called and called <= set(chain)  # the second call's models were called, and hung
    # The writer opened the store in the background and wrote the call's rows before the process ended.
    with sqlite3.connect(db) as conn:
        kinds = [
            r[0]
            for r in conn.execute(
                "SELECT error_kind FROM attempts WHERE request_id = ? ORDER BY id", (report["request_id"],)
            )
        ]
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
    router = make_router(llm_timeout_seconds=0.3)
    hi = [{"role": "user", "content": "hi"}]
    # As if a build had taken 2 s of a 1 s deadline: nothing is left for a model.
    with pytest.raises(DeadlineExceededError, match=r"deadline of 1s.*no provider call was sent"):
        await router.execute("solo", hi, timeout=1.0, started=time.perf_counter() - 2.0)
    assert sim.calls("sim/hangs") == 0
    # As if it had taken 0.9 s: the model gets the 0.1 s left, under half its 0.3 s timeout, so the deadline cut it
    # ("deadline"); counted from the execute call, it would have had its whole timeout ("timeout").
    with pytest.raises(DeadlineExceededError, match="deadline of 1s") as caught:
        await router.execute("solo", hi, timeout=1.0, started=time.perf_counter() - 0.9)
    assert [(a.model, a.error_kind.value) for a in caught.value.attempts] == [("sim/hangs", "deadline")]
    for wrong in (time.time(), time.perf_counter() + 60, "now", True):
        with pytest.raises(ConfigError, match=r"started must be time\.perf_counter\(\)"):
            await router.execute("solo", [{"role": "user", "content": "hi"}], started=wrong)

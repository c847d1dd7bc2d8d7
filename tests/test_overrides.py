"""Runtime overrides: set from the CLI (another process), picked up by a running router at its next refresh,
logged with their source, expiring, audited; precedence over the environment's FORCE_MODEL and DEFAULT_*."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from conftest import TEST_KEY, USER, logged_rows

from app.core import ai_models
from app.store import open_database
from app.store.overrides import DEFAULT, DISABLE, FORCE, read_active, read_audit, set_override

pytestmark = pytest.mark.anyio
PRIMARY, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]
FAST = ai_models.MODEL_REGISTRY["fast"][0]


def cli(db_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FORCE_MODEL", "DEFAULT_"))}
    return subprocess.run(
        [sys.executable, "-m", "app", *args, "--db", str(db_path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "GROQ_API_KEY": TEST_KEY},
    )


def last(db_path, request_id: str) -> list[tuple]:
    return [
        (r["model"], r["outcome"], r["error_kind"], r["forced"], r["override_source"])
        for r in logged_rows(db_path)
        if r["request_id"] == request_id
    ]


@pytest.mark.slow
async def test_a_force_set_from_another_process_reroutes_a_running_router_and_is_logged(make_router, sim, db_path):
    router = make_router(model_status_refresh_seconds=0)  # every request refreshes: "within the interval"
    first = await router.execute("reasoning", USER)
    assert first.model_used == PRIMARY and last(db_path, first.request_id) == [(PRIMARY, "success", None, 0, None)]

    done = cli(db_path, "override", "force", SECOND, "--ttl", "30m", "--reason", "incident 42")
    assert done.returncode == 0, done.stderr
    assert "override #1: force" in done.stdout and "routers pick it up within" in done.stdout
    forced = await router.execute("reasoning", USER)
    assert forced.model_used == SECOND and [a.model for a in forced.attempts] == [SECOND]
    assert last(db_path, forced.request_id) == [(SECOND, "success", None, 1, "runtime force #1")]
    other_task = await router.execute("fast", USER)  # no --task: every task
    assert other_task.model_used == SECOND

    done = cli(db_path, "override", "clear", "--reason", "resolved")
    assert done.returncode == 0 and done.stdout.startswith("ended 1 override: #1\n  #1 force ")
    back = await router.execute("reasoning", USER)
    assert back.model_used == PRIMARY and last(db_path, back.request_id)[0][3:] == (0, None)
    audit = [(a["action"], a["target"], a["reason"], a["via"]) for a in reversed(read_audit(db_path))]
    assert audit == [("force set", SECOND, "incident 42", "cli"), ("force cleared", SECOND, "resolved", "cli")]
    assert all(a["who"] and "@" in a["who"] for a in read_audit(db_path))


async def test_a_running_router_sees_a_change_only_at_its_next_refresh(make_router, sim, db_path):
    router = make_router(model_status_refresh_seconds=3600)
    await router.execute("reasoning", USER)  # the refresh is done: the next is an hour away
    with open_database(db_path).conn as conn:
        set_override(conn, FORCE, SECOND, reason="test")
    assert (await router.execute("reasoning", USER)).model_used == PRIMARY
    fresh = make_router(model_status_refresh_seconds=3600)  # a process starting now reads it at once
    assert (await fresh.execute("reasoning", USER)).model_used == SECOND


async def test_precedence_task_force_then_force_then_env_then_runtime_default_then_env_default(
    make_router, sim, db_path
):
    conn = open_database(db_path).conn
    router = make_router(model_status_refresh_seconds=0, force_model=FAST)
    assert (await router.execute("reasoning", USER)).model_used == FAST  # FORCE_MODEL alone
    set_override(conn, FORCE, PRIMARY)
    assert (await router.execute("reasoning", USER)).model_used == PRIMARY  # runtime force beats FORCE_MODEL
    set_override(conn, FORCE, SECOND, task="reasoning")
    response = await router.execute("reasoning", USER)
    assert response.model_used == SECOND  # a task's own force beats the every-task one
    assert last(db_path, response.request_id)[0][4] == "runtime force #2"

    plain = make_router(model_status_refresh_seconds=0, default_models={"DEFAULT_REASONING_MODEL": SECOND})
    conn.execute("UPDATE overrides SET cleared_at = '2000-01-01T00:00:00.000Z'")
    conn.commit()
    env_default = await plain.execute("reasoning", USER)
    assert env_default.model_used == SECOND
    assert last(db_path, env_default.request_id)[0][3:] == (0, "DEFAULT_REASONING_MODEL")
    made = set_override(conn, DEFAULT, FAST, task="reasoning")
    runtime_default = await plain.execute("reasoning", USER)
    assert [m for m in (a.model for a in runtime_default.attempts)][:1] == [FAST]
    assert last(db_path, runtime_default.request_id)[0][3:] == (0, f"runtime default #{made.id}")
    conn.close()


async def test_an_expired_override_is_ignored(make_router, sim, db_path):
    with open_database(db_path).conn as conn:
        set_override(conn, FORCE, SECOND, ttl_seconds=5, now_epoch=time.time() - 60)  # ended 55 s ago
    assert read_active(db_path) == []
    assert (await make_router().execute("reasoning", USER)).model_used == PRIMARY


@pytest.mark.slow
async def test_a_disabled_model_is_skipped_until_enabled(make_router, sim, db_path):
    router = make_router(model_status_refresh_seconds=0)
    done = cli(db_path, "model", "disable", PRIMARY, "--reason", "flaky since 03:10")
    assert done.returncode == 0, done.stderr
    skipped = await router.execute("reasoning", USER)
    assert skipped.model_used == SECOND
    rows = last(db_path, skipped.request_id)
    assert rows[0][:3] == (PRIMARY, "skipped", "disabled") and rows[1][:2] == (SECOND, "success")
    assert "flaky since 03:10" in skipped.attempts[0].message
    assert sim.calls(PRIMARY) == 0
    assert cli(db_path, "model", "enable", PRIMARY, "--reason", "fixed upstream").returncode == 0
    assert (await router.execute("reasoning", USER)).model_used == PRIMARY
    assert [a["action"] for a in reversed(read_audit(db_path))] == ["disable set", "disable cleared"]
    assert [o.kind for o in read_active(db_path)] == []


@pytest.mark.slow
def test_the_cli_refuses_unknown_models_tasks_and_durations_and_lists_what_is_in_effect(tmp_path):
    db = tmp_path / "ops.db"
    bad_model = cli(db, "override", "force", "someone/else", "--reason", "test")
    assert bad_model.returncode == 1 and "pass --any-model" in bad_model.stderr
    bad_task = cli(db, "override", "default", "nope", PRIMARY, "--reason", "test")
    assert bad_task.returncode == 1 and "unknown task 'nope'" in bad_task.stderr
    bad_ttl = cli(db, "override", "force", PRIMARY, "--ttl", "soon", "--reason", "test")
    assert bad_ttl.returncode == 1 and "is not a duration" in bad_ttl.stderr
    assert not db.exists() or read_active(db) == []
    assert cli(db, "model", "disable", SECOND, "--reason", "test").returncode == 0
    listed = cli(db, "override", "list")
    assert "precedence: runtime force (task)" in listed.stdout and f"disable {SECOND}" in listed.stdout
    nothing = cli(db, "override", "clear", "--kind", "force", "--reason", "test")
    assert nothing.returncode == 1 and "no active override matches" in nothing.stderr
    assert [o.kind for o in read_active(db)] == [DISABLE]


@pytest.mark.slow
async def test_clearing_a_mark_by_hand_is_audited(make_router, sim, db_path):
    sim.script(PRIMARY, "decommissioned")
    await make_router().execute("reasoning", USER)
    logged_rows(db_path)
    done = cli(db_path, "status", "--clear", PRIMARY, "--reason", "the gateway's error page")
    assert done.returncode == 0, done.stderr
    assert [(a["action"], a["target"], a["reason"], a["via"]) for a in read_audit(db_path)] == [
        ("mark cleared", PRIMARY, "the gateway's error page", "cli")
    ]

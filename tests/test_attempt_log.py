"""The attempt log: schema by migration, every attempt written under load, failures of the disk never fail a call."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from conftest import TEST_KEY, USER, logged_rows

import app
from app.core import ai_models
from app.store import MIGRATIONS, AttemptLog, migrate, open_database

pytestmark = pytest.mark.anyio

ATTEMPT_COLUMNS = {
    "request_id",
    "task_type",
    "model",
    "provider",
    "attempt",
    "outcome",
    "error_kind",
    "status_code",
    "error_message",
    "is_fallback",
    "forced",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "cost_usd",
    "created_at",
}


def test_migrating_a_blank_database_creates_the_documented_schema(tmp_path):
    db = open_database(tmp_path / "blank.db")
    assert set(db["attempts"].columns_dict) >= ATTEMPT_COLUMNS
    assert set(db["model_status"].columns_dict) >= {"model", "status", "detail", "until", "first_seen", "last_seen"}
    assert db["model_status"].pks == ["model"]
    indexed = {tuple(i.columns) for i in db["attempts"].indexes}
    assert {("created_at",), ("model", "created_at"), ("task_type", "created_at")} <= indexed
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = {r["name"] for r in db["_taskrouter_migrations"].rows}
    assert applied == {fn.__name__ for fn in MIGRATIONS}
    assert migrate(db) == []  # running again applies nothing


@pytest.mark.slow
async def test_200_concurrent_calls_log_every_attempt(env, sim, db_path):
    env.setenv("LLM_TIMEOUT_SECONDS", "60")  # 200 requests share one client pool and two cores with the server
    first = ai_models.MODEL_REGISTRY["reasoning"][0]
    sim.script(first, *["server_error"] * 50)  # a quarter of the calls fall back: two rows each
    responses = await asyncio.gather(*(app.execute_reasoning_task(USER) for _ in range(200)))
    expected = sum(len(r.attempts) for r in responses)
    assert expected == 250  # 150 first-try answers + 50 x (failure + fallback)
    rows = logged_rows(db_path)
    assert len(rows) == expected
    assert len({r["request_id"] for r in rows}) == 200
    assert sum(r["outcome"] == "success" for r in rows) == 200


@pytest.mark.slow
def test_every_attempt_is_flushed_at_normal_exit(tmp_path, sim):
    """A separate interpreter that never calls flush(): the atexit hook must write everything."""
    import subprocess
    import sys
    import textwrap

    db = tmp_path / "exit.db"
    script = textwrap.dedent(
        f"""
        import asyncio, app
        app.configure(groq_api_key={TEST_KEY!r}, groq_base_url={sim.base_url!r}, attempts_db_path={str(db)!r})
        async def main():
            await asyncio.gather(*(app.execute_fast_task([{{"role": "user", "content": "hi"}}]) for _ in range(100)))
        asyncio.run(main())
        """
    )
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60, cwd=tmp_path)
    assert logged_rows(db, "SELECT count(*) AS n FROM attempts")[0]["n"] == 100


async def test_a_locked_database_delays_rows_but_never_fails_the_call(env, sim, db_path, caplog):
    await app.execute_fast_task(USER)
    assert len(logged_rows(db_path)) == 1
    blocker = sqlite3.connect(db_path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # nobody else may write, or read through WAL, until it ends
    try:
        resp = await asyncio.wait_for(app.execute_fast_task(USER), timeout=5)
        assert resp.content
    finally:
        blocker.rollback()
        blocker.close()
    rows = logged_rows(db_path)
    assert len(rows) == 2


def test_an_unwritable_database_is_logged_not_raised(tmp_path, caplog):
    (tmp_path / "gone.db").mkdir()  # the path cannot be opened as a database at all
    log = AttemptLog(tmp_path / "gone.db")
    from app.store import AttemptRow, utc_now_iso

    log.record(
        AttemptRow(
            "r", "fast", "m", "groq", 1, "success", None, None, None, False, False, 1, 1, 2, 1.0, None, utc_now_iso()
        )
    )
    assert log.flush(timeout=0.5) is False  # still waiting to be written, not lost, not raised
    assert "attempt log" in caplog.text
    (tmp_path / "gone.db").rmdir()
    assert log.close(timeout=15)


async def test_the_key_is_never_written_anywhere(env, sim, db_path, caplog, capsys):
    import logging

    caplog.set_level(logging.DEBUG)
    sim.script(ai_models.MODEL_REGISTRY["fast"][0], "server_error", "auth")
    await app.execute_fast_task(USER)
    with pytest.raises(app.AuthenticationFailedError) as caught:
        await app.execute_fast_task(USER)
    settings = app.get_router().settings
    assert TEST_KEY not in repr(settings) and TEST_KEY not in str(settings)
    assert TEST_KEY not in str(caught.value) and TEST_KEY not in repr(caught.value.attempts)
    assert TEST_KEY not in caplog.text
    out = capsys.readouterr()
    assert TEST_KEY not in out.out + out.err
    assert get_file_bytes(db_path).find(TEST_KEY.encode()) == -1


def get_file_bytes(db_path):
    logged_rows(db_path)
    data = db_path.read_bytes()
    wal = db_path.with_name(db_path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


async def test_ops_log_lines(env, sim, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="taskrouter")
    first = ai_models.MODEL_REGISTRY["reasoning"][0]
    sim.script(first, "server_error")
    await app.execute_reasoning_task(USER)
    text = caplog.text
    assert f"Attempting task_type=reasoning model={first}" in text
    assert f"Model failure task_type=reasoning model={first} error_kind=server_error status=500" in text
    assert "Success task_type=reasoning model=" in text and "tokens=" in text


def test_read_only_readers_open_paths_with_uri_characters(tmp_path):
    """`?`, `#` and `%` in a path must not be read as the URI's query or fragment (a different, empty file)."""
    from app.deprecations.history import recent_checks
    from app.store import AttemptRow, ModelStatusRow, read_model_status, utc_now_iso
    from app.store.spend import spent_on

    folder = tmp_path / "odd ?mode=rw #1 100%"
    folder.mkdir()
    db = folder / "a.db"
    log = AttemptLog(db)
    now = utc_now_iso()
    log.record(
        AttemptRow("r", "fast", "m", "groq", 1, "success", None, None, None, False, False, 1, 1, 2, 1.0, 0.25, now)
    )
    log.record(ModelStatusRow("m", "deprecated", "gone", None, now))
    assert log.flush(timeout=10)
    assert [r["model"] for r in read_model_status(db)] == ["m"]
    assert spent_on(db, now[:10])[0] == pytest.approx(0.25)
    assert recent_checks(db) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # nothing created beside it


def router_on(path):
    from app.config import load_settings
    from app.core.router import Router

    settings = load_settings(env_file=None, groq_api_key=TEST_KEY, attempts_db_path=path)
    return Router(settings, registry=lambda: {"fast": ["m"], "fallback": []}, catalog=dict)


def test_building_a_router_opens_the_store_before_the_first_call(tmp_path, caplog):
    """Opened under a busy event loop, the open would take seconds (each statement waits for the GIL), and every row
    of those seconds would be only in memory: the writer opens the store as the router is built (in the background:
    the build waits for nothing)."""
    healthy = tmp_path / "ready.db"
    router = router_on(healthy)
    assert router.log is not None and router.log.wait_opened(15)
    with sqlite3.connect(healthy) as conn:  # migrated, before any call or row
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} >= {"attempts", "model_status"}
    assert router.log.problem is None

    (tmp_path / "folder.db").mkdir()  # unusable: the build still succeeds, and the problem is said at once
    broken = router_on(tmp_path / "folder.db")
    assert broken.log is not None and broken.log.wait_opened(15)
    assert broken.log.problem is not None and "folder.db" in broken.log.problem
    assert "attempt log" in caplog.text
    (tmp_path / "folder.db").rmdir()
    for built in (router, broken):
        assert built.log is not None and built.log.close(timeout=15)


def test_the_build_never_waits_for_the_store_and_rows_of_the_meantime_are_written_after_its_open(tmp_path):
    """A router's build is part of a process's first call, inside its deadline: it starts the writer's open and
    goes on. A lock held on the file keeps the open waiting; the build returns all the same, and a row recorded
    meanwhile waits in memory, then is written once the open succeeds."""
    from app.store import AttemptRow, utc_now_iso

    path = tmp_path / "held.db"
    open_database(path).conn.close()  # migrated: the writer's open is the lean one, sqlite3 alone
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # the writer's quick_check and pragmas wait on the busy timeout
    try:
        router = router_on(path)
        assert router.log is not None and not router.log.wait_opened(0.2)  # built, with the open still waiting
        router.log.record(
            AttemptRow(
                "held", "fast", "m", "groq", 1, "success", None, None, None, 0, 0, 1, 1, 2, 1.0, None, utc_now_iso()
            )
        )
    finally:
        blocker.rollback()
        blocker.close()
    assert router.log.wait_opened(15) and router.log.problem is None
    assert [r["request_id"] for r in logged_rows(path)] == ["held"]
    assert router.log.close(timeout=15)


@pytest.mark.slow
def test_a_migrated_file_is_opened_for_rows_without_sqlite_utils(tmp_path):
    """sqlite-utils loads pandas when it is installed: the writer of a process's first call opens a migrated file
    with the sqlite3 module alone, and only a migration due loads it."""
    import subprocess
    import sys
    import textwrap

    path = tmp_path / "old.db"
    open_database(path).conn.close()
    script = textwrap.dedent(f"""
        import sys
        from app.store.database import SqliteDatabase, open_for_rows
        db = open_for_rows({str(path)!r})
        assert isinstance(db, SqliteDatabase), db
        print("sqlite_utils" in sys.modules, "pandas" in sys.modules)
        db = open_for_rows({str(tmp_path / "new.db")!r})  # not migrated yet: sqlite-utils makes the schema
        print("sqlite_utils" in sys.modules)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "True"]
    with sqlite3.connect(tmp_path / "new.db") as conn:
        assert {r[0] for r in conn.execute("SELECT name FROM sqlite_master")} >= {"attempts", "model_status"}

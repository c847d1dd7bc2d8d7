"""Whatever is wrong with the database file, calls answer; nothing recorded is lost at exit; many processes may
open a new file at once. Each test drives the real router against the simulator over loopback."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from conftest import TEST_KEY, USER, until

from app.core import ai_models
from app.simulator import ModelProfile
from app.store import AttemptLog, AttemptRow, diagnose, open_database, spill_path, utc_now_iso

pytestmark = pytest.mark.anyio
FAST = ai_models.MODEL_REGISTRY["fast"][0]
ROOT = Path(__file__).resolve().parents[1]


def store_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "taskrouter.store" and r.levelno >= logging.ERROR]


def rows_in(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM attempts").fetchone()[0])
    except sqlite3.OperationalError:  # created by the writer, not migrated yet
        return 0
    finally:
        conn.close()


def a_row(request_id: str = "r") -> AttemptRow:
    return AttemptRow(
        request_id, "fast", "m", "groq", 1, "success", None, None, None, False, False, 1, 1, 2, 1.0, None, utc_now_iso()
    )


def damage(path: Path) -> None:
    """A real database whose table pages are overwritten with garbage: it opens, and quick_check fails."""
    db = open_database(path)
    # Only the pages the rows took, after every page of the schema: a damaged schema would not open at all.
    (schema_pages,) = db.execute("PRAGMA page_count").fetchone()
    (page,) = db.execute("PRAGMA page_size").fetchone()
    db["attempts"].insert_all([dict(zip(AttemptRow._fields, a_row(f"old{i}"), strict=True)) for i in range(300)])
    db.conn.close()
    data = bytearray(path.read_bytes())
    for start in range(schema_pages * page, len(data) - page, 2 * page):
        data[start + 100 : start + 600] = os.urandom(500)
    path.write_bytes(bytes(data))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA quick_check(1)").fetchone()[0] != "ok"
    finally:
        conn.close()


def make_folder(path: Path) -> None:
    path.mkdir()


def make_parent_a_file(path: Path) -> None:
    path.parent.write_text("not a folder")


def make_garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database\n" * 100)


def undo_folder(path: Path) -> None:
    path.rmdir()


def undo_parent(path: Path) -> None:
    path.parent.unlink()


def move_aside(path: Path) -> None:
    path.rename(path.with_name(path.name + ".bad"))


CASES = {
    "a folder": (make_folder, undo_folder, "folder, not a database file", False),
    "parent is a file": (make_parent_a_file, undo_parent, "is a file, so no database can be created", False),
    "not a database": (make_garbage, move_aside, "not a SQLite database", True),
    "damaged pages": (damage, move_aside, "damaged (SQLite's quick_check", True),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
async def test_calls_answer_whatever_is_wrong_with_the_file_and_no_row_is_lost(
    case, make_router, sim, tmp_path, caplog
):
    breaking, fixing, said, spills = CASES[case]
    path = tmp_path / "sub" / "attempts.db" if case == "parent is a file" else tmp_path / "attempts.db"
    breaking(path)
    before = path.read_bytes() if path.is_file() else None
    router = make_router(attempts_db_path=path)  # nothing opened yet: building the router cannot fail
    for _ in range(3):
        assert (await router.execute("fast", USER)).content
    assert router.log is not None
    if spills:
        assert router.log.flush(timeout=10)  # spilled rows count as settled
    else:  # the rows wait in memory: once the writer has found the file unusable, a flush cannot succeed
        await until(lambda: router.log.problem is not None, "the writer finding the file unusable")
        assert router.log.flush(timeout=0.2) is False
    errors = store_errors(caplog)
    assert len(errors) == 1, errors  # once, not once per batch
    assert str(path) in errors[0] and said in errors[0]
    assert said in (router.log.problem or "") and said in (diagnose(path) or "")
    if before is not None:
        assert path.read_bytes() == before  # a bad file is never written to
    if spills:
        assert len(spill_path(path).read_text().splitlines()) == 3
    fixing(path)
    assert (await router.execute("fast", USER)).content  # the next batch opens the fresh file
    assert router.log.flush(timeout=15)
    assert rows_in(path) == 4  # the three that waited (in memory or in the spill file) and the new one
    assert not spill_path(path).exists()
    assert router.log.problem is None and diagnose(path) is None
    router.log.close()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes to read-only folders anyway")
async def test_a_read_only_folder_is_reported_and_calls_answer(make_router, sim, tmp_path, caplog):
    folder = tmp_path / "ro"
    folder.mkdir(mode=0o500)
    path = folder / "attempts.db"
    router = make_router(attempts_db_path=path)
    assert (await router.execute("fast", USER)).content
    assert router.log is not None and router.log.flush(timeout=1) is False
    assert "no permission" in store_errors(caplog)[0] and str(path) in store_errors(caplog)[0]
    folder.chmod(0o700)
    assert router.log.flush(timeout=15) and rows_in(path) == 1
    router.log.close()


@pytest.mark.slow
def test_status_says_what_is_wrong_with_the_file(tmp_path):
    path = tmp_path / "attempts.db"
    make_garbage(path)
    done = subprocess.run(
        [sys.executable, "-m", "app", "status", "--db", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 1
    assert str(path) in done.stderr and "not a SQLite database" in done.stderr and "Move the damaged" in done.stderr


OPENER = """
import sys
import sqlite_utils  # the migrations' library, loaded before the start: what races is the opening, not imports
from app.store import StoreProblem, open_database
print("ready", flush=True)
for line in sys.stdin:  # a new file's path, given to every interpreter at once
    try:
        open_database(line.strip()).conn.close()
        print("ok", flush=True)
    except StoreProblem as exc:
        print("ERR", exc, flush=True)
"""


@pytest.mark.slow
def test_eight_processes_opening_a_new_file_at_once_all_succeed(tmp_path):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", OPENER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=tmp_path
        )
        for _ in range(8)
    ]
    results = []
    try:
        # Every interpreter started and waiting, however long that took on this machine; then, five times, all
        # of them open the same new file at once.
        assert [p.stdout.readline().strip() for p in procs if p.stdout] == ["ready"] * 8
        for round_ in range(5):
            path = tmp_path / f"new{round_}.db"
            for p in procs:
                assert p.stdin is not None
                p.stdin.write(f"{path}\n")
                p.stdin.flush()
            results += [p.stdout.readline().strip() for p in procs if p.stdout]
            assert rows_in(path) == 0
        for p in procs:
            assert p.stdin is not None
            p.stdin.close()
        assert [p.wait(timeout=60) for p in procs] == [0] * 8
    finally:
        for p in procs:  # after a failure, none is left waiting for a path
            _reap(p)
    assert results == ["ok"] * 40


@pytest.mark.slow
def test_a_lock_held_past_the_exit_deadline_spills_the_rows_and_the_next_process_imports_them(tmp_path, sim):
    path = tmp_path / "attempts.db"
    open_database(path).conn.close()
    blocker = sqlite3.connect(path, timeout=0)
    blocker.execute("BEGIN EXCLUSIVE")  # held through the child's whole life
    script = textwrap.dedent(f"""
        import asyncio, app
        app.configure(groq_api_key={TEST_KEY!r}, groq_base_url={sim.base_url!r}, attempts_db_path={str(path)!r},
                      attempt_log_exit_seconds=1)
        async def main():
            await asyncio.gather(*(app.execute_fast_task([{{"role": "user", "content": "hi"}}]) for _ in range(50)))
        asyncio.run(main())
    """)
    try:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    finally:
        blocker.rollback()
        blocker.close()
    assert done.returncode == 0, done.stderr
    # The exit deadline (1 s) ended the wait while the write still waited on the lock: had the 10 s busy timeout
    # run out first, the line would name the lock instead.
    assert f"50 rows could not be written to {path} at exit (the write did not finish in time)" in done.stderr
    assert str(spill_path(path)) in done.stderr
    assert len(spill_path(path).read_text().splitlines()) == 50
    assert rows_in(path) == 0
    log = AttemptLog(path)  # the next process: its first write imports the spilled rows
    log.record(a_row("next"))
    assert log.flush(timeout=15)
    assert rows_in(path) == 51 and not spill_path(path).exists()
    log.close()


def test_importing_the_same_spilled_rows_twice_adds_nothing(tmp_path):
    """A crash between an import's commit and the file's removal must not log the rows twice."""
    from app.store.spill import import_spilled, spill

    path = tmp_path / "attempts.db"
    rows = [a_row(f"r{i}") for i in range(10)]
    spill(path, rows)
    copy = spill_path(path).read_bytes()
    db = open_database(path)
    assert import_spilled(db, path) == (10, 0)
    spill_path(path).write_bytes(copy + b'{"attempt": ["cut short')  # and a line a crash cut in half
    assert import_spilled(db, path) == (0, 1)
    assert rows_in(path) == 10
    db.conn.close()


def test_the_exit_deadline_is_longer_than_the_busy_timeout():
    from app.config import load_settings
    from app.store.database import BUSY_TIMEOUT_SECONDS

    assert load_settings(env_file=None).attempt_log_exit_seconds > BUSY_TIMEOUT_SECONDS


def _reap(proc: subprocess.Popen[str]) -> None:
    """Kill `proc` if it still runs, wait for it and close its pipes: a test that failed leaves no process."""
    if proc.poll() is None:
        proc.kill()
    proc.wait()
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            pipe.close()


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_stops_taskrouter_run_cleanly_and_its_attempt_is_logged(tmp_path, sim):
    path = tmp_path / "attempts.db"
    sim.script(FAST, {"fault": "hang", "seconds": 30})
    env = {**os.environ, "GROQ_API_KEY": TEST_KEY, "GROQ_BASE_URL": sim.base_url, "ATTEMPTS_DB_PATH": str(path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "run", "fast", "hi"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: sim.calls(FAST) == 1, 30, "the call to reach the simulator")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    finally:
        _reap(proc)
    assert proc.returncode == 143, err
    assert "SIGTERM received" in err
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT model, outcome, error_kind FROM attempts").fetchall()
    finally:
        conn.close()
    assert rows == [(FAST, "failure", "cancelled")]


@pytest.mark.slow
def test_sigterm_stops_the_demo_cleanly_with_every_row_whole(tmp_path):
    path = tmp_path / "demo.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "demo", "--requests", "100000", "--db", str(path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: path.exists() and rows_in(path) > 50, 60, "the demo to log some rows")
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        _reap(proc)
    assert proc.returncode == 143, err
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        # Every request that started has its rows: none stops at a failure without the attempt that followed it
        # or the cancellation that ended it.
        last = conn.execute("""SELECT outcome, error_kind FROM attempts a WHERE id = (SELECT max(id) FROM attempts
                               WHERE request_id = a.request_id)""").fetchall()
    finally:
        conn.close()
    assert last and all(outcome in ("success", "failure", "skipped") for outcome, _ in last)
    assert not spill_path(path).exists()


ASGI_APP = """
import asyncio
import json
import app

async def application(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(app.flush_attempt_log)
                await send({"type": "lifespan.shutdown.complete"})
                return
    response = await app.execute_fast_task([{"role": "user", "content": "hi"}])
    body = json.dumps({"request_id": response.request_id}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_an_asgi_app_under_a_real_server_logs_every_attempt_when_stopped_with_sigterm(tmp_path, sim):
    """uvicorn shuts down gracefully on SIGTERM (requests in flight finish, then the lifespan's shutdown runs),
    then re-raises the signal, so Python's exit hooks never run: the app flushes in its lifespan shutdown, as
    README's "Shutting down" shows."""
    pytest.importorskip("uvicorn")
    path = tmp_path / "attempts.db"
    (tmp_path / "asgi_app.py").write_text(ASGI_APP)
    port = _free_port()
    env = {
        **os.environ,
        "GROQ_API_KEY": TEST_KEY,
        "GROQ_BASE_URL": sim.base_url,
        "ATTEMPTS_DB_PATH": str(path),
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "asgi_app:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def up() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200
            except httpx.HTTPError:
                return server.poll() is not None

        _wait_for(up, 30, "uvicorn to answer")
        sim.set_profile(FAST, ModelProfile(latency_ms=400, latency_sigma=0.0))
        with ThreadPoolExecutor(20) as pool:  # twenty requests in flight when SIGTERM arrives
            pending = [pool.submit(httpx.get, f"http://127.0.0.1:{port}/", timeout=30) for _ in range(20)]
            _wait_for(lambda: sim.calls(FAST) >= 21, 30, "the requests to reach the simulator")
            server.send_signal(signal.SIGTERM)
            ids = {json.loads(f.result().text)["request_id"] for f in pending}  # graceful: each one answers
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _out, err = server.communicate(timeout=30)
        finally:
            _reap(server)
    assert server.returncode in (0, -signal.SIGTERM), err  # uvicorn before 0.29 exited 0, later re-raise
    conn = sqlite3.connect(path)
    try:
        logged = {r[0] for r in conn.execute("SELECT request_id FROM attempts WHERE outcome = 'success'")}
    finally:
        conn.close()
    assert len(ids) == 20 and ids <= logged and len(logged) == 21  # the readiness probe's request too


def _tiny_disk(path: Path) -> bool:
    """A 2 MiB tmpfs at `path` (root only, where mounts are allowed): room for a new database and the -wal file its
    migrations leave, with space to spare as migrations are added, once the ballast is gone. False when it cannot be
    made."""
    path.mkdir()
    if os.geteuid() != 0:
        return False
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(path)], capture_output=True).returncode
        == 0
    )


@pytest.mark.slow
async def test_a_full_disk_is_reported_once_calls_answer_and_rows_wait_until_there_is_room(
    make_router, sim, tmp_path, caplog
):
    disk = tmp_path / "disk"
    if not _tiny_disk(disk):
        pytest.skip("needs root and permission to mount a tmpfs (a disk that can really fill up)")
    try:
        (disk / "ballast").write_bytes(b"\0" * (disk_free(disk) - 4096))  # full before the database exists
        path = disk / "attempts.db"
        router = make_router(attempts_db_path=path)
        for _ in range(3):
            assert (await router.execute("fast", USER)).content
        assert router.log is not None and router.log.flush(timeout=1) is False  # waiting in memory
        errors = store_errors(caplog)
        assert len(errors) == 1 and str(path) in errors[0] and "disk is full" in errors[0], errors
        (disk / "ballast").unlink()
        assert router.log.flush(timeout=15)
        assert rows_in(path) == 3 and router.log.problem is None
        router.log.close()
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def disk_free(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize

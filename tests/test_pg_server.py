"""The throwaway-PostgreSQL harness itself (tests/pg_server.py and the pg_server / pg_url fixtures): a real server
answers, a restart keeps committed data, each database starts empty and apart from the others, and a cluster that
cannot start fails loudly instead of skipping."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pg_server as harness
import psycopg
import pytest
from pg_server import PgNotInstalled, PgRestartUnsupported, PgServer, PgStartError


def user_tables(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").fetchall()
    return [r[0] for r in rows]


def own_cluster_only(server: PgServer) -> None:
    if server.external:
        pytest.skip(f"checks the tests' own cluster; {harness.ENV_URL} points at another server")


def test_a_fresh_database_answers_and_is_empty(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
        assert conn.execute("SELECT current_database()").fetchone()[0] == pg_url.rsplit("/", 1)[1]
    assert user_tables(pg_url) == []


def test_the_session_database_listens_on_tcp_and_on_a_unix_socket(pg_server: PgServer) -> None:
    own_cluster_only(pg_server)
    assert pg_server.url == f"postgresql://postgres@127.0.0.1:{pg_server.port}/{harness.DBNAME}"
    with psycopg.connect(pg_server.url) as conn:
        assert conn.execute("SELECT current_setting('fsync')").fetchone() == ("off",)
    assert (pg_server.socket_dir / f".s.PGSQL.{pg_server.port}").is_socket()
    with psycopg.connect(
        host=str(pg_server.socket_dir), port=pg_server.port, user="postgres", dbname=harness.DBNAME
    ) as conn:
        assert conn.execute("SELECT inet_server_addr()").fetchone() == (None,)  # None: not over TCP


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_restart_keeps_committed_data(pg_server: PgServer, pg_url: str, mode: str) -> None:
    if not pg_server.can_restart:
        pytest.skip(f"{harness.ENV_URL} names a server the tests do not own; it cannot be restarted")
    held = psycopg.connect(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("CREATE TABLE kept (id int PRIMARY KEY, note text)")
        conn.execute("INSERT INTO kept VALUES (1, 'before the restart')")

    pg_server.restart(mode)  # immediate: a crash, then recovery from the WAL

    with pytest.raises(psycopg.OperationalError):
        held.execute("SELECT 1")  # the server really went away
    held.close()
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT id, note FROM kept").fetchall() == [(1, "before the restart")]


def test_two_new_databases_are_isolated(pg_server: PgServer) -> None:
    first, second = pg_server.new_database(), pg_server.new_database()
    assert first != second
    with psycopg.connect(first) as conn:
        conn.execute("CREATE TABLE only_in_first (id int)")
    assert user_tables(first) == ["only_in_first"]
    assert user_tables(second) == []
    with pytest.raises(psycopg.errors.DuplicateDatabase):
        pg_server.new_database(first.rsplit("/", 1)[1])


def test_an_external_server_gives_databases_but_refuses_restarts(pg_server: PgServer) -> None:
    external = PgServer(external_url=pg_server.url)
    url = external.new_database()
    assert user_tables(url) == []
    for action in (external.restart, external.stop, external.start):
        with pytest.raises(PgRestartUnsupported, match=r"cannot .* not the tests' own"):
            action()
    assert issubclass(PgRestartUnsupported, pytest.skip.Exception)  # so a test that needs a restart skips

    external.cleanup()  # drops the databases it made, leaves the server alone

    with psycopg.connect(pg_server.url) as conn:
        names = [r[0] for r in conn.execute("SELECT datname FROM pg_database")]
    assert url.rsplit("/", 1)[1] not in names


@pytest.mark.slow
def test_cleanup_stops_the_server_and_removes_its_dir(pg_server: PgServer) -> None:
    own_cluster_only(pg_server)  # needs the binaries, which the own cluster proves are there
    server = PgServer()
    pid = int((server.datadir / "postmaster.pid").read_text().splitlines()[0])
    assert harness.pid_alive(pid)
    server.cleanup()
    assert not harness.pid_alive(pid)
    assert not server.dir.exists()
    server.cleanup()  # twice is harmless: fixtures and error paths may both call it


@pytest.mark.slow
def test_a_cluster_that_cannot_start_fails_with_its_log(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> None:
    own_cluster_only(pg_server)
    # A temp root of our own, open to the postgres user, to see that the failed cluster's dir is not left behind.
    root = Path(tempfile.mkdtemp(prefix="pg-server-test-"))
    try:
        root.chmod(0o755)
        monkeypatch.setattr(harness.tempfile, "tempdir", str(root))
        monkeypatch.setitem(harness.FAST_SETTINGS, "shared_buffers", "'lots'")
        with pytest.raises(PgStartError, match=r"(?s)pg_ctl start failed.*tail of .*server\.log.*shared_buffers"):
            PgServer()
        assert list(root.iterdir()) == []
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to the postgres user")
def test_a_temp_dir_the_postgres_user_cannot_enter_is_a_clear_error(
    pg_server: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own_cluster_only(pg_server)
    closed = tmp_path / "closed"
    closed.mkdir(mode=0o700)
    monkeypatch.setattr(harness.tempfile, "tempdir", str(closed))
    with pytest.raises(PgStartError, match=r"not reachable by the `postgres` user.*TMPDIR"):
        PgServer()
    assert list(closed.iterdir()) == []


def test_no_postgresql_installed_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(harness.shutil, "which", lambda name: None)
    monkeypatch.setattr(harness.glob, "glob", lambda pattern: [])
    with pytest.raises(PgNotInstalled, match=r"initdb not found.*TASKROUTER_TEST_PG_URL.*\.ci/run"):
        PgServer()


def test_clusters_of_dead_sessions_are_removed_and_live_ones_kept(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(harness.tempfile, "tempdir", str(tmp_path))
    gone = subprocess.Popen(["true"])
    gone.wait()
    for name, owner in (("dead", gone.pid), ("live", os.getpid())):
        (tmp_path / f"{harness.DIR_PREFIX}{name}").mkdir()
        (tmp_path / f"{harness.DIR_PREFIX}{name}" / harness.OWNER_FILE).write_text(str(owner))
    (tmp_path / f"{harness.DIR_PREFIX}new").mkdir()  # no owner yet: another session is creating it
    (tmp_path / f"{harness.DIR_PREFIX}abandoned").mkdir()
    old = time.time() - harness.UNCLAIMED_GRACE_SECONDS - 60
    os.utime(tmp_path / f"{harness.DIR_PREFIX}abandoned", (old, old))

    harness.reap_stale_clusters(Path("/nonexistent/pg_ctl"), None)

    assert sorted(p.name.removeprefix(harness.DIR_PREFIX) for p in tmp_path.iterdir()) == ["live", "new"]

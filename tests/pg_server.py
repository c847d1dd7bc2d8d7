"""A throwaway PostgreSQL cluster for the tests: initdb into a fresh temp dir, a server on 127.0.0.1 (free port) and
on a Unix socket in that dir, one empty database per test. Or, with TASKROUTER_TEST_PG_URL set, an existing server
the tests may create databases on but not restart.

As root, initdb and pg_ctl run as the `postgres` system user: PostgreSQL refuses to run as root."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import pytest

if TYPE_CHECKING:
    from psycopg.sql import Composable

ENV_URL = "TASKROUTER_TEST_PG_URL"
DBNAME = "taskrouter"
RUN_AS = "postgres"
DIR_PREFIX = "taskrouter-pg-"
OWNER_FILE = "owner.pid"  # the test session's pid: a cluster whose session is gone is stale
UNCLAIMED_GRACE_SECONDS = 600

# Durability is traded for speed only where a restart cannot lose data: with fsync off, written WAL sits in the
# OS page cache, which survives the server (even an immediate stop) and is lost only if the machine crashes.
# synchronous_commit stays on because commits still in WAL buffers would vanish with an immediate stop.
FAST_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "jit": "off",
    "shared_buffers": "32MB",
    "max_wal_size": "1GB",
    "checkpoint_timeout": "30min",
    "log_min_messages": "warning",
    "log_checkpoints": "off",
}

_ERROR_HINT = (
    "PostgreSQL is not installed (initdb not found): install Debian's postgresql package or set "
    f"{ENV_URL}; .ci/run installs it"
)


class PgNotInstalled(Exception):
    """No initdb/pg_ctl on PATH nor under /usr/lib/postgresql/*/bin."""


class PgStartError(Exception):
    """The binaries are there but the cluster could not be created or started; the message ends with the log."""


class PgRestartUnsupported(pytest.skip.Exception):
    """Stopping or restarting a server the tests do not own: a test that needs it is skipped, not failed."""


def find_bindir() -> Path:
    """The directory of initdb (and pg_ctl beside it): PATH first, then the newest /usr/lib/postgresql/N/bin."""
    found = shutil.which("initdb")
    if found:
        # Debian's /usr/local/bin links point into the versioned dir, where pg_ctl of the same version lives.
        bindir = Path(os.path.realpath(found)).parent
        if (bindir / "pg_ctl").exists():
            return bindir
    candidates = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    candidates = [d for d in candidates if (d / "pg_ctl").exists() and d.parent.name.isdigit()]
    if not candidates:
        raise PgNotInstalled(_ERROR_HINT)
    return max(candidates, key=lambda d: int(d.parent.name))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no server log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(server log is empty)"


def _with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres"):
        raise ValueError(f"{ENV_URL} must be a postgresql:// URL, not {url!r}")
    return urlunsplit(parts._replace(path="/" + dbname))


def _child_env() -> dict[str, str]:
    # PGDATA, PGPORT & co. from the developer's shell would point pg_ctl and psql elsewhere.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"  # English messages, so a port clash is recognisable in the log
    return env


def _stop_cluster(pg_ctl: Path, datadir: Path, user: pwd.struct_passwd | None, topdir: Path | None) -> None:
    """Stop the postmaster, harder if a clean stop fails, then remove the temp dir. Safe to call twice."""
    pidfile = datadir / "postmaster.pid"
    if pidfile.exists():
        for mode in ("fast", "immediate"):
            done = subprocess.run(
                [str(pg_ctl), "-D", str(datadir), "-m", mode, "-w", "-t", "30", "stop"],
                capture_output=True,
                env=_child_env(),
                cwd=datadir.parent,
                check=False,
                **_as_user(user),
            )
            if done.returncode == 0 or not pidfile.exists():
                break
        else:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pidfile.read_text().splitlines()[0])
                # After a reboot the pid in a stale postmaster.pid may be anybody's: kill only this cluster's.
                if str(datadir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                    os.kill(pid, signal.SIGKILL)
    if topdir is not None:
        shutil.rmtree(topdir, ignore_errors=True)


def _as_user(user: pwd.struct_passwd | None) -> dict:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def pid_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    except (OSError, IndexError):
        return True  # unreadable: assume alive rather than stop a cluster someone may be using
    return state != "Z"  # a zombie has exited; it only awaits its parent


def ram_disk() -> Path | None:
    """/dev/shm when this process can write there (a RAM-backed tmpfs on Linux), else None. A cluster there never
    waits for the disk: creating and dropping a database per test is several times faster than on a loaded
    machine's disk, and nothing of it needs to outlive the session."""
    shm = Path("/dev/shm")
    return shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) else None


def reap_stale_clusters(pg_ctl: Path, user: pwd.struct_passwd | None, parent: Path | None = None) -> None:
    """Stop and remove the clusters of test sessions that died without cleaning up (SIGKILL, a CI timeout), which
    would otherwise run on until reboot. A cluster whose session still runs (another checkout's suite) is left be.
    `parent`: where the clusters are (default: the temp dir)."""
    for topdir in Path(parent or tempfile.gettempdir()).glob(DIR_PREFIX + "*"):
        stale = False
        try:
            stale = not pid_alive(int((topdir / OWNER_FILE).read_text()))
        except (OSError, ValueError):
            # No owner yet: another session may be creating it this instant; one that never got an owner is old.
            with contextlib.suppress(OSError):
                stale = time.time() - topdir.stat().st_mtime > UNCLAIMED_GRACE_SECONDS
        if stale:
            _stop_cluster(pg_ctl, topdir / "data", user, topdir)


class PgServer:
    """A PostgreSQL server for one test session.

    `url` names the session's database; `new_database()` makes another, empty one. On a cluster of its own
    (the default) `stop()`, `start()` and `restart()` work and the port and data survive them; `cleanup()` stops
    the server and deletes everything. With TASKROUTER_TEST_PG_URL, the server is that one and stop/start/restart
    raise PgRestartUnsupported (a pytest skip). `parent`: the directory the cluster's temp dir is made in (default:
    the temp dir)."""

    def __init__(self, external_url: str | None = None, *, parent: Path | None = None) -> None:
        self._created: list[str] = []
        self._counter = 0
        self.token = secrets.token_hex(3)  # tells this session's databases apart on a shared external server
        self.external = external_url is not None
        if external_url is not None:
            self._base_url = external_url
            self.url = external_url
            self.host = urlsplit(external_url).hostname
            self.port = urlsplit(external_url).port or 5432
            self.dir = self.socket_dir = self.datadir = self.log = None
            self._finalizer = None
            return

        self.bindir = find_bindir()
        self.user = self._run_as()
        self.host = "127.0.0.1"
        reap_stale_clusters(self.bindir / "pg_ctl", self.user, parent)
        self.dir = Path(tempfile.mkdtemp(prefix=DIR_PREFIX, dir=parent))
        (self.dir / OWNER_FILE).write_text(str(os.getpid()))
        self.socket_dir = self.dir
        self.datadir = self.dir / "data"
        self.log = self.dir / "server.log"
        self._running = False
        self._finalizer = weakref.finalize(
            self, _stop_cluster, self.bindir / "pg_ctl", self.datadir, self.user, self.dir
        )
        try:
            if self.user is not None:
                os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
                self._check_reachable()
            self._initdb()
            self._start_on_free_port()
            self._base_url = f"postgresql://postgres@{self.host}:{self.port}/postgres"
            self.url = self.new_database(DBNAME)
        except BaseException:
            self.cleanup()
            raise

    @classmethod
    def from_env(cls, *, parent: Path | None = None) -> PgServer:
        return cls(os.environ.get(ENV_URL) or None, parent=parent)

    @property
    def can_restart(self) -> bool:
        return not self.external

    # -- the cluster --------------------------------------------------------------------------------------------

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(RUN_AS)
        except KeyError:
            raise PgStartError(
                f"running as root, and PostgreSQL refuses to run as root, but there is no `{RUN_AS}` system user "
                f"to run it as (Debian's postgresql package creates it); or set {ENV_URL}"
            ) from None

    def _run(self, *args: str, what: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(args),
            capture_output=True,
            text=True,
            env=_child_env(),
            cwd=self.dir,
            check=False,
            **_as_user(self.user),
        )
        if done.returncode != 0:
            raise PgStartError(
                f"{what} failed (exit {done.returncode}): {' '.join(args)}\n{done.stdout}{done.stderr}\n"
                f"--- tail of {self.log} ---\n{_tail(self.log)}"
            )
        return done

    def _check_reachable(self) -> None:
        # A temp dir under a root-only parent (pytest's tmp_path, a TMPDIR in /root) is one the postgres user
        # cannot enter; `test` as that user answers exactly, ACLs included, where reading the modes would guess.
        done = subprocess.run(["test", "-w", str(self.dir)], cwd="/", check=False, **_as_user(self.user))
        if done.returncode != 0:
            raise PgStartError(
                f"the temp dir {self.dir} is not reachable by the `{RUN_AS}` user, which runs the server because "
                f"we are root (a parent directory is closed to it): point TMPDIR at a directory it can enter, "
                f"e.g. /tmp"
            )

    def _initdb(self) -> None:
        self._run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.datadir),
            "--auth=trust",
            "--locale=C",
            "--encoding=UTF8",
            "-U",
            "postgres",
            "--no-sync",
            "--no-instructions",
            what="initdb",
        )

    def _write_settings(self) -> None:
        settings = {
            **FAST_SETTINGS,
            "listen_addresses": "'127.0.0.1'",
            "port": str(self.port),
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        # An include file of our own, rewritten for each port, so postgresql.conf stays initdb's.
        (self.datadir / "taskrouter.conf").write_text("".join(f"{k} = {v}\n" for k, v in settings.items()))
        conf = self.datadir / "postgresql.conf"
        text = conf.read_text()
        if "include 'taskrouter.conf'" not in text:
            conf.write_text(text + "\ninclude 'taskrouter.conf'\n")

    def _start_on_free_port(self, attempts: int = 3) -> None:
        # The port is free when picked but another process may take it before the postmaster binds: pick again.
        for attempt in range(attempts):
            self.port = free_port()
            self._write_settings()
            try:
                self.start()
                return
            except PgStartError:
                if attempt == attempts - 1 or "could not bind" not in _tail(self.log, 200):
                    raise
                self.log.unlink(missing_ok=True)

    def _refuse(self, action: str) -> None:
        if self.external:
            raise PgRestartUnsupported(
                f"cannot {action} the PostgreSQL server at {ENV_URL}: it is not the tests' own; "
                f"unset {ENV_URL} to run this test against a throwaway cluster"
            )

    def start(self) -> None:
        self._refuse("start")
        if self._running:
            return
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "start",
            what="pg_ctl start",
        )
        self._running = True

    def stop(self, mode: str = "fast") -> None:
        """`fast`: a clean shutdown that disconnects clients; `immediate`: a crash (recovery runs at the next
        start)."""
        self._refuse("stop")
        if not self._running:
            return
        self._run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.datadir),
            "-m",
            mode,
            "-w",
            "-t",
            "60",
            "stop",
            what="pg_ctl stop",
        )
        self._running = False

    def restart(self, mode: str = "fast") -> None:
        self._refuse("restart")
        self.stop(mode)
        self.start()

    def cleanup(self) -> None:
        """Stop the server and remove its temp dir (own cluster); drop this session's databases (external)."""
        if self._finalizer is not None:
            self._finalizer()
            self._running = False
            return
        from psycopg import sql

        for name in reversed(self._created):
            # Best effort: a database still in use by a leaked connection is dropped anyway (FORCE), and one that
            # cannot be dropped must not hide the test results.
            with contextlib.suppress(Exception):
                self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self._created.clear()

    # -- databases ----------------------------------------------------------------------------------------------

    def _admin(self, statement: Composable) -> None:
        import psycopg

        with psycopg.connect(self._base_url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(statement)

    def new_database(self, name: str | None = None) -> str:
        """Create an empty database (from template0, so nothing a shared server put in template1) and return its
        URL. Without a name: a unique one. Raises if the name exists."""
        from psycopg import sql

        if name is None:
            name = self.unique_name("")
        if len(name.encode()) > 63:
            raise ValueError(f"database name longer than 63 bytes: {name!r}")
        self._admin(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
        self._created.append(name)
        return _with_dbname(self._base_url, name)

    def drop_database(self, url: str) -> None:
        """Drop a database new_database made, with whatever connection is still open to it (FORCE). Best effort,
        like cleanup(): a server a failed test left stopped keeps it until the session's cleanup."""
        from psycopg import sql

        name = urlsplit(url).path.lstrip("/")
        with contextlib.suppress(Exception):
            self._admin(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            self._created.remove(name)

    def unique_name(self, hint: str) -> str:
        """A database name unique to this session that still says which test it belongs to."""
        self._counter += 1
        slug = re.sub(r"[^a-z0-9]+", "_", hint.lower()).strip("_")
        return f"t_{self.token}_{self._counter}_{slug}"[:63].rstrip("_")

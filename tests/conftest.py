"""One Groq-compatible simulator on 127.0.0.1 for the whole session; each test gets it reset, a fresh database
and a router configured against it. Nothing here patches the SDK or the router."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from pg_server import PgNotInstalled, PgServer, PgStartError, ram_disk

import app
from app.clock import SYSTEM_CLOCK, Clock
from app.config import Settings, load_settings
from app.core import ai_models
from app.core.router import Router
from app.simulator import ModelProfile, Simulator
from app.store import get_attempt_log
from app.store.target import PostgresTarget, Target

TEST_KEY = "gsk_test_0123456789abcdefSECRET"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the PostgreSQL cluster is slow, whichever way it asks for it (the `pg_url` or `pg_server` fixture,
    or a store fixture's "postgres" parameter): the fast run (`-m "not slow"`) leaves the cluster out, as the README
    says. The full run has both backends."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        on_postgres = "postgres" in (callspec.params.values() if callspec is not None else ())
        if on_postgres or {"pg_url", "pg_server"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", autouse=True)
def _streamlit_scans_installed_packages_once() -> Iterator[None]:
    """Each new AppTest has Streamlit read the metadata of every installed distribution, looking for components:
    most of a dashboard test's time. What is installed does not change during a run, so the first scan's answer
    serves them all. Streamlit is not imported for a run without dashboard tests."""
    if "streamlit.testing.v1" not in sys.modules:
        yield
        return
    from streamlit.components.v2 import manifest_scanner

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            manifest_scanner, "scan_component_manifests", functools.cache(manifest_scanner.scan_component_manifests)
        )
        yield


@pytest.fixture(scope="session")
def simulator() -> Iterator[Simulator]:
    # Any model answers unless a test scripts or profiles it otherwise.
    with Simulator(api_key=TEST_KEY, default_profile=ModelProfile(), seed=0) as sim:
        yield sim


@pytest.fixture
def sim(simulator: Simulator) -> Simulator:
    simulator.reset()
    return simulator


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "attempts.db"


_SETTING_NAMES = frozenset(name.upper() for name in Settings.model_fields)


def is_setting(name: str) -> bool:
    """Whether an environment variable configures taskrouter: every Settings field and DEFAULT_<TASK>_MODEL."""
    return name.upper() in _SETTING_NAMES or name.upper().startswith(("GROQ_", "DEFAULT_"))


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's .env, real key or registry edits made by another test."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if is_setting(name):
            monkeypatch.delenv(name)
    # Tests edit copies; monkeypatch puts the shipped tables back afterwards.
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {k: list(v) for k, v in ai_models.MODEL_REGISTRY.items()})
    monkeypatch.setattr(ai_models, "MODEL_CATALOG", dict(ai_models.MODEL_CATALOG))
    app.reset()
    yield
    app.reset()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, sim: Simulator, db_path: Path) -> pytest.MonkeyPatch:
    """Point the process-wide router (execute_task & co.) at the simulator through real environment variables."""
    monkeypatch.setenv("GROQ_API_KEY", TEST_KEY)
    monkeypatch.setenv("GROQ_BASE_URL", sim.base_url)
    monkeypatch.setenv("ATTEMPTS_DB_PATH", str(db_path))
    monkeypatch.setenv("LLM_TIMEOUT_SECONDS", "2")
    return monkeypatch


@pytest.fixture
def make_router(sim: Simulator, db_path: Path) -> Callable[..., Router]:
    """A router on the simulator; keyword arguments are settings, `clock=` a test's clock (app.testing.FakeClock's)."""

    def make(*, clock: Clock = SYSTEM_CLOCK, **overrides: Any) -> Router:
        settings = load_settings(
            env_file=None,
            **{
                "groq_api_key": TEST_KEY,
                "groq_base_url": sim.base_url,
                "attempts_db_path": db_path,
                "llm_timeout_seconds": 2,
                **overrides,
            },
        )
        return Router(
            settings, registry=lambda: ai_models.MODEL_REGISTRY, catalog=lambda: ai_models.MODEL_CATALOG, clock=clock
        )

    return make


def logged_rows(db_path: Path, sql: str = "SELECT * FROM attempts ORDER BY id", *params: Any) -> list[dict]:
    """Flush the writer, then read what really reached the file (none: the writer never opened it)."""
    assert get_attempt_log(db_path).flush(timeout=30), "attempt log did not flush"
    if not db_path.exists():
        return []
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


USER = [{"role": "user", "content": "Analyse my sales"}]


async def until(happened: Callable[[], bool], what: str, *, within: float = 10.0) -> None:
    """Yield to the event loop until `happened()` holds: an async test waits for the event it needs, never for a
    guess at how long it takes. `within` only ends a test whose event never comes."""
    try:
        async with asyncio.timeout(within):
            while not happened():
                await asyncio.sleep(0.005)
    except TimeoutError:
        pytest.fail(f"{what} did not happen within {within:g} s", pytrace=False)


def count_rows(path: Path, where: str = "1", *params: object) -> int:
    """Attempt rows of a SQLite file matching `where`."""
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT COUNT(*) FROM attempts WHERE {where}", params).fetchone()[0]
    finally:
        conn.close()


def load_bench(name: str) -> ModuleType:
    """bench/<name>.py as a module (bench/ is not a package)."""
    path = Path(__file__).resolve().parents[1] / "bench" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{name}", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The PostgreSQL run of each dashboard test is slow: page renders on a second backend, which the store's own tests
# and tests/test_dashboard_postgres.py keep in the fast run.
@pytest.fixture
def served() -> Iterator[Callable[..., Any]]:
    """`served(app)`: the ASGI app under a real uvicorn on 127.0.0.1 (tests/gateway_server.py's `Served`), stopped
    with its clients after the test."""
    from gateway_server import Served  # here, not at the top: uvicorn and openai only for the tests that serve

    started: list[Served] = []

    def start(app: Any, **options: Any) -> Served:
        started.append(Served(app, **options))
        return started[-1]

    yield start
    for one in started:
        one.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def dashboard_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A store no one has opened yet, once of each kind: a SQLite file's path, a new PostgreSQL database. The
    dashboard tests that take it (or `seeded`) run on both and assert the same values."""
    if request.param == "sqlite":
        yield tmp_path / "ops.db"
        return
    yield PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db")
    from app.store.postgres.reader import close_readers

    close_readers()  # the dashboard's reads of marks, overrides and spend keep a connection per database


@pytest.fixture
def seeded(dashboard_store: Target, monkeypatch: pytest.MonkeyPatch) -> Target:
    """The dashboard tests' store (tests/test_dashboard.py `seed_database`), the dashboard pointed at it and the
    registry it was seeded for. Here, so that every dashboard test module can ask for it by name."""
    from stores import dashboard_db
    from test_dashboard import REGISTRY, seed_database

    seed_database(dashboard_store)
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", dashboard_db(dashboard_store))
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {k: list(v) for k, v in REGISTRY.items()})
    return dashboard_store


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL cluster for the session (tests/pg_server.py), or the server TASKROUTER_TEST_PG_URL
    names. Not installed: the test skips, saying so. Installed but not starting: the test fails with the server log,
    since a broken cluster must not look like a passing suite."""
    problem = None
    try:
        server = PgServer.from_env(parent=ram_disk())
    except PgNotInstalled as exc:
        pytest.skip(str(exc))
    except PgStartError as exc:
        problem = str(exc)  # failed outside the except block, so the report is the log, not a chained traceback
    if problem is not None:
        pytest.fail(f"PostgreSQL is installed but the test cluster did not start: {problem}", pytrace=False)
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def pg_url(pg_server: PgServer, request: pytest.FixtureRequest) -> Iterator[str]:
    """The URL of a new, empty database for this test alone (tens of milliseconds: cloned from template0). After
    the test, this process's writers, readers and change-feed watches of PostgreSQL stores are closed: no thread
    of one test outlives it. Then the database is dropped: a session's hundreds of databases would otherwise sit
    on disk until the session's end, and removing them all at once is slow."""
    if pg_server.can_restart:
        pg_server.start()  # a no-op, unless an earlier test stopped the server and failed before starting it again
    url = pg_server.new_database(pg_server.unique_name(request.node.name))
    yield url
    from app.store import attempt_log
    from app.store.postgres.reader import close_readers
    from app.store.postgres.watch import stop_all_watches

    for key, log in list(attempt_log._LOGS.items()):
        if isinstance(key, str):  # a PostgreSQL store's writer (SQLite's are keyed by path)
            log.close(timeout=5)
            attempt_log._LOGS.pop(key, None)
    stop_all_watches()
    close_readers()
    pg_server.drop_database(url)

"""What only a PostgreSQL store brings to the dashboard (every other dashboard test runs on both stores): a URL's
password, never printed by `taskrouter dashboard` nor shown by a page, whatever state the server is in; a database
no router has migrated; request ids looked up by their start in byte order whatever the database's collation."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql
from stores import insert_attempts
from test_dashboard import REGISTRY, SMALL, _row, read, run_page, seed_database, texts

from app.core import ai_models
from app.store import open_database
from app.store.target import PostgresTarget
from dashboard import queries

PASSWORD = "pg-hunter2-SECRET"  # the test server trusts every login, so a URL may carry any password
PAGES = ("Overview", "Models", "Tasks", "Deprecations", "Failures", "Request")


def with_password(url: str) -> str:
    parts = urlsplit(url)
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{user}:{PASSWORD}@{host}"))


def everything_shown(at: object) -> str:
    """`texts` and the sidebar's caption, where the page names its store."""
    return texts(at) + "\n".join(c.value for c in at.sidebar.caption)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_the_pages_name_the_store_without_its_password(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = with_password(pg_url)
    seed_database(PostgresTarget(url))
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", url)
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {k: list(v) for k, v in REGISTRY.items()})
    for page in PAGES:
        at = run_page(page, range="All time")
        shown = everything_shown(at)
        assert PASSWORD not in shown, page
        assert read(at.sidebar.caption[-1].value) == f"Database (read-only): {PostgresTarget(url).label}"
        assert ":***@" in read(at.sidebar.caption[-1].value)


@pytest.mark.slow
def test_a_database_no_router_has_migrated_shows_the_empty_state(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = with_password(pg_url)
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", url)
    at = run_page("Overview")
    assert read(at.info[0].value) == (
        f"No attempts table (not a taskrouter database, or never used) in {PostgresTarget(url).label}"
    )
    assert "taskrouter demo" in [c.value for c in at.code]
    assert PASSWORD not in everything_shown(at)
    with contextlib.closing(psycopg.connect(pg_url)) as conn:  # read-only: no table was created
        assert conn.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)


def test_a_migrated_database_without_attempts_says_so(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    open_database(PostgresTarget(pg_url)).conn.close()
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", with_password(pg_url))
    at = run_page("Models")
    assert at.info[0].value.startswith("No attempts recorded yet in")
    assert not at.dataframe and PASSWORD not in everything_shown(at)


def test_an_unreachable_server_is_named_without_its_password(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"postgresql://ops:{PASSWORD}@127.0.0.1:1/taskrouter"  # nothing listens on port 1
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", url)
    at = run_page("Overview")
    shown = read(at.error[0].value)
    assert shown.startswith(
        "The attempts database cannot be read: postgresql://ops:***@127.0.0.1:1/taskrouter: "
        "the server cannot be reached"
    )
    assert PASSWORD not in everything_shown(at)
    assert not at.dataframe


# -- the command ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("given", ["ATTEMPTS_DB_URL", "--db"])
def test_the_command_hands_the_url_to_streamlit_in_its_environment_and_prints_no_password(
    given: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    url = f"postgresql://ops:{PASSWORD}@db.internal:5432/taskrouter"
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append((exe, argv, env)))
    monkeypatch.setenv("ATTEMPTS_DB_PATH", "router.db")  # a URL wins over it
    if given == "--db":
        assert main(["dashboard", "--db", url]) == 0
    else:
        monkeypatch.setenv("ATTEMPTS_DB_URL", url)
        assert main(["dashboard"]) == 0
    ((_, argv, env),) = calls
    assert env["TASKROUTER_DASHBOARD_DB"] == url
    assert not any(PASSWORD in arg for arg in argv)  # a command line is readable by every user of the machine
    printed = capsys.readouterr()
    assert "(database: postgresql://ops:***@db.internal:5432/taskrouter, read-only" in printed.out
    assert PASSWORD not in printed.out + printed.err


# -- request ids by their start ------------------------------------------------------------------------------


@pytest.fixture
def linguistic_store(pg_url: str) -> Iterator[PostgresTarget]:
    """A database whose collation is a language's (ICU en-US), as many servers' default is: it orders 'Req1x'
    between 'req1' and 'req10' and ignores case at first, where SQLite and the "C" collation compare bytes."""
    name = f"icu_{secrets.token_hex(8)}"
    create = sql.SQL("CREATE DATABASE {} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'")
    with contextlib.closing(psycopg.connect(pg_url, autocommit=True)) as admin:
        admin.execute(create.format(sql.Identifier(name)))
    target = PostgresTarget(urlunsplit(urlsplit(pg_url)._replace(path=f"/{name}")), Path("unused.db"))
    yield target
    from app.store.postgres.reader import close_readers

    close_readers()
    with contextlib.closing(psycopg.connect(pg_url, autocommit=True)) as admin:
        admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def test_the_start_of_an_id_finds_exactly_the_ids_that_start_with_it_through_an_index(
    linguistic_store: PostgresTarget,
) -> None:
    ids = ["req1", "Req1x", "req10", "req1é", "req-1", "req2", "REQ1"]
    now = datetime.now(UTC)
    insert_attempts(linguistic_store, [_row(i, "fast", SMALL, 1, "success", now, latency=1) for i in ids])
    conn = queries.connect(linguistic_store)
    assert conn is not None
    try:
        assert queries.request_ids_starting(conn, "req1") == ["req1", "req10", "req1é"]  # byte order, as SQLite
        assert queries.request_ids_starting(conn, "R") == ["REQ1", "Req1x"]
        # The same range in the database's collation: ids in another case too, since it compares case last.
        linguistic = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT request_id FROM attempts WHERE request_id >= ? AND request_id < ? ORDER BY 1",
                ("req1", "req1\U0010ffff"),
            )
        ]
        assert linguistic == ["req1", "REQ1", "req10", "req1é", "Req1x"]
        conn.execute("SET enable_seqscan = off")  # a tiny table is cheapest to scan: ask whether an index serves
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                'EXPLAIN SELECT DISTINCT request_id COLLATE "C" FROM attempts WHERE request_id COLLATE "C" >= ? '
                'AND request_id COLLATE "C" < ? ORDER BY 1 LIMIT 20',
                ("req1", "req1\U0010ffff"),
            )
        )
        assert "Seq Scan" not in plan and "request_id_idx" in plan, plan
    finally:
        conn.close()

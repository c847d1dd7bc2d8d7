"""API keys in front of `taskrouter serve` (app/gateway/auth.py, app/store/api_keys.py, `taskrouter keys`): a real
uvicorn server on 127.0.0.1 with keys required, in front of a router on the simulator, driven by the official
`openai` SDK. A key admits its requests and names their rows; no key, an unknown, revoked or expired one is a 401,
a task the key may not use a 403, its daily budget spent a 429; the key itself is never logged, stored or echoed."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import openai
import pytest
from conftest import USER, logged_rows
from fastapi import Depends
from gateway_server import Served, serve_command

from app.cli import main
from app.core import ai_models
from app.core.router import Router
from app.gateway import create_app
from app.gateway.auth import NO_AUTH, Keys, admin_name
from app.simulator import Simulator
from app.store import AttemptRow, open_database
from app.store.api_keys import create_api_key, revoke_api_key
from app.store.database import write_batch
from app.store.overrides import read_audit
from app.testing import FakeClock


class KeyedGateway:
    """A gateway that asks for keys (or not), served (tests/gateway_server.py), with a route behind the admin
    dependency the management API's writes use."""

    def __init__(self, router: Router, served: Callable[..., Served], *, require_keys: bool = True) -> None:
        self.router = router
        app = create_app(router.settings, router=router, require_keys=require_keys)

        @app.get("/test/admin")
        async def admin_only(name: str = Depends(admin_name)) -> dict[str, str]:
            return {"name": name}

        self.served = served(app, name="keyed-gateway-under-test")
        self.url = self.served.url

    def client(self, key: str) -> openai.OpenAI:
        return self.served.openai(key)


@pytest.fixture
def fake() -> FakeClock:
    """Today's real time, moved by hand: the keys' cache and spend re-reads follow it, and the budget's day is the
    day the rows are written on."""
    return FakeClock(start=time.time())


@pytest.fixture
def serve(
    make_router: Callable[..., Router], fake: FakeClock, served: Callable[..., Served]
) -> Callable[..., KeyedGateway]:
    def start(*, require_keys: bool = True, **settings: object) -> KeyedGateway:
        return KeyedGateway(make_router(clock=fake.clock, **settings), served, require_keys=require_keys)

    return start


@pytest.fixture
def gateway(serve: Callable[..., KeyedGateway]) -> KeyedGateway:
    return serve()


def new_key(db_path: Path, name: str, **options: object) -> str:
    db = open_database(db_path)
    try:
        return create_api_key(db.conn, name, by="ops@host", **options)  # type: ignore[arg-type]
    finally:
        db.conn.close()


def revoke(db_path: Path, name: str) -> None:
    db = open_database(db_path)
    try:
        assert revoke_api_key(db.conn, name, reason="left the team", by="ops@host")
    finally:
        db.conn.close()


def test_a_key_admits_its_requests_and_names_their_rows(gateway: KeyedGateway, db_path: Path) -> None:
    key = new_key(db_path, "Billing-Agent")
    client = gateway.client(key)
    completion = client.chat.completions.create(model="fast", messages=USER)
    assert completion.model == ai_models.MODEL_REGISTRY["fast"][0]
    chunks = list(client.chat.completions.create(model="fast", messages=USER, stream=True))
    assert chunks[-1].choices[0].finish_reason is not None
    rows = logged_rows(db_path)
    assert [(r["outcome"], r["key_name"]) for r in rows] == [("success", "billing-agent")] * 2
    assert [m.id for m in client.models.list()] == list(ai_models.MODEL_REGISTRY)


def test_no_key_or_an_unknown_one_is_a_401_that_never_echoes_the_key(gateway: KeyedGateway, db_path: Path) -> None:
    new_key(db_path, "real")
    bad = "tr-not-a-key-of-this-store-0123456789"
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.client(bad).chat.completions.create(model="fast", messages=USER)
    assert (caught.value.status_code, caught.value.code) == (401, "invalid_api_key")
    assert bad not in caught.value.response.text and "not valid" in caught.value.message
    for headers in (
        {},
        {"authorization": "Basic dXNlcjpwdw=="},
        {"authorization": "Bearer"},
        {"authorization": "Bearer sk-x"},
    ):
        reply = httpx.post(
            f"{gateway.url}/v1/chat/completions", json={"model": "fast", "messages": USER}, headers=headers
        )
        assert (reply.status_code, reply.json()["error"]["code"]) == (401, "invalid_api_key")
        assert "Authorization: Bearer" in reply.json()["error"]["message"]  # says what to send
    assert httpx.get(f"{gateway.url}/v1/models").status_code == 401
    assert httpx.get(f"{gateway.url}/healthz").status_code == 200  # a load balancer's probe needs no key
    assert logged_rows(db_path) == []  # nothing was routed


def test_a_revoked_key_stops_working_in_every_worker_within_the_cache_time(
    serve: Callable[..., KeyedGateway], fake: FakeClock, db_path: Path
) -> None:
    workers = [serve(), serve()]  # two applications on one store, as two processes of `serve --workers 2`
    key = new_key(db_path, "agent")
    for worker in workers:
        worker.client(key).chat.completions.create(model="fast", messages=USER)
    revoke(db_path, "agent")
    fake.advance(Keys.CACHE_SECONDS)
    for worker in workers:
        with pytest.raises(openai.AuthenticationError) as caught:
            worker.client(key).chat.completions.create(model="fast", messages=USER)
        assert "'agent' was revoked" in caught.value.message
    assert len(logged_rows(db_path)) == 2


def test_while_the_store_cannot_be_read_a_key_read_before_still_works_and_others_wait(
    gateway: KeyedGateway, fake: FakeClock, db_path: Path
) -> None:
    known, unseen = new_key(db_path, "known"), new_key(db_path, "unseen")
    gateway.client(known).chat.completions.create(model="fast", messages=USER)
    away = db_path.with_name("away.db")
    db_path.rename(away)  # the file gone: nothing can be read from it (the writer keeps its open connection)
    try:
        fake.advance(Keys.CACHE_SECONDS)
        assert gateway.client(known).chat.completions.create(model="fast", messages=USER).choices
        with pytest.raises(openai.InternalServerError) as caught:
            gateway.client(unseen).chat.completions.create(model="fast", messages=USER)
        assert (caught.value.status_code, caught.value.code) == (503, "key_store_unavailable")
    finally:
        away.rename(db_path)
    assert gateway.client(unseen).chat.completions.create(model="fast", messages=USER).choices


def test_an_expired_key_is_a_401(gateway: KeyedGateway, fake: FakeClock, db_path: Path) -> None:
    key = new_key(db_path, "temp", expires_at="2001-01-01T00:00:00.000Z")
    with pytest.raises(openai.AuthenticationError) as caught:
        gateway.client(key).chat.completions.create(model="fast", messages=USER)
    assert "expired at 2001-01-01T00:00:00.000Z" in caught.value.message


def test_a_task_the_key_may_not_use_is_a_403(gateway: KeyedGateway, sim: Simulator, db_path: Path) -> None:
    key = new_key(db_path, "writer-only", tasks=("summarization",))
    client = gateway.client(key)
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client.chat.completions.create(model="fast", messages=USER)
    assert (caught.value.status_code, caught.value.code) == (403, "model_not_allowed")
    assert "may not use the task 'fast': it may use summarization" in caught.value.message
    assert sim.requests == []
    assert client.chat.completions.create(model="summarization", messages=USER).choices
    assert [m.id for m in client.models.list()] == ["summarization"]  # only what it may name


def test_a_keys_daily_budget_spent_is_a_429_beside_the_global_one(
    gateway: KeyedGateway, sim: Simulator, db_path: Path
) -> None:
    key = new_key(db_path, "small", daily_budget_usd=0.0000001)
    other = new_key(db_path, "other")
    client = gateway.client(key)
    client.chat.completions.create(model="fast", messages=USER)  # spends it
    calls = len(sim.requests)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="fast", messages=USER)
    assert (caught.value.status_code, caught.value.code) == (429, "budget_exceeded")
    assert "'small' has spent its daily budget" in caught.value.message
    assert len(sim.requests) == calls  # refused before any provider call
    assert gateway.client(other).chat.completions.create(model="fast", messages=USER).choices  # its own budget


def test_a_streamed_answer_counts_against_the_keys_budget_at_once(gateway: KeyedGateway, db_path: Path) -> None:
    client = gateway.client(new_key(db_path, "streamer", daily_budget_usd=0.0000001))
    assert list(client.chat.completions.create(model="fast", messages=USER, stream=True))  # spends it
    with pytest.raises(openai.RateLimitError) as caught:  # before the store's rows are read again
        list(client.chat.completions.create(model="fast", messages=USER, stream=True))
    assert caught.value.code == "budget_exceeded"


def test_a_keys_spend_is_read_from_the_store_so_workers_act_as_one(
    gateway: KeyedGateway, fake: FakeClock, sim: Simulator, db_path: Path
) -> None:
    key = new_key(db_path, "shared", daily_budget_usd=0.01)
    client = gateway.client(key)
    client.chat.completions.create(model="fast", messages=USER)  # its spend read: nothing yet
    db = open_database(db_path)  # another worker's answer for the same key, as its writer logs it
    try:
        write_batch(db, [_row(key_name="shared", cost_usd=0.02), _row(key_name="someone-else", cost_usd=5.0)])
    finally:
        db.conn.close()
    fake.advance(Keys.SPEND_SECONDS)
    calls = len(sim.requests)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="fast", messages=USER)
    assert "$0.020" in caught.value.message and "of $0.010000 today" in caught.value.message
    assert len(sim.requests) == calls


def _row(*, key_name: str, cost_usd: float) -> AttemptRow:
    return AttemptRow(
        "req-elsewhere", "fast", "m", "groq", 1, "success", None, 200, None, 0, 0, 1, 1, 2, 1.0, cost_usd,
        time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), key_name=key_name,
    )  # fmt: skip


def test_the_admin_dependency_admits_admin_keys_only(gateway: KeyedGateway, db_path: Path) -> None:
    admin = new_key(db_path, "root", admin=True)
    plain = new_key(db_path, "plain")
    url = f"{gateway.url}/test/admin"
    assert httpx.get(url, headers={"authorization": f"Bearer {admin}"}).json() == {"name": "root"}
    refused = httpx.get(url, headers={"authorization": f"Bearer {plain}"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "admin_key_required")
    missing = httpx.get(url)
    assert (missing.status_code, missing.json()["error"]["code"]) == (401, "invalid_api_key")


def test_without_keys_the_caller_is_no_auth(serve: Callable[..., KeyedGateway], db_path: Path) -> None:
    gateway = serve(require_keys=False)
    assert httpx.get(f"{gateway.url}/test/admin").json() == {"name": NO_AUTH}
    assert gateway.client("anything").chat.completions.create(model="fast", messages=USER).choices
    assert [r["key_name"] for r in logged_rows(db_path)] == [None]


def test_the_key_is_never_in_a_log_a_row_or_the_audit(
    gateway: KeyedGateway, db_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    key = new_key(db_path, "quiet", daily_budget_usd=0.0000001, tasks=("fast",))
    client = gateway.client(key)
    client.chat.completions.create(model="fast", messages=USER)
    for refused in (openai.RateLimitError, openai.PermissionDeniedError):
        with pytest.raises(refused) as caught:
            client.chat.completions.create(
                model="fast" if refused is openai.RateLimitError else "reasoning", messages=USER
            )
        assert key not in caught.value.response.text
    revoke(db_path, "quiet")
    db = open_database(db_path)
    try:
        tables = {t: db.conn.execute(f"SELECT * FROM {t}").fetchall() for t in ("attempts", "api_keys", "audit")}
    finally:
        db.conn.close()
    stored = json.dumps({t: [list(r) for r in rows] for t, rows in tables.items()}, default=str)
    assert "quiet" in stored and key not in stored and key[3:] not in stored
    assert [a["action"] for a in reversed(read_audit(db_path))] == ["api key created", "api key revoked"]
    out, err = capfd.readouterr()
    assert key not in caplog.text and key not in out and key not in err


# -- the command ----------------------------------------------------------------------------------------------


def test_keys_create_list_revoke(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(db_path)
    assert main(["keys", "create", "CI-Bot", "--tasks", "fast,reasoning", "--daily-budget-usd", "2.5",
                 "--expires", "30d", "--admin", "--db", db]) == 0  # fmt: skip
    printed = capsys.readouterr().out
    key = next(line for line in printed.splitlines() if line.startswith("tr-"))
    assert len(key) > 40 and "shown this once" in printed
    assert main(["keys", "list", "--json", "--db", db]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert {k: listed[k] for k in ("name", "tasks", "daily_budget_usd", "admin", "revoked_at")} == {
        "name": "ci-bot",
        "tasks": ["fast", "reasoning"],
        "daily_budget_usd": 2.5,
        "admin": True,
        "revoked_at": None,
    }
    assert key.startswith(listed["prefix"]) and len(listed["prefix"]) < 12
    assert listed["expires_at"] > listed["created_at"]
    assert main(["keys", "list", "--db", db]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"ci-bot ({listed['prefix']}...): active until ") and key not in text
    assert main(["keys", "revoke", "ci-bot", "--db", db]) == 2  # no --reason: nothing changed
    assert "--reason" in capsys.readouterr().err
    assert main(["keys", "revoke", "ci-bot", "--reason", "rotated", "--db", db]) == 0
    assert main(["keys", "revoke", "ci-bot", "--reason", "again", "--db", db]) == 1
    assert main(["keys", "list", "--db", db]) == 0
    assert "ci-bot" in (out := capsys.readouterr().out) and "revoked at" in out
    (revoked,) = [a for a in read_audit(db_path) if a["action"] == "api key revoked"]
    assert (revoked["target"], revoked["reason"], revoked["via"]) == ("ci-bot", "rotated", "cli")


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["bad name!"], "key name 'bad name!' is not allowed"),
        (["ok", "--tasks", "fast,nope"], "'nope', which is not a task of MODEL_REGISTRY"),
        (["ok", "--expires", "3w"], "write days or hours, e.g. 30d or 12h"),
        (["ok", "--daily-budget-usd", "0"], "--daily-budget-usd must be more than 0"),
    ],
)
def test_keys_create_refuses_bad_input_and_creates_nothing(
    db_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    assert main(["keys", "create", *args, "--db", str(db_path)]) == 2
    err = capsys.readouterr().err
    assert says in err and "nothing was created" in err
    assert not db_path.exists()


def test_a_name_in_use_is_refused_until_revoked(db_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "create", "svc", "--db", str(db_path)]) == 0
    assert main(["keys", "create", "svc", "--db", str(db_path)]) == 1
    assert "already exists: revoke it first" in capsys.readouterr().err
    assert main(["keys", "revoke", "svc", "--reason", "rotate", "--db", str(db_path)]) == 0
    assert main(["keys", "create", "svc", "--db", str(db_path)]) == 0


def test_each_workers_application_asks_for_keys_unless_no_auth(env: pytest.MonkeyPatch, db_path: Path) -> None:
    """The applications `taskrouter serve --workers N` builds in each process, from the environment."""
    from fastapi.testclient import TestClient

    from app.gateway.server import from_environment, from_environment_no_auth

    key = new_key(db_path, "worker-test")
    with TestClient(from_environment()) as client:
        assert client.get("/v1/models").status_code == 401
        assert client.get("/v1/models", headers={"authorization": f"Bearer {key}"}).status_code == 200
    with TestClient(from_environment_no_auth()) as client:
        assert client.get("/v1/models").status_code == 200


@pytest.mark.slow
def test_taskrouter_serve_with_two_workers_asks_for_keys(sim: Simulator, db_path: Path) -> None:
    """The command as a user runs it: no key in the store yet is said at the start; a key created while it runs
    is accepted by its workers, and names the rows."""
    import signal

    from conftest import TEST_KEY

    env = {"GROQ_API_KEY": TEST_KEY, "GROQ_BASE_URL": sim.base_url, "ATTEMPTS_DB_PATH": str(db_path)}
    with serve_command(["--workers", "2"], env) as (child, url):
        assert httpx.get(f"{url}/v1/models").status_code == 401
        key = new_key(db_path, "late")
        with openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=15) as client:
            for _ in range(4):  # most likely both workers
                assert client.chat.completions.create(model="fast", messages=USER).choices
        child.send_signal(signal.SIGTERM)
        assert child.wait(30) == 0
    assert "holds no API key in use" in (child.stderr.read() if child.stderr else "")
    db = open_database(db_path)
    try:
        names = [r[0] for r in db.conn.execute("SELECT key_name FROM attempts")]
    finally:
        db.conn.close()
    assert names == ["late"] * 4


def test_an_expiry_is_days_or_hours_from_now_in_the_stores_time_text() -> None:
    from datetime import UTC, datetime

    from app.commands.keys import expiry

    now = datetime(2026, 12, 5, 18, 0, 0, 123000, tzinfo=UTC)
    assert expiry("30d", now) == "2027-01-04T18:00:00.123Z"
    assert expiry(" 12h ", now) == "2026-12-06T06:00:00.123Z"
    for bad in ("0d", "3w", "1.5d", "d", "-1h", "100000d"):
        with pytest.raises(ValueError, match="write days or hours"):
            expiry(bad, now)

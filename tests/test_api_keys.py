"""The gateway's API keys in the store (app/store/api_keys.py), on SQLite and PostgreSQL alike: only a hash of the
key is kept, a revoked key's row stays and a new key of the name replaces it, each change has its audit row, the
attempt writers of both backends carry the key's name, and a key's spend of a day is the sum of its rows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.store import AttemptRow, open_database
from app.store.api_keys import (
    ApiKeyError,
    KeyStoreUnreadable,
    check_key_name,
    create_api_key,
    find_api_key,
    hash_key,
    key_spent_on,
    read_api_keys,
    revoke_api_key,
)
from app.store.database import write_batch
from app.store.model_status import query_read_only
from app.store.overrides import read_audit
from app.store.target import PostgresTarget, Target


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "postgres":
        yield PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db")
    else:
        yield tmp_path / "store.db"


def _create(store: Target, name: str, **options: object) -> str:
    db = open_database(store)
    try:
        return create_api_key(db.conn, name, by="ops@host", **options)  # type: ignore[arg-type]
    finally:
        db.conn.close()


def _revoke(store: Target, name: str) -> bool:
    db = open_database(store)
    try:
        return revoke_api_key(db.conn, name, reason="rotated", by="ops@host")
    finally:
        db.conn.close()


def _row(request_id: str, created_at: str, cost: float | None, key_name: str | None, **more: object) -> AttemptRow:
    return AttemptRow(
        request_id, "fast", "m", "groq", 1, "success", None, 200, None, 0, 0, 1, 1, 2, 1.0, cost, created_at,
        key_name=key_name, **more,  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_key_is_found_by_itself_and_the_store_keeps_only_its_hash(store: Target) -> None:
    key = _create(store, "Agent", tasks=("fast", "reasoning"), daily_budget_usd=1.5, admin=True)
    other = _create(store, "plain", expires_at="2030-01-01T00:00:00.000Z")
    assert key.startswith("tr-") and len(key) > 40 and key != other
    found = find_api_key(store, key)
    assert found is not None
    assert (found.name, found.tasks, found.daily_budget_usd, found.admin, found.revoked_at) == (
        "agent",
        ("fast", "reasoning"),
        1.5,
        True,
        None,
    )
    assert found.may_use("fast") and not found.may_use("summarization")
    plain = find_api_key(store, other)
    assert plain is not None and plain.tasks is None and plain.may_use("anything") and not plain.admin
    assert not plain.expired("2029-12-31T23:59:59.999Z") and plain.expired("2030-01-01T00:00:00.000Z")
    assert find_api_key(store, key + "x") is None and find_api_key(store, "") is None
    stored = query_read_only(store, "SELECT name, key_hash, prefix FROM api_keys ORDER BY name")
    assert [(r["name"], r["key_hash"]) for r in stored] == [("agent", hash_key(key)), ("plain", hash_key(other))]
    assert all(key not in str(r) and other not in str(r) for r in stored)
    assert key.startswith(stored[0]["prefix"]) and len(stored[0]["prefix"]) == 9
    assert [(a["action"], a["target"], a["detail"]) for a in reversed(read_audit(store))] == [
        ("api key created", "agent", "tasks fast,reasoning; daily budget $1.5; admin"),
        ("api key created", "plain", "every task; expires 2030-01-01T00:00:00.000Z"),
    ]


def test_a_revoked_key_stays_listed_and_its_name_can_be_given_a_new_key(store: Target) -> None:
    old = _create(store, "svc")
    with pytest.raises(ApiKeyError, match="already exists: revoke it first"):
        _create(store, "SVC")
    assert _revoke(store, "svc") and not _revoke(store, "svc") and not _revoke(store, "nobody")
    revoked = find_api_key(store, old)
    assert revoked is not None and revoked.revoked_at is not None and revoked.revoked_by == "ops@host"
    new = _create(store, "svc")
    assert find_api_key(store, old) is None
    found = find_api_key(store, new)
    assert found is not None and found.revoked_at is None
    assert [k.name for k in read_api_keys(store)] == ["svc"]
    (audit,) = [a for a in read_audit(store) if a["action"] == "api key revoked"]
    assert (audit["target"], audit["reason"], audit["who"]) == ("svc", "rotated", "ops@host")


def test_the_writers_carry_the_keys_name_and_a_keys_day_is_the_sum_of_its_rows(store: Target) -> None:
    rows = [
        _row("a", "2026-12-05T00:00:00.000Z", 0.25, "agent"),
        _row("b", "2026-12-05T23:59:59.999Z", 0.5, "agent", retry=1),  # not a lean row: every column written
        _row("c", "2026-12-05T12:00:00.000Z", None, "agent"),  # a price unknown adds nothing
        _row("d", "2026-12-05T12:00:00.000Z", 9.0, "other"),
        _row("e", "2026-12-05T12:00:00.000Z", 7.0, None),
        _row("f", "2026-12-06T00:00:00.000Z", 3.0, "agent"),
        _row("g", "2026-12-04T23:59:59.999Z", 4.0, "agent"),
    ]
    db = open_database(store)
    try:
        assert write_batch(db, rows) == len(rows)
    finally:
        db.conn.close()
    logged = query_read_only(store, "SELECT request_id, key_name, retry FROM attempts ORDER BY request_id")
    assert [(r["request_id"], r["key_name"]) for r in logged] == [(r.request_id, r.key_name) for r in rows]
    assert key_spent_on(store, "agent", "2026-12-05") == pytest.approx(0.75)
    assert key_spent_on(store, "other", "2026-12-05") == pytest.approx(9.0)
    assert key_spent_on(store, "nobody", "2026-12-05") == 0.0


def test_a_name_must_be_plain() -> None:
    assert check_key_name("Team.Bot@example.com") == "team.bot@example.com"
    for bad in ("", "-x", "a b", "x" * 101, "ünïcode"):
        with pytest.raises(ApiKeyError, match="is not allowed"):
            check_key_name(bad)


def test_a_store_that_cannot_be_read_is_not_a_store_without_the_key(tmp_path: Path) -> None:
    for unreadable in (tmp_path / "none.db", PostgresTarget("postgresql://nobody@127.0.0.1:1/none", tmp_path / "s")):
        with pytest.raises(KeyStoreUnreadable, match="cannot be read"):
            find_api_key(unreadable, "tr-anything")

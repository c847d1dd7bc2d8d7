"""Named operators (`taskrouter operators`, app/store/operators.py), on SQLite and PostgreSQL alike: the secret is
printed once and only its salted hash is stored, a revoke ends the operator at once, every change has its audit
row, and a bad name or a second operator of one name is refused with what to do instead."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.store import open_database
from app.store.model_status import query_read_only
from app.store.operators import (
    LEGACY_TOKEN_NAME,
    OperatorError,
    check_name,
    create_operator,
    hash_secret,
    read_operators,
    revoke_operator,
    secret_matches,
    signed_in_operator,
    verify_operator,
)
from app.store.overrides import read_audit, who
from app.store.target import PostgresTarget, Target


# PostgreSQL's run is in the slow set, as the dashboard tests' is (tests/conftest.py): the store's own contract
# tests keep PostgreSQL in the fast run.
@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.slow)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    if request.param == "postgres":
        yield PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db")
    else:
        yield tmp_path / "store.db"


def _create(store: Target, name: str, by: str = "ops@host") -> str:
    db = open_database(store)
    try:
        return create_operator(db.conn, name, by=by)
    finally:
        db.conn.close()


def _revoke(store: Target, name: str, reason: str = "") -> bool:
    db = open_database(store)
    try:
        return revoke_operator(db.conn, name, reason=reason, by="ops@host")
    finally:
        db.conn.close()


def test_an_operator_signs_in_with_its_own_secret_only_and_the_store_keeps_a_hash(store):
    alice = _create(store, "Alice")
    bob = _create(store, "bob@example.com")
    assert alice != bob and len(alice) >= 40
    assert verify_operator(store, "alice", alice) == "alice"
    assert verify_operator(store, "ALICE ", alice) == "alice"  # names compare without case or stray spaces
    assert verify_operator(store, "alice", bob) is None
    assert verify_operator(store, "bob@example.com", alice) is None
    assert verify_operator(store, "carol", alice) is None
    stored = query_read_only(store, "SELECT name, secret_hash FROM operators ORDER BY name")
    assert [r["name"] for r in stored] == ["alice", "bob@example.com"]
    for row in stored:
        assert row["secret_hash"].startswith("scrypt$")
        assert alice not in row["secret_hash"] and bob not in row["secret_hash"]
    assert [(a["action"], a["target"], a["who"], a["via"]) for a in reversed(read_audit(store))] == [
        ("operator created", "alice", "ops@host", "cli"),
        ("operator created", "bob@example.com", "ops@host", "cli"),
    ]


def test_a_revoked_operator_cannot_sign_in_and_can_be_made_again_with_a_new_secret(store):
    old = _create(store, "alice")
    with pytest.raises(OperatorError, match="revoke it first"):
        _create(store, "alice")
    assert _revoke(store, "alice", reason="left the team") is True
    assert _revoke(store, "alice") is False  # already revoked: nothing changes
    assert verify_operator(store, "alice", old) is None
    assert signed_in_operator(store, "alice") is None
    [alice] = read_operators(store)
    assert (alice.name, alice.active, alice.revoked_by) == ("alice", False, "ops@host")

    new = _create(store, "alice")
    assert verify_operator(store, "alice", new) == "alice"
    assert verify_operator(store, "alice", old) is None
    assert signed_in_operator(store, "alice") == "alice"
    trail = [(a["action"], a["reason"]) for a in reversed(read_audit(store))]
    assert trail == [("operator created", ""), ("operator revoked", "left the team"), ("operator created", "")]


@pytest.mark.parametrize("name", ["", "bad name", "-dash", "x" * 101, "alice\x1b[2J", "ali\nce", LEGACY_TOKEN_NAME])
def test_a_name_outside_the_allowed_characters_or_the_tokens_own_is_refused(name):
    with pytest.raises(OperatorError, match=r"operator name|DASHBOARD_ADMIN_TOKEN"):
        check_name(name)


def test_the_hash_is_salted_and_a_malformed_one_matches_nothing():
    assert hash_secret("s") != hash_secret("s")
    assert secret_matches("s", hash_secret("s")) and not secret_matches("t", hash_secret("s"))
    for broken in ("", "plain", "md5$1$2$3$4$5", "scrypt$x$8$1$AA==$AA=="):
        assert secret_matches("s", broken) is False


def test_a_store_without_the_operators_table_has_none(tmp_path):
    assert read_operators(tmp_path / "missing.db") == []
    assert verify_operator(tmp_path / "missing.db", "alice", "anything") is None
    assert not (tmp_path / "missing.db").exists()


def test_the_cli_prints_the_secret_once_lists_and_revokes(tmp_path, capsys):
    db = str(tmp_path / "ops.db")
    assert cli.main(["operators", "create", "Alice", "--db", db]) == 0
    out, err = capsys.readouterr()
    secret = out.splitlines()[1]
    assert out.splitlines()[0].startswith("operator alice created") and err == ""
    assert verify_operator(Path(db), "alice", secret) == "alice"

    assert cli.main(["operators", "create", "alice", "--db", db]) == 1
    assert (
        'already exists: revoke it first (taskrouter operators revoke alice --reason "why")' in capsys.readouterr().err
    )

    assert cli.main(["operators", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert out.startswith("alice: active; created at ") and secret not in out

    assert cli.main(["operators", "revoke", "alice", "--reason", "rotated", "--db", db]) == 0
    assert capsys.readouterr().out == "operator alice revoked: it can no longer act from the dashboard\n"
    assert cli.main(["operators", "revoke", "alice", "--reason", "again", "--db", db]) == 1
    assert "no active operator is named 'alice'" in capsys.readouterr().err
    assert cli.main(["operators", "list", "--db", db]) == 0
    assert capsys.readouterr().out.startswith("alice: revoked at ")


def test_the_cli_refuses_a_bad_name_before_touching_the_store_and_never_reads_a_missing_one(tmp_path, capsys):
    assert cli.main(["operators", "create", "bad name", "--db", str(tmp_path / "new.db")]) == 2
    assert "is not allowed: use 1 to 100 letters" in capsys.readouterr().err
    for action in (["list"], ["revoke", "alice", "--reason", "left"]):
        assert cli.main(["operators", *action, "--db", str(tmp_path / "typo.db")]) == 2
        assert "there is no attempts database at" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_revoke_from_the_cli_needs_a_reason_and_records_who_made_it(tmp_path, capsys):
    db = tmp_path / "ops.db"
    with contextlib.closing(open_database(db).conn) as conn:
        for name in ("alice", "carol"):
            create_operator(conn, name, by="ops@box")

    def rows() -> dict[str, list[dict[str, Any]]]:
        return {t: query_read_only(db, f"SELECT * FROM {t} ORDER BY 1") for t in ("operators", "audit")}

    before = rows()
    for given, said in (([], "no --reason given"), (["--reason", " "], "--reason is empty")):
        assert cli.main(["operators", "revoke", "alice", *given, "--db", str(db)]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.startswith(f'taskrouter operators revoke: {said}: add --reason "why" ')
    assert cli.main(["operators", "revoke", "alice", "--reason", "left", "--by", "nobody", "--db", str(db)]) == 2
    assert "--by 'nobody' is no active operator of " in capsys.readouterr().err
    assert rows() == before

    assert (
        cli.main(["operators", "revoke", "alice", "--reason", "left the team", "--by", "carol", "--db", str(db)]) == 0
    )
    assert capsys.readouterr().out == "operator alice revoked: it can no longer act from the dashboard\n"
    [alice, carol] = read_operators(db)
    assert (alice.name, alice.revoked_by, carol.revoked_at) == ("alice", "carol", None)
    [row] = [r for r in rows()["audit"] if r["action"] == "operator revoked"]
    assert (row["who"], row["target"], row["reason"], row["via"]) == (
        "carol",
        "alice",
        "left the team",
        f"cli as {who()}",
    )

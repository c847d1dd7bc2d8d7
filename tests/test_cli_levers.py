"""The CLI's levers act as the dashboard's do: every write needs a reason (none given: exit 2, nothing written),
`override end ID` ends exactly that override, `override clear` names each override it ended, and the audit row
records the person: `--by` a named operator (the OS account then only in `via`), else the OS account."""

from __future__ import annotations

import contextlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from app import cli
from app.core import ai_models
from app.store import ModelStatusRow, open_database, read_model_status, utc_now_iso
from app.store.model_status import UPSERT_STATUS, query_read_only
from app.store.operators import create_operator, revoke_operator
from app.store.overrides import DEFAULT, FORCE, read_active, read_audit, set_override, who

PRIMARY, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]
FAST = ai_models.MODEL_REGISTRY["fast"][0]
MISSING_REASON = (
    'add --reason "why" (e.g. --reason "incident 42"), which the audit trail keeps with the change; nothing was '
    "changed\n"
)

WRITES = [
    ["override", "force", SECOND],
    ["override", "default", "fast", SECOND],
    ["override", "end", "1"],
    ["override", "clear"],
    ["model", "disable", PRIMARY],
    ["model", "enable", FAST],
    ["status", "--clear", PRIMARY],
    ["operators", "revoke", "alice"],
]


def command_name(argv: list[str]) -> str:
    return "status --clear" if argv[0] == "status" else " ".join(argv[:2])


@pytest.fixture
def store(tmp_path) -> Path:
    """Two overrides on SECOND (#1 a default for fast, #2 a force for reasoning), FAST disabled (#3), a mark on
    PRIMARY, and two operators: alice (active) and bob (revoked)."""
    path = tmp_path / "levers.db"
    db = open_database(path)
    with contextlib.closing(db.conn) as conn:
        set_override(conn, DEFAULT, SECOND, task="fast", reason="try it first", by="ops@box")
        set_override(conn, FORCE, SECOND, task="reasoning", reason="incident 42", by="ops@box")
        set_override(conn, "disable", FAST, reason="flaky", by="ops@box")
        with conn:
            conn.execute(UPSERT_STATUS, asdict(ModelStatusRow(PRIMARY, "not_found", "gone", None, utc_now_iso())))
        create_operator(conn, "alice", by="ops@box")
        create_operator(conn, "bob", by="ops@box")
        revoke_operator(conn, "bob", reason="left", by="ops@box")
    return path


def contents(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row a lever could write."""
    return {
        table: query_read_only(path, f"SELECT * FROM {table} ORDER BY 1")
        for table in ("overrides", "audit", "model_status", "operators")
    }


def audit_since(path: Path, before: int) -> list[tuple[Any, ...]]:
    """The audit rows written after the first `before`, oldest first: who, action, target, task, reason, via."""
    rows = query_read_only(path, "SELECT * FROM audit WHERE id > ? ORDER BY id", (before,))
    return [(r["who"], r["action"], r["target"], r["task"], r["reason"], r["via"]) for r in rows]


def audit_count(path: Path) -> int:
    return len(read_audit(path, limit=10_000))


@pytest.mark.parametrize("reason", [None, "", "  \t"], ids=["no reason", "empty", "blank"])
def test_a_write_without_a_reason_says_what_to_add_and_writes_nothing(store, capsys, reason):
    before = contents(store)
    given = [] if reason is None else ["--reason", reason]
    said = "no --reason given" if reason is None else "--reason is empty"
    for argv in WRITES:
        assert cli.main([*argv, *given, "--db", str(store)]) == 2
        assert capsys.readouterr() == ("", f"taskrouter {command_name(argv)}: {said}: {MISSING_REASON}")
    assert contents(store) == before


@pytest.mark.parametrize("argv", [WRITES[0], WRITES[1], WRITES[4]], ids=command_name)
def test_a_refused_set_on_a_store_that_is_not_there_does_not_create_it(tmp_path, capsys, argv):
    """Setting an override creates the store; refused, it must not (the undoing writes refuse a missing store)."""
    assert cli.main([*argv, "--db", str(tmp_path / "new.db")]) == 2
    assert "no --reason given" in capsys.readouterr().err
    assert cli.main([*argv, "--reason", "test", "--by", "alice", "--db", str(tmp_path / "new.db")]) == 2
    assert "--by 'alice' is no active operator of " in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_ending_one_of_two_overrides_on_one_model_ends_only_that_one(store, capsys):
    before = audit_count(store)
    assert cli.main(["override", "end", "#2", "--reason", "reasoning is fine again", "--db", str(store)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ended override #2: force {SECOND} for reasoning, set by ops@box at ")
    assert [(o.id, o.kind, o.model, o.task) for o in read_active(store)] == [
        (1, DEFAULT, SECOND, "fast"),
        (3, "disable", FAST, None),
    ]
    assert audit_since(store, before) == [
        (who(), "force cleared", SECOND, "reasoning", "reasoning is fine again", "cli")
    ]
    ended = query_read_only(store, "SELECT cleared_by FROM overrides WHERE id = 2")
    assert ended == [{"cleared_by": who()}]


def test_ending_an_override_that_is_not_in_effect_changes_nothing(store, capsys):
    assert cli.main(["override", "end", "2", "--reason", "first", "--db", str(store)]) == 0
    capsys.readouterr()
    before = contents(store)
    for gone in ("2", "99"):
        assert cli.main(["override", "end", gone, "--reason", "again", "--db", str(store)]) == 1
        assert capsys.readouterr().err == (
            f"taskrouter override end: no override #{gone} is in effect (never set, ended or expired; "
            "`taskrouter override list` shows those that are); nothing was changed\n"
        )
    assert contents(store) == before


def test_an_override_id_that_is_not_a_number_is_refused_by_the_parser(tmp_path, capsys):
    for text in ("x", "0", "-1", "#", "1.5"):
        with pytest.raises(SystemExit) as refused:
            cli.main(["override", "end", text, "--reason", "test", "--db", str(tmp_path / "s.db")])
        assert refused.value.code == 2
        assert f"argument ID: {text!r} is not an override id: give the number `override list` shows" in (
            capsys.readouterr().err
        )
    assert list(tmp_path.iterdir()) == []


def test_by_a_named_operator_records_the_person_and_the_os_account_as_via(store, capsys):
    before = audit_count(store)
    argv = ["override", "force", PRIMARY, "--task", "fast", "--reason", "fast is down", "--by", "Alice"]
    assert cli.main([*argv, "--db", str(store)]) == 0
    assert capsys.readouterr().out.startswith(f"override #4: force {PRIMARY} for fast, set by alice at ")
    assert cli.main(["model", "enable", FAST, "--reason", "fixed", "--by", "alice", "--db", str(store)]) == 0
    assert capsys.readouterr().out.startswith(f"enabled {FAST} (ended override #3); routers pick it up within ")
    assert cli.main(["status", "--clear", PRIMARY, "--reason", "it is back", "--by", "alice", "--db", str(store)]) == 0
    via = f"cli as {who()}"
    assert audit_since(store, before) == [
        ("alice", "force set", PRIMARY, "fast", "fast is down", via),
        ("alice", "disable cleared", FAST, None, "fixed", via),
        ("alice", "mark cleared", PRIMARY, None, "it is back", via),
    ]
    assert [(o.id, o.set_by) for o in read_active(store)] == [(1, "ops@box"), (2, "ops@box"), (4, "alice")]
    assert next(r for r in read_model_status(store) if r["model"] == PRIMARY)["status"] == "cleared"


@pytest.mark.parametrize("name", ["bob", "carol", "admin-token"], ids=["revoked", "unknown", "the token's name"])
def test_by_a_name_that_is_no_active_operator_is_refused_and_writes_nothing(store, capsys, name):
    before = contents(store)
    for argv in WRITES:
        assert cli.main([*argv, "--reason", "test", "--by", name, "--db", str(store)]) == 2
        assert capsys.readouterr().err == (
            f"taskrouter {command_name(argv)}: --by {name!r} is no active operator of {store}: give a name "
            "`taskrouter operators list` shows as active (or `taskrouter operators create NAME` one), or leave --by "
            "out to record this OS account; nothing was changed\n"
        )
    assert contents(store) == before


def test_clear_by_filter_says_how_many_it_ended_and_names_each(store, capsys):
    before = audit_count(store)
    assert (
        cli.main(["override", "clear", "--model", SECOND, "--reason", "back to the registry", "--db", str(store)]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "ended 2 overrides: #2, #1"
    assert [line.split(" ")[:4] for line in lines[1:3]] == [["", "", "#2", "force"], ["", "", "#1", "default"]]
    assert lines[3].startswith("routers pick it up within ")
    assert [(o.id, o.model) for o in read_active(store)] == [(3, FAST)]  # a disable is not cleared by `override`
    assert audit_since(store, before) == [
        (who(), "force cleared", SECOND, "reasoning", "back to the registry", "cli"),
        (who(), "default cleared", SECOND, "fast", "back to the registry", "cli"),
    ]


def test_override_list_shows_each_override_by_its_id_and_how_to_end_one(store, capsys):
    assert cli.main(["override", "list", "--db", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(" ")[:3] for line in lines[1:4]] == [
        ["#2", "force", SECOND],
        ["#1", "default", SECOND],
        ["#3", "disable", f"{FAST},"],
    ]
    assert lines[4:] == ['end one by its id: taskrouter override end ID --reason "why"']

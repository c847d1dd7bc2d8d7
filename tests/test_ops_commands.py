"""The ops commands on the store they are pointed at: a store that is not there is an error that names it (and is
never created by a read), and `status` lists every lever in effect: marks, disabled models, runtime overrides and
the environment's."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app import cli
from app.core import ai_models
from app.store import ModelStatusRow, iso_from_epoch, open_database
from app.store.model_status import UPSERT_STATUS
from app.store.overrides import DEFAULT, DISABLE, FORCE, set_override

PRIMARY, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]
FAST = ai_models.MODEL_REGISTRY["fast"][0]
SET_AT = datetime(2026, 9, 1, 8, 0, tzinfo=UTC).timestamp()
STAMP = "2026-09-01T08:00:00.000Z"
TTL = 3650 * 86400.0  # ten years: still in effect whenever the test runs
UNTIL = iso_from_epoch(SET_AT + TTL)


def missing_message(command: str, path: Path) -> str:
    return (f"taskrouter {command}: there is no attempts database at {path}: give --db the store the routers write "
            "(their ATTEMPTS_DB_PATH or ATTEMPTS_DB_URL), or set those; nothing was read or created\n")


@pytest.mark.parametrize("command", [
    ["status"], ["status", "--json"], ["status", "--clear", PRIMARY], ["override", "list"],
    ["override", "list", "--json"], ["override", "clear"], ["model", "enable", PRIMARY], ["prune"],
])
def test_a_store_that_is_not_there_is_an_error_naming_it_and_is_not_created(tmp_path, capsys, command):
    typo = tmp_path / "typo.db"
    assert cli.main([*command, "--db", str(typo)]) == 2
    out, err = capsys.readouterr()
    name = " ".join(command[:2]) if command[0] in ("override", "model") else command[0]
    assert (out, err) == ("", missing_message(name, typo))
    assert list(tmp_path.iterdir()) == []  # no file, no -wal, no spill


def test_without_db_the_settings_store_is_the_one_named(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ATTEMPTS_DB_PATH", str(tmp_path / "set.db"))
    assert cli.main(["status"]) == 2
    assert capsys.readouterr().err == missing_message("status", tmp_path / "set.db")
    assert not (tmp_path / "set.db").exists()


def test_a_file_that_is_not_a_database_is_said_to_be_unusable(tmp_path, capsys):
    notes = tmp_path / "notes.db"
    notes.write_text("not a database" * 100)
    for command in (["status"], ["override", "list"]):
        assert cli.main([*command, "--db", str(notes)]) == 1
        assert "the attempts database cannot be used: " in capsys.readouterr().err


@pytest.fixture
def store(tmp_path) -> Path:
    """A store holding one mark, one disabled model and two runtime overrides, all set at STAMP."""
    path = tmp_path / "ops.db"
    db = open_database(path)
    with contextlib.closing(db.conn) as conn:
        with conn:
            conn.execute(UPSERT_STATUS, asdict(ModelStatusRow(FAST, "not_found", "gone", None, STAMP)))
        set_override(conn, DISABLE, SECOND, reason="flaky since 03:10", by="ops@box", now_epoch=SET_AT)
        set_override(conn, DEFAULT, SECOND, task="fast", by="ops@box", now_epoch=SET_AT)
        set_override(conn, FORCE, PRIMARY, task="reasoning", ttl_seconds=TTL, by="ops@box", now_epoch=SET_AT)
    return path


def test_status_lists_every_lever_in_effect(store, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_MODEL", FAST)
    monkeypatch.setenv("DEFAULT_CHAT_MODEL", SECOND)
    assert cli.main(["status", "--db", str(store)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"model marks in {store}:",
        f"{'model':<{len(FAST)}}  status     until     hits  first_seen           last_seen            detail",
        f"{FAST}  not_found  for good  1     2026-09-01T08:00:00  2026-09-01T08:00:00  gone",
        "disabled models (every router skips them; `taskrouter model enable MODEL` puts one back):",
        f"  #1 disable {SECOND}, set by ops@box at {STAMP} (flaky since 03:10)",
        "overrides in effect (highest precedence first):",
        f"  #3 force {PRIMARY} for reasoning until {UNTIL}, set by ops@box at {STAMP}",
        f"  FORCE_MODEL: force {FAST} for every task (environment; a restart changes it) (except for reasoning: a "
        "runtime force)",
        f"  #2 default {SECOND} for fast, set by ops@box at {STAMP}",
        f"  DEFAULT_CHAT_MODEL: default {SECOND} for chat (environment; a restart changes it) (shadowed by "
        "FORCE_MODEL)",
    ]


def test_status_json_holds_the_same_levers(store, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_MODEL", FAST)
    assert cli.main(["status", "--db", str(store), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert listing["store"] == str(store)
    assert [(m["model"], m["status"]) for m in listing["marks"]] == [(FAST, "not_found")]
    assert [(o["id"], o["kind"], o["model"], o["task"], o["source"]) for o in listing["runtime"]] == [
        (1, "disable", SECOND, None, "runtime disable #1"), (2, "default", SECOND, "fast", "runtime default #2"),
        (3, "force", PRIMARY, "reasoning", "runtime force #3")]
    assert listing["environment"] == [{"kind": "force", "task": None, "model": FAST, "source": "FORCE_MODEL"}]


def test_status_on_a_store_with_no_lever_says_so_for_each(tmp_path, capsys):
    path = tmp_path / "quiet.db"
    open_database(path).conn.close()
    assert cli.main(["status", "--db", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"no model marks in {path}", "disabled models: none", "overrides: none"]
    assert cli.main(["override", "list", "--db", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["no override in effect"]


def test_override_list_orders_the_levers_by_precedence(store, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_MODEL", FAST)
    assert cli.main(["override", "list", "--db", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].split(" ")[0] for line in lines] == ["precedence", "#3", "FORCE_MODEL", "#2", "#1"]

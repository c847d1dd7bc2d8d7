"""The ops commands on the store they are pointed at: a store that is not there is an error that names it (and is
never created by a read), and `status` lists every lever in effect: marks, disabled models, runtime overrides and
the environment's."""

from __future__ import annotations

import argparse
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
    return (
        f"taskrouter {command}: there is no attempts database at {path}: give --db the store the routers write "
        "(their ATTEMPTS_DB_PATH or ATTEMPTS_DB_URL), or set those; nothing was read or created\n"
    )


@pytest.mark.parametrize(
    "command",
    [
        ["status"],
        ["status", "--json"],
        ["status", "--clear", PRIMARY, "--reason", "test"],
        ["override", "list"],
        ["override", "list", "--json"],
        ["override", "clear", "--reason", "test"],
        ["override", "end", "1", "--reason", "test"],
        ["model", "enable", PRIMARY, "--reason", "test"],
        ["prune"],
    ],
)
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
        "disabled models (every router skips them; `taskrouter model enable MODEL --reason TEXT` puts one back):",
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
        (1, "disable", SECOND, None, "runtime disable #1"),
        (2, "default", SECOND, "fast", "runtime default #2"),
        (3, "force", PRIMARY, "reasoning", "runtime force #3"),
    ]
    assert listing["environment"] == [{"kind": "force", "task": None, "model": FAST, "source": "FORCE_MODEL"}]


def test_status_on_a_store_with_no_lever_says_so_for_each(tmp_path, capsys):
    path = tmp_path / "quiet.db"
    open_database(path).conn.close()
    assert cli.main(["status", "--db", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"no model marks in {path}",
        "disabled models: none",
        "overrides: none",
    ]
    assert cli.main(["override", "list", "--db", str(path)]) == 0
    assert capsys.readouterr().out.splitlines()[1:] == ["no override in effect"]


def test_override_list_orders_the_levers_by_precedence(store, capsys, monkeypatch):
    monkeypatch.setenv("FORCE_MODEL", FAST)
    assert cli.main(["override", "list", "--db", str(store)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0].split(" ")[0] for line in lines] == [
        "precedence",
        "#3",
        "FORCE_MODEL",
        "#2",
        "#1",
        "end",
    ]
    assert lines[-1] == 'end one by its id: taskrouter override end ID --reason "why"'


# -- papercuts ---------------------------------------------------------------------------------------------------


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ("taskrouter",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, (*path, name))


def test_every_option_of_every_command_says_what_it_does():
    undocumented = [
        (" ".join(path), action.dest)
        for path, parser in _parsers(cli.build_parser())
        for action in parser._actions
        if not isinstance(action, argparse._SubParsersAction) and not action.help
    ]
    assert undocumented == []
    listing = dict(_parsers(cli.build_parser()))[("taskrouter", "override", "list")]
    assert "--reason" not in listing.format_usage()  # listing writes no audit row: nothing to give a reason for


@pytest.mark.parametrize(
    "argv",
    [
        ["-v", "status"],
        ["status", "-v"],
        ["override", "list", "--verbose"],
        ["override", "-v", "list"],
        ["model", "enable", PRIMARY, "-v"],
        ["demo", "--requests", "3", "-v"],
    ],
)
def test_verbose_is_accepted_before_and_after_the_subcommand(argv):
    assert cli.build_parser().parse_args(argv).verbose is True


def test_without_verbose_it_is_off_wherever_it_could_have_gone():
    for argv in (["status"], ["override", "list"], ["model", "enable", PRIMARY]):
        assert cli.build_parser().parse_args(argv).verbose is False


def test_env_example_keeps_each_setting_with_its_own_comment():
    """Sections hold their own variables, and no variable sits inside another's comment."""
    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current = ""
    for line in text.splitlines():
        if line.startswith("# --- "):
            current = line.strip("# -")
            sections[current] = []
        elif line and not line.startswith("#"):
            sections[current].append(line.split("=")[0])
    assert sections["Alerts"] == ["ALERT_WEBHOOK_URL", "ALERT_CIRCUIT_OPEN_SECONDS"]
    assert sections["Dashboard"] == ["DASHBOARD_ADMIN_TOKEN", "DASHBOARD_ALLOWED_HOSTS"]
    alerts = text.split("# --- Alerts")[1].split("ALERT_WEBHOOK_URL=")[0]
    sentence = " ".join(line.removeprefix("# ") for line in alerts.splitlines()[1:])
    assert "the daily budget reaches BUDGET_ALERT_RATIO or is spent" in sentence


def test_counts_of_one_are_singular_in_the_demo_summary_and_the_prune_report(tmp_path):
    from app.commands.prune import render as render_prune
    from app.demo import Stat, Summary
    from app.demo import render as render_summary
    from app.store.retention import PruneReport

    summary = Summary(
        tmp_path / "d.db",
        0,
        requests=1,
        answered=1,
        attempts=1,
        retried_requests=1,
        answered_by_retry=1,
        streams=1,
        tasks=[Stat("fast", 1, 1, 0, 10.0, 10.0, 5, 0.0, retries=1)],
        model_status=[
            {"model": PRIMARY, "status": "cooling_down", "until": STAMP, "hits": 1, "detail": "rate limited"}
        ],
    )
    lines = render_summary(summary).splitlines()
    assert lines[0] == "1 request, 1 answered, 0 failed on every model; 1 provider call logged"
    assert "retries: 1 call in 1 request, 1 request answered by a retry; hedges: 0 started" in render_summary(summary)
    assert any(line.startswith("streams: 1 call reached their first token") for line in lines)
    assert lines[-1] == f"  {PRIMARY}: cooling_down until {STAMP} (1 mark): rate limited"
    report = PruneReport(
        "x.db", False, 1, STAMP, 1, STAMP, STAMP, None, 1, "2026-09-01T08", 1, 3.0, 4096, 4096, 0, 0, "incremental"
    )
    assert render_prune(report)[:4] == [
        "x.db: raw rows older than 1 day (before 2026-09-01 08:00:00 UTC)",
        "rolled up 1 closed hour first (the rollups reach 2026-09-01 08:00 UTC)",
        "removed 1 row from 2026-09-01 08:00:00 UTC to 2026-09-01 08:00:00 UTC in 1 batch (the longest held the "
        "write lock 3 ms)",
        "no raw row is left: the rollups hold the totals of every removed hour",
    ]

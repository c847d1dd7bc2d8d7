"""`taskrouter check` against the simulator: calendar, GET /models and runtime evidence, the table, the JSON,
the exit codes a CI pipeline gates on, and the stored result."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import USER, logged_rows

from app import cli
from app.core import ai_models
from app.deprecations import PACKAGE_CALENDAR, latest_check
from app.providers import get_provider
from app.simulator import ModelProfile
from app.store import open_database
from app.store.overrides import DISABLE, FORCE, set_override

LIVE = "openai/gpt-oss-120b"
RETIRING = "qwen/qwen3.8-27b"  # retires in 10 days according to the user's calendar file
OLD = "mixtral-8x7b-32768"  # shut down 2025-03-20: 400 model_decommissioned
GONE_2026 = "meta-llama/llama-4-maverick-17b-128e-instruct"  # shut down 2026-03-09: 404 model_not_found
UNLISTED = "acme/unlisted-model"  # answers, but GET /models does not list it
TODAY = "2026-12-01"


@pytest.fixture
def scenario(env, sim, tmp_path, monkeypatch, make_router) -> Path:
    calendar = tmp_path / "deprecations.toml"
    calendar.write_text(
        f'[models."{RETIRING}"]\nshutdown = 2026-12-11\nreplacements = ["{LIVE}"]\nsource = "vendor e-mail"\n'
    )
    env.setenv("DEPRECATIONS_FILE", str(calendar))
    sim.set_profile(LIVE, ModelProfile())
    sim.set_profile(RETIRING, ModelProfile(max_completion_tokens=16384))
    sim.set_profile(OLD, ModelProfile(retired="decommissioned", listed=False))
    sim.set_profile(GONE_2026, ModelProfile(retired="not_found", listed=False))
    sim.set_profile(UNLISTED, ModelProfile(listed=False))
    monkeypatch.setattr(
        ai_models,
        "MODEL_REGISTRY",
        {
            "chat": [LIVE, RETIRING],
            "legacy": [OLD, GONE_2026, UNLISTED],
            "fallback": [LIVE],
        },
    )
    return calendar


def call_legacy_once(make_router, db_path: Path) -> None:
    """Real traffic, so that model_status holds the router's own evidence. Sync: the CLI runs its own loop."""

    async def call() -> None:
        try:
            resp = await make_router(skip_retired_models=False).execute("legacy", USER)
        finally:
            await get_provider("groq").aclose()  # type: ignore[attr-defined]
        assert resp.model_used == UNLISTED

    asyncio.run(call())
    logged_rows(db_path)  # flush the writer: the check reads the file


def check(capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["check", "--today", TODAY, *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_table_shows_every_problem_with_its_replacement_and_exits_2(scenario, make_router, sim, db_path, capsys):
    call_legacy_once(make_router, db_path)
    code, out, _ = check(capsys)
    assert code == 2
    out = re.sub(r"\d{4}-\d\d-\d\dT[\d:.]+Z", "<ts>", out)  # when the router saw it: now, to the millisecond
    gap = " " * 88
    assert out.splitlines() == [
        f"taskrouter check: as of {TODAY}, warning window 30 days",
        f"calendar: 35 entries from {PACKAGE_CALENDAR}, {scenario}",
        f"live:     GET {sim.base_url}/openai/v1/models: 2 models listed",
        f"runtime:  {db_path}: deprecation evidence for 2 registry models",
        "overrides: none in effect",
        "",
        "task chat",
        "  #  MODEL                PLACE    STATUS   CONTEXT  MAX OUT  FINDINGS",
        f"  1  {LIVE}  primary  ok        131072    65536  -",
        f"  2  {RETIRING}     primary  WARNING   131072    16384  calendar: shuts down on 2026-12-11, in 10 days",
        f"{' ' * 62}-> use {LIVE}",
        "",
        "task legacy",
        "  #  MODEL                                          PLACE     STATUS  CONTEXT  MAX OUT  FINDINGS",
        f"  1  {OLD}                             primary   ERROR         -        -  "
        "calendar: shut down on 2025-03-20 per the deprecation calendar",
        f"{gap}live: not listed by GET /models (retired, unknown, or not available to this key)",
        f"{gap}runtime: the router saw deprecated 1 time (first <ts>, last <ts>)",
        f"{gap}-> use {LIVE}",
        f"  2  {GONE_2026}  primary   ERROR         -        -  "
        "calendar: shut down on 2026-03-09 per the deprecation calendar",
        f"{gap}live: not listed by GET /models (retired, unknown, or not available to this key)",
        f"{gap}runtime: the router saw deprecated 1 time (first <ts>, last <ts>)",
        f"{gap}-> use {LIVE}",
        f"  3  {UNLISTED}                            primary   ERROR         -        -  "
        "live: not listed by GET /models (retired, unknown, or not available to this key)",
        f"{gap}-> no calendar replacement; remove it and {LIVE} takes over",
        f"  4  {LIVE}                            fallback  ok       131072    65536  -",
        "",
        "result: 7 errors, 1 warning across 5 models in 2 tasks -> exit 2 (errors)",
        f"stored in {db_path} (table checks)",
    ]


def test_the_json_report_and_the_stored_check_carry_the_same_facts(scenario, make_router, sim, db_path, capsys):
    call_legacy_once(make_router, db_path)
    code, out, _ = check(capsys, "--json")
    report = json.loads(out)
    assert code == report["exit_code"] == 2
    assert (report["today"], report["days"], report["strict"], report["errors"], report["warnings"]) == (
        TODAY,
        30,
        False,
        7,
        1,
    )
    assert report["live"] == {
        "status": "ok",
        "detail": f"GET {sim.base_url}/openai/v1/models: 2 models listed",
        "listed": 2,
    }
    assert report["tasks"]["legacy"] == [
        {"model": OLD, "place": "primary", "position": 1, "status": "error", "suggestion": f"use {LIVE}"},
        {"model": GONE_2026, "place": "primary", "position": 2, "status": "error", "suggestion": f"use {LIVE}"},
        {
            "model": UNLISTED,
            "place": "primary",
            "position": 3,
            "status": "error",
            "suggestion": f"no calendar replacement; remove it and {LIVE} takes over",
        },
        {"model": LIVE, "place": "fallback", "position": 4, "status": "ok", "suggestion": None},
    ]
    models = report["models"]
    assert models[LIVE]["live"] == {
        "listed": True,
        "active": True,
        "context_window": 131072,
        "max_completion_tokens": 65536,
    }
    assert models[LIVE]["problems"] == [] and models[LIVE]["tasks"] == ["chat", "legacy"]
    assert models[RETIRING]["retirement"] == {
        "shutdown": "2026-12-11",
        "days_left": 10,
        "replacement": LIVE,
        "named": [LIVE],
        "source": "vendor e-mail",
        "tiers": None,
        "note": None,
    }
    assert models[RETIRING]["problems"] == [
        {"severity": "warning", "source": "calendar", "message": "shuts down on 2026-12-11, in 10 days"}
    ]
    assert models[GONE_2026]["retirement"]["replacement"] == LIVE
    assert [p["source"] for p in models[GONE_2026]["problems"]] == ["calendar", "live", "runtime"]
    runtime = models[GONE_2026]["runtime"]
    assert (runtime["status"], runtime["hits"], runtime["until"]) == ("deprecated", 1, None)
    assert runtime["first_seen"] == runtime["last_seen"] and runtime["first_seen"].startswith("2026-")
    assert models[UNLISTED]["live"] == {"listed": False}
    assert models[UNLISTED]["retirement"] is None and models[UNLISTED]["runtime"] is None
    stored = latest_check(db_path)
    assert (stored.exit_code, stored.errors, stored.warnings, stored.summary) == (
        2,
        7,
        1,
        "7 errors, 1 warning across 5 models in 2 tasks",
    )
    assert stored.report == report


def test_warnings_pass_unless_strict(scenario, monkeypatch, capsys):
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": [LIVE, RETIRING]})
    assert check(capsys)[0] == 0
    code, out, _ = check(capsys, "--strict")
    assert code == 1
    assert out.splitlines()[-2] == (
        "result: 0 errors, 1 warning across 2 models in 1 task -> exit 1 (warnings (--strict))"
    )
    assert check(capsys, "--strict", "--days", "9")[0] == 0  # 10 days away: outside a 9-day window
    code, out, _ = check(capsys, "--strict", "--days", "9", "--no-store")
    assert "result: healthy: 2 models in 1 task -> exit 0 (healthy)" in out
    assert out.splitlines()[-1] == "not stored (--no-store or ATTEMPT_LOGGING=false)"


def test_without_a_key_the_live_check_is_skipped_and_says_how_to_enable_it(scenario, env, sim, capsys, db_path):
    env.delenv("GROQ_API_KEY")
    code, out, _ = check(capsys, "--json")
    report = json.loads(out)
    assert report["live"] == {
        "status": "skipped",
        "listed": 0,
        "detail": "live check skipped: GROQ_API_KEY is not set; set it (in the environment or .env) to also "
        "check that every model is listed and active on GET /openai/v1/models",
    }
    # The calendar alone still finds the two shut-down models; the unlisted one goes unnoticed.
    assert (code, report["errors"], report["warnings"]) == (2, 2, 1)
    assert report["models"][UNLISTED] | {"tasks": None} == {
        "status": "ok",
        "provider": "groq",
        "tasks": None,
        "retirement": None,
        "live": None,
        "runtime": None,
        "problems": [],
    }
    assert not sim.requests  # no network at all
    code, out, _ = check(capsys)
    assert out.splitlines()[2] == f"live:     {report['live']['detail']}"
    assert out.split("task legacy\n")[1].splitlines()[1].split()[4:6] == ["-", "-"]


def test_an_inactive_model_and_a_refused_key_are_errors(scenario, env, sim, monkeypatch, capsys):
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": [LIVE]})
    sim.set_profile(LIVE, ModelProfile(active=False))
    code, out, _ = check(capsys, "--json")
    assert code == 2
    assert json.loads(out)["models"][LIVE]["problems"] == [
        {"severity": "error", "source": "live", "message": "listed by GET /models with active: false"}
    ]
    env.setenv("GROQ_API_KEY", "gsk_wrong_key_0000000000")
    code, out, _ = check(capsys, "--json")
    report = json.loads(out)
    assert (code, report["live"]["status"]) == (2, "failed")
    assert report["problems"] == [{"severity": "error", "source": "live", "message": report["live"]["detail"]}]
    assert "failed (status 401): Invalid API Key" in report["live"]["detail"]
    assert "gsk_wrong" not in out


def test_the_catalog_disagreeing_with_groq_is_a_warning(scenario, sim, monkeypatch, capsys):
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": [LIVE]})
    sim.set_profile(LIVE, ModelProfile(context_window=65536))
    code, out, _ = check(capsys, "--json", "--strict")
    report = json.loads(out)
    assert code == 1
    assert report["models"][LIVE]["problems"] == [
        {
            "severity": "warning",
            "source": "catalog",
            "message": "MODEL_CATALOG says context_window=131072, Groq says 65536",
        }
    ]
    assert report["models"][LIVE]["live"]["context_window"] == 65536  # Groq's figure is the one recorded
    assert report["tasks"]["chat"][0]["suggestion"] == (
        "update its MODEL_CATALOG entry (or MODEL_CATALOG_FILE) to Groq's values"
    )


def test_overrides_are_checked_too(scenario, env, monkeypatch, capsys):
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": [LIVE], "fallback": [LIVE]})
    env.setenv("DEFAULT_CHAT_MODEL", "gemma2-9b-it")
    code, out, _ = check(capsys, "--json")
    chat = json.loads(out)["tasks"]["chat"]
    assert code == 2
    # gemma2 -> llama-3.1-8b-instant (retired too) -> the live end of the chain.
    assert chat[0] == {
        "model": "gemma2-9b-it",
        "place": "override",
        "position": 1,
        "status": "error",
        "suggestion": "use openai/gpt-oss-20b (but GET /models does not list it as active)",
    }
    env.delenv("DEFAULT_CHAT_MODEL")
    env.setenv("FORCE_MODEL", RETIRING)
    code, out, _ = check(capsys, "--json")
    assert code == 0
    assert [(c["model"], c["place"], c["status"]) for c in json.loads(out)["tasks"]["chat"]] == [
        (RETIRING, "forced", "warning"),
        (LIVE, "bypassed", "ok"),
    ]


def test_a_bad_calendar_file_exits_2_naming_the_file_and_the_entry(scenario, capsys):
    scenario.write_text(f'[models."{RETIRING}"]\nshutdown = "soon"\n')
    code, out, err = check(capsys)
    assert (code, out) == (2, "")
    assert err.strip() == (
        f'taskrouter: DEPRECATIONS_FILE={scenario}: entry models."{RETIRING}": `shutdown` must '
        "be a date like 2026-09-14, got 'soon'"
    )


def test_a_model_served_elsewhere_is_not_expected_on_groqs_list(scenario, env, monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": [LIVE, "acme/elsewhere"]})
    catalog = tmp_path / "catalog.toml"
    catalog.write_text(
        '[models."acme/elsewhere"]\nprovider = "openai_compatible"\nbase_url = "http://127.0.0.1:9/v1"\n'
    )
    env.setenv("MODEL_CATALOG_FILE", str(catalog))
    code, out, _ = check(capsys, "--json")
    elsewhere = json.loads(out)["models"]["acme/elsewhere"]
    assert code == 0
    assert (elsewhere["provider"], elsewhere["live"], elsewhere["problems"]) == ("openai_compatible", None, [])


def test_a_disabled_model_and_runtime_overrides_are_shown_as_such(scenario, env, monkeypatch, db_path, capsys):
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": [LIVE, RETIRING], "fallback": [LIVE]})
    set_at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC).timestamp()
    with contextlib.closing(open_database(db_path).conn) as conn:
        set_override(conn, DISABLE, RETIRING, reason="slow today", by="ops@box", now_epoch=set_at)
    code, out, _ = check(capsys, "--no-store")
    assert code == 0
    lines = out.splitlines()
    assert lines[4:11] == [
        "overrides: #1 disable qwen/qwen3.8-27b, set by ops@box at 2026-11-30T09:00:00.000Z (slow today)",
        "",
        "task chat",
        "  #  MODEL                PLACE     STATUS   CONTEXT  MAX OUT  FINDINGS",
        f"  1  {LIVE}  primary   ok        131072    65536  -",
        f"  2  {RETIRING}     disabled  WARNING   131072    16384  skipped: runtime disable #1; `taskrouter model "
        f'enable {RETIRING} --reason "why"` puts it back',
        f"{' ' * 63}calendar: shuts down on 2026-12-11, in 10 days",
    ]

    # A runtime force is shown as FORCE_MODEL is (and wins over it, as in the router).
    env.setenv("FORCE_MODEL", UNLISTED)
    with contextlib.closing(open_database(db_path).conn) as conn:
        set_override(conn, FORCE, LIVE, by="ops@box", now_epoch=set_at)
    code, out, _ = check(capsys, "--json", "--no-store")
    report = json.loads(out)
    assert [(c["model"], c["place"], c["status"]) for c in report["tasks"]["chat"]] == [
        (LIVE, "forced", "ok"),
        (RETIRING, "disabled", "warning"),
    ]
    assert UNLISTED not in report["models"]  # FORCE_MODEL is shadowed: not a model the router calls
    assert [(o["source"], o["model"]) for o in report["overrides"]["runtime"]] == [
        ("runtime disable #1", RETIRING),
        ("runtime force #2", LIVE),
    ]
    assert report["overrides"]["environment"] == [
        {"kind": "force", "task": None, "model": UNLISTED, "source": "FORCE_MODEL"}
    ]
    code, out, _ = check(capsys, "--no-store")
    assert out.splitlines()[4:7] == [
        "overrides: #2 force openai/gpt-oss-120b for every task, set by ops@box at 2026-11-30T09:00:00.000Z",
        f"           FORCE_MODEL: force {UNLISTED} for every task (environment; a restart changes it) (shadowed by "
        "a runtime force)",
        "           #1 disable qwen/qwen3.8-27b, set by ops@box at 2026-11-30T09:00:00.000Z (slow today)",
    ]

"""The deprecation calendar (package data + DEPRECATIONS_FILE), start-up warnings, the router's use of it
against the simulator, and the stored checks the dashboard reads."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from datetime import date
from pathlib import Path

import pytest
from conftest import USER, logged_rows

from app.config import load_settings
from app.core import ai_models
from app.deprecations import (
    PACKAGE_CALENDAR,
    latest_check,
    load_calendar,
    recent_checks,
    save_check,
    startup_warnings,
)
from app.errors import AllModelsFailedError, ConfigError
from app.simulator import ModelProfile
from app.store import open_database

GPT_120B = "openai/gpt-oss-120b"
GPT_20B = "openai/gpt-oss-20b"
QWEN_NEXT = "qwen/qwen3.8-27b"
MIXTRAL = "mixtral-8x7b-32768"  # shut down 2025-03-20 -> llama-3.3-70b-versatile (itself gone) -> gpt-oss-120b
MAVERICK = "meta-llama/llama-4-maverick-17b-128e-instruct"  # shut down 2026-03-09 -> gpt-oss-120b
TODAY = date(2026, 12, 1)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# -- the shipped calendar ------------------------------------------------------------------------------------


def test_the_package_calendar_holds_groqs_table_and_follows_replacements_to_a_live_model():
    calendar = load_calendar(None)
    assert calendar.sources == (str(PACKAGE_CALENDAR),)
    assert len(calendar) == 34
    mixtral = calendar.retirement_for(MIXTRAL, TODAY)
    assert (mixtral.shutdown, mixtral.named, mixtral.replacement) == (
        date(2025, 3, 20),
        ("llama-3.3-70b-versatile",),
        GPT_120B,
    )
    assert mixtral.source == "https://console.groq.com/docs/deprecations"  # the file's default source
    # gemma2 -> llama-3.1-8b-instant (gone 2026-08-16) -> gpt-oss-20b; the tier note travels with the entry.
    assert calendar.retirement_for("gemma2-9b-it", TODAY).replacement == GPT_20B
    assert calendar.entry("llama-3.1-8b-instant").tiers == "free and developer tiers; enterprise keys keep access"
    # A four-step chain through retired vision models still ends on a live one.
    assert calendar.retirement_for("llava-v1.5-7b-4096-preview", TODAY).replacement == GPT_120B
    assert calendar.retirement_for("groq/compound", TODAY).replacement is None  # Groq named none
    assert calendar.retirement_for(GPT_120B, TODAY) is None
    assert calendar.entries()[0].shutdown == date(2026, 9, 21)  # most recent first


def test_a_retirement_counts_from_its_shutdown_day_and_upcoming_ones_within_the_window():
    calendar = load_calendar(None)
    model = "qwen/qwen3.6-27b"  # shuts down 2026-09-14
    assert calendar.retirement_for(model, date(2026, 9, 13)) is None
    assert calendar.retirement_for(model, date(2026, 9, 14)).replacement == QWEN_NEXT
    soon = calendar.upcoming(model, date(2026, 9, 4), 10)
    assert (soon.shutdown, soon.replacement, soon.days_left(date(2026, 9, 4))) == (date(2026, 9, 14), QWEN_NEXT, 10)
    assert calendar.upcoming(model, date(2026, 9, 3), 10) is None  # 11 days away
    assert calendar.upcoming(model, date(2026, 9, 14), 10) is None  # already retired, not "upcoming"


def test_load_calendar_is_cached_per_file_version(tmp_path):
    assert load_calendar(None) is load_calendar(None)
    user = write(tmp_path / "mine.toml", '[models."acme/a"]\nshutdown = 2026-01-01\n')
    first = load_calendar(user)
    assert load_calendar(user) is first
    write(user, '[models."acme/a"]\nshutdown = 2026-02-01\nreplacement = "acme/b"\n')
    os.utime(user, ns=(1, 1))  # a different mtime even on coarse-clock file systems
    second = load_calendar(user)
    assert second is not first
    assert second.retirement_for("acme/a", TODAY).replacement == "acme/b"


# -- the user's file -----------------------------------------------------------------------------------------


def test_a_user_file_adds_overrides_and_cancels_entries(tmp_path):
    user = write(
        tmp_path / "deprecations.toml",
        f"""
source = "our vendor notice"
[models."{QWEN_NEXT}"]
shutdown = 2026-12-11
replacements = ["{GPT_120B}"]
[models."llama-3.3-70b-versatile"]
cancelled = true  # our enterprise key keeps it
[models."{MAVERICK}"]
shutdown = 2026-03-09
replacement = "acme/vision-live"
tiers = "all"
""",
    )
    calendar = load_calendar(user)
    assert calendar.sources == (str(PACKAGE_CALENDAR), str(user))
    assert len(calendar) == 34 + 1 - 1
    qwen = calendar.upcoming(QWEN_NEXT, TODAY, 30)
    assert (qwen.shutdown, qwen.replacement, qwen.source, calendar.entry(QWEN_NEXT).origin) == (
        date(2026, 12, 11),
        GPT_120B,
        "our vendor notice",
        str(user),
    )
    assert calendar.retirement_for("llama-3.3-70b-versatile", TODAY) is None
    # Mixtral's named replacement is now live again, so the chain stops there.
    assert calendar.retirement_for(MIXTRAL, TODAY).replacement == "llama-3.3-70b-versatile"
    assert calendar.retirement_for(MAVERICK, TODAY).replacement == "acme/vision-live"


def test_a_json_user_file_works_too(tmp_path):
    user = write(
        tmp_path / "deprecations.json",
        json.dumps({"models": {"acme/a": {"shutdown": "2026-11-30", "replacements": ["acme/b"], "note": "n"}}}),
    )
    retired = load_calendar(user).retirement_for("acme/a", TODAY)
    assert (retired.shutdown, retired.replacement, retired.note) == (date(2026, 11, 30), "acme/b", "n")


def test_replacement_cycles_end_without_hanging(tmp_path):
    user = write(
        tmp_path / "cycle.toml",
        """
[models."acme/a"]
shutdown = 2026-01-01
replacements = ["acme/b"]
[models."acme/b"]
shutdown = 2026-02-01
replacements = ["acme/a"]
[models."acme/c"]
shutdown = 2026-01-01
replacements = ["acme/d", "acme/e"]
[models."acme/d"]
shutdown = 2027-06-01
replacements = ["acme/c"]
[models."acme/e"]
shutdown = 2026-01-01
replacements = ["acme/f"]
""",
    )
    calendar = load_calendar(user)
    assert calendar.retirement_for("acme/a", TODAY).replacement is None  # every model of the loop is gone
    # acme/f has no shutdown at all: preferred over acme/d, which is up today but scheduled to go.
    assert calendar.retirement_for("acme/c", TODAY).replacement == "acme/f"
    assert calendar.replacement_for("acme/d", TODAY) == "acme/f"


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (
            '[models."acme/a"]\nshutdown = 2026-01-01\nreplacment = "acme/b"\n',
            'entry models."acme/a": unknown key(s) replacment',
        ),
        ('[models."acme/a"]\nshutdown = "next year"\n', 'entry models."acme/a": `shutdown` must be a date'),
        ('[models."acme/a"]\nshutdown = 2026-01-01T10:00:00\n', 'entry models."acme/a": `shutdown` must be a date'),
        ('[models."acme/a"]\nreplacements = []\n', 'entry models."acme/a": `shutdown` (a date'),
        (
            '[models."acme/a"]\nshutdown = 2026-01-01\nreplacements = "acme/a"\n',
            'entry models."acme/a": a model cannot be its own replacement',
        ),
        (
            '[models."acme/a"]\nshutdown = 2026-01-01\nreplacements = [1]\n',
            'entry models."acme/a": `replacements` must be a list of model ids',
        ),
        (
            '[models."acme/a"]\nshutdown = 2026-01-01\nreplacement = "x"\nreplacements = ["y"]\n',
            'entry models."acme/a": give either `replacement` or `replacements`',
        ),
        ('[model."acme/a"]\nshutdown = 2026-01-01\n', "unknown top-level key(s) model"),
        ('[models."acme/a"\nshutdown = 2026-01-01\n', "not valid TOML"),
    ],
)
def test_a_bad_user_file_is_a_config_error_naming_the_file_and_the_entry(tmp_path, text, complaint):
    user = write(tmp_path / "bad.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_calendar(user)
    assert str(caught.value).startswith(f"DEPRECATIONS_FILE={user}: ")
    assert complaint in str(caught.value)


def test_a_missing_user_file_fails_when_the_router_is_built(make_router, tmp_path):
    with pytest.raises(ConfigError, match=r"DEPRECATIONS_FILE=.*nowhere\.toml: cannot read it"):
        make_router(deprecations_file=tmp_path / "nowhere.toml")


# -- start-up warnings ---------------------------------------------------------------------------------------


def test_startup_warnings_name_each_retired_or_retiring_model_once(tmp_path, caplog):
    user = write(
        tmp_path / "soon.toml", f'[models."{QWEN_NEXT}"]\nshutdown = 2026-12-11\nreplacements = ["{GPT_120B}"]\n'
    )
    registry = {"chat": [GPT_120B, QWEN_NEXT, MIXTRAL], "legacy": [MIXTRAL], "fallback": [GPT_20B]}
    settings = load_settings(env_file=None, deprecations_file=user)
    with caplog.at_level(logging.WARNING, logger="taskrouter.deprecations"):
        lines = startup_warnings(registry, settings, TODAY)
    assert lines == [
        f"Deprecation radar: model={QWEN_NEXT} tasks=chat shuts down on 2026-12-11 (in 10 days); "
        f"replacement: {GPT_120B}",
        f"Deprecation radar: model={MIXTRAL} tasks=chat,legacy was shut down on 2025-03-20; "
        f"replacement: {GPT_120B}; skipped, not called (SKIP_RETIRED_MODELS=true)",
    ]
    assert [r.getMessage() for r in caplog.records] == lines
    # Outside the warning window, or with the window closed, the upcoming one is not mentioned.
    quiet = load_settings(env_file=None, deprecations_file=user, retirement_warning_days=9)
    assert [line.split()[2] for line in startup_warnings(registry, quiet, TODAY)] == [f"model={MIXTRAL}"]


def test_startup_warnings_cover_the_overrides_and_tolerate_a_broken_registry_entry():
    registry = {"chat": [GPT_120B], "broken": "not-a-list", "fallback": [GPT_20B]}
    settings = load_settings(
        env_file=None, force_model=MAVERICK, skip_retired_models=False, default_models={"DEFAULT_CHAT_MODEL": MIXTRAL}
    )
    lines = startup_warnings(registry, settings, TODAY)
    assert lines == [
        f"Deprecation radar: model={MAVERICK} tasks=chat was shut down on 2026-03-09; "
        f"replacement: {GPT_120B}; still called (SKIP_RETIRED_MODELS=false)",
        f"Deprecation radar: model={MIXTRAL} tasks=chat was shut down on 2025-03-20; "
        f"replacement: {GPT_120B}; still called (SKIP_RETIRED_MODELS=false)",
    ]


# -- the router, against the simulator ---------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_404_from_a_calendar_retired_model_is_logged_as_deprecated_with_its_replacement(
    make_router, sim, db_path, caplog, monkeypatch
):
    # Groq answers its 2026 retirements with a plain 404 model_not_found; the calendar tells it from a typo.
    sim.set_profile(MAVERICK, ModelProfile(retired="not_found", listed=False))
    sim.set_profile("acme/typo-model", ModelProfile(retired="not_found", listed=False))
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"vision": [MAVERICK, "acme/typo-model", GPT_120B]})
    router = make_router(skip_retired_models=False)
    with caplog.at_level(logging.WARNING, logger="taskrouter"):
        resp = await router.execute("vision", USER)
    assert resp.model_used == GPT_120B
    assert sim.calls(MAVERICK) == 1
    rows = logged_rows(db_path)
    assert [(r["model"], r["outcome"], r["error_kind"], r["status_code"]) for r in rows] == [
        (MAVERICK, "failure", "deprecated", 404),
        ("acme/typo-model", "failure", "not_found", 404),
        (GPT_120B, "success", None, None),
    ]
    assert f"replacement: {GPT_120B}" in rows[0]["error_message"]
    failure = next(
        r.getMessage()
        for r in caplog.records
        if r.getMessage().startswith("Model failure") and f"model={MAVERICK}" in r.getMessage()
    )
    assert "error_kind=deprecated status=404" in failure
    assert f"{MAVERICK} was shut down on 2026-03-09 per the deprecation calendar; replacement: {GPT_120B}" in failure
    status = logged_rows(db_path, "SELECT model, status, hits FROM model_status ORDER BY model")
    assert [(s["model"], s["status"], s["hits"]) for s in status] == [
        ("acme/typo-model", "not_found", 1),
        (MAVERICK, "deprecated", 1),
    ]


@pytest.mark.anyio
async def test_with_skip_retired_models_a_calendar_retired_model_is_never_called(
    make_router, sim, db_path, monkeypatch
):
    sim.set_profile(MIXTRAL, ModelProfile(retired="decommissioned", listed=False))
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": [MIXTRAL, GPT_120B]})
    router = make_router()
    assert router.settings.skip_retired_models is True  # the default
    resp = await router.execute("chat", USER)
    assert resp.model_used == GPT_120B and resp.fallback_used is True
    assert sim.calls(MIXTRAL) == 0
    skipped = logged_rows(db_path)[0]
    assert (skipped["model"], skipped["outcome"], skipped["error_kind"], skipped["status_code"]) == (
        MIXTRAL,
        "skipped",
        "deprecated",
        None,
    )
    assert skipped["error_message"] == (
        f"{MIXTRAL} was shut down on 2025-03-20 per the deprecation calendar; replacement: {GPT_120B} "
        "(SKIP_RETIRED_MODELS=true: not called)"
    )


@pytest.mark.anyio
async def test_a_400_decommissioned_is_deprecated_even_without_a_calendar_entry(make_router, sim, db_path, monkeypatch):
    sim.set_profile("acme/old", ModelProfile(retired="decommissioned", listed=False))
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {"chat": ["acme/old"]})
    router = make_router()
    with pytest.raises(AllModelsFailedError):
        await router.execute("chat", USER)
    row = logged_rows(db_path)[0]
    assert (row["outcome"], row["error_kind"], row["status_code"]) == ("failure", "deprecated", 400)


# -- stored checks (the dashboard's reader) ------------------------------------------------------------------


def test_latest_check_reads_what_save_check_stored(db_path):
    assert latest_check(db_path) is None  # no database yet, and none is created by reading
    assert not db_path.exists()
    for n, when in enumerate(["2026-11-20T10:00:00.000Z", "2026-11-21T10:00:00.000Z"]):
        save_check(
            db_path,
            {"checked_at": when, "exit_code": 2 * n, "errors": n, "warnings": 0, "summary": f"run {n}", "models": {}},
        )
    latest = latest_check(db_path)
    assert (latest.checked_at, latest.exit_code, latest.errors, latest.summary) == (
        "2026-11-21T10:00:00.000Z",
        2,
        1,
        "run 1",
    )
    assert latest.report["summary"] == "run 1"
    assert [c.summary for c in recent_checks(db_path)] == ["run 1", "run 0"]


def test_the_checks_migration_is_idempotent(db_path):
    open_database(db_path).conn.close()
    db = open_database(db_path)  # second open: nothing left to apply, nothing fails
    assert "checks" in db.table_names()
    db.conn.close()
    conn = sqlite3.connect(db_path)
    try:
        names = [r[0] for r in conn.execute("SELECT name FROM _taskrouter_migrations")]
    finally:
        conn.close()
    assert names.count("m003_deprecation_checks") == 1


def test_a_variants_chain_is_checked_as_the_router_builds_it():
    """`summarize:short` is the variant `short` of `summarize`: DEFAULT_SUMMARIZE_MODEL goes first, as it does
    for execute_task("summarize", variant="short")."""
    from app.config import load_settings
    from app.deprecations.usage import task_chain
    from app.registry.chain import build_chain

    registry = {"summarize": ["a"], "summarize:short": ["b"], "fallback": ["f"]}
    settings = load_settings(env_file=None, default_models={"DEFAULT_SUMMARIZE_MODEL": "ovr"})
    checked = [m.model for m in task_chain("summarize:short", registry, settings)]
    routed = [c.model for c in build_chain("summarize", registry, settings, "short").candidates]
    assert checked == routed == ["ovr", "b", "f"]

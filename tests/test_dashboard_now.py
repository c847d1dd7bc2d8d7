"""The top of Overview ("right now") and the Tasks page's overrides and audit trail, on seeded databases: verdicts
per task and per model against their usual error rate, overrides from the store and from the routers' forced rows
each with its source, shutdowns with their replacement, the last check; every change as an audit row."""

from __future__ import annotations

import contextlib
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from stores import insert_attempts
from test_dashboard import BIG, QWEN, RETIRED, SMALL, _row, frame, read, run_page

from app.deprecations import save_check
from app.store import open_database
from app.store.overrides import clear_overrides, set_override
from app.store.target import Target
from dashboard.queries import Health
from dashboard.verdict import DEGRADED, DOWN, IDLE, OK, model_verdict, task_verdict


def _texts(at: object, kind: str) -> list[str]:
    return [read(e.value) for e in getattr(at, kind)]


# -- the verdict rule ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "usual", "state"),
    [
        (Health(calls=100, failures=6), Health(calls=1000, failures=0), DEGRADED),  # 6 % against a usual 0 %
        (Health(calls=100, failures=6), Health(calls=1000, failures=30), OK),  # 6 % is that model's usual 3 % x 2
        (Health(calls=100, failures=7), Health(calls=1000, failures=30), DEGRADED),
        (Health(calls=100, failures=4), Health(), OK),  # below the 5 % floor, no history
        (Health(calls=3, failures=3), Health(calls=10, failures=0), DOWN),  # every call failing
        (Health(skipped=4), Health(calls=10), DOWN),  # only skipped: the router no longer calls it
        (Health(), Health(calls=10), IDLE),
    ],
)
def test_a_models_verdict_is_against_its_own_usual_rate(now: Health, usual: Health, state: str) -> None:
    assert model_verdict(now, usual).state == state


def test_a_tasks_verdict_counts_requests_no_model_answered() -> None:
    # Three calls failed but a fallback answered every request: the task is fine, whatever its models do.
    assert (
        task_verdict(Health(requests=10, answered=10, calls=13, failures=3), Health(requests=50, answered=50)).state
        == OK
    )
    down = task_verdict(Health(requests=4, answered=0, calls=8, failures=8), Health(requests=50, answered=50))
    assert (down.state, down.total, down.bad) == (DOWN, 4, 4)
    assert "every request failed" in down.reason


# -- Overview ------------------------------------------------------------------------------------------------


def _requests(store: Target, prefix: str, task: str, model: str, at: datetime, ok: int, failed: int) -> None:
    rows = [_row(f"{prefix}{i}", task, model, 1, "success", at, latency=100, tokens=10, cost=0.0001) for i in range(ok)]
    rows += [
        _row(f"{prefix}x{i}", task, model, 1, "failure", at, kind="server_error", status=503, latency=50)
        for i in range(failed)
    ]
    insert_attempts(store, rows)


@pytest.fixture
def recent_mix(seeded: Target) -> Target:
    """On top of the seeded rows (30 min and 30 h old): the day before, fast on the 20b fails 2 of 23 (8.7 %), the
    others never; in the last 10 minutes, fast fails 10 % (under its usual x 2: OK), reasoning on the 120b 20 %
    (degraded), summarization on qwen every time (down)."""
    now = datetime.now(UTC)
    day_before, recent = now - timedelta(hours=5), now - timedelta(minutes=10)
    _requests(seeded, "uf", "fast", SMALL, day_before, 18, 2)
    _requests(seeded, "ur", "reasoning", BIG, day_before, 20, 0)
    _requests(seeded, "us", "summarization", QWEN, day_before, 10, 0)
    _requests(seeded, "nf", "fast", SMALL, recent, 9, 1)
    _requests(seeded, "nr", "reasoning", BIG, recent, 8, 2)
    _requests(seeded, "ns", "summarization", QWEN, recent, 0, 3)
    return seeded


def test_overview_gives_a_verdict_per_task_and_per_model(recent_mix: Target) -> None:
    at = run_page("Overview")
    assert at.header[0].value == "Overview: right now"
    tasks = frame(at, "Task", "Verdict").set_index("Task")
    assert tasks["Verdict"].to_dict() == {"fast": OK, "reasoning": DEGRADED, "summarization": DOWN}
    assert tasks.loc["reasoning", "Requests"] == 10 and tasks.loc["reasoning", "Failed %"] == pytest.approx(20.0)
    assert tasks.loc["fast", "Usual %"] == pytest.approx(100 * 2 / 23)  # 2 of 20, and the seeded 3 answered
    models = frame(at, "Model", "Verdict").set_index("Model")
    assert models.loc[SMALL, "Verdict"] == OK
    assert models.loc[BIG, "Verdict"] == DEGRADED and "20.0% failed" in models.loc[BIG, "Why"]
    assert models.loc[QWEN, "Verdict"] == DOWN and models.loc[QWEN, "Why"] == "every call failed (3 of 3)"
    assert models.loc[RETIRED, "Verdict"] == IDLE
    headline = _texts(at, "error")[0]
    # The cause is in the same box as the verdict: each failing model with its most frequent kind, in words.
    assert headline == (
        f"Down: task summarization, model {QWEN}. Degraded: task reasoning, model {BIG}.  \n"
        f"Why: {QWEN}: 3 of 3 calls failed in the last 15 minutes, mostly provider error (3).\n"
        f"Why: {BIG}: 2 of 10 calls failed in the last 15 minutes, mostly provider error (2)."
    )
    assert any("Last attempt" in c and "min ago" in c for c in _texts(at, "caption"))


def test_retries_and_hedges_at_the_first_position_are_not_counted_as_requests(seeded: Target) -> None:
    """Under FORCE_MODEL every call is at position 1: three requests whose first calls failed and whose retries (or
    a hedge of the same model) answered are three answered requests, not six requests with half failed."""
    at = datetime.now(UTC) - timedelta(minutes=5)
    rows = []
    for i in range(3):
        rows.append(
            {
                **_row(f"rr{i}", "fast", SMALL, 1, "failure", at, kind="server_error", status=500, latency=20),
                "retry": 0,
                "hedged": 0,
                "forced": 1,
            }
        )
        rows.append(
            {
                **_row(f"rr{i}", "fast", SMALL, 1, "success", at, latency=90, tokens=10, cost=0.0001),
                "retry": 1,
                "hedged": int(i == 2),
                "forced": 1,
            }
        )
    insert_attempts(seeded, rows)
    tasks = frame(run_page("Overview"), "Task", "Verdict").set_index("Task")
    assert tasks.loc["fast", "Requests"] == 3 and tasks.loc["fast", "Failed %"] == pytest.approx(0.0)
    assert tasks.loc["fast", "Verdict"] == OK


def test_with_no_recent_traffic_it_says_so_and_when_the_last_attempt_was(seeded: Target) -> None:
    at = run_page("Overview")
    assert "No traffic in the last 15 minutes." in _texts(at, "warning")
    assert any("Last attempt 29 min ago" in c or "Last attempt 30 min ago" in c for c in _texts(at, "caption"))
    assert set(frame(at, "Task", "Verdict")["Verdict"]) == {IDLE}


def test_overrides_from_the_store_and_from_forced_rows_are_shown_with_their_source(
    seeded: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    insert_attempts(
        seeded,
        [
            {
                **_row(
                    f"f{i}", "fast", QWEN, 1, "success", now - timedelta(minutes=3), latency=50, tokens=5, cost=0.001
                ),
                "forced": 1,
                "override_source": "FORCE_MODEL",
                "retry": 0,
            }
            for i in range(3)
        ],
    )
    with contextlib.closing(open_database(seeded).conn) as conn:
        set_override(conn, "force", BIG, task="reasoning", ttl_seconds=1800, reason="incident 42", by="ops@host")
        set_override(conn, "force", SMALL, ttl_seconds=-60, by="ops@host")  # expired a minute ago: not in effect
    monkeypatch.setenv("DEFAULT_SUMMARIZATION_MODEL", SMALL)
    at = run_page("Overview")
    errors = _texts(at, "error")
    store = [e for e in errors if "runtime force #1" in e]
    assert store == [
        f"Override **runtime force #1**, known from the store: reasoning calls **{BIG}** only, with no "
        "fallback; no attempt under it in the last 15 minutes. Until " + store[0].split(" Until ")[1]
    ]
    # Until when, and how long that is from now; who set it and why.
    assert re.search(r"Until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in (29|30) min\); set by ops@host ", store[0])
    assert store[0].endswith("; reason: incident 42.")
    detected = [e for e in errors if "FORCE_MODEL" in e]
    assert len(detected) == 1 and detected[0].startswith(
        f"Override **FORCE_MODEL**, known from the routers' attempts: fast calls **{QWEN}** only, with no fallback; "
        "3 attempts under it in the last 15 minutes"
    )
    assert not any("#2" in e for e in errors)
    env = [w for w in _texts(at, "warning") if "DEFAULT_SUMMARIZATION_MODEL" in w]
    assert env == [
        f"Override **DEFAULT_SUMMARIZATION_MODEL**, known from this dashboard's environment; a router's "
        f"own may differ: **{SMALL}** goes first for summarization; no attempt under it in the last 15 "
        "minutes."
    ]
    assert any(c.startswith("Precedence, highest first: runtime force for the task") for c in _texts(at, "caption"))


def test_an_upcoming_shutdown_and_the_last_check_on_overview(
    seeded: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    soon = (datetime.now(UTC) + timedelta(days=12)).date()
    calendar = tmp_path / "calendar.toml"
    calendar.write_text(
        f'[models."{BIG}"]\nshutdown = {soon.isoformat()}\nreplacements = ["{QWEN}"]\n'
        f'[models."{RETIRED}"]\nshutdown = 2025-01-01\nreplacements = ["{SMALL}"]\n'
    )
    monkeypatch.setenv("DEPRECATIONS_FILE", str(calendar))
    save_check(
        seeded,
        {
            "checked_at": (datetime.now(UTC) - timedelta(hours=3))
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "exit_code": 2,
            "errors": 1,
            "warnings": 0,
            "summary": "1 error, 0 warnings across 3 models in 3 tasks",
            "models": {},
            "problems": [],
        },
    )
    at = run_page("Overview")
    warnings = _texts(at, "warning")
    shutdown = [w for w in warnings if w.startswith(f"**{BIG}** shuts down")]
    assert shutdown == [
        f"**{BIG}** shuts down on {soon.isoformat()} (in 12 days), used by reasoning, summarization; "
        f"replacement: {QWEN} (usable, cooling down right now)."
    ]
    # A model the router found retired names its replacement too.
    assert any(w.startswith(f"**{RETIRED}** is deprecated") and f"replacement: {SMALL}" in w for w in warnings)
    assert any(
        e.startswith("Last taskrouter check 3.0 h ago: 1 error, 0 warnings") and "exit code 2" in e
        for e in _texts(at, "error")
    )


def test_settings_errors_are_red_on_overview(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BREAKER_MIN_CALLS", "500")
    at = run_page("Overview")
    assert any(e.startswith("The settings do not load") and "BREAKER_MIN_CALLS" in e for e in _texts(at, "error"))
    assert not any("settings do not load" in w for w in _texts(at, "warning"))


# -- Tasks: overrides in the chains, and the audit trail -----------------------------------------------------


def test_tasks_page_shows_store_overrides_in_the_chains_and_every_change(seeded: Target) -> None:
    with contextlib.closing(open_database(seeded).conn) as conn:
        set_override(conn, "default", QWEN, task="summarization", reason="try qwen", by="ops@host")
        set_override(conn, "disable", SMALL, reason="flaky", by="ops@host")
        set_override(conn, "force", BIG, task="fast", reason="incident 42", by="ops@host", via="dashboard")
        clear_overrides(conn, kind="disable", reason="better now", by="lead@host")
    at = run_page("Tasks")
    chains = frame(at, "Effective now").set_index("Task")
    assert chains.loc["fast", "Effective now"] == BIG and chains.loc["fast", "Because of"] == "runtime force #3"
    assert chains.loc["summarization", "Effective now"].startswith(f"{QWEN} → ")
    assert chains.loc["summarization", "Because of"] == "runtime default #1"
    assert chains.loc["reasoning", "Changed"] == ""
    assert any(e.startswith(f"**runtime force #3** is active: fast calls **{BIG}** only") for e in _texts(at, "error"))
    overrides = frame(at, "Override", "Undo with").set_index("Override")
    assert list(overrides.index) == ["runtime default #1", "runtime force #3"]  # the disable was cleared
    assert overrides.loc["runtime force #3", "Undo with"] == 'taskrouter override end 3 --reason "why"'
    audit = frame(at, "Who", "Action")
    assert list(audit["Action"]) == ["disable cleared", "force set", "disable set", "default set"]
    assert list(audit["Who"]) == ["lead@host", "ops@host", "ops@host", "ops@host"]
    assert list(audit["Why"]) == ["better now", "incident 42", "flaky", "try qwen"]
    assert list(audit["Via"]) == ["cli", "dashboard", "cli", "cli"]
    assert audit["Model"][0] == SMALL and audit["Task"][1] == "fast"


def test_tasks_page_without_changes_says_so(seeded: Target) -> None:
    at = run_page("Tasks")
    assert "No change recorded in this database." in [i.value for i in at.info]

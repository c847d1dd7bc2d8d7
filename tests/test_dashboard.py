"""The ops dashboard, page by page, through Streamlit's AppTest on a seeded database: the numbers it shows, the
empty state, the override banners, and that it neither writes to the database nor shows a secret."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from stores import digest, execute, insert, insert_attempts
from streamlit.testing.v1 import AppTest

from app.core import ai_models
from app.store import open_database
from app.store.target import Target
from dashboard import fmt

APP = Path(__file__).resolve().parents[1] / "dashboard" / "main.py"
SMALL, BIG, QWEN = "openai/gpt-oss-20b", "openai/gpt-oss-120b", "qwen/qwen3.8-27b"
RETIRED = "legacy/retired-model"
SECRET = "gsk_dashboard_test_SECRET_0123456789"
# The tests' own registry: the shipped one changes as models come and go.
REGISTRY = {"fast": [SMALL], "reasoning": [BIG, QWEN], "summarization": [SMALL, BIG], "fallback": [SMALL]}


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _row(
    request: str,
    task: str,
    model: str,
    attempt: int,
    outcome: str,
    at: datetime,
    *,
    kind: str | None = None,
    status: int | None = None,
    latency: float | None = None,
    tokens: int | None = None,
    cost: float | None = None,
) -> dict[str, Any]:
    return {
        "request_id": request,
        "task_type": task,
        "model": model,
        "provider": "groq",
        "attempt": attempt,
        "outcome": outcome,
        "error_kind": kind,
        "status_code": status,
        "error_message": f"{kind} happened" if kind else None,
        "is_fallback": 0,
        "forced": 0,
        "prompt_tokens": tokens,
        "completion_tokens": 0 if tokens else None,
        "total_tokens": tokens,
        "latency_ms": latency,
        "cost_usd": cost,
        "created_at": _iso(at),
    }


def seed_database(store: Target, now: datetime | None = None) -> None:
    """Six requests in the last hour, two more 30 hours ago (the previous period of "Last 24 hours").

    In range: 6 requests, 5 answered (83.3%), 2 of them by the 2nd model (fallback rate 40.0%); answer latencies
    100..500 ms (p50 300, p95 500); 500 tokens; $0.009. Calls: 20b 4 (75% ok), 120b 3, qwen 2, retired 1 + 1 skip.
    """
    now = now or datetime.now(UTC)
    t = now - timedelta(minutes=30)
    old = now - timedelta(hours=30)
    rows = [
        _row("r1", "fast", SMALL, 1, "success", t, latency=100, tokens=100, cost=0.001),
        _row("r2", "fast", SMALL, 1, "success", t, latency=200, tokens=100, cost=0.001),
        _row("r3", "fast", SMALL, 1, "success", t, latency=300, tokens=100, cost=0.001),
        _row("r4", "reasoning", BIG, 1, "failure", t, kind="rate_limited", status=429, latency=50, cost=0.0),
        _row("r4", "reasoning", QWEN, 2, "success", t, latency=400, tokens=100, cost=0.004),
        _row("r5", "reasoning", RETIRED, 1, "failure", t, kind="deprecated", status=404, latency=40),
        _row("r5", "reasoning", BIG, 2, "success", t, latency=500, tokens=100, cost=0.002),
        _row("r6", "reasoning", RETIRED, 1, "skipped", t + timedelta(minutes=1), kind="deprecated"),
        _row(
            "r6",
            "reasoning",
            BIG,
            2,
            "failure",
            t + timedelta(minutes=1),
            kind="server_error",
            status=503,
            latency=60,
            cost=0.0,
        ),
        _row("r6", "reasoning", QWEN, 3, "failure", t + timedelta(minutes=1), kind="timeout", latency=2000, cost=0.0),
        _row("r6", "reasoning", SMALL, 4, "failure", t + timedelta(minutes=1), kind="timeout", latency=2000, cost=0.0),
        _row("p1", "fast", SMALL, 1, "success", old, latency=100, tokens=10, cost=0.0001),
        _row("p2", "fast", SMALL, 1, "success", old, latency=100, tokens=10, cost=0.0001),
    ]
    insert_attempts(store, rows)
    insert(
        store,
        "model_status",
        {
            "model": RETIRED,
            "status": "deprecated",
            "detail": "model_decommissioned",
            "until": None,
            "first_seen": _iso(t),
            "last_seen": _iso(t + timedelta(minutes=1)),
            "hits": 2,
        },
    )
    insert(
        store,
        "model_status",
        {
            "model": QWEN,
            "status": "cooling_down",
            "detail": "rate limited",
            "until": _iso(now + timedelta(minutes=10)),
            "first_seen": _iso(t),
            "last_seen": _iso(t),
            "hits": 1,
        },
    )


def run_page(page: str, **query: str | list[str]) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=30)
    at.query_params["page"] = page
    for name, value in query.items():
        at.query_params[name] = value
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def frame(at: AppTest, *columns: str) -> pd.DataFrame:
    """The table holding all these columns (AppTest does not expose a plain dataframe's key)."""
    found = [d.value for d in at.dataframe if set(columns) <= set(d.value.columns)]
    assert found, f"no table with columns {columns}"
    return found[0]


def read(markdown: str) -> str:
    """What a reader sees of Markdown whose values went through fmt.plain: no escapes, no word joiners."""
    return re.sub(r"\\(.)", r"\1", markdown, flags=re.S).replace(fmt.WORD_JOINER, "")


def texts(at: AppTest) -> str:
    """Everything a user can read on the page, tables included."""
    parts = [
        e.value
        for kind in (
            "title",
            "header",
            "subheader",
            "markdown",
            "caption",
            "info",
            "warning",
            "error",
            "success",
            "code",
        )
        for e in getattr(at, kind)
    ]
    parts += [f"{m.label} {m.value}" for m in at.metric]
    parts += [d.value.to_csv() for d in at.dataframe]
    return "\n".join(str(p) for p in parts)


# -- pages ---------------------------------------------------------------------------------------------------


def test_overview_shows_the_numbers_and_the_change(seeded: Target) -> None:
    at = run_page("Overview")
    shown = metrics(at)
    assert shown["Requests"] == "6"
    assert shown["Success rate"] == "83.3%"
    assert shown["Fallback rate"] == "40.0%"
    assert shown["Failed attempts"] == "5"
    assert (shown["Latency p50"], shown["Latency p95"], shown["Latency p99"]) == ("300 ms", "500 ms", "500 ms")
    assert shown["Tokens"] == "500"
    assert shown["Cost"] == "$0.0090"
    deltas = {m.label: m.delta for m in at.metric}
    assert deltas["Requests"] == "+200.0%"  # 6 against 2 in the previous 24 hours
    assert deltas["Success rate"] == "-16.7 pp"


def test_overview_all_time_and_the_attention_list(seeded: Target) -> None:
    at = run_page("Overview", range="All time")
    assert metrics(at)["Requests"] == "8"
    assert metrics(at)["Success rate"] == "87.5%"
    warnings = " ".join(w.value for w in at.warning)
    assert f"**{fmt.plain(RETIRED)}** is deprecated" in warnings
    assert f"**{fmt.plain(QWEN)}** is cooling down" in warnings


def test_models_page_per_model_numbers_and_state(seeded: Target) -> None:
    at = run_page("Models")
    models = frame(at, "Share %").set_index("Model")
    assert models.loc[SMALL, "Calls"] == 4
    assert models.loc[SMALL, "Success %"] == pytest.approx(75.0)
    assert models.loc[SMALL, "Share %"] == pytest.approx(40.0)
    assert models.loc[SMALL, "p50 ms"] == 200
    assert models.loc[BIG, "Calls"] == 3
    assert models.loc[BIG, "Success %"] == pytest.approx(100 / 3)
    assert models.loc[RETIRED, "State"] == "deprecated"
    assert models.loc[RETIRED, "Skipped"] == 1
    assert models.loc[QWEN, "State"] == "cooling down"
    assert "until" in models.loc[QWEN, "Detail"]
    assert models.loc[SMALL, "State"] == "healthy"
    kinds = frame(at, "Model", "rate_limited").set_index("Model")
    assert kinds.loc[SMALL, "timeout"] == 1
    assert kinds.loc[BIG, "rate_limited"] == 1 and kinds.loc[BIG, "server_error"] == 1


def test_a_lost_hedge_or_a_cancelled_call_is_not_a_failure_of_the_model(seeded: Target) -> None:
    t = datetime.now(UTC) - timedelta(minutes=20)
    insert_attempts(
        seeded,
        [
            _row("h1", "reasoning", BIG, 1, "failure", t, kind="hedge_lost", latency=400),
            _row("h1", "reasoning", SMALL, 2, "success", t, latency=90, tokens=10, cost=0.0001),
            _row("c1", "fast", BIG, 1, "failure", t, kind="cancelled", latency=30),
        ],
    )
    models = frame(run_page("Models"), "Cut short").set_index("Model")
    # As before the two cut-short calls: 1 answer and 2 failures of its own, and the same success rate.
    assert (models.loc[BIG, "Failed"], models.loc[BIG, "Cut short"], models.loc[BIG, "Calls"]) == (2, 2, 3)
    assert models.loc[BIG, "Success %"] == pytest.approx(100 / 3)
    assert "hedge_lost" not in models.loc[BIG, "Top failure kinds"]
    assert metrics(run_page("Overview"))["Failed attempts"] == "5"  # as before the two cut-short calls


def test_a_marks_detail_from_the_provider_shows_as_typed_not_as_markdown(seeded: Target) -> None:
    hostile = "rate limited: see [docs](https://evil.example) **now** <img src=x> $x$"
    execute(seeded, "UPDATE model_status SET detail = ? WHERE model = ?", (hostile, QWEN))
    for page in ("Models", "Overview"):
        warnings = " ".join(w.value for w in run_page(page).warning)
        escaped = r"\[docs\]\(https" + fmt.WORD_JOINER + r"\:\/\/evil\.example\) \*\*now\*\* \<img src\=x\> \$x\$"
        assert escaped in warnings, page
        assert "[docs](https://evil.example)" not in warnings and "**now**" not in warnings
        assert hostile in read(warnings), page


def test_models_page_follows_the_model_filter(seeded: Target) -> None:
    at = run_page("Models")
    at.sidebar.multiselect(key="model").set_value([BIG]).run()
    assert list(frame(at, "Share %")["Model"]) == [BIG]
    at.sidebar.radio(key="page").set_value("Overview").run()
    shown = metrics(at)
    assert shown["Requests"] == "3"  # r4, r5 and r6 reached the 120b model
    assert shown["Success rate"] == "33.3%"


def test_tasks_page_chains_and_fallback_depth(seeded: Target) -> None:
    at = run_page("Tasks")
    assert not at.error and not at.warning  # no override active
    chains = frame(at, "Effective now").set_index("Task")
    assert chains.loc["reasoning", "Effective now"] == f"{BIG} → {QWEN} → {SMALL} (fallback)"
    depth = frame(at, "Answered").set_index("Task")
    assert depth.loc["fast", "Requests"] == 3 and depth.loc["fast", "1st %"] == pytest.approx(100.0)
    assert depth.loc["reasoning", "Requests"] == 3
    assert depth.loc["reasoning", "Success %"] == pytest.approx(200 / 3)
    assert depth.loc["reasoning", "2nd %"] == pytest.approx(100.0)


def test_the_task_filter_narrows_every_table(seeded: Target) -> None:
    at = run_page("Tasks")
    at.sidebar.multiselect(key="task").set_value(["fast"]).run()
    assert list(frame(at, "Effective now")["Task"]) == ["fast"]
    assert list(frame(at, "Answered")["Task"]) == ["fast"]
    at.sidebar.radio(key="page").set_value("Models").run()
    models = frame(at, "Share %").set_index("Model")
    assert list(models.index) == [SMALL]  # fast's traffic and chain; qwen cools down elsewhere
    assert models.loc[SMALL, "Calls"] == 3 and models.loc[SMALL, "Success %"] == pytest.approx(100.0)


def test_tasks_page_force_model_banner(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORCE_MODEL", QWEN)
    at = run_page("Tasks")
    banner = " ".join(e.value for e in at.error)
    assert "FORCE_MODEL is set in this dashboard's environment" in read(banner) and QWEN in read(banner)
    chains = frame(at, "Effective now").set_index("Task")
    assert chains.loc["fast", "Effective now"] == QWEN
    assert chains.loc["fast", "Configured chain"] == SMALL  # fast's own list is the fallback list
    assert chains.loc["fast", "Changed"] == "yes"


def test_tasks_page_default_model_banner(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEFAULT_SUMMARIZATION_MODEL", QWEN)
    at = run_page("Tasks")
    assert any("DEFAULT_SUMMARIZATION_MODEL is set" in read(w.value) and QWEN in read(w.value) for w in at.warning)
    assert not any("no effect" in w.value for w in at.warning)  # nothing forces every task
    chains = frame(at, "Effective now").set_index("Task")
    assert chains.loc["summarization", "Effective now"].startswith(f"{QWEN} → ")
    assert chains.loc["fast", "Changed"] == ""


def test_deprecations_page_lists_the_runtime_evidence(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ai_models.MODEL_REGISTRY, "reasoning", [RETIRED, BIG, QWEN])
    at = run_page("Deprecations")
    runtime = frame(at, "Requests affected").set_index("Model")
    assert list(runtime.index) == [RETIRED]
    assert runtime.loc[RETIRED, "Status"] == "deprecated"
    assert runtime.loc[RETIRED, "Requests affected"] == 2  # the failed call in r5 and the skip in r6
    assert runtime.loc[RETIRED, "Still listed by"] == "reasoning"
    assert any(RETIRED in read(e.value) and "still in MODEL_REGISTRY" in e.value for e in at.error)
    assert "Scheduled shutdowns (deprecation calendar)" in [s.value for s in at.subheader]


def test_deprecations_page_scheduled_shutdowns(seeded: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    soon = (datetime.now(UTC) + timedelta(days=10)).date().isoformat()
    calendar = tmp_path / "calendar.toml"
    calendar.write_text(f'[models."{BIG}"]\nshutdown = {soon}\nreplacements = ["{QWEN}"]\n')
    monkeypatch.setenv("DEPRECATIONS_FILE", str(calendar))
    at = run_page("Deprecations")
    scheduled = frame(at, "Days left").set_index("Model")
    assert scheduled.loc[BIG, "Shutdown"] == soon
    assert scheduled.loc[BIG, "Days left"] == 10
    assert scheduled.loc[BIG, "Replacement"] == QWEN
    assert scheduled.loc[BIG, "When"] == "within 30 days"
    assert any(BIG in read(w.value) and "shuts down on" in w.value for w in at.warning)


def test_deprecations_page_shows_the_latest_check(seeded: Target) -> None:
    from app.deprecations import save_check

    summary = "1 error, 0 warnings across 3 models in 3 tasks"
    save_check(
        seeded,
        {
            "checked_at": "2026-01-01T00:00:00.000Z",
            "exit_code": 0,
            "errors": 0,
            "warnings": 0,
            "summary": "healthy",
            "models": {},
            "problems": [],
        },
    )
    save_check(
        seeded,
        {
            "checked_at": _iso(datetime.now(UTC)),
            "exit_code": 2,
            "errors": 1,
            "warnings": 0,
            "summary": summary,
            "problems": [],
            "models": {
                BIG: {"problems": [{"severity": "error", "source": "live", "message": "not listed by GET /models"}]}
            },
        },
    )
    at = run_page("Deprecations")
    assert any(summary in read(e.value) and "exit code 2" in e.value for e in at.error)
    problems = frame(at, "Severity", "Problem")
    assert problems.to_dict("records") == [
        {"Model": BIG, "Severity": "error", "Source": "live", "Problem": "not listed by GET /models"}
    ]


def test_failures_page_lists_and_filters(seeded: Target) -> None:
    at = run_page("Failures")
    failures = frame(at, "Message")
    assert list(failures.columns) == [  # what is read first comes first: 1280 px show the kind and the message
        "UTC",
        "Error kind",
        "Message",
        "Model",
        "Task",
        "Status",
        "Position",
        "Outcome",
        "Latency (ms)",
        "Request",
        "Attempts",
    ]
    assert len(failures) == 5
    assert failures["UTC"].is_monotonic_decreasing  # newest first
    # r6 failed on three models, the latest request; each row links to its drill-down
    assert list(failures["Request"][:3]) == ["r6"] * 3
    assert list(failures["Attempts"][:3]) == ["?page=Request&request=r6"] * 3
    assert set(failures["Error kind"]) == {"rate limited", "model retired", "provider error", "timed out"}
    assert list(failures["Status"].dropna()) == [503, 404, 429]
    at.multiselect(key="kind").set_value(["timed out"]).run()
    assert len(frame(at, "Message")) == 2
    at.toggle(key="skips").set_value(True).run()
    at.multiselect(key="kind").set_value(["model retired"]).run()
    rows = frame(at, "Message")
    assert sorted(rows["Outcome"]) == ["failure", "skipped"]
    at.sidebar.multiselect(key="task").set_value(["fast"]).run()
    assert any("No failures" in s.value for s in at.success)


def test_failures_filters_come_from_the_url_and_survive_a_page_switch(seeded: Target) -> None:
    at = run_page("Failures", kind="timed out", skips="true", limit="500")
    assert at.multiselect(key="kind").value == ["timed out"]
    assert at.toggle(key="skips").value is True and at.selectbox(key="limit").value == 500
    assert set(frame(at, "Message")["Error kind"]) == {"timed out"}
    at.multiselect(key="kind").set_value(["provider error"]).run()
    at.sidebar.radio(key="page").set_value("Models").run()
    at.sidebar.radio(key="page").set_value("Failures").run()
    assert at.multiselect(key="kind").value == ["provider error"]
    assert set(frame(at, "Message")["Error kind"]) == {"provider error"}


def test_custom_dates_come_from_the_url_and_survive_a_page_switch(seeded: Target) -> None:
    day = (datetime.now(UTC) - timedelta(hours=30)).date().isoformat()
    at = run_page("Overview", range="Custom dates", days=[day, day])
    assert metrics(at)["Requests"] == "2"  # that day (UTC) only: the two requests 30 hours ago
    at.sidebar.radio(key="page").set_value("Models").run()
    at.sidebar.radio(key="page").set_value("Overview").run()
    assert metrics(at)["Requests"] == "2"


# -- empty, read-only, secrets -------------------------------------------------------------------------------


def test_missing_database_shows_the_empty_state_and_creates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "nothing-here.db"
    monkeypatch.setenv("ATTEMPTS_DB_PATH", str(missing))  # no --db: the router's own setting is used
    at = run_page("Overview")
    assert "taskrouter demo" in [c.value for c in at.code]
    assert str(missing) in read(at.info[0].value)
    assert not missing.exists()


@pytest.mark.parametrize("kind", ["not a database", "a folder"])
def test_an_unusable_database_file_is_named_with_what_is_wrong_and_what_to_do(
    kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "attempts.db"
    if kind == "a folder":
        path.mkdir()
    else:
        path.write_bytes(b"[Click to fix](http://127.0.0.1:9/x) is not a database\n" * 50)
    before = path.read_bytes() if path.is_file() else None
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", str(path))
    at = run_page("Overview")
    shown = read(at.error[0].value)
    assert str(path) in shown and ("not a SQLite database" in shown or "folder, not a database file" in shown)
    assert "Move the damaged file aside" in shown or "Set ATTEMPTS_DB_PATH to a file path" in shown
    assert not at.dataframe
    assert before is None or path.read_bytes() == before


def test_empty_database_shows_the_empty_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "empty.db"
    open_database(path).conn.close()
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", str(path))
    at = run_page("Models")
    assert "No attempts recorded yet" in at.info[0].value
    assert "taskrouter demo" in [c.value for c in at.code]
    assert not at.dataframe


@pytest.mark.slow
def test_never_writes_and_never_shows_a_secret(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", SECRET)
    monkeypatch.setenv("FORCE_MODEL", SMALL)
    before = digest(seeded)
    for page in ("Overview", "Models", "Tasks", "Deprecations", "Failures", "Request"):
        at = run_page(page, range="All time")
        assert SECRET not in texts(at), page
        assert "GROQ_API_KEY" not in texts(at), page
    assert digest(seeded) == before


def test_custom_dates_and_auto_refresh(seeded: Target) -> None:
    at = run_page("Overview")
    at.sidebar.selectbox(key="range").set_value("Custom dates").run()  # default: the last 7 days, today included
    assert metrics(at)["Requests"] == "8"
    at.sidebar.toggle(key="refresh").set_value(True).run()
    assert not at.exception
    assert metrics(at)["Requests"] == "8"


def test_bad_settings_are_reported_without_their_values(seeded: Target, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_BASE_URL", "ftp://user:hunter2@example.invalid")
    at = run_page("Tasks")
    shown = " ".join(e.value for e in at.error)
    assert "GROQ_BASE_URL" in read(shown) and "hunter2" not in texts(at)
    assert frame(at, "Answered").set_index("Task").loc["fast", "Requests"] == 3  # the traffic is still shown


def test_a_range_without_traffic_says_so(seeded: Target) -> None:
    at = run_page("Overview", range="Last hour")
    assert metrics(at)["Requests"] == "6"
    at.sidebar.multiselect(key="task").set_value(["summarization"]).run()
    assert any("No attempts in this range" in i.value for i in at.info)


# -- the command ---------------------------------------------------------------------------------------------


def test_command_runs_streamlit_on_loopback_without_telemetry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from app.cli import main

    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.setattr(os, "execve", lambda exe, argv, env: calls.append((exe, argv, env)))
    monkeypatch.setenv("ATTEMPTS_DB_PATH", "relative.db")
    assert main(["dashboard", "--port", "8611"]) == 0
    ((_, argv, env),) = calls
    assert argv[argv.index("--server.address") + 1] == "127.0.0.1"
    assert argv[argv.index("--server.port") + 1] == "8611"
    assert argv[argv.index("--browser.gatherUsageStats") + 1] == "false"
    assert argv[argv.index("--server.headless") + 1] == "true"
    assert Path(argv[argv.index("run") + 1]) == APP.with_name("serve.py")  # main.py behind the Host guard
    assert env["TASKROUTER_DASHBOARD_DB"] == str(tmp_path / "relative.db")  # absolute: Streamlit may chdir
    assert env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false"

"""The first screen at night (issue 25): the cause beside the verdict, what is forced or disabled and until when,
the budget and when it runs out, the next shutdown and whether its replacement is usable, which model got slower,
and one vocabulary across pages. On tests/night_store.py's store, through Streamlit's AppTest; the real browser
asks the same questions in tests/test_dashboard_browser.py."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from night_store import BUDGET, FAILED_REQUEST, LONG_MESSAGE, seed_night
from stores import dashboard_db, insert_attempts
from streamlit.proto.Metric_pb2 import Metric
from streamlit.testing.v1 import AppTest
from test_dashboard import BIG, QWEN, REGISTRY, SMALL, _row, frame, read, run_page

from app.core import ai_models
from dashboard import fmt, words
from dashboard.budget import BudgetToday, runs_out_text
from dashboard.queries import Latency
from dashboard.verdict import SLOWER_MIN_CALLS, Force, forced_but_unusable, pace
from dashboard.views import failures
from dashboard.views.now import replacement_note


def _point_at(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    db = folder / "night.db"
    calendar = folder / "calendar.toml"
    seed_night(db, calendar)
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", dashboard_db(db))
    monkeypatch.setenv("DAILY_BUDGET_USD", BUDGET)
    monkeypatch.setenv("DEPRECATIONS_FILE", str(calendar))
    monkeypatch.setattr(ai_models, "MODEL_REGISTRY", {k: list(v) for k, v in REGISTRY.items()})
    return db


@pytest.fixture
def night(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return _point_at(tmp_path, monkeypatch)


@pytest.fixture(scope="module")
def overview(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppTest]:
    """Overview on the night, drawn once: the tests below read different parts of the same page."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        _point_at(tmp_path_factory.mktemp("night"), monkeypatch)
        yield run_page("Overview")


def _texts(at: object, kind: str) -> list[str]:
    return [read(e.value) for e in getattr(at, kind)]


def test_the_verdict_says_why_beside_it(overview: AppTest) -> None:
    at = overview
    headline = _texts(at, "error")[0]
    assert headline.startswith("Down: task fast, task reasoning, task summarization, model ")
    why = [line for line in headline.split("\n") if line.startswith("Why: ")]
    assert why[0].startswith(
        f"Why: The only forced model for every task, {BIG} (runtime force #1), has its circuit open (skipped until "
    )
    assert why[0].endswith(": nothing can answer every task. End the force or lift the mark.")
    assert re.search(r"\(in (29|30) min\): 5 failures in a row\)", why[0])


def test_forced_and_disabled_say_until_when_and_a_disabled_model_reads_disabled(night: Path) -> None:
    at = run_page("Overview")
    force = [e for e in _texts(at, "error") if e.startswith("Override **runtime force #1**")]
    assert len(force) == 1 and re.search(r"Until \S+ \S+ UTC \(in (29|30) min\); set by dana ", force[0])
    assert force[0].endswith("reason: incident 7.")
    disabled = [w for w in _texts(at, "warning") if w.startswith("Override **runtime disable #2**")]
    assert len(disabled) == 1 and f"**{QWEN}** is taken out of rotation" in disabled[0]
    assert re.search(r"\(in (2\.0 h|120 min|119 min)\); set by sam ", disabled[0])
    models = frame(at, "Model", "Verdict").set_index("Model")
    assert models.loc[QWEN, "Verdict"] == words.DISABLED  # not "idle"
    assert models.loc[QWEN, "Why"].startswith("taken out of rotation by sam until ")
    # The same word on the Models page, and in its warning.
    listed = frame(run_page("Models"), "State").set_index("Model")
    assert listed.loc[QWEN, "State"] == words.DISABLED
    assert listed.loc[BIG, "State"] == words.CIRCUIT_OPEN


def test_the_budget_says_when_it_runs_out_past_the_alert_level(night: Path) -> None:
    at = run_page("Overview")
    budget = [w for w in _texts(at, "warning") if w.startswith("Daily budget")]
    assert len(budget) == 1
    assert "$0.8500 of $1.0000 spent today (UTC), 85%" in budget[0]
    assert re.search(r"At this rate it runs out at about \d\d:\d\d UTC \(in \d+ (min|s)\)\.", budget[0])
    assert budget[0].endswith("Alert level reached (BUDGET_ALERT_RATIO 80%).")
    # Above every other page too.
    banner = [w for w in _texts(run_page("Models"), "warning") if w.startswith("Daily budget")]
    assert len(banner) == 1 and re.search(r"At this rate it runs out at about \d\d:\d\d UTC", banner[0])


def test_a_shutdown_with_a_disabled_replacement_is_flagged(overview: AppTest) -> None:
    at = overview
    shutdown = [e for e in _texts(at, "error") if e.startswith(f"**{BIG}** shuts down")]
    assert len(shutdown) == 1 and "(in 14 days)" in shutdown[0]
    assert shutdown[0].endswith(f"replacement: {QWEN} (NOT USABLE: the replacement is disabled).")


def test_the_model_that_got_slower_is_named(overview: AppTest) -> None:
    at = overview
    slower = [w for w in _texts(at, "warning") if "slower than usual" in w]
    assert slower == [
        f"**{QWEN}** is slower than usual: latency p50 1,200 ms against 300 ms usually; time to first token p50 "
        "500 ms against 100 ms usually (last hour against the 24 h before)."
    ]
    pace_table = frame(at, "Pace").set_index("Model")
    assert pace_table.loc[QWEN, "Pace"] == "slower than usual"
    assert pace_table.loc[SMALL, "Pace"] == "as usual"


def test_a_force_keeps_the_fallback_rate_from_reading_as_good_news(overview: AppTest) -> None:
    at = overview
    fallback = [m for m in at.metric if m.label.startswith("Fallback rate")]
    assert [m.label for m in fallback] == ["Fallback rate (a force is in effect)"]
    assert fallback[0].proto.color == Metric.MetricColor.GRAY  # delta_color "off": never green


def test_failures_give_the_whole_message_of_the_chosen_request(night: Path) -> None:
    at = run_page("Failures")
    table = frame(at, "Message")
    assert list(table["Request"]) == [FAILED_REQUEST]  # the skips are not failed calls
    assert list(table["Error kind"]) == ["provider error"]
    # A click on any of the row's cells picks its request; the drill-down shows every attempt's whole message.
    data = failures.FailuresData({}, [{"request_id": FAILED_REQUEST}], 0)
    assert failures.chosen_request(data, SimpleNamespace(selection=SimpleNamespace(cells=[(0, "Message")]))) == (
        FAILED_REQUEST
    )
    assert failures.chosen_request(data, SimpleNamespace(selection=SimpleNamespace(cells=[]))) is None
    request = run_page("Request", request=FAILED_REQUEST)
    assert [c.value for c in request.code] == [LONG_MESSAGE]
    assert next(t.value for t in request.text).startswith(
        f"Position 1 · {BIG} · failure · provider error (server_error) · HTTP 503 · 900 ms · override: runtime "
        "force #1 · "
    )


def test_a_call_cut_short_is_not_a_failure_on_any_page(night: Path) -> None:
    at = datetime.now(UTC) - timedelta(minutes=30)
    insert_attempts(night, [_row("hedged", "fast", SMALL, 1, "failure", at, kind="hedge_lost", latency=10)])
    page = run_page("Failures")
    assert list(frame(page, "Message")["Request"]) == [FAILED_REQUEST]
    assert "1 calls cut short (a hedge's slower call, a cancelled request) are not failures" in read(
        " ".join(c.value for c in page.caption)
    )
    models = frame(run_page("Models"), "Cut short").set_index("Model")
    assert models.loc[SMALL, "Cut short"] == 1 and models.loc[SMALL, "Failed"] == 0
    request = run_page("Request", request="hedged")
    assert "· cut short · cut short (the hedge's other call answered) (hedge_lost) ·" in request.text[0].value


# -- the rules, alone ------------------------------------------------------------------------------------------


def test_relative_times() -> None:
    now = datetime(2026, 12, 5, 4, 34, 0, tzinfo=UTC)
    assert fmt.relative("2026-12-05T05:03:28.688Z", now) == "in 29 min"
    assert fmt.relative(now - timedelta(seconds=30), now) == "30 s ago"
    assert fmt.relative(now + timedelta(hours=3), now) == "in 3.0 h"
    assert fmt.relative(now - timedelta(days=14), now) == "14 days ago"
    assert fmt.when_relative("2026-12-05T05:03:28.688Z", now) == "2026-12-05 05:03:28 UTC (in 29 min)"
    assert fmt.when_relative(None, now) == fmt.DASH
    assert fmt.relative("2026-12-05T04:04:00", now) == "30 min ago"  # unmarked: UTC, as the store writes


def test_a_force_on_a_model_the_router_skips_is_the_cause() -> None:
    states = {BIG: (words.CIRCUIT_OPEN, "skipped until later"), SMALL: (words.HEALTHY, "")}
    assert forced_but_unusable([Force(SMALL, None, "FORCE_MODEL")], states) == []
    assert forced_but_unusable([Force(BIG, "reasoning", "runtime force #3")], states) == [
        f"The only forced model for task reasoning, {BIG} (runtime force #3), has its circuit open (skipped until "
        "later): nothing can answer task reasoning. End the force or lift the mark."
    ]


def test_slower_than_usual_needs_a_real_change_on_enough_calls() -> None:
    usual = Latency(20, 300, 400, 500)
    assert pace(QWEN, (Latency(4, 1200, 1300, 1300), usual), (None, None)).slower
    assert not pace(QWEN, (Latency(4, 420, 430, 430), usual), (None, None)).slower  # within half again
    assert not pace(SMALL, (Latency(4, 120, 130, 130), Latency(20, 40, 50, 60)), (None, None)).slower  # +80 ms
    few = Latency(SLOWER_MIN_CALLS - 1, 5000, 5000, 5000)
    assert not pace(QWEN, (few, usual), (None, None)).slower
    ttft = pace(QWEN, (usual, usual), (Latency(5, 900, 900, 900), Latency(50, 100, 120, 130)))
    assert ttft.slower and ttft.why == "time to first token p50 900 ms against 100 ms usually"


def test_a_replacement_is_usable_or_not() -> None:
    states = {QWEN: (words.DISABLED, ""), BIG: (words.COOLING_DOWN, ""), SMALL: (words.HEALTHY, "")}
    assert replacement_note(QWEN, states) == "NOT USABLE: the replacement is disabled"
    assert replacement_note(BIG, states) == "usable, cooling down right now"
    assert replacement_note(SMALL, states) == "usable"
    assert replacement_note("none named", states).startswith("no replacement named")


def test_when_the_budget_runs_out() -> None:
    now = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)
    hot = BudgetToday(limit=1.0, alert_ratio=0.8, spent=0.85, rate_per_hour=0.3, projected=5.0)
    assert runs_out_text(hot, now) == "At this rate it runs out at about 10:30 UTC (in 30 min)."
    idle = BudgetToday(limit=1.0, alert_ratio=0.8, spent=0.85, rate_per_hour=0.0, projected=0.85)
    assert runs_out_text(idle, now) == "Nothing spent in the last hour: at this rate it lasts the day."
    slow = BudgetToday(limit=1.0, alert_ratio=0.8, spent=0.1, rate_per_hour=0.01, projected=0.24)
    assert runs_out_text(slow, now) == "At this rate it lasts until midnight UTC."


def test_the_sidebar_says_read_only_only_when_nothing_here_writes(night: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert read(run_page("Overview").sidebar.caption[-1].value).startswith("Database (read-only): ")
    monkeypatch.setenv("DASHBOARD_ADMIN_TOKEN", secrets.token_urlsafe(32))
    shown = read(run_page("Overview").sidebar.caption[-1].value)
    assert shown.startswith("Database (read; the admin actions on the Tasks page write): ")

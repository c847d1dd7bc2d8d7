"""The store of issue 25's night: what a person paged at 3 a.m. finds, seeded for the dashboard's tests (the pages
under AppTest, and the real browser).

Five runs of traffic over the last 24 hours; then, in the last hour, qwen answering four times slower than its own
day; a force of the 120b for every task, set by ops, whose circuit has since opened (so the last minutes' requests
were all skipped: nothing can answer); qwen disabled by ops; 85 % of a $1 daily budget spent; the 120b shutting
down in 14 days with qwen, disabled, as its replacement; one request whose long message explains its failure.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from stores import insert, insert_attempts
from test_dashboard import BIG, QWEN, SMALL, _iso, _row

from app.store import open_database
from app.store.overrides import set_override
from app.store.target import Target

BUDGET = "1"
FAILED_REQUEST = "req-night-0042"
# Long, with the part that explains it at the end: a table cell cuts it, the drill-down shows it whole.
LONG_MESSAGE = (
    "Error code: 503 - upstream provider unavailable while the request was being processed; the gateway waited "
    "for a healthy replica, none became available before the attempt's deadline, and the request was abandoned. "
    "Reason given by the provider: no answer from the model pool in us-east-1 (maintenance window 42)"
)
SHUTDOWN_DAYS = 14
FORCE_MINUTES = 29.5  # reads "in 29 min" or "in 30 min", whatever second the page is drawn at
DISABLE_HOURS = 2


def _answer(request: str, task: str, model: str, at: datetime, latency: float, ttft: float) -> dict[str, Any]:
    return {
        **_row(request, task, model, 1, "success", at, latency=latency, tokens=50, cost=0.0),
        "retry": 0,
        "first_token_ms": ttft,
    }


def seed_night(store: Target, calendar: Path, now: datetime | None = None) -> datetime:
    """Writes the night into `store` (an empty one) and the calendar file; returns the `now` it was seeded for."""
    now = now or datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for run, hours_ago in enumerate((22, 17, 12, 7, 2)):  # five demo runs over the day, a few requests each
        at = now - timedelta(hours=hours_ago)
        for i in range(3):
            rows.append(_answer(f"run{run}-fast{i}", "fast", SMALL, at, 200, 80))
            rows.append(_answer(f"run{run}-reason{i}", "reasoning", BIG, at, 600, 150))
            rows.append(_answer(f"run{run}-sum{i}", "summarization", QWEN, at, 300, 100))
    for i in range(4):  # the last hour: qwen four times slower than its day
        rows.append(_answer(f"slow{i}", "summarization", QWEN, now - timedelta(minutes=50 - i), 1200, 500))
    # Today's spend: 85 % of the budget, logged 20 minutes ago (after midnight whatever the hour).
    midnight = datetime.combine(now.date(), time.min, UTC)
    spent_at = max(now - timedelta(minutes=20), midnight + timedelta(seconds=1))
    rows.append(
        {**_row("spend", "fast", SMALL, 1, "success", spent_at, latency=200, tokens=9000, cost=0.85), "retry": 0}
    )
    forced = {"forced": 1, "override_source": "runtime force #1", "retry": 0}
    failed_at = now - timedelta(minutes=14)
    rows.append(
        {
            **_row(
                FAILED_REQUEST, "reasoning", BIG, 1, "failure", failed_at, kind="server_error", status=503, latency=900
            ),
            **forced,
            "error_message": LONG_MESSAGE,
        }
    )
    for i in range(6):  # then the circuit opened: each request under the force is skipped, none answered
        at = now - timedelta(minutes=12 - i)
        task = ("reasoning", "fast", "summarization")[i % 3]
        rows.append({**_row(f"skip{i}", task, BIG, 1, "skipped", at, kind="circuit_open"), **forced})
    insert_attempts(store, rows)
    insert(
        store,
        "model_status",
        {
            "model": BIG,
            "status": "circuit_open",
            "detail": "5 failures in a row",
            "until": _iso(now + timedelta(minutes=FORCE_MINUTES)),
            "first_seen": _iso(failed_at),
            "last_seen": _iso(failed_at),
            "hits": 5,
        },
    )
    with contextlib.closing(open_database(store).conn) as conn:
        set_override(conn, "force", BIG, ttl_seconds=FORCE_MINUTES * 60, reason="incident 7", by="dana")
        set_override(conn, "disable", QWEN, ttl_seconds=DISABLE_HOURS * 3600, reason="bad answers", by="sam")
    shutdown = (now + timedelta(days=SHUTDOWN_DAYS)).date().isoformat()
    calendar.write_text(f'[models."{BIG}"]\nshutdown = {shutdown}\nreplacements = ["{QWEN}"]\n')
    return now

"""`taskrouter status`: listing the marks every router shares, and lifting one by hand across processes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from conftest import USER, logged_rows

from app import cli
from app.core import ai_models
from app.core.model_health import ModelHealth
from app.errors import ProviderStatusError
from app.store import CLEARED, read_model_status, utc_now_iso
from dashboard.status import HEALTHY, state_of

pytestmark = pytest.mark.anyio

FIRST, SECOND = ai_models.MODEL_REGISTRY["reasoning"][:2]


async def test_a_wrong_deprecated_mark_is_listed_cleared_and_the_model_used_again(sim, make_router, db_path, capsys):
    router = make_router(model_status_refresh_seconds=0)
    sim.script(FIRST, "decommissioned")
    assert (await router.execute("reasoning", USER)).model_used == SECOND
    assert (await router.execute("reasoning", USER)).attempts[0].outcome.value == "skipped"
    logged_rows(db_path)  # flushed: the mark is in the file

    assert cli.main(["status", "--db", str(db_path)]) == 0
    listing = capsys.readouterr().out
    line = next(x for x in listing.splitlines() if x.startswith(FIRST))
    assert "deprecated" in line and "for good" in line

    assert cli.main(["status", "--db", str(db_path), "--clear", FIRST, "--reason", "brought back"]) == 0
    assert f"cleared {FIRST} (was deprecated)" in capsys.readouterr().out
    row = next(r for r in read_model_status(db_path) if r["model"] == FIRST)
    assert row["status"] == CLEARED and row["detail"].startswith("cleared by hand; was deprecated")

    resp = await router.execute("reasoning", USER)  # this process drops its own mark at the refresh
    assert resp.model_used == FIRST and resp.fallback_used is False

    sim.script(FIRST, "decommissioned")  # and a real decommission marks it again, for every process
    await router.execute("reasoning", USER)
    logged_rows(db_path)
    assert next(r for r in read_model_status(db_path) if r["model"] == FIRST)["status"] == "deprecated"
    assert (await router.execute("reasoning", USER)).attempts[0].outcome.value == "skipped"


def test_clearing_an_unmarked_model_changes_nothing_and_says_what_is_marked(tmp_path, capsys):
    from app.store import ModelStatusRow, get_attempt_log

    db = tmp_path / "s.db"
    log = get_attempt_log(db)
    log.record(ModelStatusRow("marked/model", "deprecated", "gone", None, utc_now_iso()))
    assert log.flush(timeout=10)
    before = read_model_status(db)
    assert cli.main(["status", "--db", str(db), "--clear", "marked/model", "typo/model", "--reason", "test"]) == 2
    err = capsys.readouterr().err
    assert "no mark to clear for typo/model" in err and "marked: marked/model" in err
    assert read_model_status(db) == before  # all or nothing
    assert cli.main(["status", "--db", str(db), "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [r["model"] for r in listing["marks"]] == ["marked/model"]
    assert (listing["store"], listing["runtime"], listing["environment"]) == (str(db), [], [])


def test_a_mark_made_after_the_clear_survives_it(make_router):
    health: ModelHealth = make_router().health
    error = ProviderStatusError("The model has been decommissioned", status_code=400, code="model_decommissioned")
    from app.types import ErrorKind

    health.on_failure("a/model", ErrorKind.DEPRECATED, error, now=1000.0)
    health._cleared("a/model", cleared_at=999.0)  # cleared before this process marked it
    assert health.blocked("a/model", 1001.0) is not None
    health._cleared("a/model", cleared_at=1000.5)
    assert health.blocked("a/model", 1001.0) is None


def test_the_dashboard_reads_a_cleared_model_as_healthy():
    row = {"status": CLEARED, "until": None, "detail": "cleared by hand; was deprecated: gone"}
    assert state_of(row, datetime.now(UTC)) == (HEALTHY, "cleared by hand; was deprecated: gone")


def test_the_dashboard_and_status_read_circuit_marks():
    from dashboard.status import CIRCUIT_OPEN

    now = datetime.now(UTC)
    later = (now + timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    earlier = (now - timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    row = {"status": "circuit_open", "until": later, "detail": "circuit open for 30s: 1 request(s) timed out"}
    assert state_of(row, now) == (
        CIRCUIT_OPEN,
        f"skipped until {later[:19].replace('T', ' ')} UTC (in 30 s): {row['detail']}",  # how long, from now too
    )
    expired = {**row, "until": earlier}
    assert state_of(expired, now) == (
        HEALTHY,
        f"circuit half-open since {earlier[:19].replace('T', ' ')} UTC: the next call probes it",
    )
    closed = {"status": "closed", "until": None, "detail": "circuit closed: the probe call answered"}
    assert state_of(closed, now) == (HEALTHY, "circuit closed: the probe call answered")

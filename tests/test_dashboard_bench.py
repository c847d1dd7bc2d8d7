"""bench/dashboard.py at a few thousand rows: it seeds, times every page's queries and renders, and prints its
tables. Run with the suite so that the 1M-row benchmark cannot silently break as the dashboard changes."""

from __future__ import annotations

import pytest
from conftest import load_bench
from stores import dashboard_db

from app.store.target import Target

pytestmark = pytest.mark.slow  # a benchmark, run at a small size


def test_the_dashboard_bench_runs_at_a_small_size(
    dashboard_store: Target, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from dashboard.views import PAGES

    bench = load_bench("dashboard")
    assert tuple(PAGES) == bench.PAGES  # every page is timed, the request drill-down included
    # The bench points the dashboard at its file through the environment: restored after the test.
    monkeypatch.setenv("TASKROUTER_DASHBOARD_DB", "")
    # The scenario with the most trend buckets and the one with the costliest filter.
    assert (
        bench.main(
            [
                "--db",
                dashboard_db(dashboard_store),
                "--rows",
                "3000",
                "--runs",
                "1",
                "--scenario",
                "Last 6 hours",
                "--scenario",
                "All time, 2 models",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "seeded 3,000 attempt rows" in out
    for title in ("SQL per page", "Full page render"):
        assert title in out
    tables = out.split("SQL per page")[1]
    for page in bench.PAGES:
        assert tables.count(f"\n{page} ") == 2, page  # one line per table
    assert out.count("worst: ") == 2

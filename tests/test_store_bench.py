"""bench/store.py at a tiny size, on SQLite and on the session's PostgreSQL: every part runs and prints its table.
Run with the suite so that the benchmark cannot silently break as the store changes."""

from __future__ import annotations

import re

import pytest
from conftest import load_bench

pytestmark = pytest.mark.slow  # a benchmark, run at a tiny size on both backends


def test_the_store_bench_runs_at_a_tiny_size(pg_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench("store")
    assert (
        bench.main(
            [
                "--rows",
                "20000",
                "--log-rows",
                "2000",
                "--calls",
                "200",
                "--windows",
                "4",
                "--rounds",
                "1",
                "--log-rounds",
                "1",
                "--processes",
                "2",
                "--concurrency",
                "1,8",
                "--pg-url",
                pg_url,
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert pg_url not in out  # the command line is printed with the URL left out
    for title in (
        "## 1. Attempt-log rows per second",
        "## 2. The router's CPU per call",
        "## 3. Bytes per row at 20,000 rows",
        "## 4. Retention",
    ):
        assert title in out, title
    # Part 1: one row per process count, both backends measured.
    assert re.search(r"^\|\s+1 \|\s+[\d,]+ \|\s+[\d,]+ \|", out, re.M)
    assert re.search(r"^\|\s+2 \|\s+[\d,]+ \|\s+[\d,]+ \|", out, re.M)
    # Part 2: every concurrency with and without the budget, a ratio for each.
    for conc in ("1", "8"):
        for budget in ("unset", "set"):
            assert re.search(rf"^\|\s+{conc} \|\s+{budget} \|[^|]+\|[^|]+\|\s+\d+\.\d+ \|", out, re.M), (conc, budget)
    # Part 3: bytes per row on both backends.
    for backend in ("SQLite", "PostgreSQL"):
        assert re.search(rf"^\|\s+{backend} \|\s+\d+ \|\s+\d+ \|\s+\d+ \|\s+\d+ \|", out, re.M), backend
    # Part 4: the rollup and the prune on each backend, each removing rows.
    for backend in ("SQLite", "PostgreSQL"):
        for phase in ("rollup", "prune"):
            assert re.search(rf"^\|\s+{backend} \|\s+{phase} \|[^|]+\|\s+[1-9][\d,]* \|", out, re.M), (backend, phase)

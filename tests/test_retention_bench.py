"""bench/retention.py at a small size: it seeds, rolls up, prunes under a writer and a reader, and prints its
tables. Run with the suite so that the 1M-row benchmark cannot silently break as the store changes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import load_bench

pytestmark = pytest.mark.slow  # a benchmark, run at a small size


def test_the_retention_bench_runs_at_a_small_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench("retention")
    assert bench.main(["--rows", "6000", "--days", "10", "--keep-days", "3", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "## 1. Seed: 6,000 rows over 10 days" in out and " B/row, indexes " in out
    assert re.search(r"## 2\. Rollup of the backlog: 2[34]\d hours", out)  # 10 days of closed hours
    assert "## 3. Prune, keep 3 days" in out and "auto_vacuum incremental" in out
    assert "| idle | " in out and "| prune | " in out
    assert "none lost" in out

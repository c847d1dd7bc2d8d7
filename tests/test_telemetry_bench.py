"""bench/telemetry.py at its --smoke size: every configuration's worker runs, checks what it exported, and the table
shows each scenario beside off (the figures are the benchmark's, not the test's)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATIONS = ["off", "prometheus", "otel traces", "otel traces+metrics", "all on"]

pytestmark = pytest.mark.slow  # five worker processes, each importing the router and the OpenTelemetry SDK


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_the_telemetry_bench_prints_every_configuration_and_off_imports_neither_package() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "telemetry.py"), "--smoke"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    out = done.stdout
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: a target missed, which the lines below say
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| scenario "))
    assert cells(lines[start])[:4] == ["scenario", "configuration", "us/call min", "us/call median"]
    rows = [cells(line) for line in lines[start + 2 : start + 2 + 2 * len(CONFIGURATIONS)]]
    assert [(r[0], r[1]) for r in rows] == [(s, c) for s in ("clean", "fallback") for c in CONFIGURATIONS]
    by = {(r[0], r[1]): r for r in rows}
    for (scenario, config), row in by.items():
        assert float(row[2].replace(",", "")) > 0 and float(row[3].replace(",", "")) > 0
        if config == "off":
            assert row[4:7] == ["1", "1", "-"] and row[7] == "-"
        else:
            assert re.fullmatch(r"(PASS|FAIL) \([01]/1 rounds under\)", row[6]), row
            assert re.search(rf"^(PASS|FAIL): {scenario}, {re.escape(config)}: own CPU per call", out, re.MULTILINE)
    # One request span and a span per provider call: a fallback makes two calls.
    for config in ("otel traces", "otel traces+metrics", "all on"):
        assert by[("clean", config)][7] == "2.00" and by[("fallback", config)][7] == "3.00"
    assert by[("clean", "prometheus")][7] == "-"
    assert "PASS: off (the defaults): after its calls, in sys.modules: opentelemetry no, prometheus_client no" in out
    assert re.search(r"^prometheus: one prometheus scrape \(.*\) [\d,]+ us CPU", out, re.MULTILINE)
    assert re.search(r"^all on: one otel collection \(.*\) [\d,]+ us CPU", out, re.MULTILINE)
    assert re.search(
        r"^all on: the OpenTelemetry SDK alone, CPU per operation: span [\d,.]+ us, counter add [\d,.]+ us, "
        r"histogram record [\d,.]+ us",
        out,
        re.MULTILINE,
    )
    assert re.search(r"targets \(.*\): (PASS|FAIL)$", out, re.MULTILINE)
    assert ("FAIL" in out) == (done.returncode == 1)

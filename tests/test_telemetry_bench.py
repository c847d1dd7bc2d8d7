"""bench/telemetry.py: its timed --smoke run (every configuration's worker runs, checks what it exported, and the
table shows each scenario beside off), its --instructions worker run without valgrind at a tiny size (the windows'
markers, and the spans and records it finds per call are the ones the bench counts from the code), and the
arithmetic of the instruction counts on parts written here. The figures are the benchmark's, not the tests'."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "telemetry.py"
CONFIGURATIONS = ["off", "prometheus", "otel traces", "otel metrics", "all on"]


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    """bench/telemetry.py as a module, in sys.modules while the tests use it (its dataclasses look themselves up
    there)."""
    spec = importlib.util.spec_from_file_location("bench_telemetry", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


@pytest.mark.slow  # five worker processes, each importing the router and the OpenTelemetry SDK
def test_the_timed_bench_prints_every_configuration_and_off_imports_neither_package() -> None:
    done = subprocess.run(
        [sys.executable, str(BENCH), "--smoke"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]  # 1 only when off imported a telemetry package
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| scenario "))
    assert cells(lines[start]) == [
        "scenario",
        "configuration",
        "us/call min",
        "us/call median",
        "ratio to off min",
        "ratio to off median",
        "rounds <= 1.10",
        "spans/call",
    ]
    rows = [cells(line) for line in lines[start + 2 : start + 2 + 2 * len(CONFIGURATIONS)]]
    assert [(r[0], r[1]) for r in rows] == [(s, c) for s in ("clean", "fallback") for c in CONFIGURATIONS]
    by = {(r[0], r[1]): r for r in rows}
    for (_scenario, config), row in by.items():
        assert float(row[2].replace(",", "")) > 0 and float(row[3].replace(",", "")) > 0
        if config == "off":
            assert row[4:8] == ["1", "1", "-", "-"]
        else:
            assert re.fullmatch(r"[01]/1", row[6]), row
            assert float(row[4]) > 0 and float(row[5]) > 0
    # One request span and a span per provider call: a fallback makes two calls.
    for config in ("otel traces", "all on"):
        assert by[("clean", config)][7] == "2.00" and by[("fallback", config)][7] == "3.00"
    assert by[("clean", "prometheus")][7] == by[("clean", "otel metrics")][7] == "-"
    # The timed run gives no verdict on the growth: --instructions does.
    assert not re.search(r"^(PASS|FAIL): (clean|fallback)", out, re.MULTILINE)
    assert "PASS: off (the defaults): after its calls, in sys.modules: opentelemetry no, prometheus_client no" in out
    assert re.search(r"^prometheus: one prometheus scrape \(.*\) [\d,]+ us CPU", out, re.MULTILINE)
    assert re.search(r"^otel metrics: one otel collection \(.*\) [\d,]+ us CPU", out, re.MULTILINE)
    assert re.search(
        r"^all on: the OpenTelemetry SDK alone, CPU per operation: span [\d,.]+ us, histogram record [\d,.]+ us",
        out,
        re.MULTILINE,
    )
    assert re.search(r"target \(off imports nothing\): PASS; the growth's verdicts: --instructions$", out, re.MULTILINE)


def instruction_worker(config: str, scenario: str) -> dict[str, Any]:
    """The --instructions worker as callgrind runs it, without callgrind (its markers are then plain calls)."""
    sizes = ["--n1", "3", "--n2", "6", "--warmup", "4"]
    done = subprocess.run(
        [sys.executable, str(BENCH), "--worker", config, "--scenario", scenario, "--instructions", *sizes],
        cwd=ROOT,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def windows(labels: list[str]) -> list[str]:
    assert labels[-1] == "exit" and labels[1:-1:2] == ["between"] * ((len(labels) - 1) // 2)
    return labels[0:-1:2]


@pytest.mark.slow  # two worker processes, each importing the router and the OpenTelemetry SDK
def test_the_instruction_worker_brackets_its_windows_and_finds_the_spans_and_records_the_code_draws() -> None:
    every = instruction_worker("all on", "fallback")
    assert windows(every["labels"]) == [
        "router 3",
        "router 6",
        "provider 3",
        "provider 6",
        *(f"{how} {i} {n}" for i in range(3) for how in ("bare", "span") for n in (3, 6)),
        *(f"record {i} {n}" for i in range(5) for n in (3, 6)),
    ]
    # A fallback: the request's span and two call spans, one each per call; a record of each call's duration, the
    # answered call's input and output tokens, and the request's duration.
    assert sorted(s["per_call"] for s in every["spans"]) == [1.0, 1.0, 1.0]
    # Drawn as the router draws them, after the fact with given times: the request's span under the caller's
    # context (none here), each call's a child of it; the 413's with an error status.
    labels = sorted(s["label"] for s in every["spans"])
    assert [re.sub(r"\(\d+ attributes", "(n attributes", label) for label in labels] == [
        "span 'chat openai/gpt-oss-120b' (n attributes; a child, timed)",
        "span 'chat openai/gpt-oss-20b' (n attributes; a child, timed, error status)",
        "span 'taskrouter fast' (n attributes; timed)",
    ]
    records = sorted((r["label"], r["per_call"]) for r in every["records"])
    assert records == [
        ("record gen_ai.client.operation.duration (4 attributes)", 1.0),
        ("record gen_ai.client.operation.duration (5 attributes)", 1.0),
        ("record gen_ai.client.token.usage (5 attributes)", 1.0),
        ("record gen_ai.client.token.usage (5 attributes)", 1.0),
        ("record taskrouter.request.duration (2 attributes)", 1.0),
    ]
    assert every["modules"] == ["opentelemetry", "prometheus_client"]

    metrics = instruction_worker("otel metrics", "clean")
    assert windows(metrics["labels"]) == [
        "router 3",
        "router 6",
        "provider 3",
        "provider 6",
        *(f"record {i} {n}" for i in range(4) for n in (3, 6)),
    ]
    assert metrics["spans"] == []
    assert sum(r["per_call"] for r in metrics["records"]) == 4


@pytest.mark.slow  # a Python under valgrind, some seconds
@pytest.mark.skipif(shutil.which("valgrind") is None, reason="valgrind is not installed (Debian's valgrind package)")
def test_callgrind_dumps_a_part_per_marker_as_the_bench_reads_them(bench: ModuleType, tmp_path: Path) -> None:
    prefix = tmp_path / "cg"
    code = "import os; os.getppid(); sum(range(1000)); os.getppid(); sum(range(100000)); os.getppid()"
    done = subprocess.run(
        [*bench.callgrind_command(prefix), sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    start, small, large, end = bench.callgrind_parts(prefix)
    assert min(start, small, large, end) > 0
    assert 50 * small < large  # the part between the 2nd and 3rd markers is the 100x longer sum


def test_instructions_per_call_cancel_each_windows_fixed_cost(bench: ModuleType, tmp_path: Path) -> None:
    # Parts as callgrind names them: prefix.1 ... prefix.11 (numbered, not sorted as text), then prefix at exit.
    labels = ["router 10", "between", "router 30", "between", "provider 10", "between", "provider 30", "between"]
    labels += ["bare 0 10", "between", "bare 0 30", "between", "span 0 10", "between", "span 0 30", "exit"]
    counts = [5_000, 1_000 + 10 * 300, 7, 1_000 + 30 * 300, 7, 500 + 10 * 50, 7, 500 + 30 * 50, 7]
    counts += [200 + 10 * 30, 7, 200 + 30 * 30, 7, 200 + 10 * 40, 7, 200 + 30 * 40, 9]
    for i, count in enumerate(counts[:-1], start=1):
        (tmp_path / f"cg.{i}").write_text(f"events: Ir\ntotals: {count}\n")
    (tmp_path / "cg").write_text(f"events: Ir\ntotals: {counts[-1]}\n")
    assert bench.callgrind_parts(tmp_path / "cg") == counts
    result = {
        "labels": labels,
        "spans": [{"per_call": 2.0, "label": "span 'x' (3 attributes)"}],
        "records": [],
        "modules": [],
        "models": ["a", "b"],
        "app_file": "app/__init__.py",
    }
    figures = bench.instructions_of(result, counts, 10, 30)
    assert (figures["total"], figures["provider"], figures["router"]) == (300, 50, 250)
    assert figures["sdk"] == 2 * 40 and figures["own"] == 250 - 80
    assert figures["sdk_bare"] == 2 * 30 and figures["own_bare"] == 250 - 60
    assert figures["windows"] == {"router 10": 4_000, "router 30": 10_000, "provider 10": 1_000, "provider 30": 2_000}
    with pytest.raises(RuntimeError, match="16 parts dumped for 16 markers"):
        bench.instructions_of(result, counts[:-1], 10, 30)


def test_the_verdict_is_the_routers_own_growth_over_offs_without_the_sdks_share(bench: ModuleType) -> None:
    def figures(router: float, sdk: float) -> dict[str, Any]:
        windows = {"router 1": 1, "router 2": 2, "provider 1": 1, "provider 2": 2}
        figures = {"total": router + 10, "provider": 10, "router": router, "sdk": sdk, "own": router - sdk}
        figures |= {"sdk_bare": sdk / 2, "own_bare": router - sdk / 2}
        spans = [{"per_call": 1.0, "label": "span", "instructions": sdk, "bare": sdk / 2}] if sdk else []
        return figures | {"spans": spans, "records": [], "windows": windows}

    configs = [bench.BY_NAME[name] for name in ("off", "prometheus", "otel traces")]
    got = {
        ("off", "clean"): figures(1000, 0),
        ("prometheus", "clean"): figures(1100, 0),  # exactly on the line
        ("otel traces", "clean"): figures(1500, 380),  # own 1120: over it
    }
    rows, verdicts, ok = bench.instructions_table(got, configs, ["clean"])
    assert not ok
    assert verdicts == [
        "PASS: clean, prometheus: the router's own instructions per call 1.100x off's; target <= 1.10",
        "FAIL: clean, otel traces: the router's own instructions per call 1.120x off's (with the SDK's share: "
        "1.500x); target <= 1.10",
    ]
    table = {cells(line)[1]: cells(line) for line in rows[2:5]}
    assert table["otel traces"][2:] == ["1,510", "10", "1,500", "1.500", "380", "1,120", "1.120", "FAIL", "1.310"]
    assert table["off"][5:] == ["1", "-", "1,000", "1", "-", "-"]

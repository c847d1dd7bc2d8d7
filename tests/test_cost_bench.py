"""bench/cost.py at its --quick size prints its table whole (the figures are the benchmark's, not the test's), and
bench/workload/make.py rebuilds the committed workload byte for byte."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
WORKLOAD = ROOT / "bench" / "workload"
HEAD = (
    "mode",
    "requests",
    "accepted %",
    "$ per 1k req",
    "vs a",
    "p50 ms",
    "p99 ms",
    "provider calls",
    "calls/req",
    "refused calls",
    "cache hits",
    "tiers answered s/m/c %",
)
MODES = [
    "a single strongest model",
    "b task lists as today",
    "c tiers (tier=auto)",
    "d tiers + cascade",
    "e tiers + cascade + cache",
    "o tiers + cascade, an oracle's tier",
    "L LiteLLM complexity router",
]


def load_make() -> ModuleType:
    spec = importlib.util.spec_from_file_location("workload_make", WORKLOAD / "make.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def test_make_rebuilds_the_committed_workload_with_its_mix_and_repeat_rate(tmp_path: Path) -> None:
    assert load_make().main(["--out", str(tmp_path / "requests.jsonl")]) == 0
    assert (tmp_path / "requests.jsonl").read_bytes() == (WORKLOAD / "requests.jsonl").read_bytes()
    assert (tmp_path / "README.md").read_text() == (WORKLOAD / "README.md").read_text()
    requests = [json.loads(line) for line in (WORKLOAD / "requests.jsonl").read_text().splitlines()]
    assert len(requests) == 2000
    assert Counter(q["class"] for q in requests) == {"simple": 1200, "medium": 500, "complex": 200, "breakthrough": 100}
    bands = {"simple": (0.05, 0.35), "medium": (0.35, 0.60), "complex": (0.60, 0.80), "breakthrough": (0.80, 0.90)}
    assert all(bands[q["class"]][0] <= q["difficulty"] <= bands[q["class"]][1] for q in requests)
    first = {q["id"]: q for q in requests}
    repeats = [q for q in requests if q["repeat_of"] is not None]
    assert len(repeats) == 300  # 15 %, as the README says
    assert "**Repeat rate: 15.0%**" in (WORKLOAD / "README.md").read_text()
    for q in repeats:
        original = first[q["repeat_of"]]
        assert original["id"] < q["id"] and original["repeat_of"] is None
        assert {k: v for k, v in q.items() if k not in ("id", "repeat_of")} == {
            k: v for k, v in original.items() if k not in ("id", "repeat_of")
        }
    unique = {json.dumps([q["task"], q["messages"], q["params"]]) for q in requests}
    assert len(unique) == 1700  # only the repeats repeat


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--repeat", "1.0"], "--repeat must be within [0, 1)"), (["--requests", "5"], "--requests must be at least 20")],
)
def test_make_refuses_options_it_cannot_honour(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        load_make().main([*args, "--out", str(tmp_path / "w.jsonl")])
    assert stopped.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "w.jsonl").exists()


@pytest.mark.slow  # six runs of 200 requests, each against a simulator process of its own
def test_the_cost_bench_prints_every_mode_and_every_target() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "cost.py"), "--quick"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode in (0, 1), done.stderr[-3000:]  # 1: a target missed, which the table says
    make = load_make()
    repeats = sum(q["repeat_of"] is not None for q in make.build(make.Options(requests=200)))
    assert 28 <= repeats <= 32  # the default rate, 15 %, within rounding per class
    mix = "simple 60 %, medium 25 %, complex 10 %, breakthrough 5 %"
    assert (
        f"workload: bench/workload/make.py --requests 200 (built in memory), 200 requests ({mix}), repeat rate "
        f"{repeats / 2:.1f} % ({repeats} exact repeats)\n"
    ) in out
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| mode ") and "requests" in line)
    assert tuple(cells(lines[start])) == HEAD
    rows = [cells(line) for line in lines[start + 2 : start + 2 + len(MODES)]]
    assert [r[0] for r in rows] == MODES
    for row in rows:
        assert len(row) == len(HEAD)
        if row[1].startswith("not available"):
            assert row[2:] == ["-"] * (len(HEAD) - 2)
            continue
        assert row[1] == "200" and 0.0 <= float(row[2]) <= 100.0 and float(row[3]) >= 0.0
        assert float(row[5].replace(",", "")) > 0 and int(row[7].replace(",", "")) >= 0
    assert rows[0][4] == "-" and all(re.fullmatch(r"[+-]\d+\.\d%|-", r[4]) for r in rows[1:])
    by_class = next(i for i, line in enumerate(lines) if line.startswith("| mode ") and "simple accepted %" in line)
    assert len(cells(lines[by_class])) == 5
    for target in (
        r"^d \(tiers \+ cascade\) costs -?\d+\.\d % less than a .* -> (OK|MISSED)$",
        r"^d accepted answers \d+\.\d\d % \(target >= 99\.5 %\) -> (OK|MISSED)$",
        r"^scorer overhead \d+\.\d us CPU per request, .* -> (OK|MISSED)$",
    ):
        assert re.search(target, out, re.MULTILINE), target
    assert re.search(r"^all targets met: (yes|NO)$", out, re.MULTILINE)
    assert ("-> MISSED" in out) == (done.returncode == 1)

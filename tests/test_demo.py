"""`taskrouter demo` end to end: the simulator in-process, the real router and SDK, the summary checked against
an independent reading of the database it claims to summarise."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import is_setting

from app import cli
from app.config import load_settings
from app.core import ai_models, runtime
from app.demo import percentile, pick_roles, task_chains

ROOT = Path(__file__).resolve().parents[1]


def query(db: Path, sql: str, *params: Any) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute(sql, params)]
    finally:
        conn.close()


def table_rows(text: str, first_header: str) -> dict[str, list[str]]:
    """The rows of the summary table whose first column is `first_header`, keyed by that column."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == [first_header])
    rows = {}
    for line in lines[start + 1 :]:
        if not line.strip():
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells[1:]
    return rows


def clean_env() -> dict[str, str]:
    """The developer's key, overrides and .env must not reach a subprocess (conftest does this in-process)."""
    env = {k: v for k, v in os.environ.items() if not is_setting(k)}
    env["PYTHONPATH"] = str(ROOT)
    return env


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, str, Path]:
    where = tmp_path_factory.mktemp("demo")
    db = where / "demo.db"
    proc = subprocess.run(
        [sys.executable, "-m", "app", "demo", "--requests", "60", "--concurrency", "8", "--seed", "6", "--db", str(db)],
        cwd=where,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode, proc.stdout, proc.stderr, db


@pytest.mark.slow
def test_demo_exits_zero_and_logs_every_request(demo_run):
    code, out, err, db = demo_run
    assert code == 0, err
    assert "60/60 100%" in err  # the progress bar's last line
    assert query(db, "SELECT COUNT(DISTINCT request_id) AS n FROM attempts")[0]["n"] == 60
    assert f"Database: {db.resolve()}" in out
    line = next(x for x in out.splitlines() if x.startswith("Open the dashboard on it:  "))
    command = shlex.split(line.removeprefix("Open the dashboard on it:  "))
    assert command[-3:] == ["dashboard", "--db", str(db)]


@pytest.mark.slow
def test_the_dashboard_command_it_prints_is_one_that_runs_from_the_users_shell(demo_run, tmp_path):
    """Run as `python -m app` with this virtualenv not on PATH (the README's install), a bare `taskrouter` would
    not be found: the line names the virtualenv's script, and that command starts."""
    _, out, _, db = demo_run
    line = next(x for x in out.splitlines() if x.startswith("Open the dashboard on it:  "))
    command = shlex.split(line.removeprefix("Open the dashboard on it:  "))[:-3]
    env = clean_env()
    if shutil.which("taskrouter", path=env.get("PATH")) is None:
        assert command != ["taskrouter"]
    started = subprocess.run(
        [*command, "dashboard", "--help"], cwd=db.parent, env=env, capture_output=True, text=True, timeout=60
    )
    assert started.returncode == 0 and "usage: taskrouter dashboard" in started.stdout


@pytest.mark.slow
def test_every_request_ends_in_one_success_or_a_full_set_of_failures(demo_run):
    _, out, _, db = demo_run
    per_request = query(
        db,
        "SELECT request_id, SUM(outcome = 'success') AS wins, COUNT(*) AS attempts, "
        "MAX(attempt) AS last, SUM(outcome NOT IN ('success', 'failure', 'skipped')) AS odd "
        "FROM attempts GROUP BY request_id",
    )
    assert all(r["wins"] in (0, 1) and r["odd"] == 0 for r in per_request)
    # A request that failed everywhere has one row per model of its chain (called, or skipped with a reason).
    chains = task_chains(ai_models.MODEL_REGISTRY, load_settings(env_file=None))
    failed = query(
        db,
        "SELECT request_id, task_type, COUNT(*) AS n FROM attempts GROUP BY request_id "
        "HAVING SUM(outcome = 'success') = 0",
    )
    # With retries a request that failed everywhere has at least one row per model of its chain.
    assert all(r["n"] >= len(chains[r["task_type"]]) for r in failed)
    answered = sum(r["wins"] for r in per_request)
    assert f"60 requests, {answered} answered, {60 - answered} failed on every model" in out
    assert answered >= 0.995 * 60  # the promise for the demo's own fault mix


@pytest.mark.slow
def test_task_table_matches_the_database(demo_run):
    _, out, _, db = demo_run
    rows = table_rows(out, "TASK")
    expected = query(
        db,
        """
        SELECT task_type, COUNT(*) AS requests, SUM(win) AS wins, SUM(win AND last > 1) AS fallbacks,
               SUM(tokens) AS tokens, SUM(cost) AS cost, SUM(retries) AS retries, SUM(hedges) AS hedges
        FROM (SELECT request_id, task_type, MAX(outcome = 'success') AS win,
                     MAX(CASE WHEN outcome = 'success' THEN attempt END) AS last,
                     COALESCE(SUM(total_tokens), 0) AS tokens, COALESCE(SUM(cost_usd), 0) AS cost,
                     SUM(retry > 0 AND outcome != 'skipped') AS retries, SUM(hedged) AS hedges
              FROM attempts GROUP BY request_id)
        GROUP BY task_type""",
    )
    assert set(rows) == {r["task_type"] for r in expected}
    for r in expected:
        requests, success, fallback, _p50, _p95, tokens, cost, retries, hedges = rows[r["task_type"]]
        assert (int(retries), int(hedges)) == (r["retries"], r["hedges"])
        assert int(requests) == r["requests"]
        assert success == f"{100 * r['wins'] / r['requests']:.1f}%"
        assert fallback == f"{100 * r['fallbacks'] / r['requests']:.1f}%"
        assert int(tokens.replace(",", "")) == r["tokens"]
        assert float(cost) == pytest.approx(r["cost"], abs=1e-6)
    assert sum(r["fallbacks"] for r in expected) > 0
    won = query(db, "SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'success' AND hedged = 1")[0]["n"]
    hedges = sum(r["hedges"] for r in expected)
    assert f"hedges: {hedges} started, {won} won" in out
    assert hedges > 0
    # A call is only ever lost to an answer: every hedge_lost row belongs to an answered request.
    orphans = query(
        db,
        "SELECT COUNT(*) AS n FROM attempts l WHERE l.error_kind = 'hedge_lost' AND NOT EXISTS "
        "(SELECT 1 FROM attempts w WHERE w.request_id = l.request_id AND w.outcome = 'success')",
    )
    assert orphans[0]["n"] == 0
    streams = query(db, "SELECT COUNT(*) AS n FROM attempts WHERE first_token_ms IS NOT NULL")[0]["n"]
    assert streams > 0 and f"streams: {streams} calls reached their first token" in out


@pytest.mark.slow
def test_model_table_matches_the_database(demo_run):
    _, out, _, db = demo_run
    rows = table_rows(out, "MODEL")
    for model in {r["model"] for r in query(db, "SELECT DISTINCT model FROM attempts")}:
        calls = query(db, "SELECT * FROM attempts WHERE model = ? AND outcome != 'skipped'", model)
        skipped = query(db, "SELECT COUNT(*) AS n FROM attempts WHERE model = ? AND outcome = 'skipped'", model)
        requests, success, _fb, p50, p95, tokens, cost, skips = rows[model]
        wins = sum(c["outcome"] == "success" for c in calls)
        latencies = [c["latency_ms"] for c in calls]
        assert int(requests) == len(calls)
        assert int(skips) == skipped[0]["n"]
        assert success == (f"{100 * wins / len(calls):.1f}%" if calls else "0.0%")
        assert p50 == (f"{percentile(latencies, 50):.0f}" if calls else "-")
        assert p95 == (f"{percentile(latencies, 95):.0f}" if calls else "-")
        assert int(tokens.replace(",", "")) == sum(c["total_tokens"] or 0 for c in calls)
        assert float(cost) == pytest.approx(sum(c["cost_usd"] or 0 for c in calls), abs=1e-6)


@pytest.mark.slow
def test_the_fault_mix_happened_and_the_router_handled_it(demo_run):
    _, out, _, db = demo_run
    limited, retiring = pick_roles(task_chains(ai_models.MODEL_REGISTRY, load_settings(env_file=None)))
    assert limited and retiring
    status = {r["model"]: r for r in query(db, "SELECT * FROM model_status")}
    assert status[retiring]["status"] == "deprecated" and status[retiring]["until"] is None
    assert "model_decommissioned" not in status[retiring]["detail"]  # the human message, not the code
    kinds = {
        (r["model"], r["outcome"], r["error_kind"]): r["n"]
        for r in query(db, "SELECT model, outcome, error_kind, COUNT(*) AS n FROM attempts GROUP BY 1, 2, 3")
    }
    assert kinds.get((retiring, "failure", "deprecated"), 0) >= 1  # it answered 400 model_decommissioned
    assert kinds.get((retiring, "skipped", "deprecated"), 0) >= 1  # and later requests did not call it
    assert kinds.get((limited, "failure", "rate_limited"), 0) >= 1
    assert kinds.get((limited, "skipped", "cooling_down"), 0) >= 1  # retry-after was honoured
    assert f"{retiring}: deprecated for good" in out


@pytest.mark.slow
def test_in_process_run_via_cli_main_leaves_no_router_behind(tmp_path, capsys):
    db = tmp_path / "cli.db"
    assert cli.main(["demo", "--requests", "20", "--db", str(db), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["requests"] == 20 and document["problems"] == []
    assert document["answered"] == query(db, "SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'success'")[0]["n"]
    assert runtime.current.router is None  # the process-wide router does not point at the stopped simulator
    # A second run into the same file reports only its own rows.
    assert cli.main(["demo", "--requests", "15", "--db", str(db), "--json", "--seed", "1"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["requests"] == 15
    assert query(db, "SELECT COUNT(DISTINCT request_id) AS n FROM attempts")[0]["n"] == 35


@pytest.mark.slow
def test_a_second_run_on_the_same_file_plays_the_scenario_its_banner_announces(tmp_path, capsys):
    """The first run leaves the retiring model marked deprecated for good; the second clears that mark (and says
    so), so the model is called and decommissioned mid-run again rather than skipped from the first request."""
    db = tmp_path / "again.db"
    _, retiring = pick_roles(task_chains(ai_models.MODEL_REGISTRY, load_settings(env_file=None)))
    assert cli.main(["demo", "--requests", "40", "--db", str(db)]) == 0
    first_run = capsys.readouterr().out
    assert "marks an earlier run left" not in first_run
    before = query(db, "SELECT MAX(id) AS n FROM attempts")[0]["n"]
    assert cli.main(["demo", "--requests", "40", "--db", str(db)]) == 0
    banner = capsys.readouterr().out.split("\n\n")[0].splitlines()
    prefix = f"  marks an earlier run left in {db}, cleared so that this run starts as above: "
    assert banner[-1].startswith(prefix) and f"{retiring} (deprecated)" in banner[-1].split(": ", 1)[1].split(", ")
    assert any(line.startswith(f"  decommissioned mid-run: {retiring} (") for line in banner)
    second = query(
        db, "SELECT outcome, error_kind FROM attempts WHERE model = ? AND id > ? ORDER BY id", retiring, before
    )
    assert second[0]["outcome"] != "skipped"  # called, as in the first run
    assert {"outcome": "failure", "error_kind": "deprecated"} in second  # and decommissioned during this one
    audit = query(db, "SELECT action, target, via FROM audit WHERE target = ?", retiring)
    assert audit == [{"action": "mark cleared", "target": retiring, "via": "demo"}]


@pytest.mark.slow
def test_an_override_set_on_the_demo_file_is_in_the_banner_and_in_the_run(tmp_path, capsys):
    db = tmp_path / "override.db"
    limited, _ = pick_roles(task_chains(ai_models.MODEL_REGISTRY, load_settings(env_file=None)))
    assert cli.main(["model", "disable", str(limited), "--db", str(db), "--reason", "try without it"]) == 0
    capsys.readouterr()
    assert cli.main(["demo", "--requests", "20", "--db", str(db)]) == 0
    banner = capsys.readouterr().out.split("\n\n")[0].splitlines()
    assert any(line.startswith(f"  in effect from {db}: #1 disable {limited}, set by ") for line in banner)
    assert not any(f" {limited} " in f"{line} " for line in banner if " -> " in line)  # out of every chain
    assert query(db, "SELECT DISTINCT outcome, error_kind FROM attempts WHERE model = ?", limited) == [
        {"outcome": "skipped", "error_kind": "disabled"}
    ]


def test_by_default_the_demo_logs_to_its_own_file_not_the_routers(tmp_path, monkeypatch, capsys):
    """The run marks a model deprecated; in ATTEMPTS_DB_PATH a real-key router would read that back and skip it."""
    monkeypatch.setenv("ATTEMPTS_DB_PATH", str(tmp_path / "real.db"))
    assert cli.main(["demo", "--requests", "10", "--json"]) == 0  # the autouse fixture made tmp_path the cwd
    assert json.loads(capsys.readouterr().out)["requests"] == 10
    assert query(tmp_path / "taskrouter-demo.db", "SELECT COUNT(DISTINCT request_id) AS n FROM attempts")[0]["n"] == 10
    assert not (tmp_path / "real.db").exists() and not (tmp_path / "taskrouter.db").exists()


@pytest.mark.slow
def test_simulator_command_serves_until_interrupted():
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "simulator", "--port", "0"],
        cwd=ROOT,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")
        models = httpx.get(f"{base_url}/openai/v1/models", headers={"Authorization": "Bearer x"}, timeout=5).json()
        served = {m["id"] for m in models["data"]}
        assert {m for chain in ai_models.MODEL_REGISTRY.values() for m in chain} <= served
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# -- --db is a file; what the file holds is printed inert ----------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["postgresql://user:hunter2@db.example:5432/taskrouter", "postgres://user:hunter2@db/x", "sqlite:///x.db"]
)
def test_demo_refuses_a_database_url_and_creates_nothing(tmp_path, capsys, url):
    before = sorted(tmp_path.iterdir())  # the autouse fixture made tmp_path the working directory
    with pytest.raises(SystemExit) as exited:
        cli.main(["demo", "--requests", "1", "--db", url])
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    scheme = url.split("://")[0]
    assert out == "" and err.endswith(
        f"taskrouter demo: error: argument --db: the demo logs to a SQLite file it creates, not to a database URL "
        f"({scheme}://...): give a file path such as taskrouter-demo.db; nothing was created\n"
    )
    assert "hunter2" not in err
    assert sorted(tmp_path.iterdir()) == before  # no directory named after the URL's parts


@pytest.mark.parametrize("path", ["C:/runs/demo.db", "runs/demo.db", "/tmp/x/demo.db", "demo:1.db"])
def test_demo_takes_any_file_path_that_is_not_a_url(path):
    assert cli.build_parser().parse_args(["demo", "--db", path]).db == Path(path)


@pytest.mark.slow
def test_an_override_reason_with_escape_sequences_is_printed_inert_in_the_banner(tmp_path, capsys):
    db = tmp_path / "hostile.db"
    limited, _ = pick_roles(task_chains(ai_models.MODEL_REGISTRY, load_settings(env_file=None)))
    reason = "\x1b]0;pwned\x07flaky\x1b[2J\nforged line"
    assert cli.main(["model", "disable", str(limited), "--db", str(db), "--reason", reason]) == 0
    capsys.readouterr()
    assert cli.main(["demo", "--requests", "10", "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "pwned" not in out
    banner = out.split("\n\n")[0].splitlines()
    [line] = [line for line in banner if line.startswith(f"  in effect from {db}: #1 disable {limited}, set by ")]
    assert line.endswith(f'(flaky forged line) (`taskrouter override end 1 --reason "why" --db {db}` ends it)')

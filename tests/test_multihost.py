"""Four router processes, each standing in for a host (its own spill folder, nothing shared but the PostgreSQL
server), under load on loopback: a model decommissioned on one host's provider is skipped by every host, the
others told by the server alone, PostgreSQL restarted mid-run fails no call and loses no row, and the daily budget
holds across the hosts together."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import TEST_KEY, is_setting

from app.core import ai_models
from app.simulator import ModelProfile, Simulator
from app.store.model_status import query_read_only
from app.store.target import PostgresTarget

pytestmark = pytest.mark.slow  # four router processes on one PostgreSQL

HOSTS = 4
CONCURRENCY = 4
DOOMED = "openai/gpt-oss-20b"  # first in the fast chain; openai/gpt-oss-120b comes after it
HOST_SCRIPT = Path(__file__).with_name("multihost_host.py")


def start_hosts(
    tmp_path: Path, pg_url: str, base_urls: list[str], seconds: float, **settings: str
) -> list[subprocess.Popen[str]]:
    procs = []
    for i, base_url in enumerate(base_urls):
        home = tmp_path / f"host{i}"
        home.mkdir()
        env = {k: v for k, v in os.environ.items() if not is_setting(k)}
        env.update(
            {
                "GROQ_API_KEY": TEST_KEY,
                "GROQ_BASE_URL": base_url,
                "ATTEMPTS_DB_URL": pg_url,
                "ATTEMPTS_DB_PATH": str(home / "spill.db"),
                # Long: a change can reach another host only through the server's notification.
                "MODEL_STATUS_REFRESH_SECONDS": "60",
                **settings,
            }
        )
        procs.append(
            subprocess.Popen(
                [sys.executable, str(HOST_SCRIPT), str(seconds), str(CONCURRENCY)],
                env=env,
                cwd=home,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "READY", proc.stderr.read() if proc.stderr else line
    for proc in procs:  # every host starts its timed run together
        assert proc.stdin is not None
        proc.stdin.write("GO\n")
        proc.stdin.flush()
    return procs


def results(procs: list[subprocess.Popen[str]]) -> list[dict]:
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def by_host(rows: list[dict]) -> dict[str, list[dict]]:
    """Attempt rows by the process that made them, each process's in the order its requests began: a request id
    is the process's random prefix (16 hex digits) and a counter (app/core/request.py)."""
    hosts: dict[str, list[dict]] = defaultdict(list)
    for row in sorted(rows, key=lambda r: r["request_id"]):
        hosts[row["request_id"][:16]].append(row)
    return hosts


def test_four_hosts_skip_a_model_decommissioned_on_one_and_survive_a_server_restart(pg_server, pg_url, tmp_path):
    if not pg_server.can_restart:
        pytest.skip("TASKROUTER_TEST_PG_URL: the server is not this session's to restart")
    profile = ModelProfile(latency_ms=30, latency_sigma=0.2)
    with (
        Simulator(api_key=TEST_KEY, default_profile=profile, seed=1) as one,
        Simulator(api_key=TEST_KEY, default_profile=profile, seed=2) as rest,
    ):
        procs = start_hosts(
            tmp_path, pg_url, [one.base_url] + [rest.base_url] * (HOSTS - 1), 6.0, DAILY_BUDGET_USD="1000"
        )
        time.sleep(1.5)  # the hosts are under load: the simulators' clocks mark what happens from here on
        one.set_profile(DOOMED, ModelProfile(retired="decommissioned", latency_ms=30, latency_sigma=0.2))
        time.sleep(1.5)
        pg_server.restart()  # raises if the server did not stop and start again
        restarted = time.time()  # the simulators' clock (RequestRecord.received_at)
        done = results(procs)
        records = one.requests + rest.requests

    assert [r["failures"] for r in done] == [{}] * HOSTS, done
    assert any(r.received_at > restarted for r in records)  # traffic went on across the restart
    assert all(r["answered"] > 50 and r["budget_refusals"] == 0 and r["flushed"] for r in done), done
    first_400 = min(r.received_at for r in one.requests if r.model == DOOMED and r.status == 400)
    assert sum(r.model == DOOMED and r.received_at < first_400 for r in rest.requests) > 0  # it was in use

    store = PostgresTarget(pg_url)
    calls = query_read_only(store, "SELECT COUNT(*) AS n FROM attempts WHERE outcome <> 'skipped'")[0]["n"]
    assert calls == len(records)  # every provider call logged once: none lost in the restart, none twice
    answered = query_read_only(store, "SELECT COUNT(*) AS n FROM attempts WHERE outcome = 'success'")[0]["n"]
    assert answered == sum(r["answered"] for r in done)
    marks = query_read_only(store, "SELECT model, status FROM model_status")
    assert {"model": DOOMED, "status": "deprecated"} in marks

    # Only the first host's provider answered 400; the other three still had DOOMED answering them and read the
    # marks by themselves once a minute (longer than the run): the server's notification is what told them.
    hosts = by_host(query_read_only(store, "SELECT request_id, model, outcome, error_kind FROM attempts"))
    assert len(hosts) == HOSTS
    told_by_provider = [
        h for h, rows in hosts.items() if any((r["model"], r["outcome"]) == (DOOMED, "failure") for r in rows)
    ]
    assert len(told_by_provider) == 1
    for host, rows in hosts.items():
        doomed = [(i, r["outcome"], r["error_kind"]) for i, r in enumerate(rows) if r["model"] == DOOMED]
        skips = [i for i, outcome, kind in doomed if (outcome, kind) == ("skipped", "deprecated")]
        assert skips, f"host {host} never learned that {DOOMED} is gone"
        first_skip = skips[0]
        # Once one request of a host skipped it, no later request called it, beyond those already under way.
        called_after = [i for i, outcome, _ in doomed if i > first_skip and outcome != "skipped"]
        assert len(called_after) <= CONCURRENCY, (host, called_after)
        assert all(outcome == "skipped" for _, outcome, _ in doomed[-CONCURRENCY:]), host


def test_four_hosts_together_stay_within_the_daily_budget_by_no_more_than_the_calls_in_flight(pg_url, tmp_path):
    profile = ModelProfile(latency_ms=20, latency_sigma=0.2, completion_tokens=64)
    limit = 0.004
    with Simulator(api_key=TEST_KEY, default_profile=profile, seed=3) as sim:
        procs = start_hosts(tmp_path, pg_url, [sim.base_url] * HOSTS, 4.0, DAILY_BUDGET_USD=str(limit))
        done = results(procs)
    store = PostgresTarget(pg_url)
    spent = query_read_only(store, "SELECT COALESCE(SUM(cost_usd), 0) AS s FROM attempts")[0]["s"]
    # The most one call can be estimated at: its prompt (well under 100 tokens) and the 64 it may produce.
    priciest = max(
        (ai_models.MODEL_CATALOG[m] for m in ("openai/gpt-oss-20b", "openai/gpt-oss-120b")),
        key=lambda info: info.output_price or 0,
    )
    per_call = (100 * (priciest.input_price or 0) + 64 * (priciest.output_price or 0)) / 1_000_000
    in_flight = HOSTS * CONCURRENCY * per_call
    assert all(r["budget_refusals"] > 0 for r in done), done  # every host hit the shared limit
    assert limit - in_flight <= spent <= limit + in_flight, (spent, limit, in_flight)
    ledger = query_read_only(store, "SELECT spent, reserved FROM spend")
    assert len(ledger) == 1 and ledger[0]["spent"] == pytest.approx(spent)
    assert ledger[0]["reserved"] == pytest.approx(0.0, abs=1e-12)  # every reservation was released

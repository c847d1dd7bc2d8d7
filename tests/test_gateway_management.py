"""Seed 003's management API (/api): plain HTTP (httpx) against a real uvicorn on 127.0.0.1, in front of a router on
the simulator; each answer checked against what the store holds."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import USER, logged_rows
from gateway_server import Served
from stores import insert_attempts

from app.core import ai_models
from app.core.router import Router
from app.gateway import create_app
from app.gateway.management import PROBE_SECONDS, PROBE_TASK
from app.simulator import ModelProfile, Simulator
from app.store import AttemptRow, backend_for, histogram, open_database
from app.store.api_keys import create_api_key
from app.store.target import Target
from app.store.usage import read_usage
from app.testing import FakeClock

FIRST = "openai/gpt-oss-20b"  # the shipped registry's fast model
SECOND = "openai/gpt-oss-120b"


class Gateway:
    """A gateway in front of `router`, served (tests/gateway_server.py), with plain HTTP on it."""

    def __init__(self, router: Router, served: Served) -> None:
        self.router = router
        self.http = served.http

    def chat(self, task: str = "fast", **body: Any) -> dict[str, Any]:
        reply = self.http.post("/v1/chat/completions", json={"model": task, "messages": USER, **body})
        assert reply.status_code == 200, reply.text
        return reply.json()


@pytest.fixture
def serve(make_router: Callable[..., Router], served: Callable[..., Served]) -> Callable[..., Gateway]:
    def start(*, require_keys: bool = False, **settings: object) -> Gateway:
        router = make_router(**settings)
        application = create_app(router.settings, router=router, require_keys=require_keys)
        return Gateway(router, served(application, name="management-under-test"))

    return start


@pytest.fixture
def gateway(serve: Callable[..., Gateway]) -> Gateway:
    # The default refresh: a lever must reach the worker that took it without waiting for it.
    return serve(model_status_refresh_seconds=30)


def openai_error(reply: httpx.Response, status: int, code: str, param: str | None) -> str:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["param"], error["type"]) == (code, param, "invalid_request_error")
    return str(error["message"])


def audit_rows(db_path: Path) -> list[dict[str, Any]]:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM audit ORDER BY id")]
    finally:
        conn.close()


def nearest_rank(values: list[float], p: int) -> int:
    ms = sorted(int(v) for v in values)
    return ms[max(0, -(-p * len(ms) // 100) - 1)]


# -- available ---------------------------------------------------------------------------------------------------


def test_available_lists_the_catalog_and_the_registry_with_prices_limits_marks_and_retirement(
    gateway: Gateway, db_path: Path
) -> None:
    retiring = gateway.router.calendar.entries()[0]
    ai_models.MODEL_REGISTRY["summarization"].append(retiring.model)
    ai_models.MODEL_REGISTRY["fast"].append("unlisted-model")
    disabled = gateway.http.post("/api/models/disable", json={"model": SECOND, "reason": "incident 7"})
    assert disabled.status_code == 201, disabled.text

    data = {m["id"]: m for m in gateway.http.get("/api/models/available").json()["data"]}

    assert set(ai_models.MODEL_CATALOG) <= set(data) and "unlisted-model" in data
    info = ai_models.MODEL_CATALOG[FIRST]
    first = data[FIRST]
    assert first["provider"] == info.provider and first["in_catalog"] is True
    assert first["prices_usd_per_million_tokens"] == {
        "input": info.input_price,
        "output": info.output_price,
        "cached_input": info.cached_input_price,
    }
    assert (first["context_window"], first["max_completion_tokens"]) == (
        info.context_window,
        info.max_completion_tokens,
    )
    assert first["capabilities"] == sorted(info.capabilities)
    assert first["tasks"] == ["fast", "summarization", "fallback"]
    assert (first["mark"], first["circuit"], first["retirement"]) == (None, "closed", None)
    assert data[SECOND]["mark"]["status"] == "disabled"
    unlisted = data["unlisted-model"]
    assert (unlisted["in_catalog"], unlisted["provider"], unlisted["tasks"]) == (False, None, ["fast"])
    retirement = data[retiring.model]["retirement"]
    assert retirement["shutdown"] == retiring.shutdown.isoformat()
    today = gateway.router.clock.today()
    assert retirement["replacement"] == gateway.router.calendar.replacement_for(
        retiring.model, max(today, retiring.shutdown)
    )
    assert retirement["days_left"] == (retiring.shutdown - today).days


def test_an_open_circuit_shows_in_available(serve: Callable[..., Gateway], sim: Simulator) -> None:
    gateway = serve(breaker_min_calls=1, breaker_window_calls=1)
    ai_models.MODEL_REGISTRY["fast"] = [FIRST, SECOND]
    sim.set_profile(FIRST, ModelProfile(fault_rates={"unavailable": 1.0}))
    assert gateway.chat()["model"] == SECOND
    data = {m["id"]: m for m in gateway.http.get("/api/models/available").json()["data"]}
    assert data[FIRST]["circuit"] == "open"
    assert data[FIRST]["mark"]["status"] == "circuit_open"
    assert data[SECOND]["circuit"] == "closed"


# -- usage -------------------------------------------------------------------------------------------------------


def test_usage_adds_up_what_the_attempt_log_holds(gateway: Gateway, sim: Simulator, db_path: Path) -> None:
    ai_models.MODEL_REGISTRY["fast"] = [FIRST, SECOND]
    for _ in range(3):
        gateway.chat(max_tokens=5)
    sim.script(FIRST, "unavailable")  # one request falls back
    assert gateway.chat(max_tokens=5)["x_taskrouter"]["fallback_used"] is True
    gateway.chat("reasoning", max_tokens=3)
    rows = logged_rows(db_path)

    body = gateway.http.get("/api/models/usage", params={"days": 7}).json()

    calls = [r for r in rows if r["outcome"] in ("success", "failure")]
    answers = [r for r in rows if r["outcome"] == "success"]
    total = body["total"]
    assert total["calls"] == len(calls)
    assert total["successes"] == len(answers)
    assert total["failures"] == len(calls) - len(answers)
    assert total["success_rate"] == round(len(answers) / len(calls), 6)
    assert total["fallback_rate"] == round(sum(r["attempt"] > 1 for r in answers) / len(answers), 6)
    assert total["tokens"] == {
        "prompt": sum(r["prompt_tokens"] or 0 for r in calls),
        "completion": sum(r["completion_tokens"] or 0 for r in calls),
        "total": sum(r["total_tokens"] or 0 for r in calls),
    }
    assert total["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in calls))
    latencies = [r["latency_ms"] for r in answers]
    assert total["latency_ms"] == {f"p{p}": nearest_rank(latencies, p) for p in (50, 95, 99)}
    by_model = {m["model"]: m for m in body["by_model"]}
    # SECOND answered the fallen-back request (a later position) and the reasoning one (its first).
    assert by_model[FIRST]["failures"] == 1 and by_model[SECOND]["fallback_rate"] == 0.5
    assert {t["task"]: t["successes"] for t in body["by_task"]} == {"fast": 4, "reasoning": 1}
    assert body["from_rollups"] is False

    only = gateway.http.get("/api/models/usage", params={"task": "reasoning", "model": SECOND}).json()
    (row,) = [r for r in answers if r["task_type"] == "reasoning"]
    assert (only["total"]["calls"], only["total"]["tokens"]["total"]) == (1, row["total_tokens"])
    assert [m["model"] for m in only["by_model"]] == [SECOND]


def test_usage_before_any_row_is_zeros(gateway: Gateway, tmp_path: Path) -> None:
    body = gateway.http.get("/api/models/usage").json()
    assert (body["total"]["calls"], body["total"]["success_rate"], body["by_model"]) == (0, None, [])
    assert body["total"]["latency_ms"] == {"p50": None, "p95": None, "p99": None}
    nowhere = read_usage(tmp_path / "none.db", start="2026-01-01T00:00:00.000Z", end="2026-02-01T00:00:00.000Z")
    assert (nowhere.total.calls, nowhere.by_model) == (0, {})
    assert not (tmp_path / "none.db").exists()  # a read creates nothing


def test_usage_refuses_bad_input_in_openai_shape(gateway: Gateway) -> None:
    for days in (0, 367, "week"):
        message = openai_error(
            gateway.http.get("/api/models/usage", params={"days": days}), 400, "invalid_parameter", "days"
        )
        assert message.startswith("days: ")
    message = openai_error(
        gateway.http.get("/api/models/usage", params={"model": "no-such"}), 404, "model_not_found", "model"
    )
    assert FIRST in message
    message = openai_error(
        gateway.http.get("/api/models/usage", params={"task": "nope"}), 404, "task_not_found", "task"
    )
    assert "fast" in message


def test_usage_reads_pruned_hours_from_the_rollups(dashboard_store: Target) -> None:
    """Rows older than the retention are pruned into the hourly rollups: the same totals come back, on either
    backend (the PostgreSQL run is in the slow set, as every dashboard_store test's)."""
    now = datetime.now(UTC)
    latencies = [120.4, 340.9, 90.2, 800.7]
    stamps = [(now - timedelta(days=d, minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z") for d in (3, 3, 0, 0)]
    rows = [
        AttemptRow(f"r{i}", "fast", FIRST, "groq", 1, "success", None, 200, None, 0, 0, 10, 5, 15, latency, 0.002, at)
        for i, (at, latency) in enumerate(zip(stamps, latencies, strict=True))
    ]
    insert_attempts(dashboard_store, [{k: v for k, v in row._asdict().items() if v is not None} for row in rows])
    start = (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    end = (now + timedelta(seconds=1)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    before = read_usage(dashboard_store, start=start, end=end)
    assert backend_for(dashboard_store).prune(1, now=now).rows_removed == 2

    after = read_usage(dashboard_store, start=start, end=end)

    assert (before.from_rollups, after.from_rollups) == (False, True)
    for name in ("calls", "successes", "prompt_tokens", "completion_tokens", "total_tokens", "priced_calls"):
        assert getattr(after.total, name) == getattr(before.total, name), name
    assert (after.total.calls, after.total.successes, after.total.total_tokens) == (4, 4, 60)
    assert after.total.cost_usd == pytest.approx(0.008)
    assert sorted(before.total.latency.elements()) == [90, 120, 340, 800]
    # The pruned hours' latencies come back as their histogram buckets' values (within 2 %).
    assert sorted(after.total.latency.elements()) == sorted(
        [90, 800, *(histogram.bucket_value(histogram.bucket_of(ms)) for ms in (120, 340))]
    )
    assert set(after.by_model) == {FIRST} and set(after.by_task) == {"fast"}
    assert read_usage(dashboard_store, start=start, end=end, model=SECOND).total.calls == 0


# -- health check ------------------------------------------------------------------------------------------------


def test_a_health_check_probes_the_model_and_logs_a_probe_row(gateway: Gateway, db_path: Path) -> None:
    reply = gateway.http.post("/api/models/health-check", params={"model": SECOND})
    assert reply.status_code == 200, reply.text
    body = reply.json()
    (row,) = logged_rows(db_path)
    assert (row["task_type"], row["model"], row["outcome"], row["completion_tokens"]) == (
        PROBE_TASK,
        SECOND,
        "success",
        1,
    )
    assert (body["healthy"], body["request_id"], body["error_kind"]) == (True, row["request_id"], None)
    assert body["cost_usd"] == pytest.approx(row["cost_usd"])


def test_a_failing_health_check_says_why_and_is_logged(gateway: Gateway, sim: Simulator, db_path: Path) -> None:
    sim.set_profile(FIRST, ModelProfile(fault_rates={"unavailable": 1.0}))
    body = gateway.http.post("/api/models/health-check", params={"model": FIRST}).json()
    (row,) = logged_rows(db_path)
    assert (body["healthy"], body["status_code"]) == (False, 503)
    assert (row["task_type"], row["outcome"], row["error_kind"], row["status_code"]) == (
        PROBE_TASK,
        "failure",
        body["error_kind"],
        503,
    )
    assert body["error_kind"] in ("capacity", "server_error")


@pytest.mark.slow  # waits out the probe's whole time: four and a half seconds
def test_a_health_check_of_a_model_that_does_not_answer_answers_within_5_s(
    gateway: Gateway, sim: Simulator, db_path: Path
) -> None:
    sim.set_profile(FIRST, ModelProfile(latency_ms=20_000))
    body = gateway.http.post("/api/models/health-check", params={"model": FIRST}).json()
    (row,) = logged_rows(db_path)
    assert (body["healthy"], body["error_kind"]) == (False, "timeout")
    assert (row["task_type"], row["outcome"], row["error_kind"]) == (PROBE_TASK, "failure", "timeout")
    # Cut off at PROBE_SECONDS, as the gateway measured it: inside the 5 s the answer is promised in.
    assert PROBE_SECONDS * 1000 - 50 <= body["latency_ms"] < 5000


def test_a_health_check_of_an_unknown_model_is_a_404(gateway: Gateway, db_path: Path) -> None:
    reply = gateway.http.post("/api/models/health-check", params={"model": "no-such-model"})
    assert "GET /api/models/available" in openai_error(reply, 404, "model_not_found", "model")
    assert logged_rows(db_path) == []


# -- recommendations -------------------------------------------------------------------------------------------


def blended(model: str) -> float:
    info = ai_models.MODEL_CATALOG[model]
    assert info.input_price is not None and info.output_price is not None
    return (3 * info.input_price + info.output_price) / 4


def test_cheapest_recommendations_rank_by_price_with_reasons(gateway: Gateway) -> None:
    body = gateway.http.get("/api/models/recommendations", params={"cost_preference": "cheapest"}).json()
    ranked = [m["model"] for m in body["data"]]
    priced = [m for m in ranked if ai_models.MODEL_CATALOG.get(m) and ai_models.MODEL_CATALOG[m].priced]
    assert priced == sorted(priced, key=blended)
    assert [m["rank"] for m in body["data"]] == list(range(1, len(ranked) + 1))
    top = body["data"][0]
    assert top["usd_per_million_tokens"] == pytest.approx(blended(top["model"]))
    assert top["reason"].startswith("cheapest: ") and "(cheapest)" in top["reason"]


def test_recommendations_follow_observed_success_and_leave_out_what_cannot_serve(
    gateway: Gateway, sim: Simulator, db_path: Path
) -> None:
    ai_models.MODEL_REGISTRY["reasoning"] = [SECOND, "qwen/qwen3.8-27b"]
    ai_models.MODEL_REGISTRY["fallback"] = []
    for _ in range(3):
        sim.script(SECOND, "unavailable", "unavailable")  # each request's first model fails, the second answers
        assert gateway.chat("reasoning", max_tokens=2)["model"] == "qwen/qwen3.8-27b"
    assert len(logged_rows(db_path)) == 6  # written, so that the usage read finds them

    quality = gateway.http.get(
        "/api/models/recommendations", params={"task_type": "reasoning", "cost_preference": "quality"}
    ).json()
    assert [m["model"] for m in quality["data"]] == ["qwen/qwen3.8-27b", SECOND]
    assert quality["data"][0]["calls"] == 3 and quality["data"][0]["success_rate"] == pytest.approx(4 / 5)
    assert "over 3 calls" in quality["data"][0]["reason"]

    small = min(ai_models.MODEL_CATALOG[m].context_window or 0 for m in (SECOND, "qwen/qwen3.8-27b"))
    fitted = gateway.http.get(
        "/api/models/recommendations", params={"task_type": "reasoning", "context_length": small + 1}
    ).json()
    left = {e["model"]: e["reason"] for e in fitted["excluded"]}
    assert all(f"smaller than context_length {small + 1}" in why for why in left.values()) and left


def test_recommendations_refuse_bad_input(gateway: Gateway) -> None:
    reply = gateway.http.get("/api/models/recommendations", params={"cost_preference": "free"})
    assert "cheapest, balanced, quality" in openai_error(reply, 400, "invalid_parameter", "cost_preference")
    reply = gateway.http.get("/api/models/recommendations", params={"task_type": "poetry"})
    openai_error(reply, 404, "task_not_found", "task_type")
    reply = gateway.http.get("/api/models/recommendations", params={"context_length": 0})
    openai_error(reply, 400, "invalid_parameter", "context_length")


# -- levers ------------------------------------------------------------------------------------------------------


def test_disabling_a_model_moves_the_next_request_to_the_fallback_at_once(gateway: Gateway, db_path: Path) -> None:
    ai_models.MODEL_REGISTRY["fast"] = [FIRST, SECOND]
    assert gateway.chat()["model"] == FIRST
    reply = gateway.http.post("/api/models/disable", json={"model": FIRST, "reason": "incident 42"})
    assert reply.status_code == 201, reply.text
    assert gateway.chat()["model"] == SECOND  # the very next request, though this worker's refresh is 30 s away
    made = reply.json()["override"]
    assert (made["kind"], made["model"], made["set_by"], made["reason"]) == ("disable", FIRST, "no-auth", "incident 42")
    skipped = logged_rows(db_path)[-2]
    assert (skipped["model"], skipped["outcome"], skipped["error_kind"]) == (FIRST, "skipped", "disabled")
    audit = audit_rows(db_path)[-1]
    assert (audit["who"], audit["via"], audit["action"], audit["target"], audit["reason"]) == (
        "no-auth",
        "gateway",
        "disable set",
        FIRST,
        "incident 42",
    )

    enabled = gateway.http.post("/api/models/enable", json={"model": FIRST, "reason": "fixed"})
    assert enabled.status_code == 200 and [o["id"] for o in enabled.json()["ended"]] == [made["id"]]
    assert gateway.chat()["model"] == FIRST
    again = gateway.http.post("/api/models/enable", json={"model": FIRST, "reason": "fixed"})
    openai_error(again, 404, "model_not_disabled", "model")


def test_a_lever_reaches_another_worker_on_the_store_at_its_next_refresh(
    serve: Callable[..., Gateway], db_path: Path
) -> None:
    """Time is the other worker's own fake clock: the change reaches it when its refresh interval has passed, and
    not before, whatever the machine's load."""
    ai_models.MODEL_REGISTRY["fast"] = [FIRST, SECOND]
    fake = FakeClock()
    taking, other = serve(), serve(clock=fake.clock)  # two workers on one store
    assert other.chat()["model"] == FIRST  # its first refresh
    assert taking.http.post("/api/models/disable", json={"model": FIRST, "reason": "incident"}).status_code == 201
    assert other.chat()["model"] == FIRST  # its refresh is not due yet
    fake.advance(other.router.settings.model_status_refresh_seconds)
    assert other.chat()["model"] == SECOND


def test_force_default_end_and_clear(gateway: Gateway, db_path: Path) -> None:
    forced = gateway.http.post("/api/overrides/force", json={"model": SECOND, "task": "fast", "reason": "try it"})
    assert forced.status_code == 201, forced.text
    response = gateway.chat()
    assert response["model"] == SECOND
    assert logged_rows(db_path)[-1]["override_source"] == f"runtime force #{forced.json()['override']['id']}"
    listed = gateway.http.get("/api/overrides").json()
    assert [o["id"] for o in listed["runtime"]] == [forced.json()["override"]["id"]]

    ended = gateway.http.post(f"/api/overrides/{forced.json()['override']['id']}/end", json={"reason": "done"})
    assert ended.status_code == 200 and ended.json()["ended"]["model"] == SECOND
    assert gateway.chat()["model"] == FIRST
    gone = gateway.http.post(f"/api/overrides/{forced.json()['override']['id']}/end", json={"reason": "done"})
    openai_error(gone, 404, "override_not_found", "override_id")

    first = gateway.http.post(
        "/api/overrides/default", json={"task": "reasoning", "model": FIRST, "reason": "cheaper", "ttl_seconds": 600}
    )
    assert first.status_code == 201 and first.json()["override"]["expires_at"] is not None
    assert gateway.chat("reasoning")["model"] == FIRST
    cleared = gateway.http.post("/api/overrides/clear", json={"kind": "default", "reason": "back to normal"})
    assert [o["id"] for o in cleared.json()["ended"]] == [first.json()["override"]["id"]]
    assert gateway.chat("reasoning")["model"] == ai_models.MODEL_REGISTRY["reasoning"][0]
    nothing = gateway.http.post("/api/overrides/clear", json={"reason": "again"})
    openai_error(nothing, 404, "override_not_found", None)
    actions = [(a["action"], a["who"], a["via"]) for a in audit_rows(db_path)]
    assert actions == [
        ("force set", "no-auth", "gateway"),
        ("force cleared", "no-auth", "gateway"),
        ("default set", "no-auth", "gateway"),
        ("default cleared", "no-auth", "gateway"),
    ]


def test_a_lever_needs_a_reason_and_a_known_model_and_task(gateway: Gateway, db_path: Path) -> None:
    reply = gateway.http.post("/api/models/disable", json={"model": FIRST})
    openai_error(reply, 400, "invalid_parameter", "reason")
    reply = gateway.http.post("/api/models/disable", json={"model": FIRST, "reason": "   "})
    assert "audit trail" in openai_error(reply, 400, "invalid_parameter", "reason")
    reply = gateway.http.post("/api/overrides/force", json={"model": "made-up", "reason": "x"})
    assert "any_model" in openai_error(reply, 404, "model_not_found", "model")
    reply = gateway.http.post("/api/overrides/default", json={"task": "poetry", "model": FIRST, "reason": "x"})
    openai_error(reply, 404, "task_not_found", "task")
    reply = gateway.http.post("/api/overrides/force", json={"model": FIRST, "reason": "x", "ttl_seconds": -1})
    openai_error(reply, 400, "invalid_parameter", "ttl_seconds")
    assert not db_path.exists() or audit_rows(db_path) == []  # nothing refused was written
    anyway = gateway.http.post("/api/models/disable", json={"model": "made-up", "reason": "x", "any_model": True})
    assert anyway.status_code == 201


def new_key(db_path: Path, name: str, *, admin: bool = False) -> str:
    db = open_database(db_path)
    try:
        return create_api_key(db.conn, name, admin=admin, by="ops@host")
    finally:
        db.conn.close()


def test_with_keys_reads_need_a_key_and_levers_an_admin_key_whose_name_is_audited(
    serve: Callable[..., Gateway], db_path: Path
) -> None:
    gateway = serve(require_keys=True, model_status_refresh_seconds=30)
    admin, plain = new_key(db_path, "root", admin=True), new_key(db_path, "reader")
    lever = {"model": FIRST, "reason": "incident 9"}
    for path in ("/api/models/available", "/api/models/usage", "/api/models/recommendations", "/api/overrides"):
        missing = gateway.http.get(path)
        assert (missing.status_code, missing.json()["error"]["code"]) == (401, "invalid_api_key"), path
        assert gateway.http.get(path, headers={"authorization": f"Bearer {plain}"}).status_code == 200, path
    assert gateway.http.post("/api/models/health-check", params={"model": FIRST}).status_code == 401
    probed = gateway.http.post(
        "/api/models/health-check", params={"model": FIRST}, headers={"authorization": f"Bearer {plain}"}
    )
    assert probed.json()["healthy"] is True
    assert [(r["task_type"], r["key_name"]) for r in logged_rows(db_path)] == [(PROBE_TASK, "reader")]
    assert gateway.http.post("/api/models/disable", json=lever).status_code == 401
    refused = gateway.http.post("/api/models/disable", json=lever, headers={"authorization": f"Bearer {plain}"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "admin_key_required")
    assert all(a["action"] != "disable set" for a in audit_rows(db_path))  # nothing refused was written

    done = gateway.http.post("/api/models/disable", json=lever, headers={"authorization": f"Bearer {admin}"})

    assert done.status_code == 201 and done.json()["override"]["set_by"] == "root"
    audit = audit_rows(db_path)[-1]
    assert (audit["action"], audit["who"], audit["via"]) == ("disable set", "root", "gateway")
    assert admin not in done.text and all(admin not in str(a) for a in audit_rows(db_path))


def test_a_store_that_cannot_be_used_is_a_503_that_names_no_path(
    serve: Callable[..., Gateway], db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_path.write_bytes(b"not a database, whatever the name says" * 200)
    gateway = serve()
    for reply in (
        gateway.http.get("/api/models/usage"),
        gateway.http.post("/api/models/disable", json={"model": FIRST, "reason": "incident"}),
    ):
        assert reply.status_code == 503, reply.text
        error = reply.json()["error"]
        assert (error["code"], error["type"]) == ("store_unavailable", "server_error")
        assert str(db_path) not in reply.text and "nothing was changed" in error["message"]
    assert any(str(db_path) in r.getMessage() for r in caplog.records if "Management API" in r.getMessage())


def test_the_management_api_documents_itself(gateway: Gateway) -> None:
    paths = gateway.http.get("/openapi.json").json()["paths"]
    assert {
        "/api/models/available",
        "/api/models/usage",
        "/api/models/health-check",
        "/api/models/recommendations",
        "/api/overrides",
        "/api/overrides/force",
        "/api/overrides/default",
        "/api/overrides/{override_id}/end",
        "/api/overrides/clear",
        "/api/models/disable",
        "/api/models/enable",
    } <= set(paths)
    assert gateway.http.get("/docs").status_code == 200

"""What the hot path caches or shortcuts must behave exactly like what it replaced."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime

import pytest
from conftest import count_rows

from app.clock import iso_millis
from app.config import load_settings
from app.core.request import new_request_id
from app.errors import ConfigError, UnknownTaskError
from app.registry.chain import ChainCache, build_chain
from app.store import AttemptLog, AttemptRow, iso_from_epoch, utc_now_iso
from app.store import attempt_log as attempt_log_module


def _settings(**overrides):
    return load_settings(env_file=None, groq_api_key="gsk_test", **overrides)


def _models(chain):
    return [(c.model, c.is_fallback) for c in chain.candidates]


def test_a_cached_chain_is_reused_until_the_registry_changes_in_any_way():
    registry = {"fast": ["a", "b"], "fallback": ["z"]}
    cache = ChainCache(_settings())
    first = cache.get("fast", registry)
    assert cache.get("fast", registry) is first  # unchanged: served from the cache
    assert _models(first) == [("a", False), ("b", False), ("z", True)]

    registry["fast"].append("c")  # edited in place
    assert _models(cache.get("fast", registry)) == [("a", False), ("b", False), ("c", False), ("z", True)]
    registry["fallback"].insert(0, "y")  # the universal fallback edited in place
    assert _models(cache.get("fast", registry))[-2:] == [("y", True), ("z", True)]
    registry["fallback"] = ("x",)  # replaced, by a tuple
    assert _models(cache.get("fast", registry))[-1] == ("x", True)
    del registry["fallback"]
    assert _models(cache.get("fast", registry)) == [("a", False), ("b", False), ("c", False)]

    assert _models(cache.get("fast", registry, variant="short"))[0] == ("a", False)
    registry["fast:short"] = ["s"]  # a variant entry appears: the variant now has its own chain
    assert cache.get("fast", registry, variant="short").registry_key == "fast:short"

    registry["fast"][0] = ""  # a bad edit is reported, not hidden by the cache
    with pytest.raises(ConfigError):
        cache.get("fast", registry)
    del registry["fast"]
    with pytest.raises(UnknownTaskError):
        cache.get("fast", registry)


@pytest.mark.parametrize("overrides", [{}, {"force_model": "pinned"}, {"default_models": {"DEFAULT_FAST_MODEL": "b"}}])
def test_cached_chains_equal_built_ones(overrides):
    registry = {"fast": ["a", "b"], "fast:short": ["s", "a"], "fallback": ["b", "z"]}
    settings = _settings(**overrides)
    cache = ChainCache(settings)
    for task, variant in [("fast", None), ("fast", "short"), ("fast", "other"), ("fast", None)]:
        assert cache.get(task, registry, variant) == build_chain(task, registry, settings, variant)


def test_the_chain_cache_is_bounded_and_refuses_bad_task_names():
    cache = ChainCache(_settings())
    registry = {"fast": ["a"]}
    for i in range(ChainCache.MAX_ENTRIES * 2):
        cache.get("fast", registry, variant=f"v{i}")
    assert len(cache._entries) <= ChainCache.MAX_ENTRIES
    with pytest.raises(UnknownTaskError):
        cache.get(["fast"], registry)  # type: ignore[arg-type]


def test_request_ids_are_unique_hex_and_differ_in_a_forked_child():
    ids = [new_request_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)
    script = (
        "import os; from app.core.request import new_request_id as n; a = n(); r, w = os.pipe()\n"
        "if os.fork() == 0:\n    os.write(w, n().encode()); os._exit(0)\n"
        "os.wait(); print(a, os.read(r, 64).decode())"
    )
    parent, child = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout.split()
    assert parent[:16] != child[:16]  # the child reseeded its prefix: it cannot repeat the parent's ids


@pytest.mark.parametrize(
    "epoch",
    [0.0, 1.0005, 1.9999994, 1.9999995, 59.9996, 1_700_000_000.123456, 1_763_792_815.9999996, 4_102_444_799.999],
)
def test_created_at_is_formatted_exactly_like_datetime(epoch):
    assert iso_millis(epoch) == iso_from_epoch(epoch)


def test_utc_now_iso_is_now():
    before = datetime.now(UTC)
    text = utc_now_iso()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text)
    stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert before.replace(microsecond=before.microsecond // 1000 * 1000) <= stamp <= after


def _row(i: int) -> AttemptRow:
    return AttemptRow(
        f"req{i}", "fast", "m", "groq", 1, "success", None, None, None, False, False, 1, 1, 2, 1.0, None, utc_now_iso()
    )


@pytest.mark.slow
def test_rows_recorded_from_many_threads_at_once_are_all_written(tmp_path):
    import sqlite3

    log = AttemptLog(tmp_path / "threads.db")
    per_thread, threads = 3_000, 8
    workers = [
        threading.Thread(target=lambda t=t: [log.record(_row(t * per_thread + i)) for i in range(per_thread)])
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert log.flush(timeout=30)
    with sqlite3.connect(tmp_path / "threads.db") as conn:
        ids = [r[0] for r in conn.execute("SELECT request_id FROM attempts")]
    assert len(ids) == len(set(ids)) == per_thread * threads


def test_a_flush_waits_only_for_rows_recorded_before_it_and_an_idle_writer_sleeps(tmp_path):
    log = AttemptLog(tmp_path / "idle.db")
    assert log.flush(timeout=1)  # nothing recorded: nothing to wait for, no thread started
    log.record(_row(1))
    assert log.flush(timeout=5)
    assert count_rows(tmp_path / "idle.db") == 1
    assert log._thread is not None and log._thread.ident is not None
    writer_clock = time.pthread_getcpuclockid(log._thread.ident)
    cpu = time.clock_gettime(writer_clock)
    time.sleep(0.5)
    assert log._writer_idle  # parked on its event: no polling while nothing is recorded
    assert time.clock_gettime(writer_clock) - cpu < 0.005


def test_while_the_disk_refuses_rows_the_backlog_is_bounded_then_written(tmp_path, monkeypatch, caplog):
    import sqlite3

    from app.store import spill_path

    monkeypatch.setattr(attempt_log_module, "MAX_PENDING_ROWS", 10)
    path = tmp_path / "refuses.db"
    path.mkdir()  # the database cannot be opened at all
    log = AttemptLog(path)
    for i in range(25):
        log.record(_row(i))
    assert log.flush(timeout=0.5) is False
    deadline = time.monotonic() + 5
    while log.spilled < 15 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert log.spilled == 15 and log.dropped == 0  # the oldest went to the spill file; the newest ten still wait
    assert len(spill_path(path).read_text().splitlines()) == 15
    path.rmdir()  # the disk is back
    assert log.flush(timeout=10)
    with sqlite3.connect(path) as conn:
        kept = [r[0] for r in conn.execute("SELECT request_id FROM attempts ORDER BY id")]
    assert kept == [f"req{i}" for i in range(25)]  # the spilled ones imported first, then the ones in memory
    assert not spill_path(path).exists()
    log.close()


def test_the_owner_s_builders_make_what_the_dataclass_constructors_make():
    import dataclasses

    from app.core.request import _record, _response, _slot_setters
    from app.types import AttemptRecord, Complexity, ErrorKind, LLMResponse, Outcome, Usage

    record_fields = {
        "model": "m",
        "outcome": Outcome.FAILURE,
        "attempt": 2,
        "error_kind": ErrorKind.TIMEOUT,
        "status_code": 504,
        "message": "late",
        "latency_ms": 12.5,
        "is_fallback": True,
        "provider": "groq",
        "retry": 3,
    }
    built = _record(**record_fields)
    assert type(built) is AttemptRecord and built == AttemptRecord(**record_fields)
    response_fields = {
        "content": "hi",
        "model_used": "m",
        "finish_reason": "stop",
        "usage": Usage(3, 4, 7),
        "task_type": "fast",
        "request_id": "rid",
        "fallback_used": True,
        "latency_ms": 9.5,
        "attempts": (built,),
        "provider": "groq",
        "cost_usd": 0.25,
        "provider_request_id": "req_1",
        "tool_calls": ({"id": "t"},),
        "variant": "v",
        "tier": "simple",
        "complexity": Complexity(tier="simple", score=0.1, reasons=("short",)),
        "cached": True,
    }
    made = _response(**response_fields)
    assert type(made) is LLMResponse and made == LLMResponse(**response_fields)
    # Every field, by name: the builders take exactly the classes' fields, keyword-only.
    assert {f.name: getattr(made, f.name) for f in dataclasses.fields(LLMResponse)} == response_fields
    with pytest.raises(TypeError):
        _record(**{k: v for k, v in record_fields.items() if k != "retry"})
    with pytest.raises(TypeError):
        _record(*record_fields.values())  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.content = "changed"  # type: ignore[misc]
    # A field added to a class and not to its builder stops the import instead of leaving it unset.
    with pytest.raises(TypeError, match="its fields are"):
        _slot_setters(AttemptRecord, ("model", "outcome"))


@pytest.mark.parametrize("tail", [(0, False, None, None), (1, True, 12.5, "FORCE_MODEL")])
def test_every_row_of_a_batch_is_written_once_in_order_whatever_its_size(tmp_path, tail):
    import sqlite3

    from app.store.database import open_database
    from app.store.sqlite.rows import _chunks, write_rows

    # Full statements first, then falling powers of two: a handful of statement shapes for any batch size.
    assert [len(c) for c in _chunks(list(range(300)), 128)] == [128, 128, 32, 8, 4]
    assert {len(c) for n in range(600) for c in _chunks(list(range(n)), 128)} == {1, 2, 4, 8, 16, 32, 64, 128}
    db = open_database(tmp_path / "chunks.db")
    written = 0
    for size in (1, 127, 128, 129, 300):
        rows = [
            _row(written + i)._replace(retry=tail[0], hedged=tail[1], first_token_ms=tail[2], override_source=tail[3])
            for i in range(size)
        ]
        assert write_rows(db, rows) == size
        written += size
    db.conn.close()
    with sqlite3.connect(tmp_path / "chunks.db") as conn:
        got = conn.execute(
            "SELECT request_id, retry, hedged, first_token_ms, override_source FROM attempts ORDER BY id"
        ).fetchall()
    assert got == [(f"req{i}", tail[0], int(tail[1]), tail[2], tail[3]) for i in range(written)]


@pytest.mark.anyio
async def test_every_column_of_the_rows_a_request_writes_holds_its_own_value():
    """The owner builds attempt rows positionally (bench/RESULTS.md, "Named construction"): each column is checked
    here by name, for a failure row and an answer row, so that a value in the wrong place cannot pass."""
    import json

    from app.core.ai_models import MODEL_REGISTRY, execute_task
    from app.testing import failure, fake_models, reply

    primary, second = MODEL_REGISTRY["reasoning"][:2]
    usage = {
        "prompt_tokens": 11,
        "completion_tokens": 22,
        "total_tokens": 33,
        "cached_tokens": 4,
        "reasoning_tokens": 5,
    }
    messages = [{"role": "user", "content": "columns"}]
    with fake_models(
        {primary: failure("server_error"), second: reply("the answer", usage=usage)}, log_content=True
    ) as fake:
        response = await execute_task("reasoning", messages, variant="unlisted", temperature=0)
        failed, answered = fake.attempts()
    common = {
        "request_id": response.request_id,
        "task_type": "reasoning",
        "provider": "groq",
        "is_fallback": 0,
        "forced": 0,
        "variant": "unlisted",
        "prompt": json.dumps(messages),
        "retry": 0,
        "hedged": 0,
        "first_token_ms": None,
        "override_source": None,
        "tier": None,
        "saved_usd": None,
    }
    assert {k: failed[k] for k in common} == common == {k: answered[k] for k in common}
    assert {
        k: failed[k]
        for k in (
            "model",
            "attempt",
            "outcome",
            "error_kind",
            "status_code",
            "error_message",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost_usd",
            "cached_tokens",
            "reasoning_tokens",
            "finish_reason",
            "provider_request_id",
            "response",
        )
    } == {
        "model": primary,
        "attempt": 1,
        "outcome": "failure",
        "error_kind": "server_error",
        "status_code": 500,
        "error_message": "Internal Server Error",
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost_usd": 0.0,
        "cached_tokens": None,
        "reasoning_tokens": None,
        "finish_reason": None,
        "provider_request_id": None,
        "response": None,
    }
    assert {
        k: answered[k]
        for k in (
            "model",
            "attempt",
            "outcome",
            "error_kind",
            "status_code",
            "error_message",
            "prompt_tokens",
            "completion_tokens",
            "total_tokens",
            "cost_usd",
            "cached_tokens",
            "reasoning_tokens",
            "finish_reason",
            "response",
        )
    } == {
        "model": second,
        "attempt": 2,
        "outcome": "success",
        "error_kind": None,
        "status_code": None,
        "error_message": None,
        "prompt_tokens": 11,
        "completion_tokens": 22,
        "total_tokens": 33,
        "cost_usd": response.cost_usd,
        "cached_tokens": 4,
        "reasoning_tokens": 5,
        "finish_reason": "stop",
        "response": "the answer",
    }
    assert answered["provider_request_id"] == response.provider_request_id
    assert answered["latency_ms"] > 0
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", answered["created_at"])

"""The response cache's table on SQLite and PostgreSQL alike: entries and hits written by the attempt log's writer,
read back until they expire, pruned (expired first, then the entries worth least per byte and use) by the store's
upkeep, and never spilled."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.clock import iso_millis
from app.store import AttemptRow, backend_for, get_attempt_log, utc_now_iso
from app.store.model_status import query_read_only
from app.store.response_cache import AGE_SECONDS, to_evict, weight
from app.store.rows import CacheEntry, CacheHit
from app.store.spill import spill, spill_path
from app.store.target import PostgresTarget, Target
from app.store.upkeep import maintain

NOW = 1_800_000_000.25  # 2027-01-15, a quarter second: exact in binary and in the table's milliseconds


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A new store of each kind. Afterwards a SQLite file's attempt log is closed (pg_url closes PostgreSQL's)."""
    if request.param != "sqlite":
        yield PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db")
        return
    path = tmp_path / "store.db"
    yield path
    get_attempt_log(path).close(timeout=10)


def entry(
    key: str,
    *,
    cost: float | None = 0.01,
    created: float = NOW,
    ttl: float = 3600.0,
    content: str = "hi",
    size: int | None = None,
    tier: str | None = None,
) -> CacheEntry:
    answer = json.dumps({"content": content, "finish_reason": "stop"})
    return CacheEntry(
        key,
        "fast",
        "m1",
        "groq",
        tier,
        answer,
        cost,
        created,
        created + ttl,
        len(answer.encode()) if size is None else size,
    )


def write(store: Target, *rows: object) -> None:
    log = get_attempt_log(store)
    for row in rows:
        log.record(row)  # type: ignore[arg-type]
    assert log.flush(timeout=30)
    assert log.problem is None


def counters(store: Target) -> list[tuple]:
    rows = query_read_only(store, "SELECT key, hits, saved_usd, last_hit_at FROM response_cache ORDER BY key")
    return [(r["key"], r["hits"], round(r["saved_usd"], 9), r["last_hit_at"]) for r in rows]


def test_an_entry_reads_back_as_written_until_it_expires(store):
    written = entry("a" * 64, tier="simple", content="caf\u00e9 \x00 \u2603")
    write(store, written)
    backend = backend_for(store)
    assert backend.cache_read(written.key, NOW + 10) == written
    assert backend.cache_read(written.key, written.expires_at - 0.001) == written
    assert backend.cache_read(written.key, written.expires_at) is None  # expired at its expiry
    assert backend.cache_read("b" * 64, NOW) is None


def test_hits_add_up_per_key_across_batches_and_a_new_answer_for_the_key_keeps_them(store):
    write(store, entry("k1"), entry("k2", cost=None), CacheHit("k1", 0.01, NOW + 5), CacheHit("k1", 0.01, NOW + 3))
    write(store, CacheHit("k1", None, NOW + 7), CacheHit("pruned-meanwhile", 1.0, NOW + 7))
    assert counters(store) == [("k1", 3, 0.02, iso_millis(NOW + 7)), ("k2", 0, 0.0, None)]
    write(store, entry("k1", content="newer", created=NOW + 100))
    got = backend_for(store).cache_read("k1", NOW + 101)
    assert got is not None and json.loads(got.answer)["content"] == "newer" and got.created_at == NOW + 100
    assert counters(store)[0] == ("k1", 3, 0.02, iso_millis(NOW + 7))


def test_cache_rows_share_a_batch_with_attempts_and_never_reach_the_spill_file(store, tmp_path):
    attempt = AttemptRow(
        "r1",
        "fast",
        "m1",
        "groq",
        1,
        "cache_hit",
        None,
        None,
        None,
        0,
        0,
        3,
        4,
        7,
        0.2,
        0.0,
        utc_now_iso(),
        tier="simple",
        saved_usd=0.01,
    )
    write(store, entry("k"), attempt, CacheHit("k", 0.01, NOW + 1))
    assert [r["outcome"] for r in query_read_only(store, "SELECT outcome FROM attempts")] == ["cache_hit"]
    assert counters(store) == [("k", 1, 0.01, iso_millis(NOW + 1))]
    base = tmp_path / "spilled.db"
    assert spill(base, [entry("k"), CacheHit("k", 0.01, NOW), attempt]) == 1
    assert [list(json.loads(line)) for line in spill_path(base).read_text().splitlines()] == [["attempt"]]


def test_prune_removes_the_expired_then_the_entries_worth_least(store):
    write(
        store,
        entry("expired-1", created=NOW - 7200, ttl=3600),
        entry("expired-2", created=NOW - 60, ttl=60),
        entry("dear-small", cost=0.01, size=100, created=NOW - 60),
        entry("cheap-big", cost=0.001, size=10_000, created=NOW - 60),
        entry("hit-often", cost=0.001, size=100, created=NOW - 7200, ttl=3 * AGE_SECONDS),
        entry("idle", cost=0.01, size=100, created=NOW - 20 * AGE_SECONDS, ttl=30 * AGE_SECONDS),
        entry("unpriced", cost=None, size=100, created=NOW - 60),
    )
    write(store, *(CacheHit("hit-often", 0.001, NOW - 30) for _ in range(50)))
    backend = backend_for(store)
    assert backend.cache_prune(2, NOW) == 5
    keys = [r["key"] for r in query_read_only(store, "SELECT key FROM response_cache ORDER BY key")]
    assert keys == ["dear-small", "hit-often"]
    assert backend.cache_prune(2, NOW) == 0
    assert backend.cache_prune(0, NOW + 3600) == 2  # both expired by then


def test_the_upkeep_prunes_the_cache_to_its_bound(store):
    write(
        store,
        AttemptRow("r", "fast", "m1", "groq", 1, "success", None, None, None, 0, 0, 1, 1, 2, 1.0, 0.0, utc_now_iso()),
        entry("worth-more", cost=0.02),
        entry("worth-less", cost=0.01),
    )
    moment = datetime.fromtimestamp(NOW + 60, UTC)
    maintain(store, 0, now=moment, min_gap=0, cache_max_entries=1)
    assert [r["key"] for r in query_read_only(store, "SELECT key FROM response_cache")] == ["worth-more"]


def test_a_store_without_the_table_or_without_a_file_reads_no_entry(tmp_path):
    missing = tmp_path / "never-written.db"
    assert backend_for(missing).cache_read("k", NOW) is None
    assert not missing.exists()
    older = tmp_path / "older.db"
    sqlite3.connect(older).execute("CREATE TABLE attempts (id INTEGER PRIMARY KEY)").connection.close()
    assert backend_for(older).cache_read("k", NOW) is None


def test_weight_is_value_per_byte_halved_per_hour_unused():
    assert weight(cost_usd=0.01, saved_usd=0.0, size_bytes=100, idle_seconds=0) == pytest.approx(1e-4)
    assert weight(cost_usd=0.01, saved_usd=0.03, size_bytes=100, idle_seconds=0) == pytest.approx(4e-4)
    assert weight(cost_usd=0.01, saved_usd=0.0, size_bytes=100, idle_seconds=2 * AGE_SECONDS) == pytest.approx(0.25e-4)
    assert weight(cost_usd=None, saved_usd=0.0, size_bytes=0, idle_seconds=0) == 0.0


def test_among_entries_worth_nothing_the_longest_unused_goes_first():
    rows = [
        ("recent", None, 0.0, 10, iso_millis(NOW - 10), None),
        ("old", None, 0.0, 10, iso_millis(NOW - 1000), None),
        ("used-lately", None, 0.0, 10, iso_millis(NOW - 5000), iso_millis(NOW - 1)),
        ("priced", 0.001, 0.0, 10, iso_millis(NOW - 9000), None),
    ]
    assert to_evict(rows, 2, NOW) == ["old", "recent"]
    assert to_evict(rows, 0, NOW) == []

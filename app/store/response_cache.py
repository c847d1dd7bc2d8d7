"""The response cache's table, `response_cache`, on either backend: one answer per request key, shared by every
process (and, on PostgreSQL, every host) that names the store. app/core/cache.py keeps a small in-process LRU in
front of it.

- Written by the attempt log's writer thread, in the transaction of the batch that carries them: a `CacheEntry`
  upserts its key's answer, a `CacheHit` adds to its key's hits and saving (`write`). Nothing on the event loop
  waits for either. Neither goes to the spill file: a lost entry costs one more provider call for its request,
  a lost hit only a little of its entry's weight below.
- Read by `StoreBackend.cache_read(key, now)`: the entry, or None when there is none, it has expired, or the store
  cannot be read (a cache never fails a call).
- Pruned by `StoreBackend.cache_prune(max_entries, now)`, in the store's hourly upkeep: the expired entries first;
  then, beyond `max_entries`, those of the lowest weight ("LRU with cost weighting"): what an entry is worth (what
  its next hit would save, its cost, plus what its hits saved) per byte it takes, halved for each AGE_SECONDS since
  it was last used (hit, or made). A large answer nobody asks for goes before a small, expensive one asked for an
  hour ago; among entries worth nothing (no known price), the longest unused goes first. Between two runs the
  table may hold what an hour adds beyond the bound.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from app.clock import epoch_from_iso, iso_millis
from app.store.rows import CacheEntry, CacheHit

if TYPE_CHECKING:
    from app.store.connection import Connection

AGE_SECONDS = 3600.0  # an entry unused this long weighs half what it weighed when last used

_ENTRY_COLUMNS = "key, task_type, model, provider, tier, answer, cost_usd, created_at, expires_at, size_bytes"
_UPSERT = f"""
INSERT INTO response_cache ({_ENTRY_COLUMNS}, hits, saved_usd, last_hit_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, NULL)
ON CONFLICT (key) DO UPDATE SET
    task_type = excluded.task_type, model = excluded.model, provider = excluded.provider, tier = excluded.tier,
    answer = excluded.answer, cost_usd = excluded.cost_usd, created_at = excluded.created_at,
    expires_at = excluded.expires_at, size_bytes = excluded.size_bytes
"""
# A key put again (its entry expired, or two processes answered it at once) keeps its hits and saving: they are the
# key's record of use, which its weight goes by.
_COUNT_HITS = """
UPDATE response_cache SET hits = hits + ?, saved_usd = saved_usd + ?,
    last_hit_at = CASE WHEN last_hit_at IS NULL OR last_hit_at < ? THEN ? ELSE last_hit_at END
WHERE key = ?
"""
SELECT_ENTRY = f"SELECT {_ENTRY_COLUMNS} FROM response_cache WHERE key = ? AND expires_at > ?"


def write(conn: Connection, items: Iterable[object]) -> None:
    """Inside the caller's transaction: the batch's entries, then its hits, one statement per key (a hit in the same
    batch as its entry then finds it). Keys in order, so that two hosts' batches lock the rows they share in the
    same order. A hit for a key the table does not hold (pruned meanwhile) changes nothing."""
    entries: dict[str, CacheEntry] = {}
    hits: dict[str, tuple[int, float, float]] = {}
    for item in items:
        if isinstance(item, CacheEntry):
            entries[item.key] = item  # the latest put of a key wins
        elif isinstance(item, CacheHit):
            count, saved, at = hits.get(item.key, (0, 0.0, item.at))
            hits[item.key] = (count + 1, saved + (item.saved_usd or 0.0), max(at, item.at))
    if entries:
        conn.executemany(_UPSERT, [_entry_params(entries[key]) for key in sorted(entries)])
    if hits:
        conn.executemany(
            _COUNT_HITS,
            [(count, saved, iso_millis(at), iso_millis(at), key) for key, (count, saved, at) in sorted(hits.items())],
        )


def _entry_params(entry: CacheEntry) -> tuple[Any, ...]:
    return (
        entry.key,
        entry.task_type,
        entry.model,
        entry.provider,
        entry.tier,
        entry.answer,
        entry.cost_usd,
        iso_millis(entry.created_at),
        iso_millis(entry.expires_at),
        entry.size_bytes,
    )


def read_query(key: str, now: float) -> tuple[str, tuple[Any, ...]]:
    """The statement `StoreBackend.cache_read` runs on a reader of its store, and its parameters."""
    return SELECT_ENTRY, (key, iso_millis(now))


def entry_of(row: dict[str, Any]) -> CacheEntry:
    """A row of SELECT_ENTRY as the CacheEntry that was written."""
    return CacheEntry(
        row["key"],
        row["task_type"],
        row["model"],
        row["provider"],
        row["tier"],
        row["answer"],
        row["cost_usd"],
        epoch_from_iso(row["created_at"]) or 0.0,
        epoch_from_iso(row["expires_at"]) or 0.0,
        int(row["size_bytes"]),
    )


def weight(*, cost_usd: float | None, saved_usd: float, size_bytes: int, idle_seconds: float) -> float:
    """What keeping an entry is worth per byte: its next hit's saving plus what its hits saved, aged by the time
    since it was last used."""
    value = (cost_usd or 0.0) + max(saved_usd, 0.0)
    return value / max(size_bytes, 1) / 2.0 ** (max(idle_seconds, 0.0) / AGE_SECONDS)


def to_evict(rows: Sequence[Sequence[Any]], count: int, now: float) -> list[str]:
    """The `count` keys of lowest weight among rows of (key, cost_usd, saved_usd, size_bytes, created_at,
    last_hit_at); at equal weight, the longest unused first."""
    ranked = []
    for key, cost, saved, size, created_at, last_hit_at in rows:
        idle = now - (epoch_from_iso(last_hit_at or created_at) or 0.0)
        ranked.append((weight(cost_usd=cost, saved_usd=saved or 0.0, size_bytes=size, idle_seconds=idle), -idle, key))
    ranked.sort()
    return [key for _, _, key in ranked[: max(count, 0)]]


def prune(conn: Connection, max_entries: int, now: float) -> int:
    """Remove the expired entries, then the lowest-weighted beyond `max_entries`; returns how many went. `conn`:
    an open, migrated store, not inside a transaction."""
    if max_entries < 0:
        raise ValueError(f"max_entries must be 0 or more, got {max_entries}")
    with conn:
        removed = conn.execute("DELETE FROM response_cache WHERE expires_at <= ?", (iso_millis(now),)).rowcount
    excess = conn.execute("SELECT COUNT(*) FROM response_cache").fetchone()[0] - max_entries
    if excess <= 0:
        return max(removed, 0)
    rows = conn.execute("SELECT key, cost_usd, saved_usd, size_bytes, created_at, last_hit_at FROM response_cache")
    doomed = to_evict([tuple(r) for r in rows], excess, now)
    with conn:
        conn.executemany("DELETE FROM response_cache WHERE key = ?", [(key,) for key in sorted(doomed)])
    return max(removed, 0) + len(doomed)

"""What the attempt log writes, whichever the backend: one `AttemptRow` per attempt or skip, `ModelStatusRow`s (and
the statement that upserts them, which both backends run), budget `Release`s, and the response cache's
`CacheEntry`s and `CacheHit`s (app/store/response_cache.py writes them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class AttemptRow(NamedTuple):
    """One row of the `attempts` table, exactly as written, in column order.

    A NamedTuple rather than a frozen dataclass: it is built on the event loop once per attempt (a tuple is made in
    one step, where a frozen dataclass's __init__ sets each field through `object.__setattr__`) and it already is
    the parameter tuple the INSERT takes.
    """

    request_id: str
    task_type: str
    model: str
    provider: str
    attempt: int
    outcome: str
    error_kind: str | None
    status_code: int | None
    error_message: str | None
    # Flags as 0/1 ints, not bools: sqlite3 binds an int directly but a bool only after looking for an adapter for
    # its type, three times a row on the writer thread (bench/RESULTS.md has the cost).
    is_fallback: int
    forced: int
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    latency_ms: float | None
    cost_usd: float | None
    created_at: str
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    variant: str | None = None
    finish_reason: str | None = None
    provider_request_id: str | None = None
    prompt: str | None = None
    response: str | None = None
    retry: int = 0  # 0: the request's first call to this model; n: its n-th retry
    hedged: int = 0  # 1: started in parallel with a slower call (HEDGE_AFTER_MS)
    first_token_ms: float | None = None  # streamed attempts: from the call's start to its first text or tool call
    # Where the chain's forced or first model came from: "runtime force #12", "FORCE_MODEL", "runtime default #3",
    # "DEFAULT_FAST_MODEL"; None when the registry's order was followed.
    override_source: str | None = None
    tier: str | None = None  # the complexity tier the request ran at (simple | medium | complex); None: untiered
    # What this row saved against the task's first model for the same tokens (that model's price less cost_usd); for
    # a cache hit, the cost of the answer it replayed. None when a price is unknown or nothing was measured.
    saved_usd: float | None = None
    key_name: str | None = None  # the gateway's API key the request came with (taskrouter keys); None: no key


class CacheEntry(NamedTuple):
    """One answer of the response cache (app/core/cache.py), as the writer upserts it into `response_cache` and
    `StoreBackend.cache_read` gives it back. Times are epoch seconds here, UTC ISO-8601 text in the table (as every
    other time of the store)."""

    key: str  # sha256 hex of the request (app.core.cache.cache_key)
    task_type: str
    model: str
    provider: str
    tier: str | None
    answer: str  # JSON: content, finish_reason, usage, tool_calls, provider_request_id
    cost_usd: float | None  # what the answer cost when it was made: what each hit saves
    created_at: float
    expires_at: float
    size_bytes: int  # of `answer`, UTF-8: what the entry costs the table


class CacheHit(NamedTuple):
    """An answer served from the response cache: the entry's hit count, saving and last use go up."""

    key: str
    saved_usd: float | None
    at: float  # epoch seconds


@dataclass(frozen=True, slots=True)
class ModelStatusRow:
    model: str
    status: str  # deprecated | not_found | cooling_down | circuit_open | closed | cleared
    detail: str
    until: str | None
    seen_at: str


CLEARED = "cleared"
CLOSED = "closed"  # a circuit breaker's probe answered: every router drops its older circuit_open mark

UPSERT_STATUS = """
INSERT INTO model_status (model, status, detail, until, first_seen, last_seen, hits)
VALUES (:model, :status, :detail, :until, :seen_at, :seen_at, 1)
ON CONFLICT(model) DO UPDATE SET
    first_seen = CASE WHEN model_status.status = excluded.status THEN model_status.first_seen
                      ELSE excluded.first_seen END,
    hits = CASE WHEN model_status.status = excluded.status THEN model_status.hits + 1 ELSE 1 END,
    status = excluded.status, detail = excluded.detail, until = excluded.until, last_seen = excluded.last_seen
"""


@dataclass(frozen=True, slots=True)
class Release:
    """A budget reservation that ended, for a store that keeps a shared ledger (StoreBackend.spend_ledger):
    `amount` (its estimate less the call's actual cost) leaves the day's reservations. The actual cost stays
    reserved until the attempt row that carries it is written and moves it to the spend: whichever of the two is
    written first, spend plus reservations never reads low."""

    day: str
    amount: float

"""The response cache: an answer kept for an exact repeat of its request (task, tier, messages, parameters), so the
repeat costs no provider call.

Two levels. In front, an in-process LRU of `memory_entries` answers: a hit there is a dictionary lookup, no I/O.
Behind it, the store's `response_cache` table (app/store/response_cache.py), shared by every process on a SQLite
file and every host on PostgreSQL: read through `asyncio.to_thread(store.cache_read, ...)` on a miss, written by
the attempt log's writer thread (`put` and `hit` only queue a row), pruned by the store's hourly upkeep. An
expired answer is never returned by either level.

`single_flight` makes concurrent identical requests one provider call: the first caller of a key runs it, the
others wait for its result (or its error). A leader that is cancelled leaves its followers to run it themselves.

Nothing here can fail a call: a store that cannot be read is a miss, a row the writer cannot store is a lost
entry. Which requests are cached, and for how long, is the request owner's to decide (app/core/request.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from app.clock import SYSTEM_CLOCK, Clock
from app.store import AttemptLog, StoreBackend
from app.store.rows import CacheEntry, CacheHit
from app.types import Usage

logger = logging.getLogger("taskrouter")

T = TypeVar("T")

# Parameters left out of the key: they do not change the answer. `user` names the caller's end user (for the
# provider's abuse tracking); `service_tier` picks the capacity a call is served from, not the model; `stream` and
# `stream_options` only say how the same answer is delivered, so a stream may be served an answer a whole call made.
UNKEYED_PARAMS = frozenset({"user", "service_tier", "stream", "stream_options"})
_KEY_VERSION = 1  # part of every key: a change to what a key covers leaves the old entries unread, never misread


@dataclass(frozen=True, slots=True, kw_only=True)
class CachedAnswer:
    """An answer as the cache keeps it: what a response is rebuilt from, what it cost, and when it was made and
    stops being served (epoch seconds)."""

    content: str | None
    finish_reason: str | None
    usage: Usage
    tool_calls: tuple[dict[str, Any], ...] | None
    model: str
    provider: str
    cost_usd: float | None
    provider_request_id: str | None
    tier: str | None
    created_at: float
    expires_at: float


def cache_key(
    *, registry_key: str, tier: str | None, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any]
) -> str:
    """The request's key: the sha256 (hex) of canonical JSON (sorted keys, no whitespace, ASCII) of the registry
    key (the task, or task:variant), the tier, the messages and the parameters. Parameters set to None and those in
    UNKEYED_PARAMS are left out; a whole number given as a float (temperature=0.0) keys as the integer, so 0 and
    0.0 are one request. Raises TypeError for a value JSON cannot hold (the messages and parameters are checked
    sendable before this)."""
    kept = {name: value for name, value in params.items() if value is not None and name not in UNKEYED_PARAMS}
    document = {
        "v": _KEY_VERSION,
        "registry_key": registry_key,
        "tier": tier,
        "messages": _plain(messages),
        "params": _plain(kept),
    }
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _plain(value: Any) -> Any:
    """JSON's values, with whole floats as integers and tuples as lists (json.dumps would write 0.0 and 0 apart)."""
    if isinstance(value, float):
        return int(value) if value.is_integer() else value
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _LeaderGone:
    """A flight's result when its leader was cancelled: each follower then runs the call itself."""


_LEADER_GONE = _LeaderGone()


class ResponseCache:
    """See the module docstring. `store`: where a miss of the LRU is looked up (None: the LRU alone); `log`: the
    attempt log whose writer stores entries and counts hits (None: nothing is stored); `memory_entries`: the LRU's
    bound (0: no LRU)."""

    def __init__(
        self, *, store: StoreBackend | None, log: AttemptLog | None, memory_entries: int, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        if isinstance(memory_entries, bool) or not isinstance(memory_entries, int) or memory_entries < 0:
            raise ValueError(f"memory_entries must be a whole number of answers, 0 or more, got {memory_entries!r}")
        self._store = store
        self._log = log
        self._memory_entries = memory_entries
        self._clock = clock
        self._entries: OrderedDict[str, CachedAnswer] = OrderedDict()
        # Routers may be shared by event loops in several threads: the LRU's moves are made under a lock.
        self._lock = threading.Lock()
        self._flights: dict[str, asyncio.Future[Any]] = {}

    def __len__(self) -> int:
        """Answers in the in-process LRU (expired ones included until they are looked up or pushed out)."""
        return len(self._entries)

    def get_local(self, key: str) -> CachedAnswer | None:
        """The LRU's answer for `key`, unless it has expired; no I/O."""
        with self._lock:
            answer = self._entries.get(key)
            if answer is None:
                return None
            if answer.expires_at <= self._clock.wall():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return answer

    async def get(self, key: str) -> CachedAnswer | None:
        """The LRU's answer, else the store's (which then goes into the LRU); None when neither holds a live one."""
        answer = self.get_local(key)
        if answer is not None or self._store is None:
            return answer
        now = self._clock.wall()
        try:
            entry = await asyncio.to_thread(self._store.cache_read, key, now)
            answer = None if entry is None else answer_of(entry)
        except Exception as exc:  # a cache never fails a call: what cannot be read is a miss
            logger.warning(
                "response cache: reading %s from the store failed (%s: %s); answered as a miss",
                key,
                type(exc).__name__,
                exc,
            )
            return None
        if answer is None or answer.expires_at <= self._clock.wall():
            return None
        self._remember(key, answer)
        return answer

    def put(self, key: str, answer: CachedAnswer, *, task_type: str) -> None:
        """Keep `answer` for `key` in the LRU, and in the store through the attempt log's writer (queued only)."""
        if answer.expires_at <= self._clock.wall():
            return
        self._remember(key, answer)
        if self._log is not None:
            self._log.record(entry_of(key, answer, task_type=task_type))

    def hit(self, key: str, saved_usd: float | None) -> None:
        """Count a hit of `key` in the store (through the writer): its entry's hits, saving and last use, which its
        weight against eviction goes by."""
        if self._log is not None:
            self._log.record(CacheHit(key, saved_usd, self._clock.wall()))

    def _remember(self, key: str, answer: CachedAnswer) -> None:
        if self._memory_entries == 0:
            return
        with self._lock:
            self._entries[key] = answer
            self._entries.move_to_end(key)
            while len(self._entries) > self._memory_entries:
                self._entries.popitem(last=False)

    async def single_flight(self, key: str, make: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """`make()`'s result, and True for the caller that ran it: concurrent callers with one key share one run.
        The others get the leader's result, or its exception raised again; a cancelled leader's followers run
        `make()` themselves (one of them, again for the others). A follower's own cancellation ends its wait only."""
        loop = asyncio.get_running_loop()
        while True:
            flight = self._flights.get(key)
            if flight is None:
                break
            if flight.get_loop() is not loop:  # a call on another thread's event loop: not shared across loops
                return await make(), True
            result = await asyncio.shield(flight)
            if result is not _LEADER_GONE:
                return result, False
        flight = loop.create_future()
        self._flights[key] = flight
        try:
            result = await make()
        except Exception as exc:
            flight.set_exception(exc)
            flight.exception()  # marked as retrieved: without followers, asyncio would log it as never retrieved
            raise
        except BaseException:  # cancelled (or the process is stopping): nobody's call is under way any more
            flight.set_result(_LEADER_GONE)
            raise
        finally:
            if self._flights.get(key) is flight:
                del self._flights[key]
        flight.set_result(result)
        return result, True


def entry_of(key: str, answer: CachedAnswer, *, task_type: str) -> CacheEntry:
    """The store's row for an answer: its response fields as JSON, ASCII (so its size in bytes is its length)."""
    text = json.dumps(
        {
            "content": answer.content,
            "finish_reason": answer.finish_reason,
            "usage": dict(answer.usage),
            "tool_calls": None if answer.tool_calls is None else list(answer.tool_calls),
            "provider_request_id": answer.provider_request_id,
        },
        ensure_ascii=True,
        separators=(",", ":"),
    )
    return CacheEntry(
        key,
        task_type,
        answer.model,
        answer.provider,
        answer.tier,
        text,
        answer.cost_usd,
        answer.created_at,
        answer.expires_at,
        len(text),
    )


def answer_of(entry: CacheEntry) -> CachedAnswer:
    """The answer a store row holds. Raises ValueError (or KeyError, TypeError) for a row that is not one."""
    fields = json.loads(entry.answer)
    tool_calls = fields.get("tool_calls")
    return CachedAnswer(
        content=fields.get("content"),
        finish_reason=fields.get("finish_reason"),
        usage=Usage.of(fields.get("usage")),
        tool_calls=None if tool_calls is None else tuple(tool_calls),
        model=entry.model,
        provider=entry.provider,
        cost_usd=entry.cost_usd,
        provider_request_id=fields.get("provider_request_id"),
        tier=entry.tier,
        created_at=entry.created_at,
        expires_at=entry.expires_at,
    )

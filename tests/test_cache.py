"""The response cache (app/core/cache.py): the in-process LRU's bound and expiry on a FakeClock, the round trip
through a SQLite store, single flight (twenty concurrent callers, one call; a failing leader's error reaching its
followers; a cancelled leader's followers carrying on), and the key: stable, and changed by what changes the
answer."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from pathlib import Path

import pytest

from app.core.cache import UNKEYED_PARAMS, CachedAnswer, ResponseCache, answer_of, cache_key, entry_of
from app.store import backend_for, get_attempt_log
from app.store.model_status import query_read_only
from app.store.rows import CacheEntry
from app.testing import FakeClock
from app.types import Usage

pytestmark = pytest.mark.anyio

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2 + 2?"}]


def answer(clock: FakeClock, content: str = "4", *, ttl: float = 60.0, cost: float | None = 0.002) -> CachedAnswer:
    return CachedAnswer(
        content=content,
        finish_reason="stop",
        usage=Usage(12, 1, 13),
        tool_calls=None,
        model="m1",
        provider="groq",
        cost_usd=cost,
        provider_request_id="req_1",
        tier="simple",
        created_at=clock.now,
        expires_at=clock.now + ttl,
    )


def key(n: int) -> str:
    return cache_key(registry_key="fast", tier=None, messages=[{"role": "user", "content": str(n)}], params={})


# -- the in-process LRU ---------------------------------------------------------------------------------------


def test_the_lru_keeps_the_most_recently_used_answers_up_to_its_bound():
    fake = FakeClock()
    cache = ResponseCache(store=None, log=None, memory_entries=2, clock=fake.clock)
    a, b, c, d = (answer(fake, str(n)) for n in range(4))
    cache.put(key(0), a, task_type="fast")
    cache.put(key(1), b, task_type="fast")
    cache.put(key(2), c, task_type="fast")  # over the bound: the least recently used (0) goes
    assert (cache.get_local(key(0)), len(cache)) == (None, 2)
    assert cache.get_local(key(1)) is b  # used: now the most recent
    cache.put(key(3), d, task_type="fast")  # 2 is now the least recently used
    assert [cache.get_local(key(n)) for n in range(4)] == [None, b, None, d]


def test_an_expired_answer_is_never_returned_and_leaves_the_lru():
    fake = FakeClock()
    cache = ResponseCache(store=None, log=None, memory_entries=10, clock=fake.clock)
    kept = answer(fake, ttl=30)
    cache.put(key(1), kept, task_type="fast")
    fake.advance(29.999)
    assert cache.get_local(key(1)) is kept
    fake.advance(0.001)  # its expiry: no longer served
    assert cache.get_local(key(1)) is None
    assert len(cache) == 0
    cache.put(key(2), answer(fake, ttl=0), task_type="fast")  # expired as it is put: not kept
    assert len(cache) == 0


async def test_without_an_lru_or_a_store_nothing_is_kept():
    fake = FakeClock()
    cache = ResponseCache(store=None, log=None, memory_entries=0, clock=fake.clock)
    cache.put(key(1), answer(fake), task_type="fast")
    assert cache.get_local(key(1)) is None
    assert await cache.get(key(1)) is None


@pytest.mark.parametrize("bad", [-1, 1.5, True, "10"])
def test_a_bad_bound_says_what_to_give(bad):
    with pytest.raises(ValueError, match="memory_entries must be a whole number of answers, 0 or more"):
        ResponseCache(store=None, log=None, memory_entries=bad)


# -- through the store ----------------------------------------------------------------------------------------


async def test_an_answer_goes_to_the_store_and_another_process_cache_reads_it_back(tmp_path: Path):
    path = tmp_path / "store.db"
    fake = FakeClock()
    log = get_attempt_log(path)
    try:
        store = backend_for(path)
        writer = ResponseCache(store=store, log=log, memory_entries=10, clock=fake.clock)
        made = CachedAnswer(
            content=None,
            finish_reason="tool_calls",
            usage=Usage(20, 5, 25, 3, 1),
            tool_calls=({"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a": 2}'}},),
            model="m2",
            provider="groq",
            cost_usd=0.004,
            provider_request_id="req_9",
            tier=None,
            created_at=fake.now,
            expires_at=fake.now + 600,
        )
        writer.put(key(1), made, task_type="fast")
        writer.hit(key(1), 0.004)
        assert log.flush(timeout=30)
        reader = ResponseCache(store=store, log=log, memory_entries=10, clock=fake.clock)  # an empty LRU
        assert reader.get_local(key(1)) is None
        assert await reader.get(key(1)) == made
        assert reader.get_local(key(1)) == made  # the store's answer went into the LRU
        row = query_read_only(path, "SELECT task_type, model, hits, saved_usd, size_bytes, answer FROM response_cache")
        assert [(r["task_type"], r["model"], r["hits"], r["saved_usd"]) for r in row] == [("fast", "m2", 1, 0.004)]
        assert row[0]["size_bytes"] == len(row[0]["answer"].encode())
        fake.advance(600)  # expired in the store as well
        assert await ResponseCache(store=store, log=log, memory_entries=10, clock=fake.clock).get(key(1)) is None
        assert await reader.get(key(2)) is None
    finally:
        log.close(timeout=10)


class _BrokenStore:
    """A store whose reads fail in a way the backends do not foresee."""

    def cache_read(self, key: str, now: float) -> CacheEntry | None:
        raise RuntimeError("the disk went away")


async def test_a_store_that_cannot_be_read_is_a_miss_not_a_failed_call(caplog):
    cache = ResponseCache(store=_BrokenStore(), log=None, memory_entries=10)  # type: ignore[arg-type]
    assert await cache.get(key(1)) is None
    assert "answered as a miss" in caplog.text and "the disk went away" in caplog.text


def test_a_stored_answer_survives_text_json_must_escape():
    fake = FakeClock()
    made = answer(fake, 'caf\u00e9 \u2603 \x00 \ud800 "quoted"')
    entry = entry_of(key(1), made, task_type="fast")
    assert entry.answer.isascii() and entry.size_bytes == len(entry.answer)
    assert answer_of(entry) == made


# -- single flight --------------------------------------------------------------------------------------------


class Call:
    """A provider call a test holds until it says: counts how often it was made."""

    def __init__(self, result: object = "the answer", error: BaseException | None = None) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.result = result
        self.error = error

    async def __call__(self) -> object:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


async def test_twenty_concurrent_callers_with_one_key_make_one_call():
    cache = ResponseCache(store=None, log=None, memory_entries=10)
    call = Call()
    tasks = [asyncio.create_task(cache.single_flight(key(1), call)) for _ in range(20)]
    await asyncio.sleep(0)  # each task runs up to its wait
    free = Call("another key")
    free.release.set()
    assert await cache.single_flight(key(2), free) == ("another key", True)  # another key: its own flight
    call.release.set()
    results = await asyncio.gather(*tasks)
    assert call.calls == 1
    assert [value for value, _ in results] == ["the answer"] * 20
    assert [leader for _, leader in results] == [True] + [False] * 19
    again = Call("later")
    again.release.set()
    assert await cache.single_flight(key(1), again) == ("later", True)  # a flight ends with its call


async def test_a_failing_leaders_error_reaches_every_follower():
    cache = ResponseCache(store=None, log=None, memory_entries=10)
    boom = ValueError("the model said no")
    call = Call(error=boom)
    tasks = [asyncio.create_task(cache.single_flight(key(1), call)) for _ in range(5)]
    await asyncio.sleep(0)
    call.release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert call.calls == 1
    assert all(result is boom for result in results)


async def test_a_cancelled_leader_leaves_its_followers_to_make_the_call_once_more():
    cache = ResponseCache(store=None, log=None, memory_entries=10)
    first, second = Call("never"), Call("from the second call")
    calls = iter([first, second])

    async def make() -> object:
        return await next(calls)()

    leader = asyncio.create_task(cache.single_flight(key(1), make))
    await asyncio.sleep(0)
    followers = [asyncio.create_task(cache.single_flight(key(1), make)) for _ in range(4)]
    await asyncio.sleep(0)
    leader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leader
    for _ in range(5):  # the followers wake, one leads the second call, the others wait for it
        await asyncio.sleep(0)
    second.release.set()
    results = await asyncio.gather(*followers)
    assert (first.calls, second.calls) == (1, 1)
    assert [value for value, _ in results] == ["from the second call"] * 4
    assert sorted(leading for _, leading in results) == [False, False, False, True]


async def test_a_followers_cancellation_ends_only_its_own_wait():
    cache = ResponseCache(store=None, log=None, memory_entries=10)
    call = Call()
    leader = asyncio.create_task(cache.single_flight(key(1), call))
    await asyncio.sleep(0)
    quitter = asyncio.create_task(cache.single_flight(key(1), call))
    stayer = asyncio.create_task(cache.single_flight(key(1), call))
    await asyncio.sleep(0)
    quitter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await quitter
    call.release.set()
    assert (await leader, await stayer, call.calls) == (("the answer", True), ("the answer", False), 1)


# -- the key --------------------------------------------------------------------------------------------------


def test_the_key_is_the_sha256_of_the_requests_canonical_json_and_stays_so():
    canonical = (
        '{"messages":[{"content":"Be brief.","role":"system"},{"content":"What is 2 + 2?","role":"user"}],'
        '"params":{"temperature":0},"registry_key":"fast","tier":"simple","v":1}'
    )
    digest = cache_key(registry_key="fast", tier="simple", messages=MESSAGES, params={"temperature": 0.0})
    assert digest == hashlib.sha256(canonical.encode()).hexdigest()
    # Pinned: processes and hosts of different versions share the store's entries by this value.
    assert digest == "fd19f5c2a789abae5ff25de14e0e97acf47f299f49f8d646c89063032890b09f"


def test_the_key_ignores_what_does_not_change_the_answer():
    base = cache_key(registry_key="fast", tier="simple", messages=MESSAGES, params={"temperature": 0, "seed": 7})
    reordered = [{"content": m["content"], "role": m["role"]} for m in MESSAGES]
    same = [
        cache_key(registry_key="fast", tier="simple", messages=reordered, params={"seed": 7, "temperature": 0}),
        cache_key(registry_key="fast", tier="simple", messages=tuple(MESSAGES), params={"temperature": 0.0, "seed": 7}),
        cache_key(
            registry_key="fast",
            tier="simple",
            messages=MESSAGES,
            params={"temperature": 0, "seed": 7, "top_p": None, "user": "u-42", "service_tier": "flex"},
        ),
    ]
    assert same == [base] * 3
    assert {"user", "service_tier", "stream", "stream_options"} == UNKEYED_PARAMS
    assert re.fullmatch("[0-9a-f]{64}", base)


def test_the_key_changes_with_anything_that_changes_the_answer():
    def variant(**changes) -> str:
        request = {"registry_key": "fast", "tier": "simple", "messages": MESSAGES, "params": {"temperature": 0}}
        return cache_key(**{**request, **changes})

    keys = [
        variant(),
        variant(registry_key="fast:json"),
        variant(registry_key="summarization"),
        variant(tier="medium"),
        variant(tier=None),
        variant(messages=[*MESSAGES[:1], {"role": "user", "content": "What is 2 + 3?"}]),
        variant(messages=MESSAGES[1:]),
        variant(params={"temperature": 0.5}),
        variant(params={"temperature": 0, "max_tokens": 10}),
        variant(params={"temperature": 0, "tools": [{"type": "function", "function": {"name": "add"}}]}),
        variant(params={"temperature": 0, "response_format": {"type": "json_object"}}),
    ]
    assert len(set(keys)) == len(keys)


def test_a_value_json_cannot_hold_is_refused_by_name():
    with pytest.raises(TypeError, match="not JSON serializable"):
        cache_key(registry_key="fast", tier=None, messages=[{"role": "user", "content": object()}], params={})


def test_the_stored_answer_is_plain_json():
    fake = FakeClock()
    entry = entry_of(key(1), answer(fake), task_type="fast")
    assert json.loads(entry.answer) == {
        "content": "4",
        "finish_reason": "stop",
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 1,
            "total_tokens": 13,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
        },
        "tool_calls": None,
        "provider_request_id": "req_1",
    }
    assert (entry.task_type, entry.model, entry.tier, entry.cost_usd, entry.expires_at) == (
        "fast",
        "m1",
        "simple",
        0.002,
        fake.now + 60,
    )

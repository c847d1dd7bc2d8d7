"""The response cache through the router: the real SDK to the local simulator, the attempt log's rows, and the store
(SQLite here, PostgreSQL shared by two processes)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from conftest import TEST_KEY, USER, is_setting, logged_rows

from app.core import ai_models

pytestmark = pytest.mark.anyio

FAST = ai_models.MODEL_REGISTRY["fast"][0]


def cached_router(make_router, **settings):
    return make_router(response_cache_tasks="fast", **settings)


async def test_a_repeated_request_is_a_cache_hit_with_no_provider_call(sim, make_router, db_path):
    router = cached_router(make_router)
    first = await router.execute("fast", USER, max_tokens=50)
    again = await router.execute("fast", USER, max_tokens=50)
    other = await router.execute("fast", USER, max_tokens=51)  # other parameters: another entry
    assert sim.calls(FAST) == 2
    assert (first.cached, again.cached, other.cached) == (False, True, False)
    assert (again.content, again.model_used, again.usage) == (first.content, first.model_used, first.usage)
    assert again.cost_usd == 0.0 and again.request_id != first.request_id
    rows = logged_rows(db_path)
    hit = [r for r in rows if r["request_id"] == again.request_id]
    assert [(r["outcome"], r["model"], r["total_tokens"], r["cost_usd"]) for r in hit] == [("cache_hit", FAST, 0, 0.0)]
    assert hit[0]["saved_usd"] == pytest.approx(first.cost_usd)


async def test_twenty_concurrent_identical_requests_make_one_provider_call(sim, make_router, db_path):
    sim.script(FAST, {"fault": "ok", "latency_ms": 200})
    router = cached_router(make_router)
    responses = await asyncio.gather(*(router.execute("fast", USER) for _ in range(20)))
    assert sim.calls(FAST) == 1
    assert sorted(r.cached for r in responses) == [False] + [True] * 19
    assert len({r.content for r in responses}) == 1
    outcomes = sorted(r["outcome"] for r in logged_rows(db_path))
    assert outcomes == ["cache_hit"] * 19 + ["success"]


async def test_a_stream_is_served_from_the_cache_and_fills_it(sim, make_router):
    router = cached_router(make_router)
    streamed = router.stream("fast", USER)
    text = "".join([delta async for delta in streamed])
    again = router.stream("fast", USER)
    text_again = "".join([delta async for delta in again])
    answer = await router.execute("fast", USER)
    assert sim.calls(FAST) == 1
    assert text == text_again == answer.content
    assert (streamed.response.cached, again.response.cached, answer.cached) == (False, True, True)


async def test_what_is_not_cached(sim, make_router):
    router = cached_router(make_router)
    for _ in range(2):
        await router.execute("fast", USER, temperature=0.7)  # sampling: another answer each time
        await router.execute("fast", USER, cache_ttl=0)  # this call opts out
        await router.execute("reasoning", USER)  # not a cached task
    assert sim.calls(FAST) == 4
    warm = cached_router(make_router, response_cache_any_temperature_tasks="fast")
    await warm.execute("fast", USER, temperature=0.7)
    assert (await warm.execute("fast", USER, temperature=0.7)).cached is True


async def test_an_entry_expires_after_its_ttl(sim, make_router):
    from app.testing import FakeClock

    fake = FakeClock()
    router = cached_router(make_router, clock=fake.clock)
    await router.execute("fast", USER, cache_ttl=60)
    fake.advance(59)
    assert (await router.execute("fast", USER)).cached is True
    fake.advance(2)
    assert (await router.execute("fast", USER)).cached is False
    assert sim.calls(FAST) == 2


async def test_a_cached_answer_the_caller_s_check_refuses_is_not_served(sim, make_router):
    router = cached_router(make_router)
    await router.execute("fast", USER)
    checked = await router.execute("fast", USER, validate=lambda r: "not from the cache" if r.cached else None)
    assert checked.cached is False and sim.calls(FAST) == 2


@pytest.mark.slow
async def test_postgresql_shares_the_cache_across_processes(sim, make_router, pg_url, tmp_path):
    router = make_router(response_cache_tasks="fast", attempts_db_url=pg_url)
    first = await router.execute("fast", USER)
    await router.aclose()  # the entry is written by the attempt log's writer: flushed here
    env = {k: v for k, v in os.environ.items() if not is_setting(k)}
    env.update(
        {
            "GROQ_API_KEY": TEST_KEY,
            "GROQ_BASE_URL": sim.base_url,
            "ATTEMPTS_DB_URL": pg_url,
            "ATTEMPTS_DB_PATH": str(tmp_path / "spill.db"),
            "RESPONSE_CACHE_TASKS": "fast",
        }
    )
    script = (
        "import asyncio, json, app\n"
        "r = asyncio.run(app.execute_task('fast', [{'role': 'user', 'content': 'Analyse my sales'}]))\n"
        "app.flush_attempt_log()\n"
        "print(json.dumps({'cached': r.cached, 'content': r.content}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    other = json.loads(done.stdout.strip().splitlines()[-1])
    assert other == {"cached": True, "content": first.content}
    assert sim.calls(FAST) == 1


async def test_a_router_of_one_s_own_on_scripted_models_closes(tmp_path):
    from app.config import load_settings
    from app.core.router import Router
    from app.testing import FakeModels

    fake = FakeModels({"*": "scripted"})  # a dataclass: not hashable, and a provider need not be
    settings = load_settings(
        env_file=None, groq_api_key=TEST_KEY, attempts_db_path=tmp_path / "a.db", response_cache_tasks="fast"
    )
    async with Router(settings, providers={"groq": fake, "openai_compatible": fake}) as router:
        first = await router.execute("fast", USER)
        again = await router.execute("fast", USER)
    assert (first.content, first.cached, again.cached) == ("scripted", False, True)
    assert len(fake.calls) == 1

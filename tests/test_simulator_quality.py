"""The simulator's quality model (app/simulator/quality.py), through the real `groq` SDK and the router on loopback:
a request's difficulty in `extra_body`, a profile's capability, the seeded noise, the mark a validator sees."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import groq
import pytest
from conftest import logged_rows

from app.core import ai_models
from app.errors import AllModelsFailedError
from app.simulator import ModelProfile, Simulator, load_profiles
from app.simulator.quality import UNACCEPTABLE, draw

EXACT = "sim/exact"  # capability 0.5, no noise
NOISY = "sim/noisy"  # capability 0.5, the default noise (0.05)
PLAIN = "sim/plain"  # no capability: today's behaviour
PROFILES = {
    EXACT: ModelProfile(capability=0.5, capability_noise=0.0, completion_tokens=30),
    NOISY: ModelProfile(capability=0.5),
    PLAIN: ModelProfile(),
}


def ask(client: groq.Groq, model: str, text: str = "What is 2+2?", difficulty: Any = None, **extra: Any) -> Any:
    body = dict(extra)
    if difficulty is not None:
        body["x_bench_difficulty"] = difficulty
    return client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": text}], extra_body=body or None
    )


def refused(completion: Any) -> bool:
    return (completion.choices[0].message.content or "").startswith(UNACCEPTABLE)


@pytest.fixture(scope="module")
def judged() -> Iterator[Simulator]:
    with Simulator(PROFILES, seed=7) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def client(judged: Simulator) -> Iterator[groq.Groq]:
    with groq.Groq(base_url=judged.base_url, api_key="k", max_retries=0, timeout=5) as c:
        yield c


def test_a_request_within_the_capability_is_answered_as_before(client: groq.Groq) -> None:
    completion = ask(client, EXACT, difficulty=0.5)
    assert completion.choices[0].message.content == f"[{EXACT}] Simulated reply to: What is 2+2?"
    assert completion.choices[0].finish_reason == "stop" and completion.usage.completion_tokens == 30


def test_a_request_beyond_the_capability_is_marked_and_costs_the_same(client: groq.Groq) -> None:
    completion = ask(client, EXACT, difficulty=0.51)
    assert completion.choices[0].message.content == f"{UNACCEPTABLE} [{EXACT}] Simulated reply to: What is 2+2?"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage.completion_tokens == 30  # billed like a good answer
    assert completion.usage.prompt_tokens == ask(client, EXACT, difficulty=0.1).usage.prompt_tokens


def test_without_a_capability_or_a_difficulty_every_answer_is_acceptable(client: groq.Groq) -> None:
    assert not refused(ask(client, PLAIN, difficulty=1.0))
    assert not refused(ask(client, EXACT))  # no x_bench_difficulty: the model is not judged


def test_the_noise_is_normal_with_the_documented_spread() -> None:
    draws = [
        draw(seed=7, model=NOISY, difficulty=0.5, messages=[{"role": "user", "content": f"q{i}"}], sd=0.05)
        for i in range(4000)
    ]
    mean = statistics.fmean(draws)
    assert abs(mean) < 0.003 and 0.047 < statistics.stdev(draws) < 0.053
    within_one_sd = sum(abs(d) <= 0.05 for d in draws) / len(draws)
    assert 0.65 < within_one_sd < 0.71  # a normal's 68 %


def test_the_simulator_judges_by_the_documented_rule(client: groq.Groq) -> None:
    # At the capability itself about half the answers are refused; each verdict is capability + noise >= difficulty.
    verdicts = []
    for i in range(80):
        text = f"question {i}"
        noise = draw(seed=7, model=NOISY, difficulty=0.5, messages=[{"role": "user", "content": text}], sd=0.05)
        verdicts.append(refused(ask(client, NOISY, text, 0.5)))
        assert verdicts[-1] == (0.5 + noise < 0.5)
    assert 25 <= sum(verdicts) <= 55


def test_the_verdict_is_a_function_of_seed_model_and_request_not_of_order(client: groq.Groq) -> None:
    texts = [f"ticket {i}" for i in range(40)]
    first = [refused(ask(client, NOISY, t, 0.5)) for t in texts]
    assert 5 < sum(first) < 35  # both verdicts occur
    assert [refused(ask(client, NOISY, t, 0.5)) for t in reversed(texts)] == first[::-1]  # asked again, any order
    with Simulator(PROFILES, seed=7) as same, groq.Groq(base_url=same.base_url, api_key="k", max_retries=0) as c:
        assert [refused(ask(c, NOISY, t, 0.5)) for t in texts] == first
    with Simulator(PROFILES, seed=8) as other, groq.Groq(base_url=other.base_url, api_key="k", max_retries=0) as c:
        assert [refused(ask(c, NOISY, t, 0.5)) for t in texts] != first


def test_completion_tokens_come_from_the_request_and_max_tokens_still_caps_them(client: groq.Groq) -> None:
    assert ask(client, EXACT, x_bench_completion_tokens=700).usage.completion_tokens == 700
    capped = client.chat.completions.create(
        model=EXACT,
        messages=[{"role": "user", "content": "prove it"}],
        max_tokens=100,
        extra_body={"x_bench_completion_tokens": 700},
    )
    assert capped.usage.completion_tokens == 100 and capped.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("x_bench_difficulty", 1.5),
        ("x_bench_difficulty", "hard"),
        ("x_bench_difficulty", True),
        ("x_bench_completion_tokens", 0),
        ("x_bench_completion_tokens", 2.5),
    ],
)
def test_a_bad_quality_field_is_a_400_naming_it(client: groq.Groq, field: str, value: Any) -> None:
    with pytest.raises(groq.BadRequestError) as caught:
        ask(client, EXACT, **{field: value})
    assert caught.value.status_code == 400 and f"'{field}' must be" in str(caught.value)


def test_an_unacceptable_stream_carries_the_mark_in_its_text(client: groq.Groq) -> None:
    stream = client.chat.completions.create(
        model=EXACT,
        messages=[{"role": "user", "content": "Sum 2 and 2"}],
        stream=True,
        extra_body={"x_bench_difficulty": 0.9},
    )
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == f"{UNACCEPTABLE} [{EXACT}] Simulated reply to: Sum 2 and 2"


def test_profiles_load_the_capability_from_toml_and_reject_bad_values(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[models."a/b"]\ncapability = 0.8\ncapability_noise = 0.1\n[models."c/d"]\n')
    loaded = load_profiles(path)
    assert (loaded["a/b"].capability, loaded["a/b"].capability_noise) == (0.8, 0.1)
    assert (loaded["c/d"].capability, loaded["c/d"].capability_noise) == (None, 0.05)
    with pytest.raises(ValueError, match="capability must be None or a number within"):
        ModelProfile(capability=1.5)
    with pytest.raises(ValueError, match="capability_noise must be a finite number >= 0"):
        ModelProfile(capability=0.5, capability_noise=-0.1)


# -- through the router: extra_body reaches the simulator through the groq SDK -----------------------------------


WEAK, STRONG = "sim/weak", "sim/strong"


def not_refused(response: Any) -> str | None:
    return "unacceptable answer" if (response.content or "").startswith(UNACCEPTABLE) else None


@pytest.fixture
def tiered(sim: Simulator, monkeypatch: pytest.MonkeyPatch) -> Simulator:
    """The session's simulator (the one make_router points at) with a weak and a strong model."""
    sim.set_profile(WEAK, ModelProfile(capability=0.3, capability_noise=0.0))
    sim.set_profile(STRONG, ModelProfile(capability=0.9, capability_noise=0.0))
    monkeypatch.setitem(ai_models.MODEL_REGISTRY, "quality", [WEAK, STRONG])
    monkeypatch.setitem(ai_models.MODEL_REGISTRY, "fallback", [])
    return sim


@pytest.mark.anyio
async def test_the_difficulty_travels_through_the_router_and_a_validator_refuses_the_weak_answer(
    tiered: Simulator, make_router: Any, db_path: Path
) -> None:
    router = make_router()
    async with router:
        response = await router.execute(
            "quality",
            [{"role": "user", "content": "Prove it"}],
            validate=not_refused,
            extra_body={"x_bench_difficulty": 0.6},
        )
    assert response.model_used == STRONG and not response.content.startswith(UNACCEPTABLE)
    assert [(r.model, r.body["x_bench_difficulty"]) for r in tiered.requests] == [(WEAK, 0.6), (STRONG, 0.6)]
    rows = logged_rows(db_path)
    assert [(r["model"], r["outcome"], r["error_kind"]) for r in rows] == [
        (WEAK, "failure", "validation"),
        (STRONG, "success", None),
    ]


@pytest.mark.anyio
async def test_a_request_beyond_every_model_is_refused_by_each(tiered: Simulator, make_router: Any) -> None:
    router = make_router()
    async with router:
        with pytest.raises(AllModelsFailedError) as caught:
            await router.execute(
                "quality",
                [{"role": "user", "content": "Prove it"}],
                validate=not_refused,
                extra_body={"x_bench_difficulty": 0.95},
            )
    assert [a.error_kind.value for a in caught.value.attempts if a.error_kind] == ["validation", "validation"]
    assert [r.model for r in tiered.requests] == [WEAK, STRONG]

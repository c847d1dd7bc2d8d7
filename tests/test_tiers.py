"""Tiers inside a task and the cascade: through the real SDK to the local simulator, then the logged rows."""

from __future__ import annotations

import pytest
from conftest import USER, logged_rows

from app.core import ai_models
from app.errors import ConfigError
from app.testing import fake_models, reply

pytestmark = pytest.mark.anyio

SMALL, MID, BIG, PLAIN, SPARE = "sim/small", "sim/mid", "sim/big", "sim/plain", "sim/spare"
HARD = [
    {
        "role": "user",
        "content": (
            "Step 1: write a Python function that parses this CSV and computes the rolling variance.\n"
            "Step 2: prove that your algorithm is O(n) and derive the numerical error bound in LaTeX, e.g. "
            "$\\sigma^2 = \\frac{1}{n}\\sum_i (x_i - \\mu)^2$.\n"
            "Step 3: then return exactly one JSON object with the fields code, proof and bound; "
            "you must not omit any.\n"
            "```python\nimport csv\ndef rolling(rows):\n    ...\n```\n" * 6
        ),
    }
]


@pytest.fixture
def tiered(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = ai_models.MODEL_REGISTRY
    registry.update(
        {"t": [PLAIN], "t:simple": [SMALL, SPARE], "t:medium": [MID], "t:complex": [BIG], "fallback": [PLAIN]}
    )


def models_and_kinds(db_path) -> list[tuple[str, str, str | None]]:
    return [(r["model"], r["outcome"], r["error_kind"]) for r in logged_rows(db_path)]


async def test_a_tier_starts_the_chain_on_its_list_then_the_higher_tiers_then_the_task_s(sim, make_router, tiered):
    router = make_router()
    assert [c.model for c in router.chains.get("t", ai_models.MODEL_REGISTRY, tier="medium").candidates] == [
        MID,
        BIG,
        PLAIN,
    ]
    assert [(c.model, c.tier) for c in router.chains.get("t", ai_models.MODEL_REGISTRY, tier="simple").candidates] == [
        (SMALL, "simple"),
        (SPARE, "simple"),
        (MID, "medium"),
        (BIG, "complex"),
        (PLAIN, None),
    ]
    response = await router.execute("t", USER, tier="simple")
    assert (response.model_used, response.tier, response.complexity) == (SMALL, "simple", None)
    plain = await router.execute("t", USER)  # no tier: the task's own list, as before tiers existed
    assert (plain.model_used, plain.tier) == (PLAIN, None)


async def test_a_refused_simple_answer_escalates_to_the_next_tier_and_both_rows_are_logged(
    sim, make_router, db_path, tiered
):
    sim.script(
        SMALL, {"fault": "ok", "content": "the start of an answer", "finish_reason": "length", "completion_tokens": 40}
    )
    response = await make_router().execute("t", USER, tier="simple")
    assert (response.model_used, response.tier) == (MID, "medium")
    # The rest of the simple tier (SPARE) is passed over: a refusal means the tier is too weak for the request.
    assert models_and_kinds(db_path) == [(SMALL, "failure", "refused"), (MID, "success", None)]
    refused = logged_rows(db_path)[0]
    assert refused["completion_tokens"] == 40 and refused["cost_usd"] is None  # billed tokens kept (no price here)
    assert "length" in refused["error_message"]
    assert [a.error_kind.value if a.error_kind else None for a in response.attempts] == ["refused", None]


async def test_the_caller_s_validator_escalates_a_tiered_request_too(sim, make_router, db_path, tiered):
    sim.script(SMALL, {"fault": "ok", "content": "not json"})
    sim.script(MID, {"fault": "ok", "content": '{"answer": 42}'})
    response = await make_router().execute("t", USER, tier="simple", required_fields=["answer"])
    assert (response.model_used, response.content) == (MID, '{"answer": 42}')
    assert models_and_kinds(db_path)[-2:] == [(SMALL, "failure", "validation"), (MID, "success", None)]


async def test_empty_answers_and_refusals_escalate_and_the_last_model_s_answer_is_kept(tiered):
    script = {
        SMALL: "I'm sorry, but I can't help with that request.",
        MID: reply(""),
        BIG: reply("cut", finish_reason="length"),
        PLAIN: reply("also cut", finish_reason="length"),
    }
    with fake_models(script) as fake:
        response = await ai_models.execute_task("t", USER, tier="simple")
        rows = fake.attempts()
    # Nothing is left after the task's own list: its answer, cut or not, is the request's answer.
    assert (response.model_used, response.content, response.finish_reason) == (PLAIN, "also cut", "length")
    assert [(r["model"], r["error_kind"]) for r in rows] == [
        (SMALL, "refused"),
        (MID, "refused"),
        (BIG, "refused"),
        (PLAIN, None),
    ]
    assert [r["error_message"] for r in rows[:3]] == [
        "escalated: the model declined to answer",
        "escalated: the answer is empty",
        "escalated: the answer was cut at its length limit (finish_reason length)",
    ]


async def test_a_session_never_starts_below_the_highest_tier_it_reached(tiered):
    with fake_models(
        {
            SMALL: reply("", finish_reason="length"),
            MID: reply("", finish_reason="length"),
            BIG: "deep answer",
            "*": "plain",
        }
    ) as fake:
        first = await ai_models.execute_task("t", USER, tier="simple", session_id="conversation-1")
        second = await ai_models.execute_task("t", USER, tier="simple", session_id="conversation-1")
        other = await ai_models.execute_task("t", USER, tier="medium", session_id="conversation-2")
    assert (first.model_used, first.tier) == (BIG, "complex")
    assert (second.model_used, second.tier, len(second.attempts)) == (BIG, "complex", 1)  # started on complex
    assert other.tier == "complex"  # its own escalation, not the other session's
    assert [c.model for c in fake.calls] == [SMALL, MID, BIG, BIG, MID, BIG]


async def test_tier_auto_scores_the_request(sim, make_router, tiered):
    router = make_router()
    easy = await router.execute("t", [{"role": "user", "content": "What is the capital of France?"}], tier="auto")
    hard = await router.execute("t", HARD, tier="auto")
    assert (easy.model_used, easy.tier, easy.complexity.tier) == (SMALL, "simple", "simple")
    assert (hard.model_used, hard.tier, hard.complexity.tier) == (BIG, "complex", "complex")
    assert hard.complexity.score > easy.complexity.score and hard.complexity.reasons


async def test_complexity_routing_scores_the_listed_tasks_only(sim, make_router, tiered):
    ai_models.MODEL_REGISTRY["u"] = [PLAIN]
    ai_models.MODEL_REGISTRY["u:complex"] = [BIG]
    router = make_router(complexity_routing="t")
    assert (await router.execute("t", HARD)).model_used == BIG
    assert (await router.execute("u", HARD)).model_used == PLAIN  # not listed: its own list
    everywhere = make_router(complexity_routing="all")
    assert (await everywhere.execute("u", HARD)).model_used == BIG
    assert (await everywhere.execute("fast", HARD)).tier is None  # a task without tier lists is left alone


async def test_force_model_keeps_precedence_over_tiers(sim, make_router, tiered):
    response = await make_router(force_model=PLAIN).execute("t", HARD, tier="auto")
    assert (response.model_used, response.tier) == (PLAIN, None)


async def test_bad_tier_options_are_refused_before_any_call(sim, make_router, tiered):
    router = make_router()
    with pytest.raises(ConfigError, match="tier must be 'auto' or one of simple, medium, complex"):
        await router.execute("t", USER, tier="hard")
    with pytest.raises(ConfigError, match="task 'fast' has no tier lists"):
        await router.execute("fast", USER, tier="simple")
    with pytest.raises(ConfigError, match="session_id must be"):
        await router.execute("t", USER, tier="simple", session_id="")
    assert sim.requests == []


async def test_learn_mode_starts_a_tier_past_a_model_refused_too_often(tiered):
    script = {SMALL: reply("", finish_reason="length"), SPARE: reply("", finish_reason="length"), MID: "fine"}
    with fake_models(script, cascade_learn=True, cascade_learn_window=5, cascade_learn_refused_ratio=0.5) as fake:
        for _ in range(5):
            await ai_models.execute_task("t", USER, tier="simple")
        learned = await ai_models.execute_task("t", USER, tier="simple")
        rows = fake.attempts()
    assert learned.model_used == MID
    # The skip says why; the tier's next model is still tried on its own record.
    assert [(a.model, a.outcome.value, a.error_kind.value) for a in learned.attempts[:2]] == [
        (SMALL, "skipped", "refused"),
        (SPARE, "failure", "refused"),
    ]
    assert (
        "learned (CASCADE_LEARN): 5 of its last 5 answers on the simple tier were refused" in rows[-3]["error_message"]
    )
    assert [c.model for c in fake.calls].count(SMALL) == 5  # no call once it had learned


async def test_rows_carry_their_tier_and_what_they_saved_against_the_task_s_first_model(tiered):
    from app.registry.catalog import ModelInfo

    ai_models.MODEL_CATALOG.update(
        {
            PLAIN: ModelInfo(input_price=1.0, output_price=1.0),
            SMALL: ModelInfo(input_price=0.1, output_price=0.1),
            MID: ModelInfo(input_price=0.5, output_price=0.5),
        }
    )
    usage = {"prompt_tokens": 1000, "completion_tokens": 1000, "total_tokens": 2000}
    script = {SMALL: reply("", usage=usage, finish_reason="length"), MID: reply("fine", usage=usage)}
    with fake_models(script) as fake:
        response = await ai_models.execute_task("t", USER, tier="simple")
        rows = fake.attempts()
    assert [(r["model"], r["tier"]) for r in rows] == [(SMALL, "simple"), (MID, "medium")]
    # Against PLAIN (the task's own first model) at $1/M: the refused call saved 0.002 - 0.0002, the answer
    # 0.002 - 0.001.
    assert [round(r["saved_usd"], 9) for r in rows] == [0.0018, 0.001]
    assert round(response.cost_usd, 9) == 0.001


async def test_learn_mode_starts_from_what_the_attempt_log_says(tiered, tmp_path):
    db = tmp_path / "shared.db"
    refused = reply("", finish_reason="length")
    with fake_models({SMALL: refused, SPARE: refused, MID: "fine"}, attempts_db_path=db):
        for _ in range(5):
            await ai_models.execute_task("t", USER, tier="simple")
    # A new process: nothing in memory, the log on disk.
    with fake_models(
        {SMALL: refused, SPARE: refused, MID: "fine"},
        attempts_db_path=db,
        cascade_learn=True,
        cascade_learn_window=5,
        cascade_learn_refused_ratio=0.5,
    ) as fake:
        assert ai_models.get_router().learning.seeded.wait(10)
        response = await ai_models.execute_task("t", USER, tier="simple")
    assert [(a.model, a.outcome.value) for a in response.attempts] == [
        (SMALL, "skipped"),
        (SPARE, "failure"),
        (MID, "success"),
    ]
    assert [c.model for c in fake.calls] == [SPARE, MID]

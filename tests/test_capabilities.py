"""Capability-aware selection, variants and response validation."""

from __future__ import annotations

import json

import pytest
from conftest import USER, logged_rows

from app.core import ai_models
from app.errors import AllModelsFailedError, NoCapableModelError
from app.registry.catalog import ModelInfo

pytestmark = pytest.mark.anyio

BIG, QWEN = ai_models.MODEL_REGISTRY["reasoning"]
SMALL = ai_models.MODEL_REGISTRY["fast"][0]
IMAGE = [
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "what is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        ],
    }
]


async def test_images_go_only_to_vision_models(sim, make_router, db_path):
    ai_models.MODEL_CATALOG["custom/vision"] = ModelInfo(
        input_price=0.1, output_price=0.1, capabilities=frozenset({"vision"})
    )
    ai_models.MODEL_REGISTRY["describe"] = [SMALL, "custom/vision"]
    resp = await make_router().execute("describe", IMAGE)
    assert resp.model_used == "custom/vision"
    rows = logged_rows(db_path)
    assert (rows[0]["model"], rows[0]["outcome"], rows[0]["error_kind"]) == (SMALL, "skipped", "capability")
    assert rows[0]["error_message"] == "lacks vision"
    assert sim.calls(SMALL) == 0


async def test_no_capable_model_names_the_capability_and_the_models(sim, make_router):
    with pytest.raises(NoCapableModelError) as caught:
        await make_router().execute("reasoning", IMAGE)
    message = str(caught.value)
    assert "vision" in message
    for model in (BIG, QWEN, SMALL):
        assert model in message
    assert sim.requests == []


async def test_tools_and_json_mode_need_capable_models(sim, make_router, db_path):
    safeguard = "openai/gpt-oss-safeguard-20b"
    assert "tools" not in ai_models.MODEL_CATALOG[safeguard].capabilities
    ai_models.MODEL_REGISTRY["agent"] = [safeguard, SMALL]
    tools = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}]
    resp = await make_router().execute("agent", USER, tools=tools)
    assert resp.model_used == SMALL
    assert sim.requests[-1].body["tools"] == tools
    resp = await make_router().execute("agent", USER, response_format={"type": "json_object"})
    assert resp.model_used == safeguard  # it has json_mode


async def test_prompt_larger_than_the_context_window_is_skipped_without_a_call(sim, make_router, db_path):
    ai_models.MODEL_CATALOG["custom/small-ctx"] = ModelInfo(input_price=0.1, output_price=0.1, context_window=100)
    ai_models.MODEL_REGISTRY["long"] = ["custom/small-ctx", SMALL]
    long = [{"role": "user", "content": "word " * 1000}]
    resp = await make_router().execute("long", long)
    assert resp.model_used == SMALL
    row = logged_rows(db_path)[0]
    assert (row["outcome"], row["error_kind"]) == ("skipped", "context_length")
    assert sim.calls("custom/small-ctx") == 0


async def test_variant_uses_its_own_chain_and_is_logged(sim, make_router, db_path):
    ai_models.MODEL_REGISTRY["writer"] = ["custom/writer"]
    ai_models.MODEL_REGISTRY["writer:landing"] = ["custom/landing-writer"]
    router = make_router()
    landing = await router.execute("writer", USER, variant="landing")
    other = await router.execute("writer", USER, variant="blog")
    assert (landing.model_used, landing.variant) == ("custom/landing-writer", "landing")
    assert (other.model_used, other.variant) == ("custom/writer", "blog")
    assert [(r["task_type"], r["variant"], r["model"]) for r in logged_rows(db_path)] == [
        ("writer", "landing", "custom/landing-writer"),
        ("writer", "blog", "custom/writer"),
    ]


async def test_validate_hard_fail_moves_on(sim, make_router, db_path):
    sim.script(BIG, {"fault": "ok", "content": "I cannot help"})
    resp = await make_router().execute(
        "reasoning", USER, validate=lambda r: "refusal" if "cannot" in (r.content or "") else None
    )
    assert resp.model_used == QWEN
    rows = logged_rows(db_path)
    assert [(r["model"], r["outcome"], r["error_kind"], r["error_message"]) for r in rows] == [
        (BIG, "failure", "validation", "refusal"),
        (QWEN, "success", None, None),
    ]
    assert rows[0]["cost_usd"] > 0  # the rejected answer was billed


async def test_required_fields_in_a_json_answer(sim, make_router, db_path):
    sim.script(BIG, {"fault": "ok", "content": json.dumps({"title": "x"})})
    sim.script(QWEN, {"fault": "ok", "content": "```json\n" + json.dumps({"title": "x", "body": "y"}) + "\n```"})
    resp = await make_router().execute("reasoning", USER, required_fields=["title", "body"])
    assert resp.model_used == QWEN
    assert logged_rows(db_path)[0]["error_message"] == "JSON answer lacks required fields: body"


async def test_every_model_failing_validation_says_so_for_each(sim, make_router):
    with pytest.raises(AllModelsFailedError) as caught:
        await make_router().execute("reasoning", USER, required_fields=["title"])
    assert [a.error_kind.value for a in caught.value.attempts] == ["validation"] * 3
    assert str(caught.value).count("answer is not a JSON object") == 3


async def test_validation_failures_count_against_max_attempts(sim, make_router, db_path):
    with pytest.raises(AllModelsFailedError, match="LLM_MAX_ATTEMPTS=2"):
        await make_router(llm_max_attempts=2).execute("reasoning", USER, validate=lambda r: "never good")
    assert len(logged_rows(db_path)) == 2


async def test_bad_options_are_refused_before_any_call(sim, make_router):
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="max_cost_usd"):
        await make_router().execute("fast", USER, max_cost_usd=-1)
    with pytest.raises(ConfigError, match="required_fields"):
        await make_router().execute("fast", USER, required_fields="title")
    assert sim.requests == []

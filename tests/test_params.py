"""Parameters and messages are checked before anything is sent: a bad one raises naming what to fix, no model is
called and no attempt is logged; good ones, and `extra_body`, reach the provider as given."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import USER, logged_rows

import app
from app.core import ai_models
from app.core.params import PARAMS
from app.errors import InvalidMessagesError, InvalidParameterError, RequestRejectedError
from app.registry.catalog import ModelInfo
from app.simulator import ModelProfile, Simulator
from app.store import get_attempt_log

pytestmark = pytest.mark.anyio

SMALL = ai_models.MODEL_REGISTRY["fast"][0]  # openai/gpt-oss-20b: 65,536 completion tokens
BIG = "openai/gpt-oss-120b"  # 65,536
QWEN = "qwen/qwen3.8-27b"  # 16,384
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}
SURROGATE = "bad \ud800 text"


def nothing_logged(db_path: Path) -> bool:
    """No attempt row, not even a skip: the attempt log may not have created its file at all."""
    assert get_attempt_log(db_path).flush(timeout=30)
    return not db_path.exists() or logged_rows(db_path) == []


def nested(levels: int) -> Any:
    """`levels` containers deep: {"x": ["x": [...]]}."""
    value: Any = "leaf"
    for level in range(levels):
        value = [value] if level % 2 == 0 else {"x": value}
    return value


BAD = [
    ("max_tokens", -5, "a positive int"),
    ("max_tokens", 0, "a positive int"),
    ("max_tokens", "lots", "a positive int"),
    ("max_tokens", True, "a positive int"),
    ("max_completion_tokens", 2.5, "a positive int"),
    ("temperature", 5, "from 0 to 2"),
    ("temperature", "hot", "from 0 to 2"),
    ("temperature", float("nan"), "from 0 to 2"),
    ("top_p", 2, "from 0 to 1"),
    ("frequency_penalty", 2.5, "from -2 to 2"),
    ("presence_penalty", -3, "from -2 to 2"),
    ("n", 2, "1 (Groq returns one choice)"),
    ("seed", "7", "an int"),
    ("stop", 5, "a list of up to 4 strings"),
    ("stop", ["a", "b", "c", "d", "e"], "a list of up to 4 strings"),
    ("stop", ["ok", 3], "stop[1]: not a string"),
    ("user", 42, "a string"),
    ("parallel_tool_calls", "yes", "True or False"),
    ("response_format", "json", '{"type": "json_object"}'),
    ("response_format", {"type": "xml"}, "unknown type 'xml'"),
    ("response_format", {"type": "json_schema"}, 'json_schema must be a dict with a "name"'),
    ("response_format", {"type": "json_schema", "json_schema": {"schema": {}}}, 'with a "name"'),
    ("tools", "not a list", 'a list of {"type": "function"'),
    ("tools", [{"function": {"name": "f"}}], 'tools[0] is not {"type": "function", ...}'),
    ("tools", [{"type": "function", "function": {"description": "no name"}}], "non-empty name"),
    ("tools", [{"type": "function", "function": {"name": "f", "parameters": "{}"}}], "a JSON Schema object"),
    ("tool_choice", "always", '"none", "auto", "required"'),
    ("tool_choice", {"type": "function"}, '{"type": "function", "function": {"name": ...}}'),
    ("reasoning_effort", "max", '"low", "medium" or "high"'),
    ("reasoning_format", "pretty", '"hidden", "raw" or "parsed"'),
    ("include_reasoning", 1, "True or False"),
    ("service_tier", "gold", '"on_demand", "flex"'),
    ("stream", 0, "stream_task"),
    ("extra_body", "x", "a dict of provider-specific fields"),
    ("extra_body", {"model": "other"}, "it may not set model: the router does"),
    ("variant", 5, "a string: MODEL_REGISTRY"),
]


@pytest.mark.parametrize(("name", "value", "accepted"), BAD, ids=[f"{n}={v!r}" for n, v, _ in BAD])
async def test_a_bad_value_raises_before_any_call(sim, make_router, db_path, name, value, accepted):
    with pytest.raises(InvalidParameterError) as caught:
        await make_router().execute("fast", USER, **{name: value})
    message = str(caught.value)
    assert message.startswith(f"fast: {name}={value!r} is not accepted: ")
    assert accepted in message
    assert caught.value.param == name
    assert isinstance(caught.value, RequestRejectedError) and isinstance(caught.value, ValueError)
    assert sim.requests == []
    assert nothing_logged(db_path)


async def test_streams_are_checked_when_opened(sim, make_router, db_path):
    with pytest.raises(InvalidParameterError, match=r"temperature=5 is not accepted: expected a number from 0 to 2"):
        make_router().stream("fast", USER, temperature=5)
    with pytest.raises(InvalidMessagesError, match="lone surrogate"):
        make_router().stream("fast", [{"role": "user", "content": SURROGATE}])
    assert sim.requests == [] and nothing_logged(db_path)


async def test_the_public_functions_check_too(env, sim, db_path):
    with pytest.raises(InvalidParameterError, match=r"top_p=2 is not accepted"):
        await app.execute_fast_task(USER, top_p=2)
    with pytest.raises(InvalidParameterError, match=r"max_tokens='lots' is not accepted"):
        app.stream_task("fast", USER, max_tokens="lots")
    assert sim.requests == [] and nothing_logged(db_path)


async def test_good_values_reach_the_provider_as_given(sim, make_router):
    router = make_router()
    given = {
        "max_completion_tokens": 50,
        "temperature": 0.2,
        "top_p": 1,
        "frequency_penalty": -2,
        "presence_penalty": 1.5,
        "n": 1,
        "seed": 7,
        "stop": ["\n", "END"],
        "user": "user-1",
        "parallel_tool_calls": False,
        "tools": [TOOL],
        "tool_choice": "auto",
        "reasoning_effort": "low",
        "reasoning_format": "hidden",
        "service_tier": "on_demand",
    }
    resp = await router.execute("fast", USER, **given)
    assert resp.model_used == SMALL
    body = sim.requests[-1].body
    assert {name: body[name] for name in given} == given

    schema = {"type": "json_schema", "json_schema": {"name": "t", "schema": {"type": "object", "properties": {}}}}
    await router.execute(
        "fast",
        USER,
        response_format=schema,
        tool_choice={"type": "function", "function": {"name": "lookup"}},
        tools=[TOOL, {"type": "browser_search"}],
        stop="END",
        include_reasoning=False,
    )
    body = sim.requests[-1].body
    assert (body["response_format"], body["stop"], body["include_reasoning"]) == (schema, "END", False)
    assert body["tools"] == [TOOL, {"type": "browser_search"}]

    await router.execute("fast", USER, max_tokens=None, temperature=None, variant="short")  # None: not set
    assert sim.requests[-1].body["max_tokens"] is None
    assert len(sim.requests) == 3

    # Just past each bound is refused.
    beyond = {
        "temperature": 2.01,
        "top_p": 1.01,
        "frequency_penalty": -2.01,
        "presence_penalty": 2.01,
        "max_tokens": 65_537,
    }
    for name, value in beyond.items():
        with pytest.raises(InvalidParameterError, match=rf"^fast: {name}={value} is not accepted"):
            await router.execute("fast", USER, **{name: value})
    assert len(sim.requests) == 3


async def test_an_unknown_parameter_is_refused_with_the_accepted_ones(sim, make_router, db_path):
    with pytest.raises(InvalidParameterError) as caught:
        await make_router().execute("fast", USER, max_tokenz=10)
    message = str(caught.value)
    assert message.startswith("fast: unknown parameter 'max_tokenz'; accepted: max_tokens, ")
    assert all(name in message for name in PARAMS)
    assert "extra_body={...}" in message and caught.value.param == "max_tokenz"
    assert sim.requests == [] and nothing_logged(db_path)


async def test_extra_body_reaches_groq_as_body_fields(sim, make_router):
    router = make_router()
    extra = {"citation_options": "disabled", "custom": {"depth": [1, 2]}}
    await router.execute("fast", USER, max_tokens=5, extra_body=extra)
    stream = router.stream("fast", USER, max_tokens=5, extra_body={"stream_options": {"include_usage": True}})
    assert "".join([delta async for delta in stream])
    plain, streamed = (r.body for r in sim.requests)
    assert (plain["citation_options"], plain["custom"], plain["max_tokens"]) == ("disabled", {"depth": [1, 2]}, 5)
    assert (streamed["stream_options"], streamed["stream"]) == ({"include_usage": True}, True)
    assert "extra_body" not in plain and "extra_body" not in streamed
    # Unchecked, except that it must be sendable and leave the router's own fields alone.
    for extra_body in ({"custom": nested(40)}, {"stream": False}):
        with pytest.raises(InvalidParameterError, match=r"^fast: extra_body="):
            await router.execute("fast", USER, extra_body=extra_body)
    assert len(sim.requests) == 2


async def test_extra_body_reaches_an_openai_compatible_endpoint(make_router, monkeypatch, db_path):
    with Simulator(api_key="local-key-123", default_profile=ModelProfile()) as local:
        monkeypatch.setenv("LOCAL_PARAMS_KEY", "local-key-123")
        ai_models.MODEL_CATALOG["local/llama"] = ModelInfo(
            provider="openai_compatible", base_url=local.openai_base_url, api_key_env="LOCAL_PARAMS_KEY"
        )
        ai_models.MODEL_REGISTRY["private"] = ["local/llama"]
        router = make_router()
        resp = await router.execute("private", USER, max_tokens=5, extra_body={"num_ctx": 4096, "top_k": 20})
        stream = router.stream("private", USER, extra_body={"num_ctx": 8192})
        assert "".join([delta async for delta in stream])
        plain, streamed = (r.body for r in local.requests)
    assert resp.provider == "openai_compatible"
    assert (plain["num_ctx"], plain["top_k"], plain["max_tokens"]) == (4096, 20, 5)
    assert (streamed["num_ctx"], streamed["stream"], streamed["stream_options"]) == (
        8192,
        True,
        {"include_usage": True},
    )
    assert "extra_body" not in plain and "extra_body" not in streamed


TOOL_CALL = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"q": "x"}'}}
UNSENDABLE = [
    ([{"role": "user", "content": SURROGATE}], "messages[0].content has text that cannot be encoded"),
    ([{"role": "user", "content": [{"type": "text", "text": SURROGATE}]}], "messages[0].content[0].text has text"),
    ([{"role": "user", "content": "hi", "name": "bob\udfff"}], "messages[0].name has text that cannot be encoded"),
    (
        [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{**TOOL_CALL, "function": {"name": "lookup", "arguments": '{"q": "\ud83d"}'}}],
            },
        ],
        "messages[1].tool_calls[0].function.arguments has text",
    ),
    (
        [{"role": "user", "content": [{"type": "text", "text": "x", "meta": nested(40)}]}],
        "is nested deeper than 32 levels",
    ),
    (
        [{"role": "user", "content": [{"type": "text", "text": "x", "meta": nested(5000)}]}],
        "is nested deeper than 32 levels",
    ),
    (
        [{"role": "user", "content": [{"type": "text", "text": "x", "meta": {1, 2}}]}],
        "messages[0].content[0].meta is a set, which JSON cannot encode",
    ),
]


@pytest.mark.parametrize("log_content", [False, True], ids=["LOG_CONTENT=false", "LOG_CONTENT=true"])
@pytest.mark.parametrize(
    ("messages", "fragment"), UNSENDABLE, ids=["content", "part", "name", "tool-arguments", "deep", "very-deep", "set"]
)
async def test_unsendable_messages_are_the_callers_error(sim, make_router, db_path, log_content, messages, fragment):
    with pytest.raises(InvalidMessagesError) as caught:
        await make_router(log_content=log_content).execute("fast", messages)
    assert fragment in str(caught.value)
    assert sim.requests == []
    assert nothing_logged(db_path)  # not a failure of any model


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("stop", ["ok", SURROGATE], "stop[1]: it cannot be encoded as UTF-8"),
        ("user", SURROGATE, "it cannot be encoded as UTF-8"),
        (
            "tools",
            [{"type": "function", "function": {"name": "f", "description": SURROGATE}}],
            "tools[0].function.description has text that cannot be encoded",
        ),
        (
            "tools",
            [{"type": "function", "function": {"name": "f", "parameters": nested(5000)}}],
            "tools[0].function.parameters.x[0]",
        ),
        ("extra_body", {"deep": nested(40)}, "extra_body.deep.x[0]"),
        ("extra_body", {"k\ud800": 1}, "extra_body['k\\ud800'] has text that cannot be encoded"),
        ("variant", SURROGATE, "cannot be encoded as UTF-8"),
    ],
)
async def test_unsendable_parameters_are_the_callers_error(sim, make_router, db_path, name, value, fragment):
    with pytest.raises(InvalidParameterError) as caught:
        await make_router(log_content=True).execute("fast", USER, **{name: value})
    assert fragment in str(caught.value) and caught.value.param == name
    assert sim.requests == [] and nothing_logged(db_path)


async def test_text_that_is_fine_is_sent_as_it_is(sim, make_router):
    messages = [
        {"role": "system", "content": "Réponds en français ☕"},
        {"role": "user", "content": [{"type": "text", "text": "naïve 🙂"}], "name": "zoë"},
        {"role": "assistant", "content": None, "tool_calls": [TOOL_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": "résultat"},
        {"role": "user", "content": [{"type": "text", "text": "x", "meta": nested(29)}]},
    ]
    router = make_router(log_content=True)
    await router.execute("fast", messages, tools=[TOOL], stop="fin ☕")
    body = sim.requests[-1].body
    assert body["messages"] == messages and body["stop"] == "fin ☕"
    messages[1]["content"][0]["text"] = "naïve \ud83d"  # half of the emoji: a lone surrogate
    with pytest.raises(InvalidMessagesError, match=r"^messages\[1\]\.content\[0\]\.text has text that cannot"):
        await router.execute("fast", messages, tools=[TOOL])
    assert len(sim.requests) == 1


async def test_max_tokens_skips_the_models_that_cannot_produce_it(sim, make_router, db_path):
    ai_models.MODEL_REGISTRY["long"] = [QWEN, BIG]
    resp = await make_router().execute("long", USER, max_tokens=20_000)
    assert resp.model_used == BIG and sim.calls(QWEN) == 0
    skipped = logged_rows(db_path)[0]
    assert (skipped["model"], skipped["outcome"], skipped["error_kind"], skipped["error_message"]) == (
        QWEN,
        "skipped",
        "capability",
        "max_tokens=20000 exceeds its 16384-token completion limit",
    )
    assert sim.requests[-1].body["max_tokens"] == 20_000


async def test_max_tokens_no_model_of_the_chain_can_produce_raises(sim, make_router, db_path):
    ai_models.MODEL_REGISTRY["long"] = [QWEN]
    ai_models.MODEL_REGISTRY["fallback"] = [BIG]
    with pytest.raises(InvalidParameterError) as caught:
        await make_router().execute("long", USER, max_completion_tokens=70_000)
    assert str(caught.value) == (
        "long: max_completion_tokens=70000 is not accepted: more than any model of this chain can produce "
        f"({QWEN}: 16384, {BIG}: 65536); expected a positive int no larger than 65536"
    )
    with pytest.raises(InvalidParameterError, match=r"max_tokens=20000 is not accepted: more than any model"):
        await make_router(force_model=QWEN).execute("long", USER, max_tokens=20_000)  # forced: no other model
    assert sim.requests == [] and nothing_logged(db_path)


async def test_a_model_without_a_known_limit_may_take_any_max_tokens(sim, make_router):
    ai_models.MODEL_REGISTRY["custom"] = [QWEN, "custom/unlisted"]
    resp = await make_router().execute("custom", USER, max_tokens=60_000)
    assert resp.model_used == "custom/unlisted" and sim.requests[-1].body["max_tokens"] == 60_000

"""The complexity scorer (app/core/complexity.py): tiers from the request's own text and parameters, no model, no
network. Its speed is measured in bench/scorer.py, not here."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_bench

from app.core.complexity import CHARS_SCANNED, MESSAGES_SCANNED, TIERS, Weights, score_complexity
from app.errors import ConfigError, InvalidMessagesError
from app.types import Complexity

ROOT = Path(__file__).resolve().parents[1]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


PLAIN = user("What is the capital of France?")
# A fenced block with a bug to explain and fix: one strong feature (code) and two instructions.
BUG_FIX = user(
    "Why does this function return None? Explain the bug and fix it.\n"
    "```python\ndef total(xs):\n    for x in xs:\n        s += x\n```"
)
LONG_CODE_MATH = user("""We need a rate limiter for our API gateway. Step by step:
1. Derive the maximum sustainable request rate from the equation $r = \\frac{c}{t}$ and prove that the token bucket \
never exceeds it.
2. Implement the token bucket in Python with asyncio; it must be thread-safe.
3. Then write unit tests for the edge cases: a burst at start, a clock that jumps back, exactly zero tokens.
4. Finally, compare it with a sliding window log and justify which one uses less memory at most 10,000 clients.

```python
class TokenBucket:
    def __init__(self, rate: float, capacity: int) -> None:
        self.rate = rate
```
Format the answer as Markdown with one section per step.""")
SCHEMA = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object", "properties": {}}}}


def test_a_short_plain_question_is_simple_with_nothing_to_name():
    assert score_complexity(PLAIN) == Complexity(tier="simple", score=0.0, reasons=())


def test_a_long_multi_step_code_and_math_request_is_complex_and_says_why():
    result = score_complexity(LONG_CODE_MATH)
    assert result.tier == "complex"
    assert result.score == 1.0  # clipped: far more than enough
    assert result.reasons == ("code", "math", "analysis", "multi-step instructions")


def test_a_code_block_to_fix_is_medium():
    result = score_complexity(BUG_FIX)
    assert (result.tier, result.score, result.reasons) == ("medium", 0.35, ("code", "multi-step instructions"))


def test_the_tiers_are_ordered_weakest_first():
    assert TIERS == ("simple", "medium", "complex")


@pytest.mark.parametrize(
    ("params", "added", "reason"),
    [
        ({"response_format": SCHEMA}, 0.15, "JSON schema requested"),
        ({"response_format": {"type": "json_object"}}, 0.08, "JSON output requested"),
        ({"tools": [TOOL]}, 0.075, "tools (1)"),
        ({"tools": [TOOL] * 3}, 0.105, "tools (3)"),
        ({"tools": [TOOL] * 3, "tool_choice": "required"}, 0.135, "tools (3), call required"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "lookup"}}},
            0.105,
            "tools (1), call required",
        ),
        ({"reasoning_effort": "high"}, 0.30, "reasoning effort high"),
        ({"reasoning_effort": "medium"}, 0.15, "reasoning effort medium"),
        ({"max_tokens": 2048}, 0.05, "long answer allowed (2,048 tokens)"),
        ({"max_completion_tokens": 8192}, 0.10, "long answer allowed (8,192 tokens)"),
    ],
)
def test_the_structure_a_call_asks_for_raises_the_score_by_its_weight(params, added, reason):
    weights = Weights(answer_length=0.10)  # off by default
    before = score_complexity(PLAIN, weights=weights)
    after = score_complexity(PLAIN, weights=weights, **params)
    assert after.score == pytest.approx(before.score + added, abs=0.001)
    assert after.reasons == (reason,)


def test_parameters_that_ask_nothing_of_the_answer_change_nothing():
    plain = score_complexity(BUG_FIX)
    assert (
        score_complexity(
            BUG_FIX,
            temperature=0.2,
            max_tokens=256,
            reasoning_effort="low",
            tool_choice="none",
            response_format={"type": "text"},
            tools=[],
        )
        == plain
    )
    assert score_complexity(BUG_FIX, max_tokens=8192) == plain  # weighed 0 by default


def test_high_reasoning_effort_on_a_medium_request_makes_it_complex():
    assert score_complexity(BUG_FIX, reasoning_effort="high").tier == "complex"


def test_the_floor_raises_the_tier_never_the_score_and_says_so():
    assert score_complexity(PLAIN, floor="medium") == Complexity(tier="medium", score=0.0, reasons=("floor medium",))
    raised = score_complexity(BUG_FIX, floor="complex")
    assert (raised.tier, raised.score) == ("complex", 0.35)
    assert raised.reasons == ("floor complex", "code", "multi-step instructions")
    # A floor at or under the scored tier changes nothing.
    assert score_complexity(BUG_FIX, floor="medium") == score_complexity(BUG_FIX)
    assert score_complexity(LONG_CODE_MATH, floor="simple") == score_complexity(LONG_CODE_MATH)


def test_with_a_floor_the_reasons_stay_at_four():
    result = score_complexity(
        PLAIN,
        floor="complex",
        reasoning_effort="medium",
        weights=Weights(answer_length=0.1),
        response_format={"type": "json_object"},
        tools=[TOOL],
        max_tokens=2048,
    )
    assert result.tier == "complex" and result.score == 0.355
    # The fifth, the smallest (long answer allowed), is left out.
    assert result.reasons == ("floor complex", "reasoning effort medium", "JSON output requested", "tools (1)")


def test_the_thresholds_move_the_tier():
    assert score_complexity(BUG_FIX).tier == "medium"  # 0.35
    assert score_complexity(BUG_FIX, medium_at=0.40, complex_at=0.80).tier == "simple"
    assert score_complexity(BUG_FIX, medium_at=0.10, complex_at=0.35).tier == "complex"  # a threshold is inclusive
    assert score_complexity(PLAIN, medium_at=0.0, complex_at=0.5).tier == "medium"
    assert score_complexity(LONG_CODE_MATH, complex_at=1.0).tier == "complex"


def test_reasons_name_the_features_largest_first_at_most_four():
    conversation = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}] * 6
    assert score_complexity(conversation).reasons == ("long conversation (12 messages)",)
    images = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            ],
        }
    ]
    assert score_complexity(images) == Complexity(tier="simple", score=0.1, reasons=("images (2)",))
    one_image = [{"role": "user", "content": images[0]["content"][:2]}]
    assert score_complexity(one_image).reasons == ("image",)
    long_request = user("Please read the following notes and tell me what you think of them. " * 60)
    assert score_complexity(long_request).reasons == (
        "long request (4,080 characters)",
        "long context (4,080 characters)",
    )
    assert len(score_complexity(LONG_CODE_MATH, reasoning_effort="high", response_format=SCHEMA).reasons) == 4


def test_math_notation_and_words_count_as_math():
    for text in ("Prove that the sum of 1/n^2 converges.", "Derive $\\int_0^1 x^2 dx$.", "Is ∑ 1/n² finite? ∀ n ≥ 1"):
        result = score_complexity(user(text))
        assert result.reasons[0] == "math", text
        assert result.tier == "medium", text


def test_code_needs_more_than_a_programming_word():
    assert score_complexity(user("Write a regex that matches an order id.")).score < 0.30
    assert score_complexity(user("Refactor this:\n```\nx = 1\n```")).reasons[0] == "code"
    tokens = user("if (a == b && c != d) { run(); }\nreturn x => x + 1;\n")
    assert score_complexity(tokens).reasons == ("code",)


def test_only_the_asking_messages_are_scanned_for_what_is_asked():
    asked = [
        {"role": "system", "content": "You must answer in exactly three sentences."},
        {"role": "user", "content": "Tell me about Lisbon."},
    ]
    assert score_complexity(asked).reasons == ("constraints",)
    answered = [
        {"role": "user", "content": "Show me an example."},
        {"role": "assistant", "content": "```python\ndef f(x):\n    return x\n```"},
        {"role": "tool", "tool_call_id": "1", "content": "Prove the theorem by induction."},
    ]
    # Only their size counts: three messages, a little over two.
    assert score_complexity(answered) == Complexity(tier="simple", score=0.008, reasons=())


def test_the_scan_is_capped_to_the_last_characters_and_the_last_messages():
    filler = "Tell me more about it. " * 1000  # 23,000 characters
    head = score_complexity(user("Prove it. " + filler))  # "prove" lies beyond the last CHARS_SCANNED characters
    tail = score_complexity(user(filler + "Prove it."))
    assert "math" not in head.reasons and "math" in tail.reasons
    assert len(filler) > CHARS_SCANNED
    chunk = "Tell me more about it. " * 150  # 3,450 characters: under CHARS_SCANNED, three of them over it
    assert len(chunk) < CHARS_SCANNED < 3 * len(chunk)
    plain, proving = {"role": "user", "content": chunk}, {"role": "user", "content": "Prove it. " + chunk}
    early, late = score_complexity([proving, plain, plain]), score_complexity([plain, plain, proving])
    assert "math" not in early.reasons and "math" in late.reasons
    old = [{"role": "user", "content": "Prove it by induction."}]
    padding = [{"role": "assistant", "content": "ok"}, {"role": "user", "content": "and?"}] * (MESSAGES_SCANNED // 2)
    result = score_complexity(old + padding)
    assert "math" not in result.reasons
    assert result.reasons[0] == "long conversation (21 messages)"  # the number of messages counts them all


def test_weights_tune_the_features():
    assert score_complexity(BUG_FIX, weights=Weights(code=0.0)).reasons == ("multi-step instructions",)
    louder = score_complexity(PLAIN, weights=Weights(reasoning_high=0.7), reasoning_effort="high")
    assert (louder.tier, louder.score) == ("complex", 0.7)
    defaults = Weights()
    assert all(getattr(defaults, f.name) >= 0 for f in dataclasses.fields(Weights))
    with pytest.raises(dataclasses.FrozenInstanceError):
        defaults.code = 1.0  # type: ignore[misc]


def test_every_weight_has_a_docstring():
    import ast
    import inspect

    from app.core import complexity

    tree = ast.parse(inspect.getsource(complexity.Weights))
    body = tree.body[0].body  # type: ignore[attr-defined]
    documented = {
        node.target.id
        for node, after in itertools.pairwise(body)
        if isinstance(node, ast.AnnAssign)
        and isinstance(after, ast.Expr)
        and isinstance(after.value, ast.Constant)
        and isinstance(after.value.value, str)
    }
    assert documented == {f.name for f in dataclasses.fields(Weights)}


@pytest.mark.parametrize(
    ("messages", "says"),
    [
        ("What is 2 + 2?", "messages must be a list of dicts"),
        (b"hi", "got bytes"),
        (None, "got NoneType"),
        ({"role": "user", "content": "hi"}, "got dict"),
        ([], "messages is empty"),
        (["hi"], "each message must be a dict with 'role' and 'content', got str"),
    ],
)
def test_invalid_messages_say_what_to_fix(messages, says):
    with pytest.raises(InvalidMessagesError, match=re.escape(says)):
        score_complexity(messages)


@pytest.mark.parametrize(
    ("options", "says"),
    [
        ({"medium_at": 0.7, "complex_at": 0.6}, "0 <= medium_at <= complex_at <= 1"),
        ({"medium_at": -0.1}, "COMPLEXITY_MEDIUM_AT"),
        ({"complex_at": 1.5}, "complex_at=1.5"),
        ({"floor": "hard"}, "floor must be one of simple, medium, complex or None, got 'hard'"),
    ],
)
def test_invalid_options_say_what_to_fix(options, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        score_complexity(PLAIN, **options)


def test_weights_must_be_a_weights():
    with pytest.raises(TypeError, match=re.escape("weights must be an app.core.complexity.Weights, got dict")):
        score_complexity(PLAIN, weights={"code": 1.0})


def test_odd_but_sendable_content_is_scored_not_refused():
    odd = [
        {"role": "assistant", "content": None, "tool_calls": []},
        {"role": "user", "content": [{"type": "text", "text": "Prove it."}, "stray", {"type": "text"}]},
        {"role": "user", "content": "lone \ud800 surrogate and É accents"},
    ]
    assert score_complexity(odd) == Complexity(tier="simple", score=0.108, reasons=("math",))  # 3 messages: 0.008


def test_the_same_request_gives_the_same_complexity():
    first = score_complexity(LONG_CODE_MATH, tools=[TOOL], reasoning_effort="medium")
    assert all(score_complexity(LONG_CODE_MATH, tools=[TOOL], reasoning_effort="medium") == first for _ in range(5))


def test_the_same_request_gives_the_same_complexity_in_every_process():
    # Words are looked up through sets, whose order depends on the process's hash seed: the result must not.
    requests = [
        PLAIN,
        BUG_FIX,
        LONG_CODE_MATH,
        user(
            "Compare the trade-offs, then list each step; make sure it is "
            "valid JSON, at most 3 sentences, and justify it."
        ),
    ]
    probe = (
        "import json, sys; from app.core.complexity import score_complexity as s; "
        "print(json.dumps([[c.tier, c.score, c.reasons] for c in (s(m) for m in json.load(sys.stdin))]))"
    )
    outputs = set()
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", probe],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
            env=dict(os.environ, PYTHONHASHSEED=seed),
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1
    assert json.loads(outputs.pop()) == [[c.tier, c.score, list(c.reasons)] for c in map(score_complexity, requests)]


@pytest.mark.parametrize("workload", ["bench/workload/requests.jsonl", "no/such/workload.jsonl"])
def test_the_scorer_bench_runs_at_a_tiny_size(workload: str, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_bench("scorer")
    assert bench.main(["--calls", "40", "--rounds", "2", "--workload", str(ROOT / workload)]) == 0
    out = capsys.readouterr().out
    for kind in ("timer alone (no-op)", "short", "typical", "long", "workload"):
        assert re.search(rf"^\| {re.escape(kind)} +\|[^|]+\|\s+\d+ \|( +[\d.]+ \|){{4}}$", out, re.M), kind
    assert re.search(
        r"^typical prompt: median [\d.]+ us per call by the wall clock \(target < 50 us\) -> (OK|MISSED)$", out, re.M
    )
    source = "bench/workload/requests.jsonl" if "bench" in workload else "the small labelled set in bench/scorer.py"
    assert f"tier mix over {source}" in out
    for cls in ("simple", "medium", "complex", "breakthrough", "all"):
        assert re.search(rf"^\| {cls} +\|", out, re.M), cls

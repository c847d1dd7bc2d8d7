"""How demanding a request looks, without a model or the network: `score_complexity(messages, **params)` gives a
`Complexity` (a tier, a score from 0 to 1, and the features that made the score).

The score is a weighted sum of features, each measured from 0 (absent) to 1 (saturated), clipped to [0, 1]:

- the conversation's size: its text's characters (log-scaled), its number of messages, the last user message's
  characters (log-scaled);
- what the user, system and developer messages ask for: code (a fenced block, code symbols, code keywords,
  programming words), math (LaTeX, math symbols, exponents, "prove", "derive", "theorem"...), analysis ("justify",
  "trade-offs", "edge cases", "optimal", "invariants"...), multi-step instructions (numbered or bulleted lists,
  "step by step", "then", "finally", several distinct instruction verbs), constraints ("must", "exactly",
  "at most", "only", "format", "make sure", "in 3 sentences"...);
- what the call's parameters ask for: `response_format` of type json_schema or json_object, `tools` (and a
  `tool_choice` that forces a call), `reasoning_effort` "high" or "medium", a large `max_tokens` (weighed 0 by
  default); images in the messages.

Assistant and tool messages count toward the size only: their text is the models' and the tools' output, not what is
asked. The tier is "complex" from `complex_at`, "medium" from `medium_at`, else "simple"; `floor` (the task's own
hint) raises the tier, never the score. The weights are a `Weights`, passed as `weights=`; the thresholds are the
settings COMPLEXITY_MEDIUM_AT and COMPLEXITY_COMPLEX_AT.

Its cost is bounded whatever the request: it reads the last 20 messages only (the number of messages counts them
all), and looks for words and symbols in the last 8,000 characters of the asking messages' text, the newest (the
sizes count every character). Words are found with one translation, one split and one set intersection, symbols
by counting in the translated text and with precompiled patterns run only when a symbol calls for them: all of it
in C, on the text encoded once as bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.errors import ConfigError, InvalidMessagesError
from app.types import TIERS, Complexity

_RANK = {tier: rank for rank, tier in enumerate(TIERS)}

MESSAGES_SCANNED = 20  # the last messages read; older ones count only in the number of messages
CHARS_SCANNED = 8_000  # the last characters of the asking messages' text that are looked at
MAX_REASONS = 4
_REASON_AT = 0.03  # a feature adding less than this to the score is not named as a reason

# Where the size features start (measure 0) and saturate (measure 1), and the counts that saturate the others.
_TOTAL_CHARS = (500, 30_000)
_LAST_CHARS = (200, 6_000)
_MESSAGES = (2, 20)
_ANSWER_TOKENS = (512, 8_192)
_CODE_FULL = _MATH_FULL = _ANALYSIS_FULL = 3
_STEPS_FULL = _CONSTRAINTS_FULL = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class Weights:
    """What each feature adds to the score when it is saturated (its measure is 1). The score is the sum of
    weight x measure over the features, clipped to [0, 1]. With the default thresholds (0.30, 0.60), a request is
    medium with one strong feature (a code block, a proof, high reasoning effort) or a few weaker ones, complex
    with three or four strong ones. A weight of 0 ignores its
    feature. A word counts once however often it appears (except "then")."""

    length: float = 0.15
    """The conversation's text, log-scaled: 0 up to 500 characters, 1 from 30,000 (the last 20 messages)."""
    turns: float = 0.15
    """The number of messages: 0 up to 2, 1 from 20. A long agent thread is harder to carry than its last turn."""
    last_request: float = 0.15
    """The last user message's text, log-scaled: 0 up to 200 characters, 1 from 6,000."""
    code: float = 0.30
    """Code: a fenced block (```) saturates it; otherwise code keywords (def, elif, const, lambda, async...) count
    1, every four code symbols (= & | { } < > #) 1, programming words (python, function, bug, SQL, refactor,
    implement...) 1/2; saturating at 3."""
    math: float = 0.30
    """Math: LaTeX commands, `$...$`, math symbols and exponents count 1 each, and so do "prove", "derive",
    "theorem", "integral", "equation" and their kin; "calculate" and "compute" 1/2; saturating at 3."""
    analysis: float = 0.25
    """Analysis asked for: "justify", "rigorous", "trade-offs", "edge cases", "optimal", "largest", "invariants",
    "correctness", "concurrency", "root cause", "pros and cons"...; each counts 1, saturating at 3."""
    multi_step: float = 0.20
    """Multi-step instructions: numbered list items count 1, bullets 1/2, "step by step" 2, "then" (each time),
    "finally", "lastly", "after that", "for each", "step(s)" 1, and each distinct instruction verb (write,
    explain, compare, list, extract...) beyond the first 1; saturating at 4."""
    constraints: float = 0.15
    """Constraints: "must", "exactly", "at most", "at least", "no more than", "only", "never", "always",
    "cannot", "format", "make sure", "in 3 sentences"...; each counts 1, saturating at 4."""
    answer_length: float = 0.0
    """`max_tokens` (or `max_completion_tokens`), log-scaled: 0 up to 512, 1 from 8,192: the caller's own guess of
    how long the answer is. Off by default, since many callers send one max_tokens with every call; worth a weight
    (0.10, say) when yours size it per request."""
    json_schema: float = 0.15
    """`response_format={"type": "json_schema", ...}`: the answer must fit a schema."""
    json_object: float = 0.08
    """`response_format={"type": "json_object"}`: the answer must be JSON."""
    tools: float = 0.15
    """`tools`: one tool is half the weight, each further tool adds a tenth, up to the weight; a `tool_choice` that
    forces a call ("required" or a named function) adds a fifth."""
    reasoning_high: float = 0.30
    """`reasoning_effort="high"`: the caller says the task needs thinking."""
    reasoning_medium: float = 0.15
    """`reasoning_effort="medium"`."""
    images: float = 0.10
    """Images in the messages: one is half the weight, two or more the whole weight."""


DEFAULT_WEIGHTS = Weights()

# The features, in the order their reasons are ranked on a tie.
(
    _CODE,
    _MATH,
    _ANALYSIS,
    _STEPS,
    _CONSTRAINTS,
    _LENGTH,
    _TURNS,
    _LAST,
    _ANSWER,
    _IMAGES,
    _SCHEMA,
    _JSON,
    _TOOLS,
    _EFFORT,
) = range(14)

# The look-ups run on the asking messages' text encoded as UTF-8 and lowercased (ASCII letters only, which is all the
# vocabulary needs): bytes, because translating and splitting bytes costs a fraction of doing it to str.

# Words, matched whole once punctuation is a space. What each adds to the counts of code, math, analysis, steps,
# constraints and instruction verbs:
_Counts = tuple[float, float, float, float, float, float]
_VOCABULARY: tuple[tuple[_Counts, str], ...] = (
    (
        (1.0, 0, 0, 0, 0, 0),
        "def elif const lambda struct impl namespace typedef malloc stdout stderr argv kwargs "
        "nullptr void println printf async await boolean foreach iterator stacktrace traceback "
        "goroutine mutex",
    ),
    (
        (0.5, 0, 0, 0, 0, 0),
        "python javascript typescript java rust golang kotlin swift ruby php c++ sql html css "
        "regex api function functions method class bug compile compiler exception "
        "endpoint script code algorithm implementation repository docker kubernetes database "
        "query unittest pytest",
    ),
    (
        (0, 1.0, 0, 0, 0, 0),
        "proof proves derivation theorem lemma corollary integral integrate derivative "
        "differentiate eigenvalue eigenvalues eigenvector eigenvectors matrix matrices polynomial "
        "induction converge converges convergence probability variance equation equations "
        "inequality asymptotic combinatorics modulo logarithm calculus factorial sqrt dx disprove "
        "counterexample",
    ),
    (
        (0, 0, 1.0, 0, 0, 0),
        "rigorous rigorously invariant invariants correctness tradeoff tradeoffs optimal "
        "optimally maximize minimize maximise minimise largest smallest complexity conflict "
        "conflicts concurrent concurrency deadlock architecture rationale implications pitfalls",
    ),
    ((0, 0, 0, 1.0, 0, 0), "finally afterwards lastly subsequently firstly secondly thirdly step steps"),
    (
        (0, 0, 0, 0, 1.0, 0),
        "must exactly never always strictly required mandatory format formatted ensure maximum "
        "minimum don't dont cannot can't only constraint constraints",
    ),
    (
        (0, 0, 0, 0, 0, 1.0),
        "write explain list create add compare summarize summarise translate generate build fix "
        "describe identify find evaluate review rewrite convert extract classify outline draft "
        "give provide show include suggest propose estimate verify validate state decide name "
        "plan schedule solve rank sort answer reply discuss argue assess recommend handle",
    ),
    # Words of two kinds.
    ((0.5, 0, 0, 0, 0, 1.0), "implement refactor"),
    ((0.5, 0, 1.0, 0, 0, 1.0), "debug optimize optimise design"),
    ((0, 1.0, 0, 0, 0, 1.0), "prove derive"),
    ((0, 0.5, 0, 0, 0, 1.0), "calculate compute"),
    ((0, 0, 1.0, 0, 0, 1.0), "justify analyze analyse critique"),
)
_WORDS: dict[bytes, _Counts] = {word: counts for counts, words in _VOCABULARY for word in words.encode().split()}
_STEP_1: _Counts = (0, 0, 0, 1.0, 0, 0)
_CONSTRAINT_1: _Counts = (0, 0, 0, 0, 1.0, 0)
_ANALYSIS_1: _Counts = (0, 0, 1.0, 0, 0, 0)
# Phrases, looked for only when their rarest word is in the text.
_PHRASES: dict[bytes, tuple[tuple[bytes, _Counts], ...]] = {
    b"step": ((b"step by step", (0, 0, 0, 2.0, 0, 0)),),
    b"after": ((b"after that", _STEP_1),),
    b"each": ((b"for each", _STEP_1),),
    b"most": ((b"at most", _CONSTRAINT_1),),
    b"least": ((b"at least", _CONSTRAINT_1),),
    b"than": (
        (b"no more than", _CONSTRAINT_1),
        (b"no less than", _CONSTRAINT_1),
        (b"no longer than", _CONSTRAINT_1),
        (b"fewer than", _CONSTRAINT_1),
    ),
    b"not": ((b"do not", _CONSTRAINT_1),),
    b"sure": ((b"make sure", _CONSTRAINT_1),),
    b"valid": ((b"valid json", _CONSTRAINT_1),),
    b"offs": ((b"trade offs", _ANALYSIS_1),),
    b"edge": ((b"edge cases", _ANALYSIS_1),),
    b"cons": ((b"pros and cons", _ANALYSIS_1),),
    b"root": ((b"root cause", _ANALYSIS_1),),
    b"thread": ((b"thread safe", _ANALYSIS_1),),
    b"race": ((b"race condition", _ANALYSIS_1),),
    b"solve": ((b"solve for", (0, 1.0, 0, 0, 0, 0)),),
    b"expected": ((b"expected value", (0, 1.0, 0, 0, 0, 0)),),
    b"stack": ((b"stack trace", (1.0, 0, 0, 0, 0, 0)),),
    b"unit": ((b"unit test", (0.5, 0, 0, 0, 0, 0)),),
}
_UNITS = frozenset(b"words sentences bullets bullet lines characters paragraphs items".split())
_KNOWN = frozenset(_WORDS) | frozenset(_PHRASES) | _UNITS | {b"then"}

# One translation serves every look-up but the patterns': punctuation becomes a space; a character of code
# (= & | { } < > #) the byte _CODE_SYMBOL, counted in one pass; one that may start math notation (\\ $ ^) the byte
# _MATH_MARK and a backtick _FENCE_MARK, which say whether the patterns are worth running. A word glued to such a
# character is lost to the word look-ups: in prose that is rare, and in code the symbols count instead.
_CODE_SYMBOL, _MATH_MARK, _FENCE_MARK = b"\x01", b"\x02", b"\x03"
_TRANSLATION = bytes.maketrans(
    b'"%()*,-/[]_~@.!?;:\t\r' + b"=&|{}<>#" + b"\\$^" + b"`",
    b" " * 20 + _CODE_SYMBOL * 8 + _MATH_MARK * 3 + _FENCE_MARK,
)
_SYMBOLS_PER_TOKEN = 4  # `if (a == b && c != d) { f(); }` has 8 code symbols: 2 code tokens' worth
# In the lowercased text as written: list items (the group is the number of a numbered one, empty for a bullet),
# sizes ("in 3 sentences": the literal lead keeps the search fast), math notation.
_LIST_ITEMS = re.compile(rb"\n[ \t]*(?:(\d{1,2}[.)])|[-*]|\xe2\x80\xa2)[ \t]")
_SIZED = re.compile(rb" (?<=\d )(?:words|sentences|bullets?|lines|characters|paragraphs|items)\b")
_MATH_SYMBOLS = "∫∑∏√∞≤≥≠±∂∇∀∃≈"
_MATH_NOTATION = re.compile(
    rb"\\(?:frac|d?int|sum|prod|sqrt|lim|partial|nabla|infty|alpha|beta|gamma|delta|theta|lambda|sigma|mu|pi"
    rb"|mathbb|mathcal|begin|cdot|times|leq|geq|neq|approx|equiv|forall|exists|binom|log|vec|hat)(?![a-z])"
    rb"|\$\$|\$(?=[^\s\d$][^$\n]{0,80}\$)|\^[\d{(]|" + b"|".join(c.encode() for c in _MATH_SYMBOLS)
)

_ASKING_ROLES = frozenset({"user", "system", "developer"})


def score_complexity(
    messages: Any,
    *,
    medium_at: float = 0.30,
    complex_at: float = 0.60,
    floor: str | None = None,
    weights: Weights = DEFAULT_WEIGHTS,
    **params: Any,
) -> Complexity:
    """Score how demanding a request is and choose its tier (the module's docstring lists the features).

    `messages` as for `execute_task`; `params` the call's model parameters (response_format, tools, tool_choice,
    reasoning_effort and max_tokens are read, the others ignored). `medium_at` <= `complex_at` are the tiers'
    thresholds on the score (settings COMPLEXITY_MEDIUM_AT, COMPLEXITY_COMPLEX_AT); `floor` is the lowest tier the
    task accepts. Deterministic: the same request gives the same Complexity, in every process."""
    _check(messages, medium_at=medium_at, complex_at=complex_at, floor=floor, weights=weights)
    asked = [""]  # the joined text starts with a newline, so that its first line starts like the others
    total_chars = last_chars = images = 0
    for message in messages[-MESSAGES_SCANNED:]:
        if type(message) is not dict and not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"each message must be a dict with 'role' and 'content', got {type(message).__name__}"
            )
        content = message.get("content")
        if type(content) is str:
            text = content
        elif isinstance(content, Sequence) and not isinstance(content, str | bytes):
            texts = []
            for part in content:
                if isinstance(part, Mapping):
                    if part.get("type") == "image_url":
                        images += 1
                    elif type(part.get("text")) is str:
                        texts.append(part["text"])
            text = "\n".join(texts)
        else:
            text = ""
        total_chars += len(text)
        role = message.get("role")
        if role in _ASKING_ROLES:
            asked.append(text[-CHARS_SCANNED:])  # no more is looked at: this bounds the join
            if role == "user":
                last_chars = len(text)
    # Only the features present are weighed: most requests have few, and this runs on every call.
    found: list[tuple[float, int]] = []
    text = "\n".join(asked)
    if len(text) > CHARS_SCANNED:
        text = "\n" + text[-CHARS_SCANNED:]
    code, math_, analysis, steps, constraints = _ask(text)
    if code:
        found.append((weights.code * min(1.0, code / _CODE_FULL), _CODE))
    if math_:
        found.append((weights.math * min(1.0, math_ / _MATH_FULL), _MATH))
    if analysis:
        found.append((weights.analysis * min(1.0, analysis / _ANALYSIS_FULL), _ANALYSIS))
    if steps:
        found.append((weights.multi_step * min(1.0, steps / _STEPS_FULL), _STEPS))
    if constraints:
        found.append((weights.constraints * min(1.0, constraints / _CONSTRAINTS_FULL), _CONSTRAINTS))
    if total_chars > _TOTAL_CHARS[0]:
        found.append((weights.length * _log_measure(total_chars, _TOTAL_CHARS), _LENGTH))
    count = len(messages)
    if count > _MESSAGES[0]:
        found.append((weights.turns * min(1.0, (count - _MESSAGES[0]) / (_MESSAGES[1] - _MESSAGES[0])), _TURNS))
    if last_chars > _LAST_CHARS[0]:
        found.append((weights.last_request * _log_measure(last_chars, _LAST_CHARS), _LAST))
    if images:
        found.append((weights.images * min(1.0, images / 2), _IMAGES))
    if params:
        _parameters(found, params, weights)
    reasons: tuple[str, ...] = ()
    score = 0.0
    if found:
        total = 0.0
        for value, _ in found:
            total += value
        score = round(1.0 if total > 1.0 else 0.0 if total < 0.0 else total, 3)
        if len(found) > 1:
            found.sort(key=_by_weight)
        named = [feature for value, feature in found[:MAX_REASONS] if value >= _REASON_AT]
        if named:
            reasons = tuple(
                [
                    _reason(
                        feature,
                        total_chars=total_chars,
                        messages=count,
                        last_chars=last_chars,
                        images=images,
                        params=params,
                    )
                    for feature in named
                ]
            )
    tier = "complex" if score >= complex_at else "medium" if score >= medium_at else "simple"
    if floor is not None and _RANK[floor] > _RANK[tier]:
        tier = floor
        reasons = (f"floor {floor}", *reasons[: MAX_REASONS - 1])
    return Complexity(tier=tier, score=score, reasons=reasons)


def _check(messages: Any, *, medium_at: float, complex_at: float, floor: str | None, weights: Weights) -> None:
    if not 0.0 <= medium_at <= complex_at <= 1.0:
        raise ConfigError(
            "complexity thresholds must satisfy 0 <= medium_at <= complex_at <= 1 (settings COMPLEXITY_MEDIUM_AT, "
            f"COMPLEXITY_COMPLEX_AT), got medium_at={medium_at!r}, complex_at={complex_at!r}"
        )
    if floor is not None and floor not in _RANK:
        raise ConfigError(f"floor must be one of {', '.join(TIERS)} or None, got {floor!r}")
    if type(weights) is not Weights:
        raise TypeError(f"weights must be an app.core.complexity.Weights, got {type(weights).__name__}")
    if type(messages) is not list and (isinstance(messages, str | bytes) or not isinstance(messages, Sequence)):
        raise InvalidMessagesError(
            'messages must be a list of dicts like [{"role": "user", "content": "..."}], '
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty: give at least one message")


def _ask(text: str) -> tuple[float, float, float, float, float]:
    """The counts of code, math, analysis, steps and constraints in the asking messages' text (which starts with a
    newline)."""
    low = text.encode("utf-8", "replace").lower()
    spaced = low.translate(_TRANSLATION)
    tokens = spaced.split()
    words = _KNOWN.intersection(tokens)
    code = math_ = analysis = steps = constraints = verbs = 0.0
    for word in words:
        counts = _WORDS.get(word)
        if counts is not None:
            code += counts[0]
            math_ += counts[1]
            analysis += counts[2]
            steps += counts[3]
            constraints += counts[4]
            verbs += counts[5]
        phrases = _PHRASES.get(word)
        if phrases is not None:
            for phrase, counts in phrases:
                if phrase in spaced:
                    code += counts[0]
                    math_ += counts[1]
                    analysis += counts[2]
                    steps += counts[3]
                    constraints += counts[4]
    if b"then" in words:  # "first this, then that, then...": each "then" is one more step
        steps += tokens.count(b"then")
    if verbs > 1:  # the first instruction is the task itself
        steps += verbs - 1
    if not _UNITS.isdisjoint(words):
        constraints += len(_SIZED.findall(low))
    if low.count(b"\n") > 1:
        for number in _LIST_ITEMS.findall(low):
            steps += 1.0 if number else 0.5
    symbols = spaced.count(_CODE_SYMBOL)
    if symbols:
        code += symbols / _SYMBOLS_PER_TOKEN
    if _FENCE_MARK in spaced and b"```" in low:
        code += _CODE_FULL
    if _MATH_MARK in spaced or not text.isascii():
        math_ += len(_MATH_NOTATION.findall(low))
    return code, math_, analysis, steps, constraints


def _log_measure(value: int, bounds: tuple[int, int]) -> float:
    low, high = bounds
    if value <= low:
        return 0.0
    return min(1.0, math.log(value / low) / math.log(high / low))


def _parameters(found: list[tuple[float, int]], params: Mapping[str, Any], weights: Weights) -> None:
    """What the call's parameters ask of the answer: a JSON schema or JSON, tools, reasoning effort, length."""
    response_format = params.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, Mapping) else None
    if kind == "json_schema":
        found.append((weights.json_schema, _SCHEMA))
    elif kind == "json_object":
        found.append((weights.json_object, _JSON))
    tools = params.get("tools")
    if tools:
        forced = weights.tools / 5 if _forced(params) else 0.0
        found.append((min(1.0, 0.4 + 0.1 * _tool_count(tools)) * weights.tools + forced, _TOOLS))
    effort = params.get("reasoning_effort")
    if effort == "high":
        found.append((weights.reasoning_high, _EFFORT))
    elif effort == "medium":
        found.append((weights.reasoning_medium, _EFFORT))
    tokens = _answer_tokens(params)
    if tokens > _ANSWER_TOKENS[0] and weights.answer_length:
        found.append((weights.answer_length * _log_measure(tokens, _ANSWER_TOKENS), _ANSWER))


def _forced(params: Mapping[str, Any]) -> bool:
    choice = params.get("tool_choice")
    return choice == "required" or isinstance(choice, Mapping)


def _tool_count(tools: Any) -> int:
    return len(tools) if isinstance(tools, Sequence) else 1


def _answer_tokens(params: Mapping[str, Any]) -> int:
    tokens = params.get("max_tokens", params.get("max_completion_tokens"))
    return tokens if type(tokens) is int else 0


def _by_weight(found: tuple[float, int]) -> float:
    """Sort key: the largest contribution first; the sort is stable, so ties keep the features' order."""
    return -found[0]


def _reason(
    feature: int, *, total_chars: int, messages: int, last_chars: int, images: int, params: Mapping[str, Any]
) -> str:
    """A feature's short, stable name, with its size where it has one."""
    if feature == _LENGTH:
        return f"long context ({total_chars:,} characters)"
    if feature == _TURNS:
        return f"long conversation ({messages} messages)"
    if feature == _LAST:
        return f"long request ({last_chars:,} characters)"
    if feature == _ANSWER:
        return f"long answer allowed ({_answer_tokens(params):,} tokens)"
    if feature == _IMAGES:
        return f"images ({images})" if images > 1 else "image"
    if feature == _TOOLS:
        return f"tools ({_tool_count(params['tools'])})" + (", call required" if _forced(params) else "")
    if feature == _EFFORT:
        return f"reasoning effort {params['reasoning_effort']}"
    return _NAMES[feature]


_NAMES = {
    _CODE: "code",
    _MATH: "math",
    _ANALYSIS: "analysis",
    _STEPS: "multi-step instructions",
    _CONSTRAINTS: "constraints",
    _SCHEMA: "JSON schema requested",
    _JSON: "JSON output requested",
}

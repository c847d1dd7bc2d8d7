"""The parameters a request may pass on to the model, checked before anything is sent: one table, one pass.

`PARAMS` maps each name to (check, what is accepted). A check returns None for a good value, else what is
wrong with it ("" when the description says it all). The values are those Groq's chat completions endpoint
takes (its API reference, and the `groq` SDK's `create()`); a bad one would be a 400 on every model, so it is
refused here, naming the parameter, the value and what is accepted. `None` means "not set" for any of them.

Anything provider-specific goes in `extra_body={...}`: merged into the request body as it is, checked only for
being sendable as JSON.
"""

from __future__ import annotations

import itertools
import reprlib
from collections.abc import Callable, Mapping
from typing import Any

from app.core.messages import MAX_DEPTH, encodes, unsendable
from app.errors import InvalidParameterError
from app.registry.catalog import ModelInfo
from app.registry.chain import Chain

Check = Callable[[Any], "str | None"]

_RESERVED = frozenset({"model", "messages", "stream"})  # the router's to set, even through extra_body


def _is_int(value: Any) -> bool:
    return type(value) is int or (isinstance(value, int) and not isinstance(value, bool))


def _positive_int(value: Any) -> str | None:
    return None if _is_int(value) and value > 0 else ""


def _int(value: Any) -> str | None:
    return None if _is_int(value) else ""


def _number(low: float, high: float) -> Check:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return ""
        return None if low <= value <= high else ""  # NaN fails both comparisons

    return check


def _one(value: Any) -> str | None:
    return None if _is_int(value) and value == 1 else ""


def _bool(value: Any) -> str | None:
    return None if type(value) is bool else ""


def _false(value: Any) -> str | None:
    return None if value is False else ""


def _one_of(*choices: str) -> Check:
    def check(value: Any) -> str | None:
        return None if value in choices and isinstance(value, str) else ""

    return check


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return ""
    return None if value.isascii() or encodes(value) else "it cannot be encoded as UTF-8 (a lone surrogate)"


def _stop(value: Any) -> str | None:
    if isinstance(value, str):
        return _text(value)
    if not isinstance(value, list | tuple) or len(value) > 4:
        return ""
    return next((f"stop[{i}]: {p or 'not a string'}" for i, s in enumerate(value) if (p := _text(s)) is not None), None)


def _response_format(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return ""
    kind = value.get("type")
    if kind in ("text", "json_object"):
        return _sendable(value)
    if kind != "json_schema":
        return f"unknown type {kind!r}"
    schema = value.get("json_schema")
    if not isinstance(schema, Mapping) or not isinstance(schema.get("name"), str):
        return 'json_schema must be a dict with a "name" (and a "schema")'
    return _sendable(value)


_BUILT_IN_TOOLS = ("browser_search", "code_interpreter")


def _tools(value: Any) -> str | None:
    if not isinstance(value, list | tuple):
        return ""
    for i, tool in enumerate(value):
        if not isinstance(tool, Mapping) or tool.get("type") not in ("function", *_BUILT_IN_TOOLS):
            return f'tools[{i}] is not {{"type": "function", ...}} nor a built-in tool ({", ".join(_BUILT_IN_TOOLS)})'
        function = tool.get("function")
        if tool["type"] == "function" and not (
            isinstance(function, Mapping) and isinstance(function.get("name"), str) and function["name"]
        ):
            return f"tools[{i}].function must be a dict with a non-empty name"
        parameters = function.get("parameters") if isinstance(function, Mapping) else None
        if parameters is not None and not isinstance(parameters, Mapping):
            return f"tools[{i}].function.parameters must be a JSON Schema object (a dict)"
    return _sendable(value)


def _tool_choice(value: Any) -> str | None:
    if isinstance(value, str):
        return None if value in ("none", "auto", "required") else ""
    function = value.get("function") if isinstance(value, Mapping) else None
    if not (
        isinstance(function, Mapping) and value.get("type") == "function" and isinstance(function.get("name"), str)
    ):
        return ""
    return _sendable(value)


def _extra_body(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return ""
    reserved = _RESERVED.intersection(value)
    if reserved:
        return f"it may not set {', '.join(sorted(reserved))}: the router does"
    return _sendable(value)


def _sendable(value: Any) -> str | None:
    problem = unsendable(value)
    return None if problem is None else f"{problem[0] or 'it'} {problem[1]}"


_TOKENS = (_positive_int, "a positive int, at most the model's max_completion_tokens")
PARAMS: dict[str, tuple[Check, str]] = {
    "max_tokens": _TOKENS,
    "max_completion_tokens": _TOKENS,
    "temperature": (_number(0, 2), "a number from 0 to 2"),
    "top_p": (_number(0, 1), "a number from 0 to 1"),
    "frequency_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "presence_penalty": (_number(-2, 2), "a number from -2 to 2"),
    "n": (_one, "1 (Groq returns one choice)"),
    "seed": (_int, "an int"),
    "stop": (_stop, "a string or a list of up to 4 strings"),
    "user": (_text, "a string identifying the end user"),
    "parallel_tool_calls": (_bool, "True or False"),
    "response_format": (
        _response_format,
        '{"type": "text"}, {"type": "json_object"} or '
        '{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}}}',
    ),
    "tools": (
        _tools,
        'a list of {"type": "function", "function": {"name": ..., "parameters": {...}}} '
        '(or {"type": "browser_search"}, {"type": "code_interpreter"})',
    ),
    "tool_choice": (_tool_choice, '"none", "auto", "required" or {"type": "function", "function": {"name": ...}}'),
    "reasoning_effort": (
        _one_of("none", "default", "low", "medium", "high"),
        '"none", "default", "low", "medium" or "high"',
    ),
    "reasoning_format": (_one_of("hidden", "raw", "parsed"), '"hidden", "raw" or "parsed"'),
    "include_reasoning": (_bool, "True or False"),
    "service_tier": (
        _one_of("auto", "on_demand", "flex", "performance"),
        '"auto", "on_demand", "flex" or "performance"',
    ),
    "stream": (_false, "False (stream_task and its siblings stream)"),
    "extra_body": (
        _extra_body,
        f"a dict of provider-specific fields, sent as they are (JSON, at most {MAX_DEPTH} levels deep)",
    ),
}


def check_params(
    params: Mapping[str, Any], variant: Any, chain: Chain, model_info: Callable[[str], ModelInfo | None]
) -> None:
    """Raise InvalidParameterError for the first parameter the provider would refuse, or a `max_tokens` no
    model of the chain can produce. A max_tokens that only some can produce passes: the gates skip the others."""
    if variant is not None and (problem := _text(variant)) is not None:
        raise _error(
            "variant", variant, "a string: MODEL_REGISTRY['<task>:<variant>'] is used when it exists", problem, chain
        )
    for name, value in params.items():
        entry = PARAMS.get(name)
        if entry is _TOKENS and type(value) is int and value > 0:  # the common call's max_tokens=N, inline
            first = model_info(chain.candidates[0].model) if chain.candidates else None
            if first is None or first.max_completion_tokens is None or value <= first.max_completion_tokens:
                continue
            _check_fits(name, value, chain, model_info)
        elif entry is None:
            raise InvalidParameterError(
                f"{chain.task_type}: unknown parameter {name!r}; accepted: {', '.join(PARAMS)} (provider-specific "
                "fields go in extra_body={...})",
                param=name,
                task_type=chain.task_type,
            )
        elif value is not None:
            problem = entry[0](value)
            if problem is not None:
                raise _error(name, value, entry[1], problem, chain)
            if entry is _TOKENS:
                _check_fits(name, value, chain, model_info)


def _check_fits(name: str, value: int, chain: Chain, model_info: Callable[[str], ModelInfo | None]) -> None:
    """Most requests fit the first model of their chain: one lookup. Otherwise look for any model that can."""
    for candidate in chain.candidates:
        info = model_info(candidate.model)
        if info is None or info.max_completion_tokens is None or value <= info.max_completion_tokens:
            return
    # None can: every model has a known limit below the value.
    limits = [
        (c.model, info.max_completion_tokens)
        for c in chain.candidates
        if (info := model_info(c.model)) is not None and info.max_completion_tokens is not None
    ]
    if limits:
        listed = ", ".join(f"{model}: {limit}" for model, limit in limits)
        raise _error(
            name,
            value,
            f"a positive int no larger than {max(limit for _, limit in limits)}",
            f"more than any model of this chain can produce ({listed})",
            chain,
        )


def _error(name: str, value: Any, accepted: str, problem: str | None, chain: Chain) -> InvalidParameterError:
    shown = _SHOWN.repr(value)  # escapes surrogates, stops at a few levels: any value can be shown and logged
    if problem and problem.startswith((".", "[")):  # a place inside the value: name it from the parameter
        problem = name + problem
    why = f"{problem}; " if problem else ""
    return InvalidParameterError(
        f"{chain.task_type}: {name}={shown} is not accepted: {why}expected {accepted}",
        param=name,
        task_type=chain.task_type,
    )


class _Shown(reprlib.Repr):
    """A value as an error shows it: a few levels and items of it, dicts in the order given (reprlib sorts them)."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxtuple, self.maxdict, self.maxstring = 5, 8, 8, 8, 80

    def repr_dict(self, x: Mapping[Any, Any], level: int) -> str:
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        items = [
            f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
            for k, v in itertools.islice(x.items(), self.maxdict)
        ]
        return "{" + ", ".join(items + ["..."] * (len(x) > self.maxdict)) + "}"


_SHOWN = _Shown()

"""Whether a value can be sent as JSON: text that encodes as UTF-8, bounded nesting, string keys. The messages' and
the parameters' checks (`gates.py`, `params.py`) both ask it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# JSON nesting a message or a parameter may have: far beyond any real tool schema, far below the depth at which
# json (the provider's encoder, the attempt log's json.dumps) would hit Python's recursion limit.
MAX_DEPTH = 32


def encodes(text: str) -> bool:
    """Whether `text` can be sent as UTF-8: false for lone surrogates (from a bad decode or a split emoji)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unsendable(value: Any, depth: int = MAX_DEPTH) -> tuple[str, str] | None:
    """Why `value` cannot be sent as JSON, as (where inside it, e.g. ".tool_calls[0].function", what is wrong), or
    None when it can. Refused: text with a lone surrogate, nesting deeper than MAX_DEPTH, non-string keys, values
    JSON has no form for. Bounded by MAX_DEPTH, so it never recurses far itself."""
    kind = type(value)
    if kind is str:
        return None if value.isascii() else _text_problem(value)
    if value is None or kind is int or kind is float or kind is bool:
        return None
    if isinstance(value, Mapping):
        if depth <= 0:
            return "", f"is nested deeper than {MAX_DEPTH} levels"
        for key, item in value.items():
            if not isinstance(key, str):
                return "", f"has a key that is not a string: {key!r}"
            problem = (None if key.isascii() else _text_problem(key)) or unsendable(item, depth - 1)
            if problem is not None:
                return (f".{key}" if key.isidentifier() else f"[{key!r}]") + problem[0], problem[1]
        return None
    if isinstance(value, list | tuple):
        if depth <= 0:
            return "", f"is nested deeper than {MAX_DEPTH} levels"
        for index, item in enumerate(value):
            problem = unsendable(item, depth - 1)
            if problem is not None:
                return f"[{index}]{problem[0]}", problem[1]
        return None
    if isinstance(value, str):
        return _text_problem(value)
    if isinstance(value, int | float):
        return None
    return "", f"is a {kind.__name__}, which JSON cannot encode"


def _text_problem(text: str) -> tuple[str, str] | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return "", (
            f"has text that cannot be encoded as UTF-8: a lone surrogate {text[exc.start]!r} at character "
            f"{exc.start} (clean it, e.g. text.encode('utf-8', 'replace').decode())"
        )
    return None

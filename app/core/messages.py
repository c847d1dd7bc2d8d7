"""Local checks on a request's messages, so that obviously bad input never reaches the network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.errors import InvalidMessagesError

ROLES = ("system", "user", "assistant", "tool", "developer")
_PLAIN_ROLES = frozenset(ROLES) - {"tool"}  # a tool message must also carry tool_call_id
# JSON nesting a message or a parameter may have: far beyond any real tool schema, far below the depth at which
# json (the provider's encoder, the attempt log's json.dumps) would hit Python's recursion limit.
MAX_DEPTH = 32


def inspect_messages(messages: Any) -> tuple[int, bool]:
    """Check the messages (a bad one raises, saying what to fix) and measure them in the same pass: the
    characters of their text, and whether any carries an image. One pass, because this runs on every call."""
    if isinstance(messages, str | bytes) or not isinstance(messages, Sequence):
        raise InvalidMessagesError(
            'messages must be a list of dicts like [{"role": "user", "content": "..."}], '
            f"got {type(messages).__name__}"
        )
    if not messages:
        raise InvalidMessagesError("messages is empty: give at least one message")
    chars = 0
    images = False
    for i, message in enumerate(messages):
        if type(message) is dict and len(message) == 2:
            content = message.get("content")
            # The common case, without the checks below: only role and content, the text plain ASCII (which
            # rules out unencodable surrogates) or valid UTF-8.
            if (type(content) is str and message.get("role") in _PLAIN_ROLES
                    and (content.isascii() or encodes(content))):
                chars += len(content)
                continue
        where = f"messages[{i}]"
        if not isinstance(message, Mapping):
            raise InvalidMessagesError(
                f"{where} must be a dict with 'role' and 'content', got {type(message).__name__}"
            )
        role = message.get("role")
        if role not in ROLES:
            raise InvalidMessagesError(f"{where}.role must be one of {', '.join(ROLES)}; got {role!r}")
        content = message.get("content")
        if content is None:
            if not (role == "assistant" and message.get("tool_calls")):
                raise InvalidMessagesError(f"{where}.content is missing (role {role!r})")
        elif isinstance(content, str):
            chars += len(content)
        elif isinstance(content, Sequence) and not isinstance(content, bytes):
            for j, part in enumerate(content):
                if not isinstance(part, Mapping) or not isinstance(part.get("type"), str):
                    raise InvalidMessagesError(f"{where}.content[{j}] must be a dict with a 'type' (text, image_url)")
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
                if part["type"] == "image_url":
                    images = True
        else:
            raise InvalidMessagesError(
                f"{where}.content must be a string or a list of content parts, got {type(content).__name__}"
            )
        if role == "tool" and not message.get("tool_call_id"):
            raise InvalidMessagesError(f"{where} has role 'tool' but no 'tool_call_id'")
        # Everything else it carries (content parts, tool calls and their arguments, names) must be sendable.
        problem = unsendable(message)
        if problem is not None:
            raise InvalidMessagesError(f"{where}{problem[0]} {problem[1]}")
    return chars, images


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
        return "", (f"has text that cannot be encoded as UTF-8: a lone surrogate {text[exc.start]!r} at character "
                    f"{exc.start} (clean it, e.g. text.encode('utf-8', 'replace').decode())")
    return None


def tokens_from_chars(chars: int, messages: int) -> int:
    """A cheap upper-leaning estimate (~4 characters a token, plus per-message framing)."""
    return chars // 4 + 4 * messages + 3

"""Local checks on a request's messages, so that obviously bad input never reaches the network."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.errors import InvalidMessagesError

ROLES = ("system", "user", "assistant", "tool", "developer")
_PLAIN_ROLES = frozenset(ROLES) - {"tool"}  # a tool message must also carry tool_call_id


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
        if type(message) is dict:
            content = message.get("content")
            if type(content) is str and message.get("role") in _PLAIN_ROLES:
                chars += len(content)  # the common case, without the checks below
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
            if role == "assistant" and message.get("tool_calls"):
                continue
            raise InvalidMessagesError(f"{where}.content is missing (role {role!r})")
        if isinstance(content, str):
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
    return chars, images


def tokens_from_chars(chars: int, messages: int) -> int:
    """A cheap upper-leaning estimate (~4 characters a token, plus per-message framing)."""
    return chars // 4 + 4 * messages + 3

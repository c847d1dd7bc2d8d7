"""Quality gates on an answer: a caller's `validate` callable and `required_fields` of a JSON answer."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence

from app.types import LLMResponse

Validator = Callable[[LLMResponse], str | None]

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def json_object(content: str | None) -> dict | None:
    """The answer as a JSON object, tolerating the ```json fences models like to add."""
    if not content:
        return None
    text = content.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def rejection(response: LLMResponse, validate: Validator | None, required_fields: Sequence[str] | None) -> str | None:
    """Why the answer is not acceptable, or None. A validator that raises is a bug in the caller: it propagates."""
    if required_fields:
        data = json_object(response.content)
        if data is None:
            return f"answer is not a JSON object (required fields: {', '.join(required_fields)})"
        missing = [name for name in required_fields if name not in data]
        if missing:
            return f"JSON answer lacks required fields: {', '.join(missing)}"
    if validate is not None:
        verdict = validate(response)
        if verdict is not None:
            return str(verdict) or "rejected by validate="
    return None

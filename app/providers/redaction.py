"""Keep secrets out of anything we store or print."""

from __future__ import annotations

import re

_KEY_PATTERN = re.compile(r"\b(gsk|sk|sk-or|pk)[-_][A-Za-z0-9_\-]{8,}")


def redact(text: str, *secrets: str | None) -> str:
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)

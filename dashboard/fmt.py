"""How numbers read on the dashboard: one place, so every page says "97.5%" and "$1.2345" the same way."""

from __future__ import annotations

import re

DASH = "–"  # a value that does not exist (no data), as opposed to zero


def count(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def pct(value: float | None, digits: int = 1) -> str:
    return DASH if value is None else f"{value * 100:.{digits}f}%"


def ms(value: float | None) -> str:
    return DASH if value is None else f"{value:,.0f} ms"


def usd(value: float | None) -> str:
    if value is None:
        return DASH
    return f"${value:,.4f}" if abs(value) < 100 else f"${value:,.2f}"


_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")


def plain(text: str) -> str:
    """Text from the database or a provider, for an element that renders Markdown (st.warning...): every ASCII
    punctuation mark backslash-escaped, so it shows as typed. No link, no emphasis, no HTML, no LaTeX (`$`), and
    no autolink (the `:` of `https://` is escaped too)."""
    return _PUNCTUATION.sub(r"\\\1", text)


def when(iso_text: str | None) -> str:
    """`2026-11-22T10:00:00.123Z` -> `2026-11-22 10:00:00 UTC`."""
    return DASH if not iso_text else iso_text[:19].replace("T", " ") + " UTC"


# -- change against the previous period (st.metric deltas) ---------------------------------------------------


def delta_count(now: float | None, before: float | None) -> str | None:
    """Relative change; None (no arrow) when there is nothing to compare with."""
    if now is None or before is None:
        return None
    if before == 0:
        return None if now == 0 else "new"
    return f"{(now - before) / before * 100:+.1f}%"


def delta_points(now: float | None, before: float | None) -> str | None:
    """Change of a rate, in percentage points."""
    if now is None or before is None:
        return None
    return f"{(now - before) * 100:+.1f} pp"


def delta_ms(now: float | None, before: float | None) -> str | None:
    if now is None or before is None:
        return None
    return f"{now - before:+,.0f} ms"

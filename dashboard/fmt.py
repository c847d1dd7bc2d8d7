"""How numbers read on the dashboard: one place, so every page says "97.5%" and "$1.2345" the same way."""

from __future__ import annotations

import re
from datetime import UTC, datetime

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


# Every ASCII punctuation mark: CommonMark lets a backslash escape any of them, and every Markdown, HTML, LaTeX
# (`$`) and Streamlit directive (`:red[...]`, `:material/...:`) construct starts with one.
_PUNCTUATION = re.compile(r"([!-/:-@\[-`{-~])")
# Two things Streamlit's Markdown does to the text *after* undoing escapes, which escaping therefore cannot stop:
# GFM makes links of `http://`, `https://`, `www.` and `name@host.tld`, and, once the source holds a `:name:`
# anywhere, the emoji plugin replaces `:name:`. An invisible WORD JOINER breaks each pattern, and only where one
# could form: inside the URL prefix, before an `@` that a dotted domain follows, and after a `:` that a shortcode
# name follows up to another `:` or the value's end (the page's wording may put the closing `:` there). A time
# (`05:03:28`), a user name (`root@vm`) or a path keeps no invisible character, so it copies as it reads: no
# shortcode is all digits but `:100:` and `:1234:`.
_BREAKS = re.compile(
    r"(?i)(?<=http)(?=://)|(?<=https)(?=://)|(?<=www)(?=\.)"
    r"|(?=@[\w-]+(?:\.[\w-]+)+)"
    r"|(?<=:)(?=(?:100|1234|[a-z0-9_+\-]*[a-z_+\-][a-z0-9_+\-]*)(?::|$))"
)
WORD_JOINER = "\u2060"


def plain(value: object) -> str:
    """Text from the database, a provider, a file or the environment, made safe to put in Markdown (st.warning,
    st.caption, labels...): it then shows as typed. Every punctuation mark is backslash-escaped (no link, image,
    emphasis, HTML, LaTeX, directive, heading, list or table), a word joiner keeps bare URLs, e-mail addresses and
    emoji shortcodes from being recognised (and is put nowhere else), and each line break is a hard break (no
    paragraph, no code block).

    The rule for the whole dashboard: the page's own wording may be Markdown; every value interpolated into it
    goes through this function (tests/test_dashboard_markdown.py checks the source). Tables show values as they
    are: dataframe cells and headers are never Markdown."""
    # Outer whitespace is invisible anyway, and four leading spaces would start a code block.
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    text = _PUNCTUATION.sub(r"\\\1", _BREAKS.sub(WORD_JOINER, text))
    return text.replace("\n", "\\\n")  # a backslash before a line break is a hard break


def when(iso_text: str | None) -> str:
    """`2026-11-22T10:00:00.123Z` -> `2026-11-22 10:00:00 UTC`."""
    return DASH if not iso_text else iso_text[:19].replace("T", " ") + " UTC"


def _parse(iso_text: str) -> datetime:
    at = datetime.fromisoformat(iso_text.replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)  # the store writes UTC, marked or not


def duration(seconds: float) -> str:
    """A span of time in the largest unit that keeps it readable: `45 s`, `29 min`, `3.5 h`, `14 days`."""
    seconds = abs(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def relative(moment: datetime | str | None, now: datetime) -> str:
    """`in 29 min` or `12 min ago`, against the run's own now."""
    if moment is None:
        return DASH
    at = _parse(moment) if isinstance(moment, str) else moment
    seconds = (at - now).total_seconds()
    return f"in {duration(seconds)}" if seconds >= 0 else f"{duration(seconds)} ago"


def when_relative(iso_text: str | None, now: datetime) -> str:
    """The absolute time and, beside it, how far from now: `2026-12-05 05:03:28 UTC (in 29 min)`."""
    return DASH if not iso_text else f"{when(iso_text)} ({relative(iso_text, now)})"


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

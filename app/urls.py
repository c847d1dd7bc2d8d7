"""URLs as the settings take them and as messages show them: no password in a message, a log or the dashboard."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

POSTGRES_SCHEMES = ("postgresql://", "postgres://")  # ATTEMPTS_DB_URL, and `--db` given a URL


def redact_url(url: str) -> str:
    """A URL as messages may show it: `postgresql://app:secret@db:5432/x` -> `postgresql://app:***@db:5432/x`; a
    password given as a query parameter is hidden the same way."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparseable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            userinfo = userinfo.split(":", 1)[0] + ":***"
        netloc = f"{userinfo}@{host}"
    query = (
        "&".join(("password=***" if p.lower().startswith("password=") else p) for p in parts.query.split("&"))
        if parts.query
        else ""
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))

"""Keep secrets out of anything we raise, store, print or log.

A provider's key travels in the `Authorization` header of every request, and a proxy in front of the provider
may echo that header back in its error body or in a response header. So: error messages go through `redact`,
an error keeps only `safe_headers`, and the HTTP stack's own loggers (the groq SDK logs response headers and
tracebacks at DEBUG) pass through `RedactingFilter`, installed on them by `install_log_redaction`.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping

REDACTED = "[redacted]"

# Provider key shapes (Groq's gsk_, OpenAI's sk-, OpenRouter's sk-or-...), whether or not they are the configured
# key: a proxy may echo another service's key, or the process may hold several.
_KEY_PATTERN = re.compile(r"\b(gsk|sk|sk-or|pk)[-_][A-Za-z0-9_\-]{8,}")
# RFC 6750's token after "Bearer", wherever it appears (a header value, an echoed message, a headers repr).
_BEARER_PATTERN = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]+=*")
# The value of a credential header written as text: `Authorization: Basic dXNlcg==`, `'authorization': 'xyz'`,
# `x-api-key=...`. The value stops at quotes, separators and brackets; one already redacted matches as a whole.
_HEADER_PATTERN = re.compile(
    r"(?i)\b((?:proxy-)?authorization|x-api-key|api-key)(['\"]?\s*[:=]\s*['\"]?)"
    r"(?:(bearer|basic|token)\s+)?(?:\[redacted\]|[^\s'\",;{}\[\]]+)"
)

# A password in a URL (`https://user:password@proxy`): a proxy URL may be echoed in an error or a DEBUG line.
_URL_PASSWORD_PATTERN = re.compile(r"(://[^/@\s:'\"]*:)[^/@\s'\"]*@")

# Response headers an error keeps: what the router reads (the provider's wait) and what helps a support ticket.
_KEPT_HEADERS = frozenset({"retry-after", "retry-after-ms", "x-request-id"})
_KEPT_PREFIX = "x-ratelimit-"


def redact(text: str, *secrets: str | None) -> str:
    """`text` without the given secrets, bearer tokens, credential header values, URL passwords and key-shaped
    strings."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    text = _HEADER_PATTERN.sub(_header_value, text)
    text = _BEARER_PATTERN.sub(f"Bearer {REDACTED}", text)
    text = _URL_PASSWORD_PATTERN.sub(rf"\1{REDACTED}@", text)
    return _KEY_PATTERN.sub(REDACTED, text)


def _header_value(match: re.Match[str]) -> str:
    scheme = f"{match.group(3)} " if match.group(3) else ""
    return f"{match.group(1)}{match.group(2)}{scheme}{REDACTED}"


def safe_headers(headers: Mapping[str, str], *secrets: str | None) -> dict[str, str]:
    """The allow-listed response headers (rate limits, retry-after, request id), lower-cased, values redacted.
    Anything else a proxy adds, an echoed `Authorization` included, is dropped."""
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _KEPT_HEADERS or lowered.startswith(_KEPT_PREFIX):
            kept[lowered] = redact(value, *secrets)
    return kept


# Keys the providers have sent, for the log filter: a key of no known shape is still found by its value.
# A tuple replaced on write, so that a filter running on another thread iterates a stable snapshot.
_secrets: tuple[str, ...] = ()
_secrets_lock = threading.Lock()


def remember_secret(secret: str | None) -> None:
    """Have the log filter redact `secret` too. Cheap to call per request: a lookup in a tuple of a few keys."""
    global _secrets
    if not secret or len(secret) < 4 or secret in _secrets:
        return
    with _secrets_lock:
        if secret not in _secrets:
            _secrets = (*_secrets, secret)


class RedactingFilter(logging.Filter):
    """Rewrites a record's message and traceback without secrets. A logger runs its filters only for records it
    is enabled for, so with DEBUG off the SDK's DEBUG lines cost nothing here."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secrets
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: leave the record for the handler to report, as logging does
            return True
        clean = redact(message, *secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info:
            # The exception itself (its request, response and headers) must not travel on with the record:
            # keep only its redacted text, which every Formatter prints in place of exc_info.
            record.exc_text = redact(self._formatter.formatException(record.exc_info), *secrets)
            record.exc_info = None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text, *secrets)
        if record.stack_info:
            record.stack_info = redact(record.stack_info, *secrets)
        return True


_FILTER = RedactingFilter()
# The libraries under the providers. A filter on a logger applies only to records created by that very logger
# (not its children), so every logger they log through is named here; creating one early is harmless, since the
# library gets the same object when it imports.
_LIBRARY_ROOTS = ("groq", "httpx", "httpcore", "aiohttp", "httpx_aiohttp")
_LIBRARY_LOGGERS = (
    "groq._base_client",
    "groq._response",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
    "aiohttp.access",
    "aiohttp.client",
    "aiohttp.internal",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.websocket",
)


def install_log_redaction() -> None:
    """Put the redacting filter on every logger of the HTTP stack (idempotent)."""
    existing = [name for name in list(logging.root.manager.loggerDict) if name.split(".")[0] in _LIBRARY_ROOTS]
    for name in {*_LIBRARY_ROOTS, *_LIBRARY_LOGGERS, *existing}:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)

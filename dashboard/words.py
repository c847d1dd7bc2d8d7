"""One vocabulary for the whole dashboard: the words a page uses for a model's state and for an error kind.

The attempt log stores code names (`rate_limited`, `hedge_lost`); a person paged at night reads plain words. Every
page shows the word from here and keeps the code name in a tooltip or a column's help, so the same thing is called
the same everywhere: a disabled model is "disabled" on every page, a hedge's slower call is "cut short" (never a
failure), and a state has one colour whatever page draws it.
"""

from __future__ import annotations

from app.types import ErrorKind

# -- a model's state, worst first ---------------------------------------------------------------------------

DISABLED = "disabled"  # taken out of rotation by ops: a `disable` override
CIRCUIT_OPEN = "circuit open"
NOT_FOUND = "not found"
DEPRECATED = "deprecated"
COOLING_DOWN = "cooling down"
HEALTHY = "healthy"

# Where each model state comes from: a `model_status` row's status, or the override kind for "disabled".
STATE_CODES = {
    DISABLED: "disable override",
    CIRCUIT_OPEN: "circuit_open",
    NOT_FOUND: "not_found",
    DEPRECATED: "deprecated",
    COOLING_DOWN: "cooling_down",
    HEALTHY: "closed / cleared / no mark",
}
# How a sentence says a model is in the state: "qwen is disabled", "the 120b has its circuit open".
STATE_PHRASES = {CIRCUIT_OPEN: "has its circuit open", NOT_FOUND: "is not found at the provider"}


def is_in(state: str) -> str:
    return STATE_PHRASES.get(state, f"is {state}")


STATE_HELP = (
    "healthy: the router calls it; cooling down: skipped for a while after rate limits or errors; circuit open: "
    "skipped until a probe answers; not found / deprecated: the provider no longer serves it; disabled: taken out "
    "of rotation by an operator."
)

# -- error kinds ----------------------------------------------------------------------------------------------

CUT_SHORT = "cut short"  # the router or the caller ended the call: not a failure of the model

KINDS: dict[str, str] = {
    ErrorKind.RATE_LIMITED: "rate limited",
    ErrorKind.CAPACITY: "over capacity",
    ErrorKind.SERVER_ERROR: "provider error",
    ErrorKind.UNEXPECTED_STATUS: "unexpected status",
    ErrorKind.INVALID_RESPONSE: "unreadable response",
    ErrorKind.INVALID_OUTPUT: "malformed output",
    ErrorKind.STREAM_INTERRUPTED: "stream broke off",
    ErrorKind.TIMEOUT: "timed out",
    ErrorKind.DEADLINE: "too close to the deadline",
    ErrorKind.CONNECTION: "connection failed",
    ErrorKind.DEPRECATED: "model retired",
    ErrorKind.NOT_FOUND: "model not found",
    ErrorKind.BAD_REQUEST: "bad request",
    ErrorKind.TOO_LARGE: "request too large",
    ErrorKind.CONTEXT_LENGTH: "context too long",
    ErrorKind.VALIDATION: "answer rejected by checks",
    ErrorKind.REFUSED: "answer refused by the tier",
    ErrorKind.CAPABILITY: "lacks a needed capability",
    ErrorKind.AUTH: "key refused",
    ErrorKind.SETUP: "set-up error",
    ErrorKind.HEDGE_LOST: f"{CUT_SHORT} (the hedge's other call answered)",
    ErrorKind.CANCELLED: f"{CUT_SHORT} (cancelled)",
    ErrorKind.COOLING_DOWN: "skipped: cooling down",
    ErrorKind.CIRCUIT_OPEN: "skipped: circuit open",
    ErrorKind.DISABLED: "skipped: disabled",
    ErrorKind.BUDGET: "skipped: over budget",
}
UNKNOWN = "unknown"


def kind(code: str | None) -> str:
    """The plain word for an error kind code; a code this version does not know shows as it is."""
    if not code:
        return UNKNOWN
    return KINDS.get(code, code)


def kind_with_code(code: str | None) -> str:
    """For a place without tooltips (a detail line): the word, then the code name the log and the CLI use."""
    word = kind(code)
    return word if not code or word == code else f"{word} ({code})"


def kinds_help() -> str:
    """A column's help: every plain word with its code name."""
    return "Code names: " + "; ".join(f"{word} = {code}" for code, word in KINDS.items())


def is_cut_short(code: str | None) -> bool:
    return code in (ErrorKind.HEDGE_LOST, ErrorKind.CANCELLED)

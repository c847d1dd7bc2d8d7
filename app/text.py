"""Text from outside (a provider's error message, a stored row, an operator's reason, a calendar entry) made inert
for where it is shown: a terminal, or a chat channel fed by a webhook.

A terminal obeys escape sequences: a provider message may set the window title, clear the screen, fake colours
or move the cursor. `plain_terminal` drops every escape sequence whole (CSI, OSC, DCS and their 8-bit forms), every
other C0/C1 control and the bidirectional overrides that reorder what is read; a line break survives only where the
output is multi-line by design.

A chat channel reads mentions, links and Markdown: a provider message could page a whole channel (`@channel`,
`<!here>`), show a link or an image under harmless words, or forge a second line ("All clear") with a newline.
`neutralise` keeps such text on one line and drops the power of every one of those conventions, for the flavour
of the receiver: Slack (`&`, `<`, `>` as entities: its documented escaping), Markdown receivers (Mattermost,
Discord, Teams: a backslash before each Markdown character) or `any` (characters that look alike and mean nothing
to any of them: for a receiver whose kind is not known). Mentions and links are defused the same way everywhere: an
`@` becomes a full-width `＠` (a backslash does not stop every receiver's mention parser), a URL is defanged
(`hxxps[:]//host[.]com`) and Markdown's `[text](url)` and `![image](url)` lose the syntax that makes them links.
"""

from __future__ import annotations

import logging
import re
from typing import Literal

Flavour = Literal["slack", "mattermost", "discord", "teams", "any"]
FLAVOURS: tuple[Flavour, ...] = ("slack", "mattermost", "discord", "teams", "any")

CHAT_LINE_BREAK = " ⏎ "  # where a line break was in a chat text: seen, and never a line of its own

# Whole escape sequences first, so that their parameters ("0;title", "2J") go with them; a lone introducer after.
_ESCAPE_SEQUENCE = re.compile(
    r"""
      (?:\x1b\[|\x9b) [0-?]* [ -/]* [@-~]                 # CSI: colours, cursor moves, screen clears
    | (?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])             # OSC (window title, hyperlinks), DCS, SOS, PM, APC ...
      [^\x07\x1b\x9c]* (?:\x07|\x1b\\|\x9c)               # ... up to their terminator: BEL or ST
    | \x1b [ -/]* [0-~]                                   # the other ESC sequences (charsets, keypad, reset)
    """,
    re.VERBOSE,
)
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x85\u2028\u2029]")
# C0 and C1 controls and DEL (line breaks and tabs are dealt with before), and the bidirectional formatting
# characters: they make a terminal or a chat show text in another order than it is stored.
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def plain_terminal(text: str, *, multiline: bool = False) -> str:
    """`text` as a terminal may print it: no escape sequence, control character or bidi override; a tab is a
    space. `multiline`: line breaks stay, as `\\n` (a carriage return would let a line overwrite the one shown);
    otherwise each is a space, so that stored text cannot forge a line of a table or listing."""
    return _plain(text, line_break="\n" if multiline else " ")


class TerminalFormatter(logging.Formatter):
    """Log lines for a terminal: a record quoting a provider's message prints none of its escape sequences; the
    line breaks of a traceback stay."""

    def format(self, record: logging.LogRecord) -> str:
        return plain_terminal(super().format(record), multiline=True)


def _plain(text: str, *, line_break: str) -> str:
    text = _ESCAPE_SEQUENCE.sub("", text)
    text = _LINE_BREAK.sub(line_break, text.replace("\t", " "))
    return _CONTROL.sub("", text)


# -- chat ----------------------------------------------------------------------------------------------------------

_MENTION = str.maketrans({"@": "＠"})  # `@channel`, `@here`, `@everyone`, `@all`, `@user`: a mention nowhere
_LOOKALIKE = str.maketrans({"<": "‹", ">": "›", "`": "'", "*": "∗", "~": "∼", "|": "¦"})
_SLACK = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "`": "'", "*": "∗", "~": "∼"})
# Markdown receivers take a backslash before any ASCII punctuation; `<` and `>` as look-alikes, since a receiver
# that renders some HTML (Teams) does not promise to honour `\<`.
_MARKDOWN = str.maketrans({"<": "‹", ">": "›", **{c: "\\" + c for c in "\\`*_~|[]()!#"}})
_TABLES: dict[Flavour, dict[int, str]] = {
    "slack": _SLACK,
    "mattermost": _MARKDOWN,
    "discord": _MARKDOWN,
    "teams": _MARKDOWN,
    "any": _LOOKALIKE,
}
_LINK_SYNTAX = re.compile(r"!(?=\\?\[)|\](?=\\?\()")  # `![` of an image, `](` between a link's text and its URL
_SCHEME = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*)://")
_HOSTNAME = re.compile(
    r"\b[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*"
    r"\.[A-Za-z]{2,63}\b"
)


def neutralise(text: str, *, flavour: Flavour) -> str:
    """`text` from outside as a chat receiver of `flavour` may show it inside a message: one line (a line break
    shows as ⏎), no control character, no mention, no link, no image, no Markdown or HTML that acts."""
    if flavour not in _TABLES:
        raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
    text = _plain(text, line_break=CHAT_LINE_BREAK).translate(_MENTION).translate(_TABLES[flavour])
    text = _LINK_SYNTAX.sub(lambda m: m.group() + " " if m.group() == "!" else "] ", text)
    return _defanged(text)


def chat_line(text: str) -> str:
    """A whole chat message composed by this program around neutralised parts: kept on one line, with no control
    character, and no `<` or `@` that could start a mention or a link on any receiver; its own Markdown (code
    spans) stays."""
    return _plain(text, line_break=CHAT_LINE_BREAK).translate(_MENTION).translate(str.maketrans("<>", "‹›"))


def _defanged(text: str) -> str:
    """URLs and host names that no receiver turns into a link: `hxxps[:]//example[.]com/path`."""

    def scheme(match: re.Match[str]) -> str:
        name = match.group(1)
        return re.sub("(?i)^(h)tt(ps?)$", r"\1xx\2", name) + "[:]//"

    text = _SCHEME.sub(scheme, text)
    return _HOSTNAME.sub(lambda m: m.group().replace(".", "[.]"), text)

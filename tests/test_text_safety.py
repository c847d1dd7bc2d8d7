"""Text from outside made inert (app/text.py): escape sequences never reach a terminal through the CLI; mentions,
links, images and line breaks never act in a chat channel (the alerts' own tests post them to a receiver)."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TEST_KEY, USER, is_setting

from app import cli
from app.core import ai_models
from app.simulator import ModelProfile
from app.store import get_attempt_log, open_database
from app.store.overrides import DISABLE, FORCE, set_override
from app.text import CHAT_LINE_BREAK, FLAVOURS, TerminalFormatter, chat_line, neutralise, plain_terminal

pytestmark = pytest.mark.anyio

A, B = "sim/primary", "sim/secondary"
ROOT = Path(__file__).resolve().parents[1]

# What a hostile or broken provider (or a proxy in front of it) may put in an error message or an answer.
TITLE = "\x1b]0;pwned title\x07"  # OSC 0: sets the window title
HYPERLINK = "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"  # OSC 8: a link under other words
CLEAR = "\x1b[2J\x1b[H"  # clears the screen, cursor home
RED = "\x1b[31mFAKE ERROR\x1b[0m"  # fake colours
C1_CSI = "\x9b1m"  # the 8-bit form of ESC [
HOSTILE = f"{TITLE}model gone{CLEAR} {RED} {HYPERLINK} {C1_CSI}bold\rOK all clear\nsecond line\u202eevil\x00\x7f\x08"
# Pieces that must not survive anywhere: the controls, and the parameters of the sequences they started.
FORBIDDEN = ("\x1b", "\x07", "\x9b", "\x9c", "\r", "\x00", "\x7f", "\x08", "\u202e", "0;pwned", "[2J", "[31m", "8;;")


def assert_inert(text: str) -> None:
    found = [repr(piece) for piece in FORBIDDEN if piece in text]
    assert not found, f"{found} in {text!r}"


def assert_no_control(text: str) -> None:
    """For a text that quotes the message as Python writes a string (`'\\x1b]0;...'`): inert, if not pretty."""
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", text), repr(text)


# -- the terminal --------------------------------------------------------------------------------------------------


def test_plain_terminal_drops_whole_escape_sequences_and_controls_and_keeps_the_words():
    assert plain_terminal(HOSTILE) == (
        "model gone FAKE ERROR click bold OK all clear second lineevil"  # the words, on one line
    )
    assert plain_terminal(HOSTILE, multiline=True) == "model gone FAKE ERROR click bold\nOK all clear\nsecond lineevil"


@pytest.mark.parametrize(
    ("text", "plain"),
    [
        ("\x9d0;title\x9c after", " after"),  # 8-bit OSC up to the 8-bit ST
        ("\x1bP+q544e\x1b\\ after", " after"),  # DCS (a terminal query)
        ("\x1b]0;never terminated", "0;never terminated"),  # no terminator: the introducer goes, the text is inert
        ("\x1b(0lqk", "lqk"),  # a charset switch (line drawing)
        ("tab\there", "tab here"),
        ("a\r\nb\u2028c\x85d", "a b c d"),  # every kind of line break
        ("\u2066isolate\u2069 \u200fmark\u200e", "isolate mark"),  # bidi isolates and marks
    ],
)
def test_plain_terminal_each_kind_of_sequence(text, plain):
    assert plain_terminal(text) == plain


def test_plain_terminal_leaves_ordinary_text_alone():
    text = "naïve café — 10 ms · “quoted” 👩‍💻 日本語 …"  # accents, typography, an emoji joined with a ZWJ, CJK
    assert plain_terminal(text) == text
    assert plain_terminal("line 1\nline 2", multiline=True) == "line 1\nline 2"


# -- chat ----------------------------------------------------------------------------------------------------------

ATTACK = (
    "Model gone <!channel> <!here> @channel @here @everyone <@U123ABC> <!subteam^S1|ops> <https://evil.example|docs> "
    "[click](https://evil.example/x) ![img](http://cdn.evil.example/p.png) see www.evil.example `rm` *bold* ~x~"
    "\nAll clear, nothing to do"
)


@pytest.mark.parametrize("flavour", FLAVOURS)
def test_neutralise_leaves_no_mention_link_image_or_line_in_any_flavour(flavour):
    text = neutralise(ATTACK, flavour=flavour)
    assert "\n" not in text and "\r" not in text and f"{CHAT_LINE_BREAK}All clear" in text
    assert "@" not in text and "<" not in text and ">" not in text  # no mention in any receiver's syntax
    assert "](" not in text and "![" not in text  # no Markdown link or image
    assert "://" not in text and "evil.example" not in text  # no URL or host name a receiver would link
    assert "hxxps[:]//evil[.]example" in text and "www[.]evil[.]example" in text  # still readable
    assert "＠channel" in text and "＠everyone" in text


def test_neutralise_per_flavour_exactly():
    text = "<!here> @channel [x](https://e.com) *b* `c` a|b_c"
    assert neutralise(text, flavour="slack") == "&lt;!here&gt; ＠channel [x] (hxxps[:]//e[.]com) ∗b∗ 'c' a|b_c"
    assert neutralise(text, flavour="any") == "‹!here› ＠channel [x] (hxxps[:]//e[.]com) ∗b∗ 'c' a¦b_c"
    markdown = r"‹\!here› ＠channel \[x\] \(hxxps[:]//e[.]com\) \*b\* \`c\` a\|b\_c"
    for flavour in ("mattermost", "discord", "teams"):
        assert neutralise(text, flavour=flavour) == markdown


def test_neutralise_keeps_plain_words_and_model_names():
    for flavour in FLAVOURS:
        assert neutralise("llama-3.1-8b-instant answered 503 at 2026-12-05T05:03:28.688Z", flavour=flavour) == (
            "llama-3.1-8b-instant answered 503 at 2026-12-05T05:03:28.688Z"
        )


def test_an_unknown_flavour_is_refused_with_the_known_ones():
    with pytest.raises(ValueError, match="flavour must be one of slack, mattermost, discord, teams, any, got 'irc'"):
        neutralise("x", flavour="irc")  # type: ignore[arg-type]


def test_chat_line_keeps_its_own_code_spans_and_drops_the_rest():
    assert chat_line("undo: `taskrouter model enable x` <!channel> @here\nforged") == (
        "undo: `taskrouter model enable x` ‹!channel› ＠here ⏎ forged"
    )


# -- the CLI, on what a provider and an operator left in the store -----------------------------------------------


async def test_status_and_override_list_print_no_escape_sequence_from_the_store(sim, make_router, db_path, capsys):
    ai_models.MODEL_REGISTRY.update({"pair": [A, B]})
    sim.script(A, {"fault": "decommissioned", "message": HOSTILE})
    async with make_router() as router:
        assert (await router.execute("pair", USER)).model_used == B  # A is marked deprecated, with the message
    assert get_attempt_log(db_path).flush(30)
    db = open_database(db_path)
    with contextlib.closing(db.conn) as conn:
        set_override(conn, DISABLE, B, reason=f"flaky {RED}\nforged line", by=f"ops{TITLE}")
        set_override(conn, FORCE, B, task="pair", reason=f"{CLEAR}incident", by="ops")
    capsys.readouterr()

    assert cli.main(["status", "--db", str(db_path)]) == 0
    out = capsys.readouterr().out
    assert_inert(out)
    lines = out.splitlines()
    [mark] = [line for line in lines if line.startswith(A)]
    assert mark.endswith("  model gone FAKE ERROR click bold OK all clear second lineevil"), mark
    assert f"  #1 disable {B}, set by ops at " in out and "(flaky FAKE ERROR forged line)" in out
    assert not any(line.startswith(("forged", "OK all clear", "second line")) for line in lines)
    assert f"  #2 force {B} for pair, set by ops at " in out and "(incident)" in out

    assert cli.main(["override", "list", "--db", str(db_path)]) == 0
    listed = capsys.readouterr().out
    assert_inert(listed)
    assert f"#2 force {B} for pair, set by ops at " in listed and "(flaky FAKE ERROR forged line)" in listed

    assert cli.main(["status", "--db", str(db_path), "--json"]) == 0  # JSON escapes controls itself
    document = capsys.readouterr().out
    assert "\x1b" not in document and "\\u001b]0;pwned title" in document


def test_run_prints_neither_an_answers_nor_an_errors_escape_sequences(sim, env, capsys):
    env.setenv("FORCE_MODEL", A)
    sim.script(A, {"fault": "ok", "content": f"Hello{TITLE}{CLEAR}\n{RED}\rdone"})
    assert cli.main(["run", "fast", "hi"]) == 0
    out, err = capsys.readouterr()
    assert out == "Hello\nFAKE ERROR\ndone\n"
    assert_inert(err)

    sim.script(A, {"fault": "decommissioned", "message": HOSTILE})
    assert cli.main(["run", "fast", "hi"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "FORCE_MODEL=sim/primary failed" in err and "model gone" in err
    assert_no_control(err)


def test_log_lines_for_the_terminal_keep_a_tracebacks_lines_and_drop_escape_sequences():
    record = logging.LogRecord("taskrouter", logging.WARNING, __file__, 1, "Model marked: %s", (HOSTILE,), None)
    line = TerminalFormatter("%(levelname)s %(name)s: %(message)s").format(record)
    assert line == "WARNING taskrouter: Model marked: model gone FAKE ERROR click bold\nOK all clear\nsecond lineevil"


@pytest.mark.slow
def test_taskrouter_run_in_a_terminal_prints_no_escape_sequence_from_a_provider(sim, tmp_path):
    """The whole command as a shell runs it: its own log lines (WARNING, on by default) quote the message too."""
    sim.script(A, {"fault": "decommissioned", "message": HOSTILE})
    environment = {name: value for name, value in os.environ.items() if not is_setting(name)}
    environment.update(
        PYTHONPATH=str(ROOT),
        GROQ_API_KEY=TEST_KEY,
        GROQ_BASE_URL=sim.base_url,
        FORCE_MODEL=A,
        ATTEMPTS_DB_PATH=str(tmp_path / "cli.db"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "app", "run", "fast", "hello"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1, done.stderr
    assert "WARNING taskrouter: Model marked model=sim/primary status=deprecated: model gone FAKE ERROR" in done.stderr
    logged, failed = done.stderr.split("taskrouter: fast: ")
    assert_inert(logged)
    assert_no_control(failed)  # the error quotes the message as Python writes a string
    assert done.stdout == ""


def test_check_prints_a_calendar_entrys_escape_sequences_and_line_breaks_inert(env, sim, tmp_path, capsys):
    """A calendar file may come from elsewhere (a vendor's list, a shared repository): its words reach the table."""
    live = "openai/gpt-oss-120b"
    calendar = tmp_path / "deprecations.toml"
    calendar.write_text(
        f'[models."{live}"]\nshutdown = 2026-12-11\n'
        'replacements = ["\\u001b]0;pwned\\u0007new/model\\u001b[2J\\nforged line"]\nsource = "\\u001b[31mvendor"\n'
    )
    env.setenv("DEPRECATIONS_FILE", str(calendar))
    sim.set_profile(live, ModelProfile())  # listed by GET /models
    ai_models.MODEL_REGISTRY.clear()
    ai_models.MODEL_REGISTRY.update({"chat": [live]})
    assert cli.main(["check", "--today", "2026-12-01", "--no-store"]) == 0  # a warning, not --strict
    out = capsys.readouterr().out
    assert_inert(out)
    assert not any(line.startswith("forged") for line in out.splitlines())
    [suggestion] = [line.strip() for line in out.splitlines() if line.strip().startswith("->")]
    assert suggestion.startswith("-> use new/model forged line")

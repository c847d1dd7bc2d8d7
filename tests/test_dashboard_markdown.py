"""Text from the database, a provider, a file or the environment never reaches the dashboard as Markdown.

The rule (dashboard/main.py): a page's own wording may be Markdown; every value put into it goes through
`fmt.plain`. Here: what `plain` does, a check of the dashboard's source that every Markdown-rendering Streamlit
call follows the rule (so new code cannot forget it), and every page run on hostile data through AppTest. The
rendering itself, in a real browser, is tests/test_dashboard_browser.py.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from stores import insert, insert_attempts
from test_dashboard import APP, BIG, QWEN, _iso, _row, read, run_page

from app.core import ai_models
from app.deprecations import save_check
from app.store.target import Target
from dashboard import fmt, registry

DASHBOARD = APP.parent
WJ = fmt.WORD_JOINER

# -- fmt.plain -----------------------------------------------------------------------------------------------


def test_plain_escapes_every_ascii_punctuation_mark() -> None:
    punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"
    assert fmt.plain(punctuation) == "".join("\\" + c for c in punctuation)
    assert fmt.plain("abc 123 é 日本") == "abc 123 é 日本"  # letters, digits, spaces and non-ASCII as they are
    assert fmt.plain(42) == "42" and fmt.plain(None) == "None"


def test_plain_keeps_bare_urls_and_addresses_from_becoming_links() -> None:
    # Escapes are undone before Streamlit's GFM looks for bare URLs: a word joiner is what stops it.
    assert fmt.plain("see http://h.example/x") == f"see http{WJ}\\:\\/\\/h\\.example\\/x"
    assert fmt.plain("HTTPS://h") == f"HTTPS{WJ}\\:\\/\\/h"
    assert fmt.plain("WWW.h.example") == f"WWW{WJ}\\.h\\.example"
    assert fmt.plain("ops@h.example") == f"ops{WJ}\\@h\\.example"
    assert fmt.plain("ftp://h") == "ftp\\:\\/\\/h"  # not autolinked by GFM: left alone
    assert fmt.plain("root@vm") == "root\\@vm"  # no dotted domain: not an address to GFM, nothing invisible


def test_plain_keeps_emoji_shortcodes_from_being_recognised() -> None:
    # Escaped or not, `:smile:` in the decoded text becomes an emoji once the element's source holds a `:name:`.
    assert fmt.plain(":smile: 10:30") == f"\\:{WJ}smile\\: 10\\:30"
    assert fmt.plain(":+1: :material/warning:") == f"\\:{WJ}\\+1\\: \\:material\\/warning\\:"
    assert not EMOJI_TRIGGER.search(fmt.plain(":smile:") + ":")
    assert not EMOJI_TRIGGER.search(fmt.plain("model:smile") + ": detail")  # the wording's `:` closes none
    assert fmt.plain(":100:") == f"\\:{WJ}100\\:"  # the all-digit shortcodes that exist


def test_plain_puts_nothing_invisible_in_times_and_user_names() -> None:
    """Copied from the page, a time or a user name is what was typed: no word joiner where no link or emoji could
    form."""
    for text in ("2026-12-05 05:03:28 UTC", "root@vm", "dashboard as root@vm", "in 29 min", "/var/lib/x.db"):
        assert WJ not in fmt.plain(text), text


def test_plain_turns_line_breaks_into_hard_breaks() -> None:
    # No blank line (a new paragraph), no indented code block, no heading or list on a later line.
    assert fmt.plain("one\r\n\r\n    two\r# three\n") == "one\\\n\\\n    two\\\n\\# three"
    assert fmt.plain("    indented") == "indented"  # four leading spaces would open a code block


# -- the source check ----------------------------------------------------------------------------------------

# Streamlit calls whose text argument (first positional, body=, label=) is rendered as Markdown, and the
# keywords that are Markdown on any call (help= tooltips, radio captions=).
MARKDOWN_CALLS = frozenset(
    {
        "markdown",
        "write",
        "caption",
        "info",
        "warning",
        "error",
        "success",
        "toast",
        "title",
        "header",
        "subheader",
        "expander",
        "popover",
        "tabs",
        "status",
        "badge",
        "metric",
        "button",
        "download_button",
        "link_button",
        "page_link",
        "form_submit_button",
        "toggle",
        "checkbox",
        "radio",
        "pills",
        "segmented_control",
        "selectbox",
        "multiselect",
        "select_slider",
        "slider",
        "text_input",
        "text_area",
        "number_input",
        "date_input",
        "time_input",
        "file_uploader",
        "color_picker",
        "chat_input",
    }
)
TEXT_KEYWORDS = ("body", "label")
MARKDOWN_KEYWORDS = ("help", "captions")
NOT_STREAMLIT = frozenset({"logging", "logger", "log", "warnings"})
# fmt helpers whose output is safe in Markdown: plain() escapes; the number formatters raise on text and give
# digits, `,`, `.`, `%`, `+`, `-`, ` ms` and the dash. Not fmt.when (its text comes from the database) nor
# fmt.usd (`$` opens LaTeX).
SAFE_HELPERS = frozenset({"plain", "count", "pct", "ms"})
NUMBER_HELPERS = SAFE_HELPERS - {"plain"}
FOREIGN = "\0"  # stands for an interpolated value in a template
# Streamlit loads its emoji plugin when the source holds `:name:`, and then converts `:name:` in all the decoded
# text, escaped or not: the wording must hold none, nor a `:` right before a value (`:` + value `smile` + `\:`
# would read `:smile:`). `$` around a value would make it LaTeX, and inside backticks the escapes would show.
_TEMPLATE_TRAPS = re.compile(r":\0|:[\w+\-][\w+\-]*:|[$`]")
_NUMBER_SPEC = re.compile(r".*[,_]|.*[bcdeEfFgGnoxX%]")


def _number_spec(spec: ast.expr | None) -> bool:
    """`{n:,}`, `{x:.4f}`, `{r:.0%}`: a format a str refuses, so the value is a number."""
    if not isinstance(spec, ast.JoinedStr) or not all(isinstance(v, ast.Constant) for v in spec.values):
        return False
    return bool(_NUMBER_SPEC.fullmatch("".join(str(v.value) for v in spec.values)))  # type: ignore[attr-defined]


def _is_fmt_call(node: ast.expr, names: frozenset[str]) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in names
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "fmt"
    )


class MarkdownChecker:
    """Finds the Markdown-rendering calls of one module whose text is not provably safe."""

    def __init__(self, source: str, filename: str) -> None:
        self.tree = ast.parse(source, filename)
        self.filename = filename
        self.problems: list[str] = []

    def run(self) -> list[str]:
        scopes = [self.tree, *(n for n in ast.walk(self.tree) if isinstance(n, ast.FunctionDef | ast.Lambda))]
        for scope in scopes:
            assigns = self._assignments(scope)
            for call in self._calls(scope):
                for arg in self._markdown_args(call):
                    self._check(arg, assigns)
        return self.problems

    @staticmethod
    def _own_nodes(scope: ast.AST) -> Iterator[ast.AST]:
        """The nodes of a module or function, not those of the functions nested in it."""
        stack = list(ast.iter_child_nodes(scope))
        while stack:
            node = stack.pop()
            yield node
            if not isinstance(node, ast.FunctionDef | ast.Lambda | ast.ClassDef):
                stack.extend(ast.iter_child_nodes(node))

    def _assignments(self, scope: ast.AST) -> dict[str, list[ast.expr | None]]:
        """name -> what is assigned to it in this scope; None for a binding the check cannot follow (a loop
        variable, a parameter, a tuple target...)."""
        out: dict[str, list[ast.expr | None]] = {}
        if isinstance(scope, ast.FunctionDef | ast.Lambda):
            for a in [*scope.args.posonlyargs, *scope.args.args, *scope.args.kwonlyargs]:
                out.setdefault(a.arg, []).append(None)
        followed: set[int] = set()
        nodes = list(self._own_nodes(scope))
        for node in nodes:
            if isinstance(node, ast.Assign | ast.AnnAssign | ast.NamedExpr):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if isinstance(target, ast.Name):
                        out.setdefault(target.id, []).append(node.value)
                        followed.add(id(target))
        for node in nodes:  # every other binding: for targets, with, except, unpacking, +=
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and id(node) not in followed:
                out.setdefault(node.id, []).append(None)
        return out

    def _calls(self, scope: ast.AST) -> Iterator[ast.Call]:
        return (n for n in self._own_nodes(scope) if isinstance(n, ast.Call))

    @staticmethod
    def _markdown_args(call: ast.Call) -> list[ast.expr]:
        args = [k.value for k in call.keywords if k.arg in MARKDOWN_KEYWORDS]
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in MARKDOWN_CALLS:
            root = func.value
            while isinstance(root, ast.Attribute | ast.Subscript | ast.Call):
                root = root.func if isinstance(root, ast.Call) else root.value
            if not (isinstance(root, ast.Name) and root.id in NOT_STREAMLIT):
                args += call.args[:1] + [k.value for k in call.keywords if k.arg in TEXT_KEYWORDS]
        return args

    def _check(self, node: ast.expr, assigns: dict[str, list[ast.expr | None]]) -> None:
        if not self._safe(node, assigns, set()):
            self.problems.append(
                f"{self.filename}:{node.lineno}: {ast.unparse(node)!r} goes into Markdown: put every "
                "value through fmt.plain(...) (or fmt.count/pct/ms for numbers)"
            )

    def _safe(self, node: ast.expr, assigns: dict[str, list[ast.expr | None]], seen: set[str]) -> bool:
        if isinstance(node, ast.Constant):
            return True
        if _is_fmt_call(node, SAFE_HELPERS):
            return True
        if isinstance(node, ast.JoinedStr):
            parts = [v for v in node.values if isinstance(v, ast.FormattedValue)]
            ok = all(
                p.conversion == -1 and (_number_spec(p.format_spec) or self._safe(p.value, assigns, seen))
                for p in parts
            )
            return ok and self._template_ok(node)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return (
                self._safe(node.left, assigns, seen)
                and self._safe(node.right, assigns, seen)
                and self._template_ok(node)
            )
        if isinstance(node, ast.IfExp):
            return self._safe(node.body, assigns, seen) and self._safe(node.orelse, assigns, seen)
        if isinstance(node, ast.List | ast.Tuple):
            return all(self._safe(e, assigns, seen) for e in node.elts)
        if isinstance(node, ast.Name) and node.id not in seen:
            values = assigns.get(node.id, [None])
            return all(v is not None and self._safe(v, assigns, seen | {node.id}) for v in values)
        return False

    def _template_ok(self, node: ast.expr) -> bool:
        """The wording around the values: none of the constructs that would reach into a value (see TRAPS)."""
        text = self._template(node)
        if FOREIGN in text and _TEMPLATE_TRAPS.search(text):
            self.problems.append(
                f"{self.filename}:{node.lineno}: the wording around a value in "
                f"{ast.unparse(node)!r} holds a `:` right before it, a `:name:`, a `$` or a backtick"
            )
        return True

    def _template(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return str(node.value)
        if isinstance(node, ast.JoinedStr):
            return "".join(
                str(v.value)
                if isinstance(v, ast.Constant)
                else "0"
                if _number_spec(v.format_spec) or _is_fmt_call(v.value, NUMBER_HELPERS)
                else FOREIGN
                for v in node.values
            )
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            return self._template(node.left) + self._template(node.right)
        return "0" if _is_fmt_call(node, NUMBER_HELPERS) else FOREIGN


def check_source(source: str, filename: str = "<snippet>") -> list[str]:
    return MarkdownChecker(source, filename).run()


def test_every_value_in_the_dashboards_markdown_goes_through_fmt_plain() -> None:
    files = sorted(DASHBOARD.rglob("*.py"))
    assert len(files) > 10
    problems = [p for path in files for p in check_source(path.read_text(), str(path.relative_to(DASHBOARD)))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(
    "snippet",
    [
        'st.warning(f"**{model}** is deprecated")',
        'st.error(f"{fmt.when(row)} failed")',
        "st.caption(f\"{fmt.plain(x) or 'none'}\")",
        "cols[0].metric(label)",
        'left.subheader("Model " + name)',
        "st.success(text)",  # bound nowhere in this scope
        'def f(reason):\n    st.info(f"{fmt.plain(reason)} and {reason}")',
        "for note in notes:\n    st.warning(note)",
        'st.toggle("Skips", help=f"about {kind}")',
        'st.expander(f"{len(rows)} rows")',
        'st.warning(f"{x!s:.4f}")',
        'st.write(f"{fmt.usd(cost)}")',
        'st.markdown(f":{fmt.plain(v)}")',  # with a value `smile\\:`, the source would hold `:smile\\:`
        'st.markdown(f":tada: {fmt.plain(v)}")',
        'st.markdown(f"${fmt.plain(v)}$")',
        'st.caption(f"path `{fmt.plain(p)}`")',
    ],
)
def test_the_source_check_catches_raw_values(snippet: str) -> None:
    assert check_source(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    [
        'st.warning(f"**{fmt.plain(model)}** is {fmt.plain(state)}. {fmt.plain(detail)}")',
        'st.caption(f"{total:,} failed calls, {share:.1%} of {fmt.count(n)}")',
        # A value never ends in `:name`: plain() puts a word joiner after its `:`.
        'st.caption(f"{fmt.plain(label)}: {fmt.plain(detail)}:")',
        'text = f"Spent ${spent:.4f}"\nst.error(text + " over the budget.")',
        'what = "a" if x else "b"\nst.caption(f"{fmt.plain(label)} · {what}")',
        'st.markdown("**Needs attention** :tada:")',  # the page's own wording may use anything
        'logger.warning("%s", raw)',
        'st.dataframe(frame, column_config={"x": st.column_config.TextColumn(help="plain")})',
    ],
)
def test_the_source_check_accepts_escaped_values(snippet: str) -> None:
    assert check_source(snippet) == [], snippet


# -- every page on hostile data, as Markdown source (AppTest) ------------------------------------------------

HOSTILE = (
    "![x](http://127.0.0.1:9/img) [Click to fix](http://127.0.0.1:9/link) <img src=http://127.0.0.1:9/html> "
    "**bold** _it_ $x^2$ :red[alarm] :material/warning: :smile: http://127.0.0.1:9/bare a@b.example\n# h"
)
# What Streamlit's Markdown element looks for in the source before loading its emoji and LaTeX plugins
# (StreamlitMarkdown.tsx in Streamlit 1.67): neither may ever load for a page's text.
EMOJI_TRIGGER = re.compile(r":(?!material/|streamlit:)[\w+-][\w_+-]*:")
# (LaTeX: looked for once code and `\\$` escapes are blanked out.)
MATH_BLANKED = re.compile(
    r"(?:(?<=\n)|^) {0,3}(`{3,}|~{3,})[\s\S]*?(?:\n[ \t]*\1|\Z)"
    r"|(?<!`)(`+)[^`\n]+\2(?!`)|\\[\\$`]"
)
MATH_TRIGGER = re.compile(r"(?<!\$)\$(?![\s$])[^$\n]*?[^\s$]\$(?!\d)|(?<!\$)\$\$+(?!\$)[\s\S]*?\$\$")
MARKDOWN_KINDS = ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success")


def _markdown_texts(at: object) -> list[str]:
    return [e.value for kind in MARKDOWN_KINDS for e in getattr(at, kind)]  # type: ignore[attr-defined]


@pytest.mark.slow
def test_every_page_puts_hostile_text_into_markdown_escaped(
    seeded: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    t = datetime.now(UTC) - timedelta(minutes=5)
    insert_attempts(seeded, [_row("h1", HOSTILE, HOSTILE, 1, "failure", t, kind="deprecated", status=400)])
    insert(
        seeded,
        "model_status",
        {
            "model": HOSTILE,
            "status": "deprecated",
            "detail": HOSTILE,
            "until": None,
            "first_seen": _iso(t),
            "last_seen": _iso(t),
            "hits": 1,
        },
    )
    save_check(
        seeded,
        {
            "checked_at": _iso(datetime.now(UTC)),
            "exit_code": 1,
            "errors": 0,
            "warnings": 1,
            "summary": HOSTILE,
            "models": {},
            "problems": [],
        },
    )
    soon = (datetime.now(UTC) + timedelta(days=5)).date().isoformat()
    calendar = tmp_path / "calendar.json"
    calendar.write_text(json.dumps({"models": {BIG: {"shutdown": soon, "replacement": HOSTILE}}}))
    monkeypatch.setenv("DEPRECATIONS_FILE", str(calendar))
    monkeypatch.setenv("FORCE_MODEL", HOSTILE)
    monkeypatch.setitem(ai_models.MODEL_REGISTRY, "reasoning", [HOSTILE, BIG, QWEN])
    monkeypatch.setenv("DEFAULT_FAST_MODEL", HOSTILE)
    seen = 0
    for page, query in (
        ("Overview", {}),
        ("Models", {}),
        ("Tasks", {}),
        ("Deprecations", {}),
        ("Failures", {}),
        ("Request", {}),
        ("Request", {"request": "h1"}),
    ):
        texts = _markdown_texts(run_page(page, **query))
        for text in texts:
            assert not EMOJI_TRIGGER.search(text), (page, text)
            assert not MATH_TRIGGER.search(MATH_BLANKED.sub("_", text)), (page, text)
            unescaped = re.sub(r"\\.", "", text, flags=re.S)  # the Markdown a parser would act on
            assert "](" not in unescaped and "<" not in unescaped and "_it_" not in unescaped, (page, text)
            if fmt.plain(HOSTILE) in text:
                seen += 1
                assert HOSTILE in read(text), (page, text)
    # Overview: FORCE_MODEL and the deprecated model; Models: its mark; Tasks: both overrides; Deprecations: the
    # model still listed, the calendar's replacement, the check's summary; Request: the request's task.
    assert seen >= 9


def test_settings_and_calendar_problems_are_escaped(
    seeded: Target, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calendar = tmp_path / "calendar.toml"
    calendar.write_text('"[Click to fix](http://127.0.0.1:9/link)" = 1\n')  # an unknown top-level key, quoted back
    monkeypatch.setenv("DEPRECATIONS_FILE", str(calendar))
    errors = " ".join(e.value for e in run_page("Deprecations").error)
    assert fmt.plain("[Click to fix](http://127.0.0.1:9/link)") in errors
    assert "[Click to fix](" not in errors

    monkeypatch.setattr(registry, "current_settings", lambda: (None, HOSTILE))
    assert any(fmt.plain(HOSTILE) in e.value for e in run_page("Overview").error)
    assert any(fmt.plain(HOSTILE) in e.value for e in run_page("Tasks").error)

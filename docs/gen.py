"""The documentation's generated parts, filled in at build time so that they cannot drift from the code.

MkDocs runs this file as a hook (`hooks:` in mkdocs.yml). A page asks for a generated part with a marker line,
`<!-- generated: NAME -->`, which the hook replaces with `GENERATED[NAME]()`:

- `bench-scripts`: every script in bench/ with the first paragraph of its docstring.
- `command-help`: `taskrouter --help` and every subcommand's, from the CLI's own parser.
- `failure-table`: what the router does with each failure kind, `app.core.failures.policy_markdown()`, built from
  the `POLICY` table the router reads.
- `metric-table`: every metric the router exports (its OpenTelemetry name, the name Prometheus shows, kind, unit,
  attributes and meaning), `INSTRUMENTS` in app/telemetry/instruments.py, the table the exporters read.
- `parameters`: every model parameter a call may pass and what it accepts, `PARAMS` in app/core/params.py.
- `settings`: every setting of `app.config.Settings` (its variable, default and accepted values), explained by the
  comment above it in `.env.example`, in that file's sections.

The hook also publishes bench/RESULTS.md as the page `benchmarks/results.md`, so that the site shows the figures
where they are kept, and warns (an error under `mkdocs build --strict`) when a public name is missing from the
public API page. `python docs/gen.py NAME` prints one generated part.
"""

from __future__ import annotations

import itertools
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

ROOT = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = ROOT / ".env.example"
RESULTS = ROOT / "bench" / "RESULTS.md"
RESULTS_PAGE = "benchmarks/results.md"
PUBLIC_API_PAGE = "public-api.md"
MARKER = re.compile(r"^<!-- generated: (?P<name>[a-z-]+) -->$", re.MULTILINE)
DEFAULT_MODEL_VARIABLE = "DEFAULT_<TASK>_MODEL"  # the `default_models` field: one variable per task
_SECTION = re.compile(r"^# --- (?P<title>.+?) -*$")
_VARIABLE = re.compile(r"^(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def failure_table() -> str:
    from app.core.failures import policy_markdown

    return policy_markdown()


def metric_table() -> str:
    """Every metric the router exports: `INSTRUMENTS` in app/telemetry/instruments.py, the table the Prometheus
    collector and the OpenTelemetry meter read."""
    from app.telemetry.instruments import INSTRUMENTS

    lines = ["| metric | Prometheus | kind | unit | attributes | meaning |", "|---|---|---|---|---|---|"]
    for instrument in INSTRUMENTS:
        attributes = "<br>".join(f"`{a}`" for a in instrument.attributes) or "none"
        lines.append(
            f"| `{instrument.name}` | `{instrument.prometheus}` | {instrument.kind} | `{instrument.unit}` "
            f"| {attributes} | {_cell(instrument.description)} |"
        )
    return "\n".join(lines)


def parameters_table() -> str:
    """Every model parameter a call may pass and what it accepts: `PARAMS` in app/core/params.py, the table the
    router checks calls against."""
    from app.core.params import PARAMS

    lines = ["| parameter | accepted |", "|---|---|"]
    for name, entry in PARAMS.items():
        lines.append(f"| `{name}` | {_cell(_accepted_text(entry))} |")
    return "\n".join(lines)


def _accepted_text(entry: Any) -> str:
    """A PARAMS entry's text for people: `(check, text)`, or the one text field of a record."""
    if isinstance(entry, tuple):
        return str(entry[1])
    import dataclasses

    return next(
        str(getattr(entry, f.name)) for f in dataclasses.fields(entry) if isinstance(getattr(entry, f.name), str)
    )


def bench_scripts() -> str:
    """Every script in bench/ with the first paragraph of its docstring."""
    import ast

    lines = ["| script | what it measures |", "|---|---|"]
    for script in sorted((ROOT / "bench").glob("*.py")):
        docstring = ast.get_docstring(ast.parse(script.read_text(encoding="utf-8"))) or ""
        summary = " ".join(docstring.split("\n\n")[0].split())
        summary = re.sub(r"\s*(Run )?[Bb]y hand\.$", "", summary)
        lines.append(f"| `bench/{script.name}` | {_cell(summary)} |")
    return "\n".join(lines)


def command_help() -> str:
    """`taskrouter --help` and each subcommand's, as argparse prints them (app.cli.build_parser), 100 columns wide."""
    import argparse
    import os

    from app.cli import build_parser

    def parsers(prefix: str, parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
        found = [(prefix, parser)]
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    if sub not in [p for _, p in found]:  # an alias names the same parser twice
                        found += parsers(f"{prefix} {name}", sub)
        return found

    columns = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"
    try:
        out = []
        for name, parser in parsers("taskrouter", build_parser()):
            out += [f"### `{name}`", "", "```text", parser.format_help().rstrip(), "```", ""]
    finally:
        if columns is None:
            del os.environ["COLUMNS"]
        else:
            os.environ["COLUMNS"] = columns
    return "\n".join(out).strip()


@dataclass(frozen=True)
class Documented:
    """One variable of .env.example: the section it is in and the comment block above it."""

    section: str
    comment: str


def documented_variables(text: str) -> dict[str, Documented]:
    """.env.example's variables in order. A comment block explains the variables right below it (several share
    one); a `# --- Title ---` line starts a section."""
    found: dict[str, Documented] = {}
    section, comment, block_open = "", [], False
    for line in text.splitlines():
        stripped = line.strip()
        heading = _SECTION.match(stripped)
        if heading:
            section, comment, block_open = heading["title"].strip(), [], False
        elif stripped.startswith("#"):
            if block_open:  # a comment after variables starts the next block
                comment, block_open = [], False
            comment.append(stripped.lstrip("#").strip())
        elif (variable := _VARIABLE.match(stripped)) is not None:
            found[variable["name"]] = Documented(section=section, comment=" ".join(comment))
            block_open = True
        else:  # a blank line ends a block
            comment, block_open = [], False
    return found


def variable_name(field: str) -> str:
    return DEFAULT_MODEL_VARIABLE if field == "default_models" else field.upper()


def shown_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, float) and value.is_integer():
        return f"`{int(value)}`"
    return f"`{value}`"


_KINDS: dict[Any, str] = {bool: "true / false", int: "integer", float: "number", str: "text", Path: "path"}
_BOUNDS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def accepted(annotation: Any, metadata: list[Any]) -> str:
    """What a setting accepts, from its type and its Field bounds: `number > 0, ≤ 3600`."""
    origin = get_origin(annotation)
    if origin in (Union, types.UnionType):
        annotation = next(a for a in get_args(annotation) if a is not type(None))
        origin = get_origin(annotation)
    if origin is Literal:
        return " or ".join(f"`{choice}`" for choice in get_args(annotation))
    if origin is dict:
        return "a model name"
    if getattr(annotation, "__name__", "") == "SecretStr":
        return "text (a secret: never shown)"
    kind = _KINDS.get(annotation, getattr(annotation, "__name__", str(annotation)))
    bounds = [f"{sign} {_number(getattr(m, attr))}" for m in metadata for attr, sign in _BOUNDS if hasattr(m, attr)]
    return ", ".join([kind + (" " + bounds[0] if bounds else ""), *bounds[1:]])


@dataclass(frozen=True)
class SettingRow:
    variable: str
    default: str
    accepts: str
    section: str
    meaning: str


def setting_rows() -> list[SettingRow]:
    """One row per field of Settings, in .env.example's order; a field .env.example does not explain, or a variable
    it explains that Settings does not have, is an error that says which."""
    from app.config import Settings

    documented = documented_variables(ENV_EXAMPLE.read_text(encoding="utf-8"))
    task_variables = [name for name in documented if re.fullmatch(r"DEFAULT_[A-Z0-9_]+_MODEL", name)]
    if task_variables:  # the examples (DEFAULT_FAST_MODEL, ...) stand for one row, where the first of them is
        documented = {
            (DEFAULT_MODEL_VARIABLE if name == task_variables[0] else name): doc for name, doc in documented.items()
        }
    fields = {variable_name(name): field for name, field in Settings.model_fields.items()}
    missing = [name for name in fields if name not in documented]
    unknown = [name for name in documented if name not in fields and name not in task_variables]
    if missing or unknown:
        raise ValueError(
            f"{ENV_EXAMPLE.name} and app.config.Settings disagree: explain {missing} in "
            f"{ENV_EXAMPLE.name}; remove {unknown} from it or add them to Settings"
        )
    rows = []
    for name, doc in documented.items():
        if name in task_variables:
            continue
        field = fields[name]
        default = "unset" if field.default_factory is not None else shown_default(field.default)
        rows.append(
            SettingRow(
                variable=name,
                default=default,
                accepts=accepted(field.annotation, field.metadata),
                section=doc.section,
                meaning=field.description or doc.comment,
            )
        )
    return rows


def _cell(text: str) -> str:
    """Plain text for a table cell: Markdown's own characters are shown as typed outside `code`."""
    parts = text.split("`")
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r"([\\|*_\[\]])", r"\\\1", parts[i]).replace("<", "&lt;").replace(">", "&gt;")
    return "`".join(parts)


def settings_reference() -> str:
    """A table per section; variables explained by one comment share a row."""
    out: list[str] = []
    for section, in_section in itertools.groupby(setting_rows(), key=lambda row: row.section):
        out += ["", f"## {section}", "", "| variable | default | accepts | meaning |", "|---|---|---|---|"]
        for meaning, shared in itertools.groupby(in_section, key=lambda row: row.meaning):
            group = list(shared)
            names = "<br>".join(f"`{row.variable}`" for row in group)
            defaults = "<br>".join(row.default for row in group)
            accepts = "<br>".join(row.accepts for row in group)
            out.append(f"| {names} | {defaults} | {accepts} | {_cell(meaning)} |")
    return "\n".join(out).strip()


GENERATED: dict[str, Callable[[], str]] = {
    "bench-scripts": bench_scripts,
    "command-help": command_help,
    "failure-table": failure_table,
    "metric-table": metric_table,
    "parameters": parameters_table,
    "settings": settings_reference,
}


def fill(markdown: str) -> str:
    """The page with each marker replaced by what it names; an unknown name is an error."""

    def generated(found: re.Match[str]) -> str:
        name = found["name"]
        if name not in GENERATED:
            raise ValueError(f"unknown generated part {name!r}; known: {sorted(GENERATED)}")
        return GENERATED[name]()

    return MARKER.sub(generated, markdown)


def undocumented_public_names(markdown: str) -> list[str]:
    import app

    return [name for name in app.__all__ if not re.search(rf"`{re.escape(name)}\b", markdown)]


# MkDocs hook events (https://www.mkdocs.org/user-guide/configuration/#hooks).


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    files.append(File.generated(config, RESULTS_PAGE, abs_src_path=str(RESULTS)))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if page.file.src_uri == PUBLIC_API_PAGE:
        import logging

        missing = undocumented_public_names(markdown)
        if missing:
            logging.getLogger("mkdocs.hooks.gen").warning("%s does not document %s", PUBLIC_API_PAGE, missing)
    return fill(markdown)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in GENERATED:
        sys.exit(f"usage: python docs/gen.py {{{'|'.join(GENERATED)}}}")
    print(GENERATED[sys.argv[1]]())

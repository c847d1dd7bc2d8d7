"""The documentation's generator (docs/gen.py, the hook `mkdocs build` runs): every generated part is asked for by a
page and known to the generator, and each reads its source the way the source is written."""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_site import DOCS, built, generator

from app.cli import COMMANDS


def test_every_marker_names_a_generated_part_and_every_part_is_shown_once():
    asked = [
        found["name"]
        for page in sorted(DOCS.rglob("*.md"))
        for found in generator().MARKER.finditer(page.read_text(encoding="utf-8"))
    ]
    assert sorted(asked) == sorted(generator().GENERATED)


def test_an_unknown_marker_is_an_error_that_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"unknown generated part 'nothing'.*'settings'"):
        generator().fill("# A page\n\n<!-- generated: nothing -->\n")


def test_a_comment_block_explains_every_variable_below_it_until_a_blank_line():
    text = (
        "# --- Routing ----\n# Both waits.\nA_BASE=1\nA_MAX=2\n# The next one.\nB=\n\n# --- Store ---\nC=x\n"
        "# Not explained by the comment above: a blank line came between.\n\nD=\n"
    )
    found = generator().documented_variables(text)
    assert {name: (doc.section, doc.comment) for name, doc in found.items()} == {
        "A_BASE": ("Routing", "Both waits."),
        "A_MAX": ("Routing", "Both waits."),
        "B": ("Routing", "The next one."),
        "C": ("Store", ""),
        "D": ("Store", ""),
    }


def test_the_settings_reference_shares_a_row_between_variables_one_comment_explains():
    reference = built("settings.md")
    assert "| `RETRY_BACKOFF_BASE_SECONDS`<br>`RETRY_BACKOFF_MAX_SECONDS` | `0.05`<br>`2` |" in reference
    assert "| `HTTP_TRANSPORT` | `aiohttp` | `aiohttp` or `httpx` |" in reference
    assert "| `GROQ_API_KEY` | unset | text (a secret: never shown) |" in reference


def test_the_parameters_table_lists_every_parameter_the_router_checks():
    from app.core.params import PARAMS

    table = built("parameters.md")
    assert [name for name in PARAMS if f"| `{name}` |" not in table] == []
    assert "| `temperature` | a number from 0 to 2 |" in table


def test_the_command_reference_shows_every_subcommand_help():
    reference = built("operations/commands.md")
    assert [name for name in COMMANDS if f"### `taskrouter {name}`" not in reference] == []
    assert "usage: taskrouter prune" in reference and "--dry-run" in reference


def test_the_benchmarks_page_lists_every_script_in_bench():
    scripts = sorted(p.name for p in (Path(__file__).resolve().parents[1] / "bench").glob("*.py"))
    page = built("benchmarks/index.md")
    assert scripts and [name for name in scripts if f"| `bench/{name}` |" not in page] == []

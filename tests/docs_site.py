"""The documentation site's pages as they are built: docs/*.md with their generated parts filled in by docs/gen.py,
the hook `mkdocs build` runs."""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

DOCS = Path(__file__).resolve().parents[1] / "docs"


@functools.cache
def generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_gen", DOCS / "gen.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def source(page: str) -> str:
    return (DOCS / page).read_text(encoding="utf-8")


def built(page: str) -> str:
    """The page's Markdown once the hook has filled its generated parts."""
    return generator().fill(source(page))

"""Model names live in app/core/ai_models.py only (data files of the package may hold them too)."""

from __future__ import annotations

import re
from pathlib import Path

import app
from app.core import ai_models

PACKAGE = Path(app.__file__).parent
# The shapes of Groq model ids: vendor/model, or the bare families Groq has served.
MODEL_SHAPE = re.compile(r"""["'](?:[a-z0-9-]+/[a-z0-9.-]+|(?:llama|gemma|mixtral|qwen|deepseek|mistral)[\w.-]*)["']""")


def test_no_module_but_the_registry_names_a_model():
    known = set(ai_models.MODEL_CATALOG) | {m for models in ai_models.MODEL_REGISTRY.values() for m in models}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "core" / "ai_models.py":
            continue
        text = path.read_text()
        for model in known:
            if model in text:
                offenders.append(f"{path.relative_to(PACKAGE)}: {model}")
        offenders += [f"{path.relative_to(PACKAGE)}: {m}" for m in MODEL_SHAPE.findall(text) if "/" not in m]
    assert offenders == []


def test_the_shipped_registry_names_no_retired_model():
    models = {m for models in ai_models.MODEL_REGISTRY.values() for m in models}
    assert not any(m.startswith(("llama-3", "llama3")) for m in models)
    assert {"fast", "reasoning", "summarization", "fallback"} <= set(ai_models.MODEL_REGISTRY)

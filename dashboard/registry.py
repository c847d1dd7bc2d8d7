"""The registry and the settings, as the router sees them now: chains as configured and as effective.

Read at call time (MODEL_REGISTRY may be edited while the dashboard runs). Only model names and override
variable names leave this module: never a settings value such as GROQ_API_KEY.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from app.config import Settings, load_settings
from app.core import ai_models
from app.errors import ConfigError, TaskRouterError
from app.registry.catalog import ModelInfo, load_catalog_file
from app.registry.chain import FALLBACK_KEY, Chain, build_chain
from app.store.overrides import Override

_GOT_VALUE = re.compile(r" \(got .*?\)(?=; |$)")


def current_settings() -> tuple[Settings | None, str | None]:
    """(settings, None) or (None, why). The why names the variables and the rule, never a value: ConfigError
    leaves GROQ_API_KEY out already, but any other value (a base URL with a token in it, say) could be secret."""
    try:
        return load_settings(), None
    except ConfigError as exc:
        return None, _GOT_VALUE.sub("", str(exc))


def registry() -> dict[str, list[str]]:
    return {key: list(models) for key, models in ai_models.MODEL_REGISTRY.items()}


def registry_tasks() -> list[str]:
    """Task types (variants included, `task:variant`), registry order, the shared fallback list last."""
    keys = list(ai_models.MODEL_REGISTRY)
    return [k for k in keys if k != FALLBACK_KEY]


def registry_models() -> list[str]:
    seen: dict[str, None] = {}
    for models in ai_models.MODEL_REGISTRY.values():
        seen.update(dict.fromkeys(models))
    return list(seen)


def models_for_tasks(tasks: tuple[str, ...]) -> list[str]:
    """The models the chains of these task types can reach (variants and the fallback list included)."""
    keys = [k for k in ai_models.MODEL_REGISTRY if k == FALLBACK_KEY or k.partition(":")[0] in tasks]
    return list(dict.fromkeys(m for k in keys for m in ai_models.MODEL_REGISTRY[k]))


def listed_by(model: str) -> list[str]:
    """The registry entries naming `model`; `fallback` means every task reaches it after its own list."""
    return [key for key, models in ai_models.MODEL_REGISTRY.items() if model in models]


@dataclass(frozen=True, slots=True)
class TaskChains:
    task: str
    configured: Chain | None  # MODEL_REGISTRY + the fallback list, no overrides
    effective: Chain | None  # what the router builds now (runtime overrides, FORCE_MODEL, DEFAULT_* applied)
    problem: str | None = None  # a malformed registry entry, as the router would report it


def _chain(key: str, settings: Settings, runtime: Sequence[Override] = ()) -> Chain:
    task, _, variant = key.partition(":")
    return build_chain(task, ai_models.MODEL_REGISTRY, settings, variant=variant or None, runtime=runtime)


def task_chains(settings: Settings, runtime: Sequence[Override] = ()) -> list[TaskChains]:
    """`runtime`: the overrides in effect in the store, which every router applies over its settings."""
    plain = settings.model_copy(update={"force_model": None, "default_models": {}})
    out = []
    for key in registry_tasks():
        try:
            out.append(TaskChains(key, _chain(key, plain), _chain(key, settings, runtime)))
        except TaskRouterError as exc:
            out.append(TaskChains(key, None, None, str(exc)))
    return out


def overrides(settings: Settings) -> tuple[str | None, dict[str, str]]:
    """(FORCE_MODEL, {DEFAULT_<TASK>_MODEL: model}): the settings that change which models are called."""
    return settings.force_model, dict(sorted(settings.default_models.items()))


def catalog(settings: Settings | None) -> tuple[dict[str, ModelInfo], str | None]:
    """(the model catalog as the router reads it, None) or (the shipped catalog, why MODEL_CATALOG_FILE is left
    out): app/core/ai_models.py's, with MODEL_CATALOG_FILE merged over it."""
    shipped = dict(ai_models.MODEL_CATALOG)
    if settings is None or not settings.model_catalog_file:
        return shipped, None
    try:
        return {**shipped, **load_catalog_file(Path(settings.model_catalog_file), shipped)}, None
    except ConfigError as exc:
        return shipped, str(exc)


def strongest(task: str, models: Mapping[str, ModelInfo]) -> str | None:
    """The most expensive priced model of the task's own list (input plus output price per million tokens; the
    first of a tie): what a single-model setup would call for every request. None when none has a price."""
    priced = [m for m in ai_models.MODEL_REGISTRY.get(task, ()) if (info := models.get(m)) is not None and info.priced]

    def price(model: str) -> float:
        info = models[model]
        return (info.input_price or 0.0) + (info.output_price or 0.0)

    return max(priced, key=price, default=None)

"""Which models the registry will actually call, per task, once the overrides are applied.

The radar looks at the effective chains (runtime overrides, FORCE_MODEL, DEFAULT_<TASK>_MODEL, the universal
fallback), built by the same `build_chain` the router uses, so that it can never check a different list than the
one served.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.registry.chain import FALLBACK_KEY, build_chain
from app.store.overrides import DISABLE, FORCE, Override

if TYPE_CHECKING:
    from app.config import Settings

# Roles, in the words the check's table shows.
OVERRIDE = "override"  # DEFAULT_<TASK>_MODEL or a runtime default override
PRIMARY = "primary"  # the task's own MODEL_REGISTRY list
FALLBACK = "fallback"  # MODEL_REGISTRY["fallback"]
FORCED = "forced"  # FORCE_MODEL or a runtime force override
BYPASSED = "bypassed"  # in the registry but not called while a force is in effect
DISABLED = "disabled"  # in the chain but skipped by every router: `taskrouter model disable`


@dataclass(frozen=True, slots=True)
class ChainModel:
    task: str
    model: str
    place: str  # primary | fallback | override | forced | bypassed | disabled: how the chain came to hold it
    position: int  # 1-based order in the task's effective chain; bypassed models continue the count


def registry_tasks(registry: Mapping[str, Sequence[str]]) -> list[str]:
    """The task types (variants included) in registry order. The fallback list is part of every task's chain,
    so it is a task of its own only when it is all the registry has."""
    tasks = [key for key in registry if key != FALLBACK_KEY]
    return tasks or [key for key in registry if key == FALLBACK_KEY]


def task_chain(
    task: str, registry: Mapping[str, Sequence[str]], settings: Settings, runtime: Sequence[Override] = ()
) -> list[ChainModel]:
    """Raises ConfigError for a malformed registry entry, as the router would. `writer:landing` is built as the
    router builds it (task `writer`, variant `landing`), so DEFAULT_WRITER_MODEL applies to it too. `runtime`:
    the overrides in effect (app/store/overrides.py); a disabled model keeps its position, as the router skips it
    there."""
    base, _, variant = task.partition(":")
    chain = build_chain(base, registry, settings, variant or None, runtime)
    off = {o.model for o in runtime if o.kind == DISABLE}
    models = [
        ChainModel(
            task,
            c.model,
            DISABLED if c.model in off else _place(c.model, c.is_fallback, chain.forced, chain.override),
            i,
        )
        for i, c in enumerate(chain.candidates, 1)
    ]
    if chain.forced:
        # The registry still matters: it is what runs again once the force is lifted.
        forced = chain.candidates[0].model
        unforced = build_chain(
            base,
            registry,
            settings.model_copy(update={"force_model": None}),
            variant or None,
            [o for o in runtime if o.kind != FORCE],
        )
        models += [
            ChainModel(task, c.model, DISABLED if c.model in off else BYPASSED, len(models) + i)
            for i, c in enumerate(unforced.candidates, 1)
            if c.model != forced
        ]
    return models


def _place(model: str, is_fallback: bool, forced: bool, override: str | None) -> str:
    if forced:
        return FORCED
    if is_fallback:
        return FALLBACK
    return OVERRIDE if model == override else PRIMARY


def registry_chains(
    registry: Mapping[str, Sequence[str]], settings: Settings, runtime: Sequence[Override] = ()
) -> dict[str, list[ChainModel]]:
    return {task: task_chain(task, registry, settings, runtime) for task in registry_tasks(registry)}


def models_in_use(chains: Mapping[str, Sequence[ChainModel]]) -> dict[str, list[str]]:
    """model -> the tasks whose chain holds it, in first-seen order."""
    tasks: dict[str, list[str]] = {}
    for task, chain in chains.items():
        for item in chain:
            names = tasks.setdefault(item.model, [])
            if task not in names:
                names.append(task)
    return tasks

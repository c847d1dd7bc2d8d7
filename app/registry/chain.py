"""Which models a request tries, in which order: the registry, the overrides, then the universal fallback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from app.errors import ConfigError, UnknownTaskError
from app.store.overrides import DEFAULT, FORCE, Override
from app.types import TIERS

if TYPE_CHECKING:
    from app.config import Settings

FALLBACK_KEY = "fallback"


@dataclass(frozen=True, slots=True)
class EnvOverride:
    """FORCE_MODEL or a DEFAULT_<TASK>_MODEL: set in the environment, changed by a restart."""

    kind: str  # force | default
    task: str | None  # None: every task
    model: str
    source: str  # the variable's name

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def environment_overrides(settings: Settings) -> list[EnvOverride]:
    found = [EnvOverride(FORCE, None, settings.force_model, "FORCE_MODEL")] if settings.force_model else []
    for name, model in sorted(settings.default_models.items()):  # DEFAULT_<TASK>_MODEL
        found.append(EnvOverride(DEFAULT, name.removeprefix("DEFAULT_").removesuffix("_MODEL").lower(), model, name))
    return found


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    is_fallback: bool  # came from the universal fallback list, not the task's own chain
    tier: str | None = None  # came from the task's tier list `<task>:<tier>` (a tiered request)


@dataclass(frozen=True, slots=True)
class Chain:
    task_type: str
    registry_key: str  # "writer:landing" when the variant has its own entry, else the task type
    candidates: tuple[Candidate, ...]
    forced: bool
    override: str | None  # the model a default override (runtime or DEFAULT_<TASK>_MODEL) put first, if any
    # Where the forced or first model came from ("runtime force #12", "FORCE_MODEL", "runtime default #3",
    # "DEFAULT_FAST_MODEL"); None when the registry's order is followed. Logged with every attempt.
    override_source: str | None = None
    tier: str | None = None  # the tier the request starts on; None: not tiered (or the task has no tier lists)
    models: tuple[str, ...] = field(init=False)  # the candidates' models, in order

    def __post_init__(self) -> None:
        object.__setattr__(self, "models", tuple(c.model for c in self.candidates))


def _models(registry: Mapping[str, Sequence[str]], key: str) -> list[str]:
    models = registry.get(key)
    if (
        isinstance(models, str)
        or not isinstance(models, Sequence)
        or not all(isinstance(m, str) and m.strip() for m in models)
    ):
        raise ConfigError(f"MODEL_REGISTRY[{key!r}] must be a list of model names, got {models!r}")
    return list(models)


def tier_keys(task_type: str, tier: str | None, registry: Mapping[str, Sequence[str]]) -> list[str]:
    """The registry keys of a request starting on `tier`: that tier's list and each higher tier's that the task
    has (`<task>:simple`, `<task>:medium`, `<task>:complex`). Empty without a tier, or for a task without tier
    lists: the request then follows the task's own list."""
    if tier is None:
        return []
    return [key for t in TIERS[TIERS.index(tier) :] if (key := f"{task_type}:{t}") in registry]


def has_tiers(task_type: str, registry: Mapping[str, Sequence[str]]) -> bool:
    return any(f"{task_type}:{t}" in registry for t in TIERS)


def registry_key(task_type: str, variant: str | None, registry: Mapping[str, Sequence[str]]) -> str:
    if variant:
        specific = f"{task_type}:{variant}"
        if specific in registry:
            return specific
    if task_type not in registry:
        raise UnknownTaskError(task_type, [k for k in registry if k != FALLBACK_KEY] + [FALLBACK_KEY])
    return task_type


def build_chain(
    task_type: str,
    registry: Mapping[str, Sequence[str]],
    settings: Settings,
    variant: str | None = None,
    runtime: Sequence[Override] = (),
    tier: str | None = None,
) -> Chain:
    """The models a request tries. Precedence, highest first: a runtime force override for this task, one for
    every task, FORCE_MODEL, a runtime default override for this task, DEFAULT_<TASK>_MODEL, the registry. In the
    registry: a tiered request's tier list and the higher tiers' lists, then the task's (or variant's) list, then
    `fallback`, each model once. `runtime`: the overrides in effect (app/store/overrides.py). `tier`: one of TIERS,
    or None."""
    if tier is not None and tier not in TIERS:
        raise ConfigError(f"tier must be one of {', '.join(TIERS)} or 'auto', got {tier!r}")
    if not isinstance(task_type, str) or not task_type:
        raise UnknownTaskError(repr(task_type), list(registry))
    key = registry_key(task_type, variant, registry)
    force = _runtime(runtime, FORCE, task_type) or _runtime(runtime, FORCE, None)
    if force is not None:
        return Chain(
            task_type, key, (Candidate(force.model, False),), forced=True, override=None, override_source=force.source
        )
    if settings.force_model:
        return Chain(
            task_type,
            key,
            (Candidate(settings.force_model, False),),
            forced=True,
            override=None,
            override_source="FORCE_MODEL",
        )
    tiers = tier_keys(task_type, tier, registry)
    default = _runtime(runtime, DEFAULT, task_type)
    override, source = (default.model, default.source) if default is not None else (None, None)
    if override is None:
        override = settings.default_model_for(key) or settings.default_model_for(task_type)
        if override is not None:
            from app.config import task_env_name  # loaded already: settings exist

            source = task_env_name(key if settings.default_model_for(key) else task_type)
    ordered: list[tuple[str, bool, str | None]] = [(override, False, None)] if override else []
    for tier_key in tiers:
        ordered += [(m, False, tier_key.rsplit(":", 1)[1]) for m in _models(registry, tier_key)]
    ordered += [(m, False, None) for m in _models(registry, key)]
    if FALLBACK_KEY in registry:
        ordered += [(m, True, None) for m in _models(registry, FALLBACK_KEY)]
    seen: set[str] = set()
    candidates = []
    for model, is_fallback, its_tier in ordered:
        if model not in seen:
            seen.add(model)
            candidates.append(Candidate(model, is_fallback, its_tier))
    return Chain(
        task_type,
        key,
        tuple(candidates),
        forced=False,
        override=override,
        override_source=source,
        tier=tier if tiers else None,
    )


def _runtime(runtime: Sequence[Override], kind: str, task: str | None) -> Override | None:
    for override in runtime:  # a handful at most
        if override.kind == kind and override.task == task:
            return override
    return None


class ChainCache:
    """Built chains per (task, variant, tier), reused while the registry's lists for them are unchanged.

    The registry is read on every call (editing it takes effect on the next one), so an entry is served only
    after comparing copies of the lists it was built from with the registry's current lists: a list compare,
    not a rebuild. Settings are frozen, so they need no check.
    """

    MAX_ENTRIES = 1024  # variants are caller-supplied strings: never let them grow the cache without bound

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._entries: dict[tuple[str, str | None, str | None], tuple[Chain, Any, Any, tuple[Any, ...]]] = {}
        self._runtime: Sequence[Override] = ()

    def get(
        self,
        task_type: str,
        registry: Mapping[str, Sequence[str]],
        variant: str | None = None,
        runtime: Sequence[Override] = (),
        tier: str | None = None,
    ) -> Chain:
        """`runtime`: the overrides in effect; a new tuple (the refresh makes one when they change) rebuilds."""
        if not isinstance(task_type, str) or not (variant is None or isinstance(variant, str)):
            return build_chain(task_type, registry, self.settings, variant, runtime, tier)  # raises the clear error
        if runtime is not self._runtime:
            self._entries.clear()
            self._runtime = runtime
        entry = self._entries.get((task_type, variant, tier))
        if entry is not None:
            chain, primary, fallback, tiers = entry
            # Without a variant the key is the task itself, whose list was just found unchanged.
            if (
                registry.get(chain.registry_key) == primary
                and registry.get(FALLBACK_KEY) == fallback
                and (variant is None or registry_key(task_type, variant, registry) == chain.registry_key)
                and (tier is None or _tier_lists(task_type, tier, registry) == tiers)
            ):
                return chain
        chain = build_chain(task_type, registry, self.settings, variant, runtime, tier)
        if len(self._entries) >= self.MAX_ENTRIES:
            self._entries.clear()
        self._entries[(task_type, variant, tier)] = (
            chain,
            _snapshot(registry.get(chain.registry_key)),
            _snapshot(registry.get(FALLBACK_KEY)),
            _tier_lists(task_type, tier, registry),
        )
        return chain


def _tier_lists(task_type: str, tier: str | None, registry: Mapping[str, Sequence[str]]) -> tuple[Any, ...]:
    """The tier lists a chain was built from, as (key, copy) pairs: which ones exist, and what they hold."""
    return tuple((key, _snapshot(registry.get(key))) for key in tier_keys(task_type, tier, registry))


def _snapshot(models: Any) -> Any:
    """A copy that compares equal to the registry's value until someone changes that value (in place or not)."""
    return models.copy() if isinstance(models, list) else models

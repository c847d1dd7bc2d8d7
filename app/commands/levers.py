"""Every lever in effect on routing, in one listing for `status`, `check` and `override list`: the runtime overrides
(`taskrouter override`, `taskrouter model disable`) and the environment's (FORCE_MODEL, DEFAULT_<TASK>_MODEL)."""

from __future__ import annotations

from collections.abc import Sequence

from app.registry.chain import EnvOverride
from app.store.overrides import DEFAULT, DISABLE, FORCE, Override
from app.text import plain_terminal

PRECEDENCE = (
    "runtime force (task) > runtime force (every task) > FORCE_MODEL > runtime default > "
    "DEFAULT_<TASK>_MODEL > MODEL_REGISTRY"
)


def disabled(runtime: Sequence[Override]) -> list[Override]:
    return [o for o in runtime if o.kind == DISABLE]


def override_lines(runtime: Sequence[Override], env: Sequence[EnvOverride]) -> list[str]:
    """The force and default overrides in effect, highest precedence first (disables are listed apart)."""
    rank = {(FORCE, True): 0, (FORCE, False): 1, (DEFAULT, True): 3, (DEFAULT, False): 3}
    ranked: list[tuple[int, str]] = [
        (rank[o.kind, o.task is not None], f"#{o.id} {plain_terminal(o.describe())}")
        for o in runtime
        if o.kind != DISABLE
    ]
    for e in env:
        scope = f" for {e.task}" if e.task else " for every task"
        ranked.append(
            (
                2 if e.kind == FORCE else 4,
                f"{e.source}: {e.kind} {plain_terminal(e.model)}{scope} (environment; a restart "
                f"changes it){_shadowed(e, runtime, env)}",
            )
        )
    return [line for _, line in sorted(ranked, key=lambda item: item[0])]


def _shadowed(e: EnvOverride, runtime: Sequence[Override], env: Sequence[EnvOverride]) -> str:
    forces = [o for o in runtime if o.kind == FORCE]
    if any(o.task is None for o in forces) or (e.task and any(o.task == e.task for o in forces)):
        return " (shadowed by a runtime force)"
    if e.kind == DEFAULT and any(other.kind == FORCE for other in env):
        return " (shadowed by FORCE_MODEL)"
    if e.kind == FORCE and forces:
        return f" (except for {', '.join(sorted(str(o.task) for o in forces))}: a runtime force)"
    if e.kind == DEFAULT and any(o.kind == DEFAULT and o.task == e.task for o in runtime):
        return " (shadowed by a runtime default)"
    return ""

"""The demo's fault mix, derived from MODEL_REGISTRY at run time so that it follows registry edits.

Two models get a part to play: one is rate limited (429 with retry-after) and the model right behind it in some
task's chain is decommissioned mid-run, so that the router's fallback, cooldown and deprecation handling
all show up in a few hundred requests. Every model also gets transient 5xx, a log-normal latency tail and
a rare hang (a timeout on the client side).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from app.config import Settings
from app.registry.chain import FALLBACK_KEY, build_chain
from app.simulator import DEFAULT_PROFILES_PATH, ModelProfile, load_profiles
from app.store.overrides import DISABLE, Override

# Per call, on every model. Low enough that three in a row (the router's 60 s server-error cooldown) is rare.
TRANSIENT_5XX = {"server_error": 0.012, "bad_gateway": 0.004, "unavailable": 0.004}
HANG_RATE = 0.002  # a call that never answers: the client's LLM_TIMEOUT_SECONDS ends it
BACKGROUND_RATE_LIMIT = 0.004  # on the rate-limited model, on top of the scripted bursts
BURST_RETRY_AFTER_S = 1  # Groq's retry-after is in whole seconds
DEFAULT_LATENCY_MS = 100.0
DEFAULT_SIGMA = 0.5


@dataclass(frozen=True, slots=True)
class Scenario:
    chains: dict[str, list[str]]  # task -> models in the order the router tries them
    profiles: dict[str, ModelProfile]
    rate_limited: str | None
    retiring: str | None
    retire_after: int | None
    burst_at: tuple[int, ...]  # request indexes at which the rate-limited model answers one 429

    def describe(self) -> list[str]:
        lines = [f"{task}: {' -> '.join(models)}" for task, models in self.chains.items()]
        if self.rate_limited:
            lines.append(f"rate limited: {self.rate_limited} (429 with retry-after, in bursts)")
        if self.retiring:
            lines.append(
                f"decommissioned mid-run: {self.retiring} (400 model_decommissioned from call "
                f"{(self.retire_after or 0) + 1} on)"
            )
        lines.append("every model: transient 5xx (~2%), log-normal latency tail, rare hangs (timeouts)")
        return lines


def task_chains(
    registry: Mapping[str, Sequence[str]], settings: Settings, runtime: Sequence[Override] = ()
) -> dict[str, list[str]]:
    """The models the router will really call for each task (own models, then the universal fallback), the
    `runtime` overrides applied: forces and defaults reorder the chain, and a disabled model is skipped."""
    off = {o.model for o in runtime if o.kind == DISABLE}
    return {
        task: [c.model for c in build_chain(task, registry, settings, runtime=runtime).candidates if c.model not in off]
        for task in registry
        if task != FALLBACK_KEY and ":" not in task
    }


def pick_roles(chains: Mapping[str, Sequence[str]]) -> tuple[str | None, str | None]:
    """(rate_limited, retiring). Prefer a pair where the retiring model sits right behind the rate-limited one
    in some chain (so it receives traffic while the other cools down) and every task keeps a third, live model
    (so the demo shows recoveries rather than a wall of failures)."""
    best: tuple[int, str, str] | None = None
    for chain in chains.values():
        for limited, retiring in itertools.pairwise(chain):
            survives = all(any(m not in (limited, retiring) for m in c) for c in chains.values())
            primary_of = sum(1 for c in chains.values() if c and c[0] == limited)
            score = (2 if survives else 0) + min(primary_of, 1)
            if best is None or score > best[0]:
                best = (score, limited, retiring)
    if best is not None:
        return best[1], best[2]
    models = _unique(chains)
    return (models[0] if models else None), None


def build_scenario(
    registry: Mapping[str, Sequence[str]],
    settings: Settings,
    requests: int,
    mix: Mapping[str, float],
    base_profiles: Mapping[str, ModelProfile] | None = None,
    runtime: Sequence[Override] = (),
) -> Scenario:
    chains = task_chains(registry, settings, runtime)
    base = dict(base_profiles) if base_profiles is not None else _shipped_profiles()
    limited, retiring = pick_roles(chains)
    profiles: dict[str, ModelProfile] = {}
    for rank, model in enumerate(_unique(chains)):
        known = base.get(model)
        rates = {**TRANSIENT_5XX, "hang": HANG_RATE}
        if model == limited:
            rates["rate_limit"] = BACKGROUND_RATE_LIMIT
        profiles[model] = ModelProfile(
            latency_ms=known.latency_ms if known and known.latency_ms > 0 else DEFAULT_LATENCY_MS,
            latency_sigma=max(known.latency_sigma if known else DEFAULT_SIGMA, 0.6),  # a visible p95 tail
            max_completion_tokens=known.max_completion_tokens if known else 65536,
            owned_by=known.owned_by if known else "Groq",
            completion_tokens=160 + 120 * rank,  # bigger models in later positions talk more: costs differ
            fault_rates=rates,
        )
    retire_after = None
    if retiring is not None:
        # The retiring model mostly gets traffic while the rate-limited one cools down; this count puts its
        # decommissioning around the middle of a default run, and early enough in a small one.
        share = sum(w for t, w in mix.items() if retiring in chains.get(t, ()))
        retire_after = max(2, round(requests * share * 0.12))
        profiles[retiring] = dataclasses.replace(
            profiles[retiring], retire_after=retire_after, retire_as="decommissioned"
        )
    bursts = tuple(sorted({max(1, requests // 4), requests * 2 // 3})) if limited else ()
    return Scenario(chains, profiles, limited, retiring, retire_after, bursts)


def _unique(chains: Mapping[str, Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(m for chain in chains.values() for m in chain))


def _shipped_profiles() -> dict[str, ModelProfile]:
    # Latency medians per model are data (the simulator's TOML); the demo only layers its faults on top.
    try:
        return load_profiles(DEFAULT_PROFILES_PATH)
    except (OSError, ValueError):
        return {}

"""How one simulated model behaves, and loading those behaviours from TOML.

Model names live only in TOML files and tests, never here: the package keeps its model knowledge in the
registry, and a project test enforces that.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.simulator.faults import FAULTS
from app.simulator.quality import DEFAULT_NOISE, valid_capability

DEFAULT_PROFILES_PATH: Path = Path(__file__).with_name("default_profiles.toml")

# How a retired model answers: Groq returned 400 model_decommissioned for shutdowns before 2026 and
# 404 model_not_found for the 2026 ones.
RETIRED_KINDS: tuple[str, ...] = ("decommissioned", "not_found")


@dataclass
class ModelProfile:
    """Behaviour of one model. Validated on construction so a typo fails where it is written."""

    active: bool = True
    listed: bool = True
    retired: str | None = None
    retire_after: int | None = None
    retire_as: str = "decommissioned"
    context_window: int = 131072
    max_completion_tokens: int = 65536
    owned_by: str = "Groq"
    created: int = 1754408224
    latency_ms: float = 0.0
    latency_sigma: float = 0.5
    tokens_per_second: float = 0.0
    fault_rates: dict[str, float] = field(default_factory=dict)
    completion_tokens: int = 24
    # The quality model (app/simulator/quality.py): None answers every request acceptably; a number in [0, 1]
    # answers a request of difficulty d acceptably when capability + Normal(0, capability_noise) >= d.
    capability: float | None = None
    capability_noise: float = DEFAULT_NOISE

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError on values the simulator could not act on."""
        if self.retired is not None and self.retired not in RETIRED_KINDS:
            raise ValueError(f"retired must be None or one of {RETIRED_KINDS}, got {self.retired!r}")
        if self.retire_as not in RETIRED_KINDS:
            raise ValueError(f"retire_as must be one of {RETIRED_KINDS}, got {self.retire_as!r}")
        if self.retire_after is not None and self.retire_after < 0:
            raise ValueError("retire_after must be >= 0")
        for name in ("context_window", "max_completion_tokens", "completion_tokens"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        for name in ("latency_ms", "latency_sigma", "tokens_per_second"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"{name} must be a finite number >= 0")
        if not valid_capability(self.capability):
            raise ValueError(f"capability must be None or a number within [0, 1], got {self.capability!r}")
        if not (math.isfinite(self.capability_noise) and self.capability_noise >= 0):
            raise ValueError(f"capability_noise must be a finite number >= 0, got {self.capability_noise!r}")
        for fault, rate in self.fault_rates.items():
            if fault not in FAULTS:
                raise ValueError(f"unknown fault {fault!r} in fault_rates; known: {', '.join(FAULTS)}")
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"fault rate for {fault!r} must be within [0, 1], got {rate}")
        if sum(self.fault_rates.values()) > 1.0 + 1e-9:
            raise ValueError("fault_rates must sum to at most 1")

    def copy(self) -> ModelProfile:
        # The simulator keeps its own copy so that a caller mutating a profile later cannot change a
        # running server's behaviour from another thread half-way through a request.
        return dataclasses.replace(self, fault_rates=dict(self.fault_rates))

    def retired_kind(self, served: int) -> str | None:
        """The retirement in force once `served` requests have been answered, or None when live."""
        if self.retired is not None:
            return self.retired
        if self.retire_after is not None and served >= self.retire_after:
            return self.retire_as
        return None


_FIELDS: dict[str, dataclasses.Field[Any]] = {f.name: f for f in dataclasses.fields(ModelProfile)}


def profile_from_mapping(values: dict[str, Any], where: str = "profile") -> ModelProfile:
    """Build a profile from a TOML table, rejecting unknown keys instead of silently ignoring them."""
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(_FIELDS)}")
    kwargs: dict[str, Any] = dict(values)
    if "fault_rates" in kwargs:
        rates = kwargs["fault_rates"]
        if not isinstance(rates, dict):
            raise ValueError(f"{where}: fault_rates must be a table")
        kwargs["fault_rates"] = {str(k): float(v) for k, v in rates.items()}
    try:
        return ModelProfile(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def _read(path: str | Path) -> dict[str, Any]:
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    unknown = sorted(set(data) - {"default", "models"})
    if unknown:
        raise ValueError(f"{path}: unknown top-level table(s) {', '.join(unknown)}; use [default], [models.X]")
    return data


def load_profiles(path: str | Path = DEFAULT_PROFILES_PATH) -> dict[str, ModelProfile]:
    """The `[models."name"]` tables of a TOML file, in file order."""
    models = _read(path).get("models", {})
    return {name: profile_from_mapping(table, f"{path}: models.{name}") for name, table in models.items()}


def load_default_profile(path: str | Path = DEFAULT_PROFILES_PATH) -> ModelProfile | None:
    """The file's `[default]` table (used for models it does not name), or None when absent."""
    table = _read(path).get("default")
    return None if table is None else profile_from_mapping(table, f"{path}: default")

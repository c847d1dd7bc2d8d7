"""What we know about a model: where it is served, what it costs, how much it takes, what it can do.

The entries themselves live in `app/core/ai_models.py` (MODEL_CATALOG), beside the registry, so that model
names stay in one module. Cost is computed here, exactly, from the usage the provider returned.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from app.errors import ConfigError
from app.types import Usage

CAPABILITIES = ("vision", "tools", "json_mode", "reasoning")


@dataclass(frozen=True, slots=True)
class ModelInfo:
    provider: str = "groq"  # "groq" | "openai_compatible"
    input_price: float | None = None  # USD per million input tokens; None = unknown, never assumed 0
    output_price: float | None = None
    cached_input_price: float | None = None  # None: cached tokens are billed at input_price
    context_window: int | None = None
    max_completion_tokens: int | None = None
    capabilities: frozenset[str] = field(default_factory=frozenset)
    base_url: str | None = None  # for openai_compatible endpoints
    api_key_env: str | None = None  # the variable holding that endpoint's key (the key itself is never stored)
    timeout_seconds: float | None = None  # this model's per-attempt timeout; None: LLM_TIMEOUT_SECONDS

    @property
    def priced(self) -> bool:
        return self.input_price is not None and self.output_price is not None


def cost_usd(info: ModelInfo | None, usage: Usage) -> float | None:
    """Input tokens at the input price (cached ones at the cached price), output tokens (reasoning included,
    as providers bill them) at the output price. None when the price is unknown."""
    if info is None or not info.priced:
        return None
    assert info.input_price is not None and info.output_price is not None
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    cached_price = info.cached_input_price if info.cached_input_price is not None else info.input_price
    dollars_per_million = (
        (usage.prompt_tokens - cached) * info.input_price
        + cached * cached_price
        + usage.completion_tokens * info.output_price
    )
    return dollars_per_million / 1_000_000


_FIELDS: dict[str, type[Any] | tuple[type[Any], ...]] = {
    "provider": str,
    "input_price": (int, float),
    "output_price": (int, float),
    "cached_input_price": (int, float),
    "context_window": int,
    "max_completion_tokens": int,
    "capabilities": list,
    "base_url": str,
    "api_key_env": str,
    "timeout_seconds": (int, float),
}
_PROVIDER_KINDS = ("groq", "openai_compatible")


def load_catalog_file(path: Path, base: Mapping[str, ModelInfo]) -> dict[str, ModelInfo]:
    """Entries of a TOML or JSON file (`[models."name"]` tables), each merged field by field over `base`."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text) if path.suffix.lower() != ".json" else json.loads(text)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"MODEL_CATALOG_FILE {path}: cannot read it: {exc}") from exc
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ConfigError(f'MODEL_CATALOG_FILE {path}: expected a [models."<model name>"] table per model')
    return catalog_entries(models, base, source=f"MODEL_CATALOG_FILE {path}: models")


def catalog_entries(models: Mapping[str, Any], base: Mapping[str, ModelInfo], *, source: str) -> dict[str, ModelInfo]:
    """Entries given as tables of fields (a catalog file's), each merged field by field over `base`. `source`: how
    an error names the table that holds them."""
    merged: dict[str, ModelInfo] = {}
    for name, entry in models.items():
        where = f"{source}.{name!r}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be a table")
        changes: dict[str, Any] = {}
        for key, value in entry.items():
            kind = _FIELDS.get(key)
            if kind is None:
                raise ConfigError(f"{where}: unknown field {key!r}; known: {', '.join(_FIELDS)}")
            if not isinstance(value, kind) or isinstance(value, bool):
                raise ConfigError(f"{where}.{key} has the wrong type: {value!r}")
            if key.endswith("price") and value < 0:
                raise ConfigError(f"{where}.{key} must be >= 0")
            if key == "timeout_seconds" and not 0 < value <= 3600:
                raise ConfigError(f"{where}.timeout_seconds must be a number of seconds in (0, 3600]")
            if key == "capabilities":
                unknown = set(value) - set(CAPABILITIES)
                if unknown:
                    raise ConfigError(f"{where}.capabilities: unknown {sorted(unknown)}; known: {CAPABILITIES}")
                value = frozenset(value)
            if key == "base_url" and "@" in value.split("://", 1)[-1].split("/", 1)[0]:
                # Sent as Basic auth in place of the key, and shown wherever the URL is: the value is not echoed.
                raise ConfigError(
                    f"{where}.base_url must not hold a user or password (user:password@host); put "
                    "the key in the variable api_key_env names"
                )
            if key == "provider" and value not in _PROVIDER_KINDS:
                raise ConfigError(f"{where}.provider must be one of {_PROVIDER_KINDS}")
            changes[key] = float(value) if key.endswith("price") or key == "timeout_seconds" else value
        info = replace(base.get(name, ModelInfo()), **changes)
        if info.provider != "groq" and not info.base_url:
            raise ConfigError(f"{where}: provider {info.provider!r} needs a base_url")
        merged[name] = info
    return merged

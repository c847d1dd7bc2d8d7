"""What we know about a model: where it is served, what it costs, how much it takes, what it can do.

The entries themselves live in `app/core/ai_models.py` (MODEL_CATALOG), beside the registry, so that model
names stay in one module. Cost is computed here, exactly, from the usage the provider returned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from app.core.types import Usage

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

"""The live half of the check: Groq's own model list (GET /openai/v1/models), through the provider layer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.errors import ProviderError
from app.providers import Endpoint, list_models

if TYPE_CHECKING:
    from app.config import Settings

OK = "ok"
SKIPPED = "skipped"
FAILED = "failed"

HOW_TO_ENABLE = (
    "set it (in the environment or .env) to also check that every model is listed and active on GET /openai/v1/models"
)


@dataclass(frozen=True, slots=True)
class LiveModel:
    model: str
    active: bool
    context_window: int | None
    max_completion_tokens: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "listed": True,
            "active": self.active,
            "context_window": self.context_window,
            "max_completion_tokens": self.max_completion_tokens,
        }


@dataclass(frozen=True, slots=True)
class LiveListing:
    status: str  # ok | skipped | failed
    detail: str
    models: dict[str, LiveModel]  # empty unless status is ok
    fatal: bool = False  # a failure that means the key cannot work at all (401/403), not a network hiccup

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "detail": self.detail, "listed": len(self.models)}


async def fetch_listing(settings: Settings) -> LiveListing:
    key = settings.api_key()
    url = f"{settings.groq_base_url}/openai/v1/models"
    if not key:
        return LiveListing(SKIPPED, f"live check skipped: GROQ_API_KEY is not set; {HOW_TO_ENABLE}", {})
    endpoint = Endpoint("groq", settings.groq_base_url, key, settings.http_transport)
    try:  # (the provider closes the clients of a throwaway loop itself when the loop shuts down)
        rows = await list_models(endpoint, settings.llm_timeout_seconds)
    except ProviderError as exc:
        status = f" (status {exc.status_code})" if exc.status_code else ""
        return LiveListing(FAILED, f"GET {url} failed{status}: {exc.message}", {}, fatal=exc.status_code in (401, 403))
    models = {}
    for row in rows:
        model_id = row.get("id")
        if isinstance(model_id, str):
            models[model_id] = LiveModel(
                model_id,
                row.get("active") is not False,
                _int(row.get("context_window")),
                _int(row.get("max_completion_tokens")),
            )
    return LiveListing(OK, f"GET {url}: {len(models)} models listed", models)


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None

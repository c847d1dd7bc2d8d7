"""The Router: what requests share (settings, clock, model health, budget, attempt log, providers, the task tables
and their chains), and the entry points that give each request its owner (`request.py`): `execute` for the whole
answer, `stream` for its text as it is generated."""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from app.clock import SYSTEM_CLOCK, Clock
from app.core.alerts import alerts_from, watch_retirements
from app.core.budget import DailyBudget, budget_from
from app.core.model_health import CIRCUIT_OPEN, ModelHealth
from app.core.request import Request
from app.core.streaming import TaskStream
from app.core.tiers import Learning, SessionTiers
from app.core.validation import Validator
from app.deprecations import DeprecationCalendar, load_calendar, startup_warnings
from app.errors import ConfigError
from app.providers import Endpoint, Provider, prepare_providers, shipped_providers
from app.registry.catalog import ModelInfo, load_catalog_file
from app.registry.chain import Chain, ChainCache
from app.store import AttemptLog, get_attempt_log
from app.store.target import store_target
from app.store.upkeep import watch_retention
from app.types import LLMResponse

if TYPE_CHECKING:
    from app.config import Settings
    from app.core.cache import ResponseCache
    from app.telemetry import Telemetry

logger = logging.getLogger("taskrouter")

RegistrySource = Callable[[], Mapping[str, Sequence[str]]]
CatalogSource = Callable[[], Mapping[str, ModelInfo]]

_NOT_FOR_STREAMS = {
    "validate": "a check of the whole answer cannot take back text already shown; use execute_task",
    "required_fields": "a check of the whole answer cannot take back text already shown; use execute_task",
    "hedge_after_ms": "streams are not hedged (HEDGE_AFTER_MS applies to execute_task only)",
}


class Tables(Protocol):
    """The task registry and the model catalog, read as they are at each request (a table rebound by a test is
    seen): app/core/ai_models.py itself, or `CallableTables` over a Router's own."""

    @property
    def MODEL_REGISTRY(self) -> Mapping[str, Sequence[str]]: ...

    @property
    def MODEL_CATALOG(self) -> Mapping[str, ModelInfo]: ...


class CallableTables:
    """`Router(registry=..., catalog=...)`: the callables, read at each request."""

    def __init__(self, registry: RegistrySource, catalog: CatalogSource) -> None:
        self._registry, self._catalog = registry, catalog

    @property
    def MODEL_REGISTRY(self) -> Mapping[str, Sequence[str]]:
        return self._registry()

    @property
    def MODEL_CATALOG(self) -> Mapping[str, ModelInfo]:
        return self._catalog()


_default_tables: Tables | None = None


def use_default_tables(tables: Tables) -> None:
    """The tables a Router reads when it is given none: app/core/ai_models.py registers itself as it is imported,
    so that the core reads the API layer's registry without importing it (the layers run one way)."""
    global _default_tables
    _default_tables = tables


def _gauges_of(router: weakref.ref[Router]) -> Callable[[], tuple[dict[str, int], tuple[float, float] | None] | None]:
    """A router's gauges for the metrics to read, without keeping the router alive (None once it is gone)."""

    def read() -> tuple[dict[str, int], tuple[float, float] | None] | None:
        alive = router()
        return None if alive is None else alive.gauges()

    return read


class Router:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        registry: RegistrySource | None = None,
        catalog: CatalogSource | None = None,
        providers: Mapping[str, Provider] | None = None,
        clock: Clock = SYSTEM_CLOCK,
        telemetry: Telemetry | None = None,
    ) -> None:
        """A router of its own, beside the process-wide one that execute_task uses. `settings`: default
        load_settings() (the environment and .env). `registry` / `catalog`: callables returning the task -> models
        table and the model catalog, read on every call; default app/core/ai_models.py's. `providers`:
        implementations by provider name ("groq", "openai_compatible") to use instead of the shipped ones, e.g.
        app.testing's scripted models. `clock`: where time is read and waited on (app.testing.FakeClock's in
        tests). `telemetry`: the metrics and spans to report to (app.telemetry.Telemetry); default what the
        settings ask for (METRICS_PORT, PROMETHEUS_METRICS, OPENTELEMETRY), None when nothing is on."""
        if settings is None:
            from app.config import load_settings

            settings = load_settings()
        if registry is None or catalog is None:
            if _default_tables is None:
                raise ConfigError("no task registry: pass registry= and catalog= to Router, or import app first")
            defaults = _default_tables
            self.tables: Tables = (
                defaults
                if registry is catalog is None
                else CallableTables(
                    registry or (lambda: defaults.MODEL_REGISTRY), catalog or (lambda: defaults.MODEL_CATALOG)
                )
            )
        else:
            self.tables = CallableTables(registry, catalog)
        self.settings = settings
        self.clock = clock
        self.providers: dict[str, Provider] = dict(providers or {})
        target = store_target(settings)
        self.log: AttemptLog | None = (
            get_attempt_log(target, exit_seconds=settings.attempt_log_exit_seconds)
            if settings.attempt_logging
            else None
        )
        if self.log is not None:
            # Rollups hourly, pruning too, the response cache's entries kept within their bound.
            watch_retention(
                target,
                settings.attempts_retention_days,
                owner=self,
                cache_max_entries=settings.response_cache_max_entries,
            )
        self.alerts = alerts_from(settings)  # ALERT_WEBHOOK_URL: None when unset
        self.health = ModelHealth(settings, self.log, self.alerts, clock=clock)
        self.calendar: DeprecationCalendar = load_calendar(settings.deprecations_file)
        self.retiring = frozenset(entry.model for entry in self.calendar.entries())  # checked before each call
        tables = self.tables
        # One line per retired or retiring model of the registry, dated by the router's clock.
        startup_warnings(tables.MODEL_REGISTRY, settings, clock.today(), calendar=self.calendar)
        if self.alerts is not None:
            watch_retirements(self.alerts, self.health, lambda: tables.MODEL_REGISTRY, settings, self.calendar)
        self.chains = ChainCache(settings)
        self.sessions = SessionTiers(settings.session_tiers_kept)
        self.learning = Learning(
            enabled=settings.cascade_learn,
            window=settings.cascade_learn_window,
            refused_ratio=settings.cascade_learn_refused_ratio,
        )
        if settings.cascade_learn and self.log is not None:
            # Read on a thread: the build is part of a process's first call, and the log may be long.
            threading.Thread(
                target=self.learning.seed, args=(target, clock.wall()), name="taskrouter-learning", daemon=True
            ).start()
        # RESPONSE_CACHE_TASKS: the response cache, in memory in front of the store (in memory alone without the
        # attempt log, which writes its entries).
        self.cache: ResponseCache | None = None
        if settings.response_cache_tasks:
            from app.core.cache import ResponseCache

            self.cache = ResponseCache(
                store=self.log.store if self.log is not None else None,
                log=self.log,
                memory_entries=settings.response_cache_memory_entries,
                clock=clock,
            )
        self.groq_endpoint = Endpoint("groq", settings.groq_base_url, settings.api_key(), settings.http_transport)
        # Entries from MODEL_CATALOG_FILE, merged over the shipped ones once, here, not per call.
        self.catalog_file: dict[str, ModelInfo] = (
            load_catalog_file(Path(settings.model_catalog_file), tables.MODEL_CATALOG)
            if settings.model_catalog_file
            else {}
        )
        self.budget: DailyBudget | None = budget_from(settings, target, self.log, self.alerts, clock=clock)
        if self.budget is not None:
            self._warn_unpriced(tables.MODEL_REGISTRY)
        # What `import app` leaves out (the SDKs, their TLS context, sqlite-utils) loads here, when a router is
        # built: not inside the first request.
        prepare_providers({"groq", *(info.provider for info in tables.MODEL_CATALOG.values())} - set(self.providers))
        if self.log is not None:
            self.log.prepare()
        # Monitoring: nothing is imported, and a request checks only for None, unless a setting asks for it.
        if telemetry is None and settings.telemetry_wanted():
            from app.telemetry import telemetry_from

            telemetry = telemetry_from(settings)
        self.telemetry: Telemetry | None = telemetry
        if telemetry is not None:
            telemetry.watch(_gauges_of(weakref.ref(self)))

    def gauges(self) -> tuple[dict[str, int], tuple[float, float] | None]:
        """What the metrics read at each collection: every registry model's circuit (0 closed, 1 half-open, 2
        open) and the budget's (spent today, limit), None without one."""
        now = self.clock.wall()
        marks = self.health.marks
        circuits: dict[str, int] = {}
        for models in self.tables.MODEL_REGISTRY.values():
            for model in models:
                state = marks.get(model)
                circuits[model] = 0 if state is None or state.status != CIRCUIT_OPEN else 2 if state.active(now) else 1
        budget = self.budget
        return circuits, None if budget is None else (budget.status()[0], budget.limit)

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Write every attempt row recorded so far, post the alerts queued, and close the connections this loop
        opened to providers. The router stays usable: a later call opens what it needs again."""
        if self.budget is not None:
            self.budget.close()  # a shared budget's unspent lease goes back through the log: before its flush
        if self.log is not None:
            await asyncio.to_thread(self.log.flush, self.settings.attempt_log_exit_seconds)
        self.health.close()
        if self.alerts is not None:
            await asyncio.to_thread(self.alerts.close)
        # Each provider once, by identity: a provider need not be hashable (app.testing's FakeModels is not).
        for provider in {id(p): p for p in (*self.providers.values(), *shipped_providers())}.values():
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def _warn_unpriced(self, registry: Mapping[str, Sequence[str]]) -> None:
        """A model without a price costs $0 to the budget: say so once, rather than let the limit leak silently."""
        unpriced = sorted(
            {
                m
                for models in registry.values()
                for m in models
                if not ((info := self.model_info(m)) is not None and info.priced)
            }
        )
        if unpriced:
            logger.warning(
                "DAILY_BUDGET_USD does not count calls to models without a price: %s. Give them "
                "input_price and output_price in MODEL_CATALOG or MODEL_CATALOG_FILE",
                ", ".join(unpriced),
            )

    def model_info(self, model: str) -> ModelInfo | None:
        return self.catalog_file.get(model) or self.tables.MODEL_CATALOG.get(model)

    def chain_for(self, task_type: str, variant: str | None = None) -> Chain:
        """The models a request for this task would try now, in order (for tools; a request reads its own)."""
        return self.chains.get(task_type, self.tables.MODEL_REGISTRY, variant, self.health.overrides)

    def endpoint_for(self, model: str, info: ModelInfo | None) -> Endpoint:
        if info is not None and info.provider != "groq":
            key = os.environ.get(info.api_key_env) if info.api_key_env else None
            return Endpoint(info.provider, info.base_url or "", key)
        return self.groq_endpoint

    async def execute(
        self,
        task_type: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        variant: str | None = None,
        max_cost_usd: float | None = None,
        validate: Validator | None = None,
        required_fields: Sequence[str] | None = None,
        timeout: float | None = None,
        hedge_after_ms: float | None = None,
        tier: str | None = None,
        session_id: str | None = None,
        cache_ttl: float | None = None,
        started: float | None = None,
        key_name: str | None = None,
        **params: Any,
    ) -> LLMResponse:
        """Run `messages` on the task's chain (execute_task documents the options). `started`: time.perf_counter()
        when the caller's call began, for the deadline to count from; default now. The process-wide router passes
        the moment its execute_* function was called, so that building the router at a process's first call spends
        that call's time rather than adding to it. `key_name`: the gateway's API key the request came with, written
        on its attempt rows."""
        return await Request(
            self,
            task_type,
            messages,
            variant=variant,
            max_cost_usd=max_cost_usd,
            validate=validate,
            required_fields=required_fields,
            timeout=timeout,
            hedge_after_ms=hedge_after_ms,
            tier=tier,
            session_id=session_id,
            cache_ttl=cache_ttl,
            params=params,
            started=started,
            key_name=key_name,
        ).run()

    def stream(
        self,
        task_type: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        variant: str | None = None,
        max_cost_usd: float | None = None,
        timeout: float | None = None,
        tier: str | None = None,
        session_id: str | None = None,
        cache_ttl: float | None = None,
        key_name: str | None = None,
        **params: Any,
    ) -> TaskStream:
        """The answer as it is generated (app/core/streaming.py). Checked now; nothing is sent before the first
        read, and the deadline starts then."""
        for option, why in _NOT_FOR_STREAMS.items():
            if params.pop(option, None):
                raise ConfigError(f"{option}= is not available with streaming: {why}")
        params.pop("stream", None)
        return TaskStream(
            Request(
                self,
                task_type,
                messages,
                variant=variant,
                max_cost_usd=max_cost_usd,
                timeout=timeout,
                hedge_after_ms=0,
                tier=tier,
                session_id=session_id,
                cache_ttl=cache_ttl,
                params=params,
                key_name=key_name,
            )
        )

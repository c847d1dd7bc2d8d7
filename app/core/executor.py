"""The executor: try a task's models in order, move on by the failure's kind (the failure table in
`failures.py`), retry transient failures within the request's deadline, log every attempt."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.core.alerts import alerts_from, watch_retirements
from app.core.budget import BudgetReached, DailyBudget, Reservation, budget_from
from app.core.gates import estimated_cost, needs_of
from app.core.hedge import race
from app.core.messages import inspect_messages
from app.core.model_health import ModelHealth
from app.core.outcomes import Outcomes
from app.core.params import check_params
from app.core.recording import RequestLog, new_request_id
from app.core.request import (
    Answer,
    Request,
    check_options,
    deadline_error,
    final_error,
    ms_since,
    provider_of,
    response,
)
from app.core.retry import MIN_ATTEMPT_SECONDS, Pick, backoff, choose_retry, share_of
from app.core.streaming import TaskStream
from app.core.validation import Validator, rejection
from app.deprecations import DeprecationCalendar, load_calendar, startup_warnings
from app.errors import (
    BudgetExceededError,
    ConfigError,
    ProviderError,
)
from app.providers import Endpoint, Provider, prepare_providers, run_llm, shipped_providers
from app.registry.catalog import ModelInfo, cost_usd, load_catalog_file
from app.registry.chain import Chain, ChainCache
from app.store import AttemptLog, get_attempt_log
from app.store.target import store_target
from app.store.upkeep import watch_retention
from app.types import ErrorKind, LLMResponse, Outcome

if TYPE_CHECKING:
    from app.config import Settings

logger = logging.getLogger("taskrouter")

RegistrySource = Callable[[], Mapping[str, Sequence[str]]]
CatalogSource = Callable[[], Mapping[str, ModelInfo]]

_WAITABLE = (ErrorKind.COOLING_DOWN, ErrorKind.CIRCUIT_OPEN)
_NOT_FOR_STREAMS = {
    "validate": "a check of the whole answer cannot take back text already shown; use execute_task",
    "required_fields": "a check of the whole answer cannot take back text already shown; use execute_task",
    "hedge_after_ms": "streams are not hedged (HEDGE_AFTER_MS applies to execute_task only)",
}


_default_tables: tuple[RegistrySource, CatalogSource] | None = None


def use_default_tables(registry: RegistrySource, catalog: CatalogSource) -> None:
    """The tables a Router reads when it is given none: app/core/ai_models.py registers its own as it is imported,
    so that the core reads the API layer's registry without importing it (the layers run one way)."""
    global _default_tables
    _default_tables = (registry, catalog)


class Router(Outcomes):
    def __init__(self, settings: Settings | None = None, *, registry: RegistrySource | None = None,
                 catalog: CatalogSource | None = None, providers: Mapping[str, Provider] | None = None) -> None:
        """A router of its own, beside the process-wide one that execute_task uses. `settings`: default
        load_settings() (the environment and .env). `registry` / `catalog`: callables returning the task -> models
        table and the model catalog, read on every call; default app/core/ai_models.py's. `providers`:
        implementations by provider name ("groq", "openai_compatible") to use instead of the shipped ones, e.g.
        app.testing's scripted models."""
        if settings is None:
            from app.config import load_settings

            settings = load_settings()
        if registry is None or catalog is None:
            if _default_tables is None:
                raise ConfigError("no task registry: pass registry= and catalog= to Router, or import app first")
            registry = registry or _default_tables[0]
            catalog = catalog or _default_tables[1]
        self.settings = settings
        self.providers: dict[str, Provider] = dict(providers or {})
        target = store_target(settings)
        self.log: AttemptLog | None = (
            get_attempt_log(target, exit_seconds=settings.attempt_log_exit_seconds)
            if settings.attempt_logging else None
        )
        if self.log is not None:
            watch_retention(target, settings.attempts_retention_days, owner=self)  # rollups hourly, pruning too
        self.alerts = alerts_from(settings)  # ALERT_WEBHOOK_URL: None when unset
        self.health = ModelHealth(settings, self.log, self.alerts)
        self.calendar: DeprecationCalendar = load_calendar(settings.deprecations_file)
        startup_warnings(registry(), settings, calendar=self.calendar)  # one line per retired/retiring model
        if self.alerts is not None:
            watch_retirements(self.alerts, self.health, registry, settings, self.calendar)
        self._registry = registry
        self._catalog = catalog
        self._chains = ChainCache(settings)
        self._groq_endpoint = Endpoint("groq", settings.groq_base_url, settings.api_key(), settings.http_transport)
        # Entries from MODEL_CATALOG_FILE, merged over the shipped ones once, here, not per call.
        self._catalog_overrides: dict[str, ModelInfo] = (
            load_catalog_file(Path(settings.model_catalog_file), catalog()) if settings.model_catalog_file else {}
        )
        self.budget: DailyBudget | None = budget_from(settings, target, self.log, self.alerts)
        if self.budget is not None:
            self._warn_unpriced(registry())
        # What `import app` leaves out (the SDKs, their TLS context, sqlite-utils) loads here, when a router is
        # built: not inside the first request.
        prepare_providers({"groq", *(info.provider for info in catalog().values())} - set(self.providers))
        if self.log is not None:
            self.log.prepare()

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
        for provider in {*self.providers.values(), *shipped_providers()}:
            close = getattr(provider, "aclose", None)
            if close is not None:
                await close()

    def _warn_unpriced(self, registry: Mapping[str, Sequence[str]]) -> None:
        """A model without a price costs $0 to the budget: say so once, rather than let the limit leak silently."""
        unpriced = sorted({m for models in registry.values() for m in models
                           if not ((info := self.model_info(m)) is not None and info.priced)})
        if unpriced:
            logger.warning("DAILY_BUDGET_USD does not count calls to models without a price: %s. Give them "
                           "input_price and output_price in MODEL_CATALOG or MODEL_CATALOG_FILE", ", ".join(unpriced))

    def model_info(self, model: str) -> ModelInfo | None:
        return self._catalog_overrides.get(model) or self._catalog().get(model)

    def chain_for(self, task_type: str, variant: str | None = None) -> Chain:
        return self._chains.get(task_type, self._registry(), variant, self.health.overrides)

    def endpoint_for(self, model: str, info: ModelInfo | None) -> Endpoint:
        if info is not None and info.provider != "groq":
            key = os.environ.get(info.api_key_env) if info.api_key_env else None
            return Endpoint(info.provider, info.base_url or "", key)
        return self._groq_endpoint

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
        started: float | None = None,
        **params: Any,
    ) -> LLMResponse:
        """Run `messages` on the task's chain (execute_task documents the options). `started`: time.perf_counter()
        when the caller's call began, for the deadline to count from; default now. The process-wide router passes
        the moment its execute_* function was called, so that building the router at a process's first call spends
        that call's time rather than adding to it."""
        if params.get("stream"):
            raise ConfigError("stream=True is not supported by execute_task, which returns the whole answer: use "
                              "stream_task (or stream_reasoning_task...) to receive the text as it is generated")
        request = self.begin(task_type, messages, variant, max_cost_usd, validate, required_fields, timeout,
                             hedge_after_ms, params, started)
        while (pick := self.next_untried(request) or await self.next_retry(request)) is not None:
            if request.hedge_after is None:
                answer = await self.attempt(request, pick, None if self.budget is None else self.reserve(request, pick))
            else:
                answer = await race(self, request, pick)
            if answer is not None:
                return self.accepted(request, answer)
        raise final_error(request)

    def stream(
        self,
        task_type: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        variant: str | None = None,
        max_cost_usd: float | None = None,
        timeout: float | None = None,
        **params: Any,
    ) -> TaskStream:
        """The answer as it is generated (app/core/streaming.py). Checked now; nothing is sent before the first
        read, and the deadline starts then."""
        for option, why in _NOT_FOR_STREAMS.items():
            if params.pop(option, None):
                raise ConfigError(f"{option}= is not available with streaming: {why}")
        params.pop("stream", None)
        request = self.begin(task_type, messages, variant, max_cost_usd, None, None, timeout, 0, params)
        return TaskStream(self, request)

    def begin(self, task_type: str, messages: Sequence[Mapping[str, Any]], variant: str | None,
              max_cost_usd: float | None, validate: Validator | None, required_fields: Sequence[str] | None,
              timeout: float | None, hedge_after_ms: float | None, params: Mapping[str, Any],
              started: float | None = None) -> Request:
        """Check the request and set up its course; bad input raises here, before any network call. The deadline
        counts from `started` (time.perf_counter() when the caller's call began), default now."""
        now = time.perf_counter()
        if started is None:
            started = now
        elif isinstance(started, bool) or not isinstance(started, int | float) or not started <= now:
            raise ConfigError(f"started must be time.perf_counter() read when the call began (not later, and not "
                              f"time.time()), got {started!r}")
        measured = inspect_messages(messages)
        if not (max_cost_usd is validate is required_fields is timeout is hedge_after_ms is None):
            check_options(max_cost_usd, validate, required_fields, timeout, hedge_after_ms)
        s = self.settings
        self.health.refresh_if_due(time.time())  # marks and runtime overrides, before the chain is chosen
        chain = self.chain_for(task_type, variant)
        if params or variant is not None:
            check_params(params, variant, chain, self.model_info)
        req = RequestLog(request_id=new_request_id(), chain=chain, variant=variant, log=self.log,
                         prompt=json.dumps(messages, default=str) if s.log_content else None,
                         log_content=s.log_content)
        deadline_seconds = float(timeout) if timeout is not None else s.llm_request_deadline_seconds
        hedge_ms = s.hedge_after_ms if hedge_after_ms is None else (hedge_after_ms or None)
        return Request(req=req, chain=chain, deadline=started + deadline_seconds, deadline_seconds=deadline_seconds,
                       max_calls=s.llm_max_attempts, hedge_after=hedge_ms / 1000.0 if hedge_ms else None,
                       messages=messages, params=params, needs=needs_of(messages, params, measured),
                       max_cost_usd=max_cost_usd, validate=validate, required_fields=required_fields)

    def next_untried(self, request: Request) -> Pick | None:
        """The first pass: the chain's next model that passes the checks, or None when the chain is done."""
        req = request.req
        candidates = request.chain.candidates
        while request.index < len(candidates):
            position = request.index + 1
            candidate = candidates[request.index]
            request.index += 1
            info = self.model_info(candidate.model)
            if not request.chain.forced:
                kind = self._skipped(req, position, candidate, info, request.needs, request.max_cost_usd)
                if kind is not None:
                    if kind in _WAITABLE:  # may be free again before the deadline: a retry can wait for it
                        request.retryable[position] = request.pick(position, candidate, info)
                    continue
            if request.calls >= request.max_calls:
                request.not_tried.append(candidate.model)
                continue
            return Pick(position, candidate, info, request.calls_to.get(candidate.model, 0))
        return None

    async def next_retry(self, request: Request) -> Pick | None:
        """After the first pass: the retry to make (after its backoff, slept here), or None to give up."""
        s = self.settings
        if not request.retryable:
            request.stopped = "no model left worth another call"
            return None
        if request.calls >= request.max_calls:
            request.stopped = f"LLM_MAX_ATTEMPTS={request.max_calls} calls spent"
            return None
        now_wall = time.time()
        self.health.refresh_if_due(now_wall)
        states = {p.candidate.model: self.health.mark(p.candidate.model) for p in request.retryable.values()}
        delay = backoff(request.retries, s.retry_backoff_base_seconds, s.retry_backoff_max_seconds)
        chosen = choose_retry(request, states, delay, now_wall, request.chain.forced)
        if chosen is None:
            return None
        pick, wait = chosen
        request.retries += 1
        logger.info("Retrying task_type=%s model=%s retry=%d in %.3fs request_id=%s", request.chain.task_type,
                    pick.candidate.model, pick.retry, wait, request.req.request_id)
        if wait > 0:
            await asyncio.sleep(wait)
        return pick

    def reserve(self, request: Request, pick: Pick) -> Reservation | None:
        if self.budget is None:
            return None
        try:
            return self.budget.reserve(estimated_cost(pick.info, request.needs) or 0.0)
        except BudgetReached as exc:
            req = request.req
            self._skip(req, pick.position, pick.candidate, pick.info, ErrorKind.BUDGET, str(exc))
            raise BudgetExceededError(f"{req.chain.task_type}: {exc}; no provider was called", req.records,
                                      task_type=req.chain.task_type, request_id=req.request_id) from None

    def model_timeout(self, info: ModelInfo | None) -> float:
        """One call's own timeout: the catalog's `timeout_seconds` for this model, else LLM_TIMEOUT_SECONDS."""
        return info.timeout_seconds if info is not None and info.timeout_seconds else self.settings.llm_timeout_seconds

    def start_call(self, request: Request, pick: Pick, reservation: Reservation | None) -> float:
        """Count a call about to be made and return the time it may take (`share_of`); past the deadline, release
        its reservation and raise DeadlineExceededError instead."""
        remaining = request.deadline - time.perf_counter()
        if remaining < MIN_ATTEMPT_SECONDS:
            if reservation is not None and self.budget is not None:
                self.budget.settle(reservation, 0.0)
            raise deadline_error(request)
        request.calls += 1
        request.calls_to[pick.candidate.model] = request.calls_to.get(pick.candidate.model, 0) + 1
        return share_of(request, remaining)

    async def attempt(self, request: Request, pick: Pick, reservation: Reservation | None,
                      lost: dict[asyncio.Task[Any], bool] | None = None) -> Answer | None:
        """One provider call. The answer, or None after logging a failure that lets the request go on.
        `lost`: the hedge race's calls it cancelled: True when the other call answered (logged `hedge_lost`), False
        when the other call's error ended the request."""
        req = request.req
        model, info = pick.candidate.model, pick.info
        model_timeout = self.model_timeout(info)
        attempt_timeout = min(model_timeout, self.start_call(request, pick, reservation))
        if logger.isEnabledFor(logging.INFO):  # most deployments log at WARNING: skip building the arguments
            logger.info("Attempting task_type=%s model=%s attempt=%d retry=%d fallback=%s forced=%s hedged=%s "
                        "request_id=%s", req.chain.task_type, model, pick.position, pick.retry,
                        pick.candidate.is_fallback, req.chain.forced, pick.hedged, req.request_id)
        attempt_started = time.perf_counter()
        cost: float | None = 0.0
        try:
            endpoint = self.endpoint_for(model, info)
            result = await run_llm(endpoint, model, request.messages, request.params, attempt_timeout,
                                   self.providers.get(endpoint.provider) if self.providers else None)
            cost = cost_usd(info, result.usage)
        except ProviderError as error:
            # Less than half its own timeout, cut by the deadline (or by the share it leaves the untried models):
            # the model was not given a fair chance.
            cut = attempt_timeout < 0.5 * model_timeout
            self.failed(request, pick, error, ms_since(attempt_started), cut)
            return None
        except asyncio.CancelledError:
            why = None if lost is None else lost.get(asyncio.current_task())  # type: ignore[arg-type]
            if why and reservation is not None:
                cost = reservation.amount  # the provider may still bill the cancelled call: keep the estimate
            self.health.on_no_verdict(model)
            req.add(pick.position, pick.candidate, Outcome.FAILURE, provider=provider_of(info),
                    kind=ErrorKind.HEDGE_LOST if why else ErrorKind.CANCELLED,
                    message=("cancelled: the other call of this hedged request answered first" if why
                             else "cancelled: the other call's error ended the request" if why is False
                             else "cancelled by the caller"),
                    latency_ms=ms_since(attempt_started), cost=None, retry=pick.retry, hedged=pick.hedged)
            raise
        finally:
            if reservation is not None and self.budget is not None:
                self.budget.settle(reservation, cost)
        answer = Answer(pick, result, provider_of(info), cost, ms_since(attempt_started))
        self.health.on_success(model)
        if request.validate or request.required_fields:
            reason = rejection(response(req, answer, (), 0.0), request.validate, request.required_fields)
            if reason is not None:
                self._rejected(request, answer, reason)
                return None
        return answer

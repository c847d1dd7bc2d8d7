"""The executor: try a task's models in order, move on by the failure's kind, log every attempt."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.config import Settings
from app.core.budget import BudgetReached, DailyBudget, Reservation
from app.core.catalog import ModelInfo, cost_usd, load_catalog_file
from app.core.chain import Candidate, Chain, ChainCache
from app.core.failures import FailureDecision, classify
from app.core.gates import Needs, estimated_cost, needs_of, skip_reason
from app.core.messages import check_messages
from app.core.model_health import ModelHealth
from app.core.recording import RequestLog, new_request_id
from app.core.types import AttemptRecord, ErrorKind, LLMResponse, Outcome
from app.core.validation import Validator, rejection
from app.deprecations import DeprecationCalendar, Retirement, load_calendar, startup_warnings
from app.errors import (
    AllModelsFailedError,
    AuthenticationFailedError,
    BudgetExceededError,
    ConfigError,
    NoCapableModelError,
    ProviderError,
    RequestRejectedError,
)
from app.providers import Endpoint, ProviderResponse, run_llm
from app.store import AttemptLog, get_attempt_log

logger = logging.getLogger("taskrouter")

RegistrySource = Callable[[], Mapping[str, Sequence[str]]]
CatalogSource = Callable[[], Mapping[str, ModelInfo]]

@dataclass(frozen=True, slots=True)
class _Answer:
    """A provider's answer before it is accepted: the LLMResponse is built once, with its final attempts."""

    result: ProviderResponse
    provider: str
    cost_usd: float | None
    latency_ms: float  # this attempt
    total_ms: float  # the request so far


_STATE_KIND = {"deprecated": ErrorKind.DEPRECATED, "not_found": ErrorKind.NOT_FOUND}
_UNSUITABLE = (ErrorKind.CAPABILITY, ErrorKind.CONTEXT_LENGTH, ErrorKind.BUDGET)


class Router:
    def __init__(self, settings: Settings, *, registry: RegistrySource, catalog: CatalogSource) -> None:
        self.settings = settings
        self.log: AttemptLog | None = (
            get_attempt_log(settings.attempts_db_path) if settings.attempt_logging else None
        )
        self.health = ModelHealth(settings, self.log)
        self.calendar: DeprecationCalendar = load_calendar(settings.deprecations_file)
        startup_warnings(registry(), settings, calendar=self.calendar)  # one line per retired/retiring model
        self._registry = registry
        self._catalog = catalog
        self._chains = ChainCache(settings)
        self._groq_endpoint = Endpoint("groq", settings.groq_base_url, settings.api_key(), settings.http_transport)
        # Entries from MODEL_CATALOG_FILE, merged over the shipped ones once, here, not per call.
        self._catalog_overrides: dict[str, ModelInfo] = (
            load_catalog_file(Path(settings.model_catalog_file), catalog()) if settings.model_catalog_file else {}
        )
        self.budget: DailyBudget | None = (
            DailyBudget(settings.daily_budget_usd, settings.budget_alert_ratio,
                        settings.attempts_db_path if settings.attempt_logging else None)
            if settings.daily_budget_usd else None
        )
        if self.budget is not None:
            self._warn_unpriced(registry())

    def _warn_unpriced(self, registry: Mapping[str, Sequence[str]]) -> None:
        """A model without a price costs $0 to the budget: say so once, rather than let the limit leak silently."""
        unpriced = sorted({m for models in registry.values() for m in models
                           if not ((info := self.model_info(m)) is not None and info.priced)})
        if unpriced:
            logger.warning("DAILY_BUDGET_USD does not count calls to models without a price: %s. Give them "
                           "input_price and output_price in MODEL_CATALOG or MODEL_CATALOG_FILE", ", ".join(unpriced))

    def model_info(self, model: str) -> ModelInfo | None:
        return self._catalog_overrides.get(model) or self._catalog().get(model)

    def retirement(self, model: str) -> Retirement | None:
        if model not in self.calendar:  # most models: no clock read, no date built
            return None
        return self.calendar.retirement_for(model, datetime.now(UTC).date())

    def chain_for(self, task_type: str, variant: str | None = None) -> Chain:
        return self._chains.get(task_type, self._registry(), variant)

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
        **params: Any,
    ) -> LLMResponse:
        check_messages(messages)
        _check_options(max_cost_usd, validate, required_fields)
        if params.get("stream"):
            raise ConfigError("stream=True is not supported: execute_task returns the whole answer (and logs its "
                              "tokens and cost); drop `stream`")
        started = time.perf_counter()
        chain = self.chain_for(task_type, variant)
        req = RequestLog(
            new_request_id(), chain, variant, self.log,
            json.dumps(messages, default=str) if self.settings.log_content else None, self.settings.log_content,
        )
        needs = needs_of(messages, params)
        self.health.refresh_if_due(time.time())
        calls = 0
        not_tried: list[str] = []
        for position, candidate in enumerate(chain.candidates, 1):
            info = self.model_info(candidate.model)
            if not chain.forced and self._skipped(req, position, candidate, info, needs, max_cost_usd):
                continue
            if calls >= self.settings.llm_max_attempts:
                not_tried.append(candidate.model)
                continue
            reservation = self._reserve(req, position, candidate, info, needs)
            calls += 1
            answer = await self._attempt(req, position, candidate, info, messages, params, reservation, started)
            if answer is None:
                continue
            reason = (rejection(_response(req, position, candidate, answer, ()), validate, required_fields)
                      if (validate or required_fields) else None)
            if reason is None:
                return self._accepted(req, position, candidate, answer)
            self._rejected(req, position, candidate, answer, reason)
        if calls == 0 and req.records and all(r.error_kind in _UNSUITABLE for r in req.records):
            raise NoCapableModelError(_unsuitable_summary(chain, needs, req), req.records, task_type=task_type,
                                      request_id=req.request_id)
        raise AllModelsFailedError(_summary(chain, calls, not_tried, self.settings), req.records,
                                   task_type=task_type, request_id=req.request_id)

    def _skipped(
        self,
        req: RequestLog,
        position: int,
        candidate: Candidate,
        info: ModelInfo | None,
        needs: Needs,
        max_cost_usd: float | None,
    ) -> bool:
        """Whether to pass this model over without calling it; a skip is logged with its reason."""
        model = candidate.model
        retired = self.retirement(model) if self.settings.skip_retired_models else None
        if retired is not None:
            reason = _retired_reason(retired) + " (SKIP_RETIRED_MODELS=true: not called)"
            return self._skip(req, position, candidate, info, ErrorKind.DEPRECATED, reason)
        state = self.health.blocked(model, time.time())
        if state is not None:
            kind = _STATE_KIND.get(state.status, ErrorKind.COOLING_DOWN)
            return self._skip(req, position, candidate, info, kind, state.describe())
        unsuitable = skip_reason(info, needs, max_cost_usd)
        if unsuitable is not None:
            return self._skip(req, position, candidate, info, *unsuitable)
        return False

    def _skip(self, req: RequestLog, position: int, candidate: Candidate, info: ModelInfo | None,
              kind: ErrorKind, reason: str) -> bool:
        req.add(position, candidate, Outcome.SKIPPED, provider=_provider(info), kind=kind, message=reason)
        logger.info("Skipping task_type=%s model=%s error_kind=%s reason=%s request_id=%s",
                    req.chain.task_type, candidate.model, kind.value, reason, req.request_id)
        return True

    def _reserve(
        self, req: RequestLog, position: int, candidate: Candidate, info: ModelInfo | None, needs: Needs
    ) -> Reservation | None:
        if self.budget is None:
            return None
        try:
            return self.budget.reserve(estimated_cost(info, needs) or 0.0)
        except BudgetReached as exc:
            self._skip(req, position, candidate, info, ErrorKind.BUDGET, str(exc))
            raise BudgetExceededError(f"{req.chain.task_type}: {exc}; no provider was called", req.records,
                                      task_type=req.chain.task_type, request_id=req.request_id) from None

    async def _attempt(
        self,
        req: RequestLog,
        position: int,
        candidate: Candidate,
        info: ModelInfo | None,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        reservation: Reservation | None,
        started: float,
    ) -> _Answer | None:
        """One provider call. The answer, or None after logging a failure that lets the chain go on."""
        model = candidate.model
        logger.info("Attempting task_type=%s model=%s attempt=%d fallback=%s forced=%s request_id=%s",
                    req.chain.task_type, model, position, candidate.is_fallback, req.chain.forced, req.request_id)
        attempt_started = time.perf_counter()
        cost: float | None = 0.0
        try:
            result = await run_llm(self.endpoint_for(model, info), model, messages, params,
                                   self.settings.llm_timeout_seconds)
            cost = cost_usd(info, result.usage)
        except ProviderError as error:
            self._failed(req, position, candidate, info, error, _ms_since(attempt_started))
            return None
        except asyncio.CancelledError:
            req.add(position, candidate, Outcome.FAILURE, provider=_provider(info), kind=ErrorKind.CANCELLED,
                    message="cancelled by the caller", latency_ms=_ms_since(attempt_started))
            raise
        finally:
            if reservation is not None and self.budget is not None:
                self.budget.settle(reservation, cost)
        latency_ms = _ms_since(attempt_started)
        self.health.on_success(model)
        return _Answer(result, _provider(info), cost, latency_ms, _ms_since(started))

    def _accepted(self, req: RequestLog, position: int, candidate: Candidate, answer: _Answer) -> LLMResponse:
        req.add(position, candidate, Outcome.SUCCESS, provider=answer.provider, latency_ms=answer.latency_ms,
                result=answer.result, cost=answer.cost_usd)
        logger.info("Success task_type=%s model=%s tokens=%d latency_ms=%.1f fallback=%s request_id=%s",
                    req.chain.task_type, candidate.model, answer.result.usage.total_tokens, answer.latency_ms,
                    candidate.is_fallback, req.request_id)
        return _response(req, position, candidate, answer, tuple(req.records))

    def _rejected(self, req: RequestLog, position: int, candidate: Candidate, answer: _Answer, reason: str) -> None:
        # The provider billed this answer: the row keeps its tokens and cost.
        req.add(position, candidate, Outcome.FAILURE, provider=answer.provider, kind=ErrorKind.VALIDATION,
                message=reason, latency_ms=answer.latency_ms, result=answer.result, cost=answer.cost_usd)
        logger.warning("Model failure task_type=%s model=%s error_kind=validation status=None request_id=%s: %s",
                       req.chain.task_type, candidate.model, req.request_id, reason)

    def _failed(self, req: RequestLog, position: int, candidate: Candidate, info: ModelInfo | None,
                error: ProviderError, latency_ms: float) -> None:
        decision = classify(error)
        message = error.message
        # Groq answers its 2026 retirements with a plain 404; the calendar tells a retirement from a typo, and
        # for either answer it knows the replacement to name.
        retired = (self.retirement(candidate.model)
                   if decision.kind in (ErrorKind.NOT_FOUND, ErrorKind.DEPRECATED) else None)
        if retired is not None:
            message = f"{error.message} [{_retired_reason(retired)}]"
            decision = FailureDecision(ErrorKind.DEPRECATED, False, "shut down per the deprecation calendar")
            self.health.mark_deprecated(candidate.model, message, time.time())
        else:
            self.health.on_failure(candidate.model, decision.kind, error, time.time())
        # Groq does not bill failed calls; a model without a price stays unknown.
        billed = 0.0 if info is not None and info.priced else None
        req.add(position, candidate, Outcome.FAILURE, provider=_provider(info), kind=decision.kind,
                status=error.status_code, message=message, latency_ms=latency_ms, cost=billed)
        logger.warning("Model failure task_type=%s model=%s error_kind=%s status=%s request_id=%s: %s",
                       req.chain.task_type, candidate.model, decision.kind.value, error.status_code,
                       req.request_id, message)
        if not decision.stop_request:
            return
        task = req.chain.task_type
        if decision.kind is ErrorKind.AUTH and info is not None and info.provider != "groq":
            # Only this endpoint's key was refused; models on other endpoints may still answer.
            logger.error("Key refused by %s for model=%s: check %s", info.base_url, candidate.model,
                         info.api_key_env or "the endpoint's key")
            return
        if decision.kind is ErrorKind.AUTH:
            raise AuthenticationFailedError(
                f"{task}: the provider refused the API key (status {error.status_code}); every model shares it, "
                "so no other model was tried. Check GROQ_API_KEY.",
                req.records, task_type=task, request_id=req.request_id,
            ) from error
        raise RequestRejectedError(
            f"{task}: the request was rejected as invalid ({decision.reason}); it would fail on every model, "
            f"so no other model was tried: {error.message}",
            req.records, task_type=task, request_id=req.request_id,
        ) from error


def _check_options(max_cost_usd: float | None, validate: Validator | None, required_fields: Any) -> None:
    if max_cost_usd is not None and (isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, int | float)
                                     or max_cost_usd <= 0):
        raise ConfigError(f"max_cost_usd must be a positive number of dollars, got {max_cost_usd!r}")
    if validate is not None and not callable(validate):
        raise ConfigError("validate must be a callable taking the response and returning None or a reason")
    if required_fields is not None and (isinstance(required_fields, str) or not all(
        isinstance(f, str) for f in required_fields
    )):
        raise ConfigError(f"required_fields must be a list of field names, got {required_fields!r}")


def _response(req: RequestLog, position: int, candidate: Candidate, answer: _Answer,
              attempts: tuple[AttemptRecord, ...]) -> LLMResponse:
    result = answer.result
    return LLMResponse(
        content=result.content,
        model_used=candidate.model,
        finish_reason=result.finish_reason,
        usage=result.usage,
        task_type=req.chain.task_type,
        request_id=req.request_id,
        fallback_used=position > 1,
        latency_ms=answer.total_ms,
        attempts=attempts,
        provider=answer.provider,
        cost_usd=answer.cost_usd,
        provider_request_id=result.provider_request_id,
        tool_calls=result.tool_calls,
        variant=req.variant,
    )


def _provider(info: ModelInfo | None) -> str:
    return info.provider if info is not None else "groq"


def _retired_reason(retired: Retirement) -> str:
    return (f"{retired.model} was shut down on {retired.shutdown.isoformat()} per the deprecation calendar; "
            f"{retired.suggestion()}")


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _summary(chain: Chain, calls: int, not_tried: list[str], settings: Settings) -> str:
    if chain.forced:
        head = f"{chain.task_type}: FORCE_MODEL={chain.candidates[0].model} failed (no fallback while forced)"
    else:
        head = f"{chain.task_type}: all {len(chain.candidates)} models failed or were skipped"
    if not_tried:
        head += (f"; stopped after {calls} provider calls (LLM_MAX_ATTEMPTS={settings.llm_max_attempts}), "
                 f"not tried: {', '.join(not_tried)}")
    return head


def _unsuitable_summary(chain: Chain, needs: Needs, req: RequestLog) -> str:
    wanted = ", ".join(sorted(needs.capabilities)) or "none"
    considered = ", ".join(r.model for r in req.records)
    return (f"{chain.task_type}: no model in the chain can take this request (needs capabilities: {wanted}; "
            f"estimated prompt: {needs.prompt_tokens} tokens); models considered: {considered}")

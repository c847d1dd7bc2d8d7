"""The executor: try a task's models in order, move on by the failure's kind, log every attempt."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app.config import Settings
from app.core.catalog import ModelInfo, cost_usd
from app.core.chain import Candidate, Chain, build_chain
from app.core.failures import FailureDecision, classify
from app.core.messages import check_messages
from app.core.model_health import ModelHealth
from app.core.types import AttemptRecord, ErrorKind, LLMResponse, Outcome, Usage
from app.deprecations import DeprecationCalendar, Retirement, load_calendar
from app.errors import (
    AllModelsFailedError,
    AuthenticationFailedError,
    ProviderError,
    RequestRejectedError,
)
from app.providers import Endpoint, ProviderResponse, run_llm
from app.store import AttemptLog, AttemptRow, get_attempt_log, utc_now_iso

logger = logging.getLogger("taskrouter")

RegistrySource = Callable[[], Mapping[str, Sequence[str]]]
CatalogSource = Callable[[], Mapping[str, ModelInfo]]

_STATE_KIND = {"deprecated": ErrorKind.DEPRECATED, "not_found": ErrorKind.NOT_FOUND}


@dataclass(slots=True)
class _Request:
    """What every row of one request shares."""

    request_id: str
    chain: Chain
    variant: str | None
    prompt: str | None  # JSON of the messages, only with LOG_CONTENT=true


class Router:
    def __init__(self, settings: Settings, *, registry: RegistrySource, catalog: CatalogSource) -> None:
        self.settings = settings
        self.log: AttemptLog | None = (
            get_attempt_log(settings.attempts_db_path) if settings.attempt_logging else None
        )
        self.health = ModelHealth(settings, self.log)
        self.calendar: DeprecationCalendar = load_calendar(settings.deprecations_file)
        self._registry = registry
        self._catalog = catalog

    def retirement(self, model: str) -> Retirement | None:
        return self.calendar.retirement_for(model, datetime.now(UTC).date())

    def chain_for(self, task_type: str, variant: str | None = None) -> Chain:
        return build_chain(task_type, self._registry(), self.settings, variant)

    def endpoint_for(self, model: str, info: ModelInfo | None) -> Endpoint:
        if info is not None and info.provider != "groq":
            key = os.environ.get(info.api_key_env) if info.api_key_env else None
            return Endpoint(info.provider, info.base_url or "", key)
        return Endpoint("groq", self.settings.groq_base_url, self.settings.api_key())

    async def execute(
        self,
        task_type: str,
        messages: Sequence[Mapping[str, Any]],
        *,
        variant: str | None = None,
        **params: Any,
    ) -> LLMResponse:
        check_messages(messages)
        started = time.perf_counter()
        chain = self.chain_for(task_type, variant)
        catalog = self._catalog()
        request = _Request(
            uuid.uuid4().hex, chain, variant, json.dumps(messages, default=str) if self.settings.log_content else None
        )
        self.health.refresh_if_due(time.time())
        records: list[AttemptRecord] = []
        calls = 0
        not_tried: list[str] = []
        for position, candidate in enumerate(chain.candidates, 1):
            model = candidate.model
            if not chain.forced:
                retired = self.retirement(model) if self.settings.skip_retired_models else None
                if retired is not None:
                    self._skip(request, records, position, candidate, ErrorKind.DEPRECATED,
                               _retired_reason(retired) + " (SKIP_RETIRED_MODELS=true: not called)")
                    continue
                state = self.health.blocked(model, time.time())
                if state is not None:
                    kind = _STATE_KIND.get(state.status, ErrorKind.COOLING_DOWN)
                    self._skip(request, records, position, candidate, kind, state.describe())
                    continue
            if calls >= self.settings.llm_max_attempts:
                not_tried.append(model)
                continue
            calls += 1
            info = catalog.get(model)
            logger.info(
                "Attempting task_type=%s model=%s attempt=%d fallback=%s forced=%s request_id=%s",
                task_type, model, position, candidate.is_fallback, chain.forced, request.request_id,
            )
            attempt_started = time.perf_counter()
            try:
                result = await run_llm(
                    self.endpoint_for(model, info), model, messages, params, self.settings.llm_timeout_seconds
                )
            except ProviderError as error:
                self._failed(request, records, position, candidate, error, _ms_since(attempt_started), info)
                continue
            except asyncio.CancelledError:
                self._record(request, records, position, candidate, Outcome.FAILURE, info=info,
                             kind=ErrorKind.CANCELLED, message="cancelled by the caller",
                             latency_ms=_ms_since(attempt_started))
                raise
            return self._succeeded(request, records, position, candidate, result, _ms_since(attempt_started),
                                   info, started)
        raise AllModelsFailedError(_summary(request.chain, calls, not_tried, self.settings), records,
                                   task_type=task_type)

    def _failed(
        self,
        request: _Request,
        records: list[AttemptRecord],
        position: int,
        candidate: Candidate,
        error: ProviderError,
        latency_ms: float,
        info: ModelInfo | None,
    ) -> None:
        decision = classify(error)
        if decision.kind is ErrorKind.NOT_FOUND:
            # Groq answers its 2026 retirements with a plain 404; the calendar tells a retirement from a typo.
            retired = self.retirement(candidate.model)
            if retired is not None:
                decision = FailureDecision(ErrorKind.DEPRECATED, False, _retired_reason(retired))
                error = replace_message(error, f"{error.message} [{_retired_reason(retired)}]")
        self.health.on_failure(candidate.model, decision.kind, error, time.time())
        self._record(request, records, position, candidate, Outcome.FAILURE, info=info, kind=decision.kind,
                     status=error.status_code, message=error.message, latency_ms=latency_ms)
        logger.warning(
            "Model failure task_type=%s model=%s error_kind=%s status=%s request_id=%s: %s",
            request.chain.task_type, candidate.model, decision.kind.value, error.status_code,
            request.request_id, error.message,
        )
        if decision.stop_request:
            task = request.chain.task_type
            if decision.kind is ErrorKind.AUTH:
                raise AuthenticationFailedError(
                    f"{task}: the provider refused the API key (status {error.status_code}); every model "
                    "shares it, so no other model was tried. Check GROQ_API_KEY.",
                    records, task_type=task,
                ) from error
            raise RequestRejectedError(
                f"{task}: the request was rejected as invalid ({decision.reason}); it would fail on every "
                f"model, so no other model was tried: {error.message}",
                records, task_type=task,
            ) from error

    def _succeeded(
        self,
        request: _Request,
        records: list[AttemptRecord],
        position: int,
        candidate: Candidate,
        result: ProviderResponse,
        latency_ms: float,
        info: ModelInfo | None,
        started: float,
    ) -> LLMResponse:
        self.health.on_success(candidate.model)
        cost = cost_usd(info, result.usage)
        self._record(request, records, position, candidate, Outcome.SUCCESS, info=info, latency_ms=latency_ms,
                     result=result, cost=cost)
        logger.info(
            "Success task_type=%s model=%s tokens=%d latency_ms=%.1f fallback=%s request_id=%s",
            request.chain.task_type, candidate.model, result.usage.total_tokens, latency_ms,
            candidate.is_fallback, request.request_id,
        )
        return LLMResponse(
            content=result.content,
            model_used=candidate.model,
            finish_reason=result.finish_reason,
            usage=result.usage,
            task_type=request.chain.task_type,
            request_id=request.request_id,
            fallback_used=position > 1,
            latency_ms=_ms_since(started),
            attempts=tuple(records),
            provider=info.provider if info else "groq",
            cost_usd=cost,
            provider_request_id=result.provider_request_id,
            tool_calls=result.tool_calls,
            variant=request.variant,
        )

    def _skip(
        self,
        request: _Request,
        records: list[AttemptRecord],
        position: int,
        candidate: Candidate,
        kind: ErrorKind,
        reason: str,
    ) -> None:
        self._record(request, records, position, candidate, Outcome.SKIPPED, kind=kind, message=reason)
        logger.info("Skipping task_type=%s model=%s reason=%s request_id=%s", request.chain.task_type,
                    candidate.model, reason, request.request_id)

    def _record(
        self,
        request: _Request,
        records: list[AttemptRecord],
        position: int,
        candidate: Candidate,
        outcome: Outcome,
        *,
        info: ModelInfo | None = None,
        kind: ErrorKind | None = None,
        status: int | None = None,
        message: str | None = None,
        latency_ms: float | None = None,
        result: ProviderResponse | None = None,
        cost: float | None = None,
    ) -> None:
        provider = info.provider if info else "groq"
        records.append(AttemptRecord(candidate.model, outcome, position, kind, status, message, latency_ms,
                                     candidate.is_fallback, provider))
        if self.log is None:
            return
        usage = result.usage if result else Usage()
        called = outcome is not Outcome.SKIPPED
        self.log.record(AttemptRow(
            request_id=request.request_id,
            task_type=request.chain.task_type,
            model=candidate.model,
            provider=provider,
            attempt=position,
            outcome=outcome.value,
            error_kind=kind.value if kind else None,
            status_code=status,
            error_message=message[:2000] if message else None,
            is_fallback=candidate.is_fallback,
            forced=request.chain.forced,
            prompt_tokens=usage.prompt_tokens if called else None,
            completion_tokens=usage.completion_tokens if called else None,
            total_tokens=usage.total_tokens if called else None,
            latency_ms=latency_ms,
            # A failed call is not billed (Groq does not charge errors); a success with no price is unknown.
            cost_usd=cost if result else (0.0 if called and info and info.priced else None),
            created_at=utc_now_iso(),
            cached_tokens=usage.cached_tokens if result else None,
            reasoning_tokens=usage.reasoning_tokens if result else None,
            variant=request.variant,
            finish_reason=result.finish_reason if result else None,
            provider_request_id=result.provider_request_id if result else None,
            prompt=request.prompt if called else None,
            response=(result.content if result and self.settings.log_content else None),
        ))


def _retired_reason(retired: Retirement) -> str:
    replacement = f"replacement: {retired.replacement}" if retired.replacement else "no replacement named"
    when = retired.shutdown.isoformat()
    return f"{retired.model} was shut down on {when} per the deprecation calendar; {replacement}"


def replace_message(error: ProviderError, message: str) -> ProviderError:
    clone = type(error)(message, status_code=error.status_code, code=error.code, error_type=error.error_type,
                        headers=error.headers)
    clone.__cause__ = error
    return clone


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

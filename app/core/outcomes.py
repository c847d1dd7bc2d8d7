"""What each attempt's outcome does to its request: an answer accepted (or lost to a faster hedge, or rejected by
the caller's checks), a failure handled by the failure table (`failures.py`), a model skipped. A part of `Router`
(its mixin), kept apart so that each module holds one concept."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from app.core.failures import classify, policy
from app.core.gates import Needs, skip_reason
from app.core.model_health import CIRCUIT_OPEN, DEPRECATED, DISABLED, NOT_FOUND
from app.core.recording import RequestLog
from app.core.request import Answer, Request, ms_since, provider_of, response
from app.core.retry import Pick
from app.deprecations import DeprecationCalendar, Retirement
from app.errors import AuthenticationFailedError, ProviderError, RequestRejectedError
from app.registry.catalog import ModelInfo
from app.registry.chain import Candidate
from app.types import ErrorKind, LLMResponse, Outcome

if TYPE_CHECKING:
    from app.config import Settings
    from app.core.model_health import ModelHealth

logger = logging.getLogger("taskrouter")

_STATE_KIND = {DEPRECATED: ErrorKind.DEPRECATED, NOT_FOUND: ErrorKind.NOT_FOUND, CIRCUIT_OPEN: ErrorKind.CIRCUIT_OPEN,
               DISABLED: ErrorKind.DISABLED}


class Outcomes:
    settings: Settings
    health: ModelHealth
    calendar: DeprecationCalendar

    def retirement(self, model: str) -> Retirement | None:
        if model not in self.calendar:  # most models: no clock read, no date built
            return None
        return self.calendar.retirement_for(model, datetime.now(UTC).date())

    def _skipped(
        self,
        req: RequestLog,
        position: int,
        candidate: Candidate,
        info: ModelInfo | None,
        needs: Needs,
        max_cost_usd: float | None,
    ) -> ErrorKind | None:
        """Why to pass this model over without calling it (the skip is logged), or None to call it."""
        model = candidate.model
        retired = self.retirement(model) if self.settings.skip_retired_models else None
        if retired is not None:
            reason = _retired_reason(retired) + " (SKIP_RETIRED_MODELS=true: not called)"
            return self._skip(req, position, candidate, info, ErrorKind.DEPRECATED, reason)
        unsuitable = skip_reason(info, needs, max_cost_usd)
        if unsuitable is not None:
            return self._skip(req, position, candidate, info, *unsuitable)
        # Last: for a half-open breaker this claims the probe, which only a call about to be made should do.
        state = self.health.blocked(model, time.time())
        if state is not None:
            kind = _STATE_KIND.get(state.status, ErrorKind.COOLING_DOWN)
            return self._skip(req, position, candidate, info, kind, state.describe())
        return None

    def _skip(self, req: RequestLog, position: int, candidate: Candidate, info: ModelInfo | None,
              kind: ErrorKind, reason: str) -> ErrorKind:
        req.add(position, candidate, Outcome.SKIPPED, provider=provider_of(info), kind=kind, message=reason)
        logger.info("Skipping task_type=%s model=%s error_kind=%s reason=%s request_id=%s",
                    req.chain.task_type, candidate.model, kind.value, reason, req.request_id)
        return kind

    def accepted(self, request: Request, answer: Answer) -> LLMResponse:
        req, pick = request.req, answer.pick
        req.add(pick.position, pick.candidate, Outcome.SUCCESS, provider=answer.provider,
                latency_ms=answer.latency_ms, result=answer.result, cost=answer.cost_usd, retry=pick.retry,
                hedged=pick.hedged, first_token_ms=answer.first_token_ms)
        if logger.isEnabledFor(logging.INFO):
            logger.info("Success task_type=%s model=%s tokens=%d latency_ms=%.1f fallback=%s retry=%d "
                        "request_id=%s", req.chain.task_type, pick.candidate.model,
                        answer.result.usage.total_tokens, answer.latency_ms, pick.candidate.is_fallback, pick.retry,
                        req.request_id)
        return response(req, answer, tuple(req.records), ms_since(request.started))

    def lost(self, request: Request, answer: Answer) -> None:
        """A hedged call that answered too, after the winner: its tokens and cost were billed, so they are logged."""
        pick = answer.pick
        request.req.add(pick.position, pick.candidate, Outcome.FAILURE, provider=answer.provider,
                        kind=ErrorKind.HEDGE_LOST, message="answered after the other call of this hedged request",
                        latency_ms=answer.latency_ms, result=answer.result, cost=answer.cost_usd, retry=pick.retry,
                        hedged=pick.hedged)

    def _rejected(self, request: Request, answer: Answer, reason: str) -> None:
        # The provider billed this answer: the row keeps its tokens and cost.
        req, pick = request.req, answer.pick
        req.add(pick.position, pick.candidate, Outcome.FAILURE, provider=answer.provider, kind=ErrorKind.VALIDATION,
                message=reason, latency_ms=answer.latency_ms, result=answer.result, cost=answer.cost_usd,
                retry=pick.retry, hedged=pick.hedged)
        logger.warning("Model failure task_type=%s model=%s error_kind=validation status=None request_id=%s: %s",
                       req.chain.task_type, pick.candidate.model, req.request_id, reason)

    def failed(self, request: Request, pick: Pick, error: ProviderError, latency_ms: float, cut: bool) -> None:
        req, model, info = request.req, pick.candidate.model, pick.info
        kind = classify(error)
        message = error.message
        now = time.time()
        if kind is ErrorKind.TIMEOUT and cut:
            kind = ErrorKind.DEADLINE
            message = f"{message} (cut short by the request's deadline of {request.deadline_seconds:g}s)"
        # Groq answers its 2026 retirements with a plain 404; the calendar tells a retirement from a typo, and
        # for either answer it knows the replacement to name.
        retired = self.retirement(model) if kind in (ErrorKind.NOT_FOUND, ErrorKind.DEPRECATED) else None
        if retired is not None:
            message = f"{error.message} [{_retired_reason(retired)}]"
            kind = ErrorKind.DEPRECATED
            self.health.mark_deprecated(model, message, now, req.chain.task_type)
        elif kind is ErrorKind.DEADLINE:
            self.health.on_no_verdict(model)
        else:
            self.health.on_failure(model, kind, error, now, req.request_id, req.chain.task_type)
        rule = policy(kind)
        if rule.retry:
            request.retryable[pick.position] = pick
        # Groq does not bill failed calls; a model without a price stays unknown.
        billed = 0.0 if info is not None and info.priced else None
        req.add(pick.position, pick.candidate, Outcome.FAILURE, provider=provider_of(info), kind=kind,
                status=error.status_code, message=message, latency_ms=latency_ms, cost=billed, retry=pick.retry,
                hedged=pick.hedged)
        logger.warning("Model failure task_type=%s model=%s error_kind=%s status=%s retry=%d request_id=%s: %s",
                       req.chain.task_type, model, kind.value, error.status_code, pick.retry, req.request_id,
                       message)
        if not rule.stop:
            return
        task = req.chain.task_type
        if kind is ErrorKind.AUTH and info is not None and info.provider != "groq":
            # Only this endpoint's key was refused; models on other endpoints may still answer.
            logger.error("Key refused by %s for model=%s: check %s", info.base_url, model,
                         info.api_key_env or "the endpoint's key")
            return
        if kind is ErrorKind.AUTH:
            raise AuthenticationFailedError(
                f"{task}: the provider refused the API key (status {error.status_code}); every model shares it, "
                "so no other model was tried. Check GROQ_API_KEY.",
                req.records, task_type=task, request_id=req.request_id,
            ) from None
        raise RequestRejectedError(
            f"{task}: the request was rejected as invalid ({rule.reason}); it would fail on every model, "
            f"so no other model was tried: {error.message}",
            req.records, task_type=task, request_id=req.request_id,
        ) from None

def _retired_reason(retired: Retirement) -> str:
    return (f"{retired.model} was shut down on {retired.shutdown.isoformat()} per the deprecation calendar; "
            f"{retired.suggestion()}")

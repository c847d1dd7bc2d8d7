"""One request as the executor carries it: its course and what the caller passed (`Request`, one object), a
provider's answer before it is accepted (`Answer`), the response built from it, and the error that ends a request
no model answered."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from app.core.gates import Needs
from app.core.recording import RequestLog
from app.core.retry import MIN_ATTEMPT_SECONDS, Pick, Run
from app.core.validation import Validator
from app.errors import (
    AllModelsFailedError,
    ConfigError,
    DeadlineExceededError,
    NoCapableModelError,
    TaskFailedError,
)
from app.providers import ProviderResponse
from app.registry.catalog import ModelInfo
from app.registry.chain import Chain
from app.types import AttemptRecord, ErrorKind, LLMResponse, Usage, new_response

_UNSUITABLE = (ErrorKind.CAPABILITY, ErrorKind.CONTEXT_LENGTH, ErrorKind.BUDGET)


class Answer(NamedTuple):
    """A provider's answer before it is accepted: the LLMResponse is built once, with its final attempts."""

    pick: Pick
    result: ProviderResponse
    provider: str
    cost_usd: float | None
    latency_ms: float  # this attempt
    first_token_ms: float | None = None  # streamed attempts


class Request(Run):
    """One request (an execute_* or stream_* call): its course through the chain (`Run`) and what the caller
    passed. One object per request, built once: the executor reads it on every step."""

    __slots__ = ("max_cost_usd", "messages", "needs", "params", "req", "required_fields", "validate")

    def __init__(self, *, req: RequestLog, chain: Chain, deadline: float, deadline_seconds: float, max_calls: int,
                 hedge_after: float | None, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                 needs: Needs, max_cost_usd: float | None, validate: Validator | None,
                 required_fields: Sequence[str] | None) -> None:
        Run.__init__(self, chain=chain, deadline=deadline, deadline_seconds=deadline_seconds, max_calls=max_calls,
                     hedge_after=hedge_after)
        self.req = req
        self.messages = messages
        self.params = params
        self.needs = needs
        self.max_cost_usd = max_cost_usd
        self.validate = validate
        self.required_fields = required_fields


def check_options(max_cost_usd: float | None, validate: Validator | None, required_fields: Any,
                  timeout: Any, hedge_after_ms: Any) -> None:
    """The caller's routing options, checked before anything is sent: a bad one names what to fix."""
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, int | float)
                                or not 0 < timeout <= 3600):
        raise ConfigError(f"timeout must be the request's deadline in seconds, in (0, 3600], got {timeout!r}")
    if hedge_after_ms is not None and (isinstance(hedge_after_ms, bool) or not isinstance(hedge_after_ms, int | float)
                                       or not 0 <= hedge_after_ms <= 3_600_000):
        raise ConfigError(f"hedge_after_ms must be milliseconds >= 0 (0 turns hedging off), got {hedge_after_ms!r}")
    if max_cost_usd is not None and (isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, int | float)
                                     or max_cost_usd <= 0):
        raise ConfigError(f"max_cost_usd must be a positive number of dollars, got {max_cost_usd!r}")
    if validate is not None and not callable(validate):
        raise ConfigError("validate must be a callable taking the response and returning None or a reason")
    if required_fields is not None and (isinstance(required_fields, str) or not all(
        isinstance(f, str) for f in required_fields
    )):
        raise ConfigError(f"required_fields must be a list of field names, got {required_fields!r}")


def response(req: RequestLog, answer: Answer, attempts: tuple[AttemptRecord, ...], total_ms: float) -> LLMResponse:
    result, pick = answer.result, answer.pick
    usage = result.usage if type(result.usage) is Usage else Usage.of(result.usage)  # a custom provider's dict
    # Positional, in LLMResponse's field order (content, model_used, finish_reason, usage, task_type, request_id,
    # fallback_used, latency_ms, attempts, provider, cost_usd, provider_request_id, tool_calls, variant).
    return new_response(result.content, pick.candidate.model, result.finish_reason, usage,
                        req.chain.task_type, req.request_id, pick.position > 1, total_ms, attempts, answer.provider,
                        answer.cost_usd, result.provider_request_id, result.tool_calls, req.variant)


def calls_made(request: Request) -> str:
    """How many calls reached a provider, for an error's summary. A call that could not be sent (no key, no client)
    is not one."""
    unsent = sum(1 for r in request.req.records if r.error_kind is ErrorKind.SETUP and r.status_code is None)
    sent = request.calls - unsent
    if sent <= 0:
        return "no provider call was sent"
    text = f"{sent} provider call{'s' if sent > 1 else ''}"
    if request.retries:
        text += f", {request.retries} of them retr{'ies' if request.retries > 1 else 'y'}"
    return text


def deadline_error(request: Request) -> DeadlineExceededError:
    req = request.req
    return DeadlineExceededError(
        f"{req.chain.task_type}: no answer within the request's deadline of {request.deadline_seconds:g}s "
        f"(LLM_REQUEST_DEADLINE_SECONDS or timeout=); {calls_made(request)}",
        req.records, task_type=req.chain.task_type, request_id=req.request_id)


def final_error(request: Request) -> TaskFailedError:
    """The error that ends a request no model answered."""
    req = request.req
    if request.remaining() < MIN_ATTEMPT_SECONDS:
        return deadline_error(request)
    if request.calls == 0 and req.records and all(r.error_kind in _UNSUITABLE for r in req.records):
        return NoCapableModelError(_unsuitable_summary(request.chain, request.needs, req), req.records,
                                   task_type=req.chain.task_type, request_id=req.request_id)
    return AllModelsFailedError(_summary(request), req.records, task_type=req.chain.task_type,
                                request_id=req.request_id)


def _summary(run: Request) -> str:
    chain = run.chain
    if chain.forced:
        head = f"{chain.task_type}: FORCE_MODEL={chain.candidates[0].model} failed (no fallback while forced)"
    else:
        count = len(chain.candidates)
        head = (f"{chain.task_type}: all {count} models failed or were skipped" if count > 1 else
                f"{chain.task_type}: its only model, {chain.candidates[0].model}, failed or was skipped")
    head += f"; {calls_made(run)}"
    if run.not_tried:
        head += f" (LLM_MAX_ATTEMPTS={run.max_calls}), not tried: {', '.join(run.not_tried)}"
    if run.stopped:
        head += f"; stopped retrying: {run.stopped}"
    return head


def _unsuitable_summary(chain: Chain, needs: Needs, req: RequestLog) -> str:
    wanted = ", ".join(sorted(needs.capabilities)) or "none"
    considered = ", ".join(r.model for r in req.records)
    return (f"{chain.task_type}: no model in the chain can take this request (needs capabilities: {wanted}; "
            f"estimated prompt: {needs.prompt_tokens} tokens); models considered: {considered}")


def provider_of(info: ModelInfo | None) -> str:
    return info.provider if info is not None else "groq"


def ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0

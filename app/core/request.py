"""The request's owner: one object per execute_* or stream_* call, from its checks to its answer or its error.

A `Request` holds the request's course (its chain, deadline, calls made and retries to make), decides each step by
the failure table (`failures.py`), holds each call's budget reservation until the call is settled, and records
every outcome (an answer, a skip, a failure, a cancel, a lost hedge, a stream cut short) twice: as an
`AttemptRecord` the caller gets back, and as a row of the attempt log. Nothing else records an outcome.

The Router lends it the services it shares between requests (settings, clock, model health, budget, attempt log,
providers, chains). Streaming (`streaming.py`) and hedging (`hedge.py`) drive calls through the owner's narrow
interface: `next_pick`, `reserve`, `start_call`, `call`, `failed`, `accepted`, `lost`, `interrupted`, `cancelled`,
`settle`, `final_error`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any, NamedTuple

from app.core.budget import BudgetReached
from app.core.failures import classify, policy
from app.core.gates import Needs, Unsuitable, admit, estimated_cost, needs_of
from app.core.hedge import race
from app.core.model_health import CIRCUIT_OPEN, DEPRECATED, DISABLED, NOT_FOUND
from app.core.params import check_params
from app.core.retry import MIN_ATTEMPT_SECONDS, SHARE_WITH_UNTRIED, backoff, choose_retry
from app.core.tiers import cascade_refusal
from app.core.validation import Validator, rejection
from app.deprecations import Retirement
from app.errors import (
    AllModelsFailedError,
    AuthenticationFailedError,
    BudgetExceededError,
    ConfigError,
    DeadlineExceededError,
    NoCapableModelError,
    ProviderConnectionError,
    ProviderError,
    RequestRejectedError,
    StreamInterruptedError,
    TaskFailedError,
)
from app.providers import Endpoint, Provider, ProviderResponse, run_llm
from app.registry.catalog import ModelInfo, cost_usd
from app.registry.chain import Candidate, has_tiers
from app.store import AttemptRow, utc_now_iso
from app.types import TIERS, AttemptRecord, Complexity, ErrorKind, LLMResponse, Outcome, Usage

if TYPE_CHECKING:
    from app.core.budget import Reservation
    from app.core.cache import CachedAnswer
    from app.core.router import Router
    from app.telemetry import RequestTrace

logger = logging.getLogger("taskrouter")

MAX_MESSAGE_CHARS = 2000
_WAITABLE = (ErrorKind.COOLING_DOWN, ErrorKind.CIRCUIT_OPEN)
_UNSUITABLE = (ErrorKind.CAPABILITY, ErrorKind.CONTEXT_LENGTH, ErrorKind.BUDGET)
_STATE_KIND = {
    DEPRECATED: ErrorKind.DEPRECATED,
    NOT_FOUND: ErrorKind.NOT_FOUND,
    CIRCUIT_OPEN: ErrorKind.CIRCUIT_OPEN,
    DISABLED: ErrorKind.DISABLED,
}


class Pick(NamedTuple):
    """One call to make: the candidate, its place in the chain (1-based, skips counted), and how many times this
    request called the model before."""

    position: int
    candidate: Candidate
    info: ModelInfo | None
    retry: int = 0
    hedged: bool = False


class Answer(NamedTuple):
    """A provider's answer before it is accepted: the LLMResponse is built once, with its final attempts."""

    pick: Pick
    result: ProviderResponse
    provider: str
    cost_usd: float | None
    latency_ms: float  # this call
    first_token_ms: float | None = None  # streamed calls


class Request:
    """One execute_* or stream_* call. Built by the Router (`Router.execute`, `Router.stream`); checks what the
    caller passed (a bad value raises here, before any network call) and sets up the course."""

    __slots__ = (
        "baseline",
        "cache_key",
        "cache_ttl",
        "calls",
        "calls_to",
        "chain",
        "clock",
        "complexity",
        "deadline",
        "deadline_seconds",
        "hedge_after",
        "index",
        "infos",
        "key_name",
        "log",
        "log_content",
        "max_calls",
        "max_cost_usd",
        "measured",
        "messages",
        "needs",
        "not_tried",
        "params",
        "prompt",
        "records",
        "request_id",
        "required_fields",
        "retries",
        "retryable",
        "router",
        "session_id",
        "settings",
        "stopped",
        "telemetry",
        "trace",
        "unsuitable",
        "validate",
        "variant",
    )

    def __init__(
        self,
        router: Router,
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
        params: Mapping[str, Any],
        started: float | None = None,
        key_name: str | None = None,
    ) -> None:
        """`started`: the clock's monotonic reading when the caller's call began (the deadline counts from it);
        default now. `tier`, `session_id`, `cache_ttl`: execute_task documents them. `key_name`: the gateway's API
        key the request came with, written on its attempt rows."""
        clock = router.clock
        now = clock.monotonic()
        if started is None:
            started = now
        else:
            real = now if clock.monotonic is time.perf_counter else time.perf_counter()
            if isinstance(started, bool) or not isinstance(started, int | float) or not started <= real:
                raise ConfigError(
                    f"started must be time.perf_counter() read when the call began (not later, and "
                    f"not time.time()), got {started!r}"
                )
            started = now - (real - started)  # the same moment on the router's clock (a test's FakeClock)
        if params and params.get("stream"):
            raise ConfigError(
                "stream=True is not supported by execute_task, which returns the whole answer: use "
                "stream_task (or stream_reasoning_task...) to receive the text as it is generated"
            )
        if not (
            max_cost_usd
            is validate
            is required_fields
            is timeout
            is hedge_after_ms
            is tier
            is session_id
            is cache_ttl
            is None
        ):
            check_options(max_cost_usd, validate, required_fields, timeout, hedge_after_ms, tier, session_id, cache_ttl)
        settings = router.settings
        health = router.health
        health.refresh_if_due(clock.wall())  # marks and runtime overrides, before the chain is chosen
        tables = router.tables
        registry = tables.MODEL_REGISTRY
        needs: Needs | None = None
        self.complexity: Complexity | None = None
        if tier is None and settings.complexity_routing and settings.tasks_in("complexity_routing", task_type):
            tier = "auto"
        if tier is not None:
            needs, tier = self._choose_tier(router, task_type, messages, params, tier, session_id, registry)
        chain = router.chains.get(task_type, registry, variant, health.overrides, tier)
        catalog, extra = tables.MODEL_CATALOG, router.catalog_file
        infos = (
            [extra.get(m) or catalog.get(m) for m in chain.models] if extra else list(map(catalog.get, chain.models))
        )
        self.needs, self.unsuitable = admit(messages, params, infos, max_cost_usd, needs)
        if params or variant is not None:
            check_params(params, variant, chain, router.model_info)
        self.router = router
        self.settings = settings
        self.clock = clock
        self.log = router.log
        self.chain = chain
        self.infos = infos
        self.messages = messages
        self.params = params
        self.variant = variant
        self.key_name = key_name
        self.max_cost_usd = max_cost_usd
        self.validate = validate
        self.required_fields = required_fields
        self.request_id = new_request_id()
        self.log_content = settings.log_content
        self.prompt = json.dumps(messages, default=str) if settings.log_content else None
        self.records: list[AttemptRecord] = []
        self.deadline_seconds = float(timeout) if timeout is not None else settings.llm_request_deadline_seconds
        self.deadline = started + self.deadline_seconds  # on clock.monotonic()
        self.max_calls = settings.llm_max_attempts
        hedge_ms = settings.hedge_after_ms if hedge_after_ms is None else (hedge_after_ms or None)
        self.hedge_after = hedge_ms / 1000.0 if hedge_ms else None  # seconds; None: no hedging
        self.index = 0  # the first pass's next chain position, 0-based
        self.calls = 0
        self.calls_to: dict[str, int] = {}
        # Models worth another call in this request: position -> its Pick (its last transient failure or skip).
        self.retryable: dict[int, Pick] = {}
        self.retries = 0
        self.not_tried: list[str] = []
        self.stopped: str | None = None  # why the retries ended, for the error's summary
        self.session_id = session_id
        self.telemetry = router.telemetry  # None unless monitoring is on (app/telemetry)
        self.trace: RequestTrace | None = None  # what the request's spans are drawn from, once a tracer begins it
        # Spending less: what a tiered or cached request's answers are measured against (the task's own first
        # model), and the response cache's key and time to live for this request (None: not cached).
        self.measured = chain.tier is not None  # whether rows carry saved_usd
        self.baseline = self._baseline(registry, catalog, extra) if self.measured else None
        self.cache_key: str | None = None
        self.cache_ttl = 0.0
        if router.cache is not None and settings.tasks_in("response_cache_tasks", task_type):
            ttl = settings.response_cache_ttl_seconds if cache_ttl is None else float(cache_ttl)
            if ttl > 0 and (
                not params.get("temperature") or settings.tasks_in("response_cache_any_temperature_tasks", task_type)
            ):
                from app.core.cache import cache_key  # cached tasks only

                self.cache_key = cache_key(
                    registry_key=chain.registry_key, tier=chain.tier, messages=messages, params=params
                )
                self.cache_ttl = ttl
                if not self.measured:
                    self.measured, self.baseline = True, self._baseline(registry, catalog, extra)

    @property
    def task_type(self) -> str:
        return self.chain.task_type

    @property
    def started(self) -> float:
        return self.deadline - self.deadline_seconds

    def remaining(self) -> float:
        return self.deadline - self.clock.monotonic()

    def restart_clock(self) -> None:
        """A stream's deadline counts from its first read, not from when it was made."""
        self.deadline = self.clock.monotonic() + self.deadline_seconds

    def _choose_tier(
        self,
        router: Router,
        task_type: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        tier: str,
        session_id: str | None,
        registry: Mapping[str, Sequence[str]],
    ) -> tuple[Needs | None, str | None]:
        """The tier this request starts on: the caller's, or the scorer's for "auto" (the messages checked first),
        raised to the highest tier its session reached. None when the task has no tier lists: "auto" (a call's or
        COMPLEXITY_ROUTING's) then leaves the task's own list in charge."""
        if not isinstance(task_type, str) or not has_tiers(task_type, registry):
            if tier == "auto":
                return None, None
            raise ConfigError(
                f"tier={tier!r}: task {task_type!r} has no tier lists; add MODEL_REGISTRY"
                f'["{task_type}:simple"] (and :medium, :complex) or leave tier= out'
            )
        needs = None
        if tier == "auto":
            from app.core.complexity import score_complexity  # tiered requests only

            needs = needs_of(messages, params)  # the scorer reads checked messages
            settings = router.settings
            self.complexity = score_complexity(
                messages, medium_at=settings.complexity_medium_at, complex_at=settings.complexity_complex_at, **params
            )
            tier = self.complexity.tier
        if session_id is not None:
            tier = router.sessions.at_least(session_id, tier)
        return needs, tier

    def _baseline(
        self, registry: Mapping[str, Sequence[str]], catalog: Mapping[str, ModelInfo], extra: Mapping[str, ModelInfo]
    ) -> ModelInfo | None:
        """The model a saving is measured against: the first of the task's own list (or its variant's)."""
        models = registry.get(self.chain.registry_key) or ()
        first = models[0] if models else None
        return None if first is None else (extra.get(first) or catalog.get(first))

    def saved(self, usage: Usage | None, cost: float | None) -> float | None:
        """What the answer saved against the task's first model for the same tokens (None: not measured, or a
        price unknown)."""
        if not self.measured or usage is None or cost is None:
            return None
        full = cost_usd(self.baseline, usage)
        return None if full is None else full - cost

    # -- the course -------------------------------------------------------------------------------------------

    async def run(self) -> LLMResponse:
        """The whole answer: from the response cache when the task keeps one, else from the chain's models; inside
        the request's span and metrics when monitoring is on."""
        telemetry = self.telemetry
        if telemetry is None:
            return await (self.answer() if self.cache_key is None else self.served())
        if telemetry.tracer is None:
            # Metrics alone: only the end to count.
            try:
                response = await (self.answer() if self.cache_key is None else self.served())
            except BaseException as error:
                telemetry.ended(self, None, error)
                raise
            telemetry.ended(self, response, None)
            return response
        trace = telemetry.begin(self)
        try:
            response = await (self.answer() if self.cache_key is None else self.served())
        except BaseException as error:
            trace.end(self, None, error)
            raise
        trace.end(self, response, None)
        return response

    async def served(self) -> LLMResponse:
        """The whole answer, from the response cache when the task keeps one and holds it."""
        if self.cache_key is None:
            return await self.answer()
        cache = self.router.cache
        assert cache is not None
        hit = await self.cached()
        if hit is not None and (served := self.from_cache(hit)) is not None:
            return served
        # Looked at again, with no await in between: a call that finished during the store's read filled it.
        hit = cache.get_local(self.cache_key)
        if hit is not None and (served := self.from_cache(hit)) is not None:
            return served
        answered, leader = await cache.single_flight(self.cache_key, self.answer)
        if leader:
            return answered
        # Another request with the same key made the call while this one waited: its answer, as a cache hit.
        return self.from_cache(_cached_from(answered, self.clock.wall(), self.cache_ttl)) or await self.answer()

    async def cached(self) -> CachedAnswer | None:
        """The cached answer for this request, if its task keeps a cache and holds one."""
        cache = self.router.cache
        if self.cache_key is None or cache is None:
            return None
        return cache.get_local(self.cache_key) or await cache.get(self.cache_key)

    async def answer(self) -> LLMResponse:
        """The chain's models in order, retries, hedges; the first good answer, or the error."""
        while (pick := self.next_untried() or await self.next_retry()) is not None:
            if self.hedge_after is None:
                answer = await self.call(pick, None if self.router.budget is None else self.reserve(pick))
            else:
                answer = await race(self, pick)
            if answer is not None:
                return self.accepted(answer)
        raise self.final_error()

    async def next_pick(self) -> Pick | None:
        """The next call to make: the chain's next usable model, else a retry (after its backoff), else None."""
        return self.next_untried() or await self.next_retry()

    def next_untried(self) -> Pick | None:
        """The first pass: the chain's next model that passes the checks, or None when the chain is done."""
        candidates = self.chain.candidates
        while self.index < len(candidates):
            i = self.index
            self.index += 1
            candidate, info = candidates[i], self.infos[i]
            if not self.chain.forced:
                kind = self._skipped(i + 1, candidate, info, self.unsuitable[i])
                if kind is not None:
                    if kind in _WAITABLE:  # may be free again before the deadline: a retry can wait for it
                        self.retryable[i + 1] = self.pick(i + 1, candidate, info)
                    continue
            if self.calls >= self.max_calls:
                self.not_tried.append(candidate.model)
                continue
            return Pick(i + 1, candidate, info, self.calls_to.get(candidate.model, 0))
        return None

    async def next_retry(self) -> Pick | None:
        """After the first pass: the retry to make (after its backoff, slept here), or None to give up."""
        if not self.retryable:
            self.stopped = "no model left worth another call"
            return None
        if self.calls >= self.max_calls:
            self.stopped = f"LLM_MAX_ATTEMPTS={self.max_calls} calls spent"
            return None
        settings, health = self.settings, self.router.health
        now_wall = self.clock.wall()
        health.refresh_if_due(now_wall)
        states = {p.candidate.model: health.mark(p.candidate.model) for p in self.retryable.values()}
        delay = backoff(self.retries, settings.retry_backoff_base_seconds, settings.retry_backoff_max_seconds)
        chosen, why = choose_retry(
            self.retryable,
            self.calls_to,
            states,
            delay,
            now_wall,
            self.chain.forced,
            self.remaining(),
            self.deadline_seconds,
        )
        if chosen is None:
            self.stopped = why
            return None
        pick, wait = chosen
        self.retries += 1
        logger.info(
            "Retrying task_type=%s model=%s retry=%d in %.3fs request_id=%s",
            self.chain.task_type,
            pick.candidate.model,
            pick.retry,
            wait,
            self.request_id,
        )
        if wait > 0:
            await self.clock.sleep(wait)
        return pick

    def pick(self, position: int, candidate: Candidate, info: ModelInfo | None, hedged: bool = False) -> Pick:
        return Pick(position, candidate, info, self.calls_to.get(candidate.model, 0), hedged)

    def hedge_partner(self, first: Pick) -> Pick | None:
        """The hedge beside a slow call: the chain's next usable model, else the same model again (a second call
        often lands on another server), within LLM_MAX_ATTEMPTS."""
        pick = self.next_untried()
        if pick is not None:
            return pick._replace(hedged=True)
        if self.calls >= self.max_calls:
            return None
        return self.pick(first.position, first.candidate, first.info, hedged=True)

    # -- one call ---------------------------------------------------------------------------------------------

    def reserve(self, pick: Pick) -> Reservation | None:
        """The budget's hold on this call's estimated cost (None without DAILY_BUDGET_USD). A budget that is
        spent ends the request: BudgetExceededError, after logging the skip."""
        budget = self.router.budget
        if budget is None:
            return None
        try:
            return budget.reserve(estimated_cost(pick.info, self.needs) or 0.0)
        except BudgetReached as exc:
            self._skip(pick.position, pick.candidate, pick.info, ErrorKind.BUDGET, str(exc))
            raise BudgetExceededError(
                f"{self.chain.task_type}: {exc}; no provider was called",
                self.records,
                task_type=self.chain.task_type,
                request_id=self.request_id,
            ) from None

    def settle(self, reservation: Reservation | None, cost: float | None) -> None:
        """Give the budget the call's real cost (None: unknown) in place of its estimate."""
        budget = self.router.budget
        if reservation is not None and budget is not None:
            budget.settle(reservation, cost)

    def model_timeout(self, info: ModelInfo | None) -> float:
        """One call's own timeout: the catalog's `timeout_seconds` for this model, else LLM_TIMEOUT_SECONDS."""
        return (
            info.timeout_seconds if info is not None and info.timeout_seconds else (self.settings.llm_timeout_seconds)
        )

    def start_call(self, pick: Pick, reservation: Reservation | None) -> float:
        """Count a call about to be made and return the time it may take; past the deadline, release its
        reservation and raise DeadlineExceededError instead. While untried models remain, a call may take only
        SHARE_WITH_UNTRIED of the time left, so that a hung model leaves the next one a real chance."""
        remaining = self.deadline - self.clock.monotonic()
        if remaining < MIN_ATTEMPT_SECONDS:
            self.settle(reservation, 0.0)
            raise self.deadline_error()
        self.calls += 1
        self.calls_to[pick.candidate.model] = self.calls_to.get(pick.candidate.model, 0) + 1
        return remaining * SHARE_WITH_UNTRIED if self.index < len(self.chain.candidates) else remaining

    def own_provider(self, endpoint: Endpoint) -> Provider | None:
        """The router's own implementation for the endpoint's provider (Router(providers=...)), else None: the
        shipped one."""
        providers = self.router.providers
        return providers.get(endpoint.provider) if providers else None

    def answered(self, pick: Pick) -> None:
        """The model answered: what its health needs to know (a half-open breaker closes)."""
        health = self.router.health
        if pick.candidate.model in health.failing:  # most answers: nothing to update
            health.on_success(pick.candidate.model)

    def endpoint(self, pick: Pick) -> Endpoint:
        info = pick.info
        if info is None or info.provider == "groq":
            return self.router.groq_endpoint
        key = os.environ.get(info.api_key_env) if info.api_key_env else None
        return Endpoint(info.provider, info.base_url or "", key)

    async def call(
        self, pick: Pick, reservation: Reservation | None, lost: dict[asyncio.Task[Any], bool] | None = None
    ) -> Answer | None:
        """One provider call. The answer, or None after logging a failure that lets the request go on.
        `lost`: the hedge race's calls it cancelled: True when the other call answered (logged `hedge_lost`), False
        when the other call's error ended the request."""
        model, info = pick.candidate.model, pick.info
        model_timeout = self.model_timeout(info)
        timeout = min(model_timeout, self.start_call(pick, reservation))
        if logger.isEnabledFor(logging.INFO):  # most deployments log at WARNING: skip building the arguments
            logger.info(
                "Attempting task_type=%s model=%s attempt=%d retry=%d fallback=%s forced=%s hedged=%s request_id=%s",
                self.chain.task_type,
                model,
                pick.position,
                pick.retry,
                pick.candidate.is_fallback,
                self.chain.forced,
                pick.hedged,
                self.request_id,
            )
        monotonic = self.clock.monotonic
        call_started = monotonic()
        cost: float | None = 0.0
        try:
            endpoint = self.endpoint(pick)
            result = await run_llm(endpoint, model, self.messages, self.params, timeout, self.own_provider(endpoint))
            cost = cost_usd(info, result.usage)
        except ProviderError as error:
            # Less than half its own timeout, cut by the deadline (or by the share it leaves the untried models):
            # the model was not given a fair chance.
            self.failed(pick, error, (monotonic() - call_started) * 1000.0, cut=timeout < 0.5 * model_timeout)
            return None
        except asyncio.CancelledError:
            why = None if lost is None else lost.get(asyncio.current_task())  # type: ignore[arg-type]
            if why and reservation is not None:
                cost = reservation.amount  # the provider may still bill the cancelled call: keep the estimate
            self.router.health.on_no_verdict(model)
            self.record(
                pick,
                Outcome.FAILURE,
                provider=_provider_of(info),
                kind=ErrorKind.HEDGE_LOST if why else ErrorKind.CANCELLED,
                message=(
                    "cancelled: the other call of this hedged request answered first"
                    if why
                    else "cancelled: the other call's error ended the request"
                    if why is False
                    else "cancelled by the caller"
                ),
                latency_ms=(monotonic() - call_started) * 1000.0,
                cost=None,
            )
            raise
        finally:
            if reservation is not None:
                self.settle(reservation, cost)
        answer = Answer(pick, result, _provider_of(info), cost, (monotonic() - call_started) * 1000.0)
        self.answered(pick)
        if self.validate or self.required_fields:
            reason = rejection(self.response(answer, ()), self.validate, self.required_fields)
            if reason is not None:
                self.rejected(answer, reason, ErrorKind.VALIDATION)
                if pick.candidate.tier is not None:
                    self.escalates(pick)  # a tiered request moves to the next tier
                return None
        if pick.candidate.tier is not None and (reason := cascade_refusal(result)) is not None and self.escalates(pick):
            self.rejected(answer, reason, ErrorKind.REFUSED)
            return None
        return answer

    def escalates(self, pick: Pick) -> bool:
        """A tiered request moves past the rest of `pick`'s tier: True when a model of a higher tier, or of the
        task's own list, is left to try (the cascade refuses an answer only then)."""
        tier, candidates = pick.candidate.tier, self.chain.candidates
        if tier is None:
            return self.index < len(candidates)
        while self.index < len(candidates) and candidates[self.index].tier == tier:
            self.index += 1
        return self.index < len(candidates)

    # -- outcomes ---------------------------------------------------------------------------------------------

    def accepted(self, answer: Answer) -> LLMResponse:
        pick = answer.pick
        self.record(
            pick,
            Outcome.SUCCESS,
            provider=answer.provider,
            latency_ms=answer.latency_ms,
            result=answer.result,
            cost=answer.cost_usd,
            first_token_ms=answer.first_token_ms,
        )
        tier = pick.candidate.tier
        if tier is not None:
            router = self.router
            router.learning.answered(self.chain.task_type, tier, pick.candidate.model, refused=False)
            if self.session_id is not None:
                router.sessions.reached(self.session_id, tier)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                "Success task_type=%s model=%s tokens=%d latency_ms=%.1f fallback=%s retry=%d request_id=%s",
                self.chain.task_type,
                pick.candidate.model,
                answer.result.usage.total_tokens,
                answer.latency_ms,
                pick.candidate.is_fallback,
                pick.retry,
                self.request_id,
            )
        response = self.response(answer, tuple(self.records))
        if self.cache_key is not None and self.router.cache is not None:
            self.router.cache.put(
                self.cache_key,
                _cached_from(response, self.clock.wall(), self.cache_ttl),
                task_type=self.chain.task_type,
            )
        return response

    def from_cache(self, hit: CachedAnswer) -> LLMResponse | None:
        """The response served from the cache, logged as a `cache_hit` row with the cost it saved; None when the
        caller's own checks (validate=, required_fields=) refuse it, for the models to answer instead."""
        pick = Pick(1, Candidate(hit.model, False, hit.tier), None)
        result = ProviderResponse(hit.content, hit.finish_reason, hit.usage, hit.provider_request_id, hit.tool_calls)
        answer = Answer(pick, result, hit.provider, 0.0, (self.clock.monotonic() - self.started) * 1000.0)
        if (self.validate or self.required_fields) and rejection(
            self.response(answer, (), cached=True), self.validate, self.required_fields
        ) is not None:
            return None
        self.record(
            pick,
            Outcome.CACHE_HIT,
            provider=hit.provider,
            latency_ms=answer.latency_ms,
            cost=0.0,
            saved_usd=hit.cost_usd,
            message="answered from the response cache",
        )
        assert self.router.cache is not None and self.cache_key is not None
        self.router.cache.hit(self.cache_key, hit.cost_usd)
        return self.response(answer, tuple(self.records), cached=True)

    def lost(self, answer: Answer) -> None:
        """A hedged call that answered too, after the winner: its tokens and cost were billed, so they are logged."""
        self.record(
            answer.pick,
            Outcome.FAILURE,
            provider=answer.provider,
            kind=ErrorKind.HEDGE_LOST,
            message="answered after the other call of this hedged request",
            latency_ms=answer.latency_ms,
            result=answer.result,
            cost=answer.cost_usd,
        )

    def rejected(self, answer: Answer, reason: str, kind: ErrorKind) -> None:
        """An answer refused by the caller's checks (`validation`) or a tiered request's cascade (`refused`)."""
        # The provider billed this answer: the row keeps its tokens and cost.
        pick = answer.pick
        self.record(
            pick,
            Outcome.FAILURE,
            provider=answer.provider,
            kind=kind,
            message=reason,
            latency_ms=answer.latency_ms,
            result=answer.result,
            cost=answer.cost_usd,
        )
        if pick.candidate.tier is not None:
            self.router.learning.answered(self.chain.task_type, pick.candidate.tier, pick.candidate.model, refused=True)
        logger.warning(
            "Model failure task_type=%s model=%s error_kind=%s status=None request_id=%s: %s",
            self.chain.task_type,
            pick.candidate.model,
            kind.value,
            self.request_id,
            reason,
        )

    def failed(
        self, pick: Pick, error: ProviderError, latency_ms: float, *, cut: bool, first_token_ms: float | None = None
    ) -> None:
        """A failed call, decided by the failure table: the model's mark, a retry to keep, or the request's end
        (AuthenticationFailedError, RequestRejectedError) when every model would fail the same way."""
        model, info, health = pick.candidate.model, pick.info, self.router.health
        kind = classify(error)
        message = error.message
        now = self.clock.wall()
        if kind is ErrorKind.TIMEOUT and cut:
            kind = ErrorKind.DEADLINE
            message = f"{message} (cut short by the request's deadline of {self.deadline_seconds:g}s)"
        # Groq answers its 2026 retirements with a plain 404; the calendar tells a retirement from a typo, and
        # for either answer it knows the replacement to name.
        retired = self.retirement(model) if kind in (ErrorKind.NOT_FOUND, ErrorKind.DEPRECATED) else None
        if retired is not None:
            message = f"{error.message} [{_retired_reason(retired)}]"
            kind = ErrorKind.DEPRECATED
            health.mark_deprecated(model, message, now, self.chain.task_type)
        elif kind is ErrorKind.DEADLINE:
            health.on_no_verdict(model)
        else:
            health.on_failure(model, kind, error, now, self.request_id, self.chain.task_type)
        rule = policy(kind)
        if rule.retry:
            self.retryable[pick.position] = pick
        # Groq does not bill failed calls; a model without a price stays unknown.
        billed = 0.0 if info is not None and info.priced else None
        self.record(
            pick,
            Outcome.FAILURE,
            provider=_provider_of(info),
            kind=kind,
            status=error.status_code,
            message=message,
            latency_ms=latency_ms,
            cost=billed,
            first_token_ms=first_token_ms,
        )
        logger.warning(
            "Model failure task_type=%s model=%s error_kind=%s status=%s retry=%d request_id=%s: %s",
            self.chain.task_type,
            model,
            kind.value,
            error.status_code,
            pick.retry,
            self.request_id,
            message,
        )
        if not rule.stop:
            return
        task = self.chain.task_type
        if kind is ErrorKind.AUTH and info is not None and info.provider != "groq":
            # Only this endpoint's key was refused; models on other endpoints may still answer.
            logger.error(
                "Key refused by %s for model=%s: check %s",
                info.base_url,
                model,
                info.api_key_env or "the endpoint's key",
            )
            return
        if kind is ErrorKind.AUTH:
            raise AuthenticationFailedError(
                f"{task}: the provider refused the API key (status {error.status_code}); every model shares it, "
                "so no other model was tried. Check GROQ_API_KEY.",
                self.records,
                task_type=task,
                request_id=self.request_id,
            ) from None
        raise RequestRejectedError(
            f"{task}: the request was rejected as invalid ({rule.reason}); it would fail on every model, "
            f"so no other model was tried: {error.message}",
            self.records,
            task_type=task,
            request_id=self.request_id,
        ) from None

    def interrupted(
        self,
        pick: Pick,
        *,
        reason: str,
        error: ProviderError | None,
        partial: ProviderResponse,
        cost: float | None,
        latency_ms: float,
        first_token_ms: float | None,
        chunks: int,
    ) -> StreamInterruptedError:
        """A stream that failed after its first token: logged `stream_interrupted`; returns the error that ends the
        request (StreamInterruptedError, with the text already shown)."""
        model = pick.candidate.model
        message = (
            f"stream interrupted after {chunks} chunk(s) of text: {reason} (tokens counted from the chunks received)"
        )
        self.router.health.on_failure(
            model,
            ErrorKind.STREAM_INTERRUPTED,
            error or ProviderConnectionError(reason),
            self.clock.wall(),
            self.request_id,
        )
        self.record(
            pick,
            Outcome.FAILURE,
            provider=_provider_of(pick.info),
            kind=ErrorKind.STREAM_INTERRUPTED,
            status=error.status_code if error else None,
            message=message,
            latency_ms=latency_ms,
            result=partial,
            cost=cost,
            first_token_ms=first_token_ms,
        )
        logger.warning(
            "Stream interrupted task_type=%s model=%s request_id=%s: %s",
            self.chain.task_type,
            model,
            self.request_id,
            reason,
        )
        return StreamInterruptedError(
            f"{self.chain.task_type}: the stream from {model} stopped after its first token ({reason}); the text "
            "already shown is in .partial_content. Not moved to another model: the user would see two different "
            "answers",
            self.records,
            task_type=self.chain.task_type,
            request_id=self.request_id,
            partial_content=partial.content or "",
        )

    def cancelled(
        self,
        pick: Pick,
        *,
        message: str,
        partial: ProviderResponse | None,
        cost: float | None,
        latency_ms: float,
        first_token_ms: float | None,
    ) -> None:
        """A call closed or cancelled by the caller: no verdict on the model; the tokens seen may be billed."""
        self.router.health.on_no_verdict(pick.candidate.model)
        self.record(
            pick,
            Outcome.FAILURE,
            provider=_provider_of(pick.info),
            kind=ErrorKind.CANCELLED,
            message=message,
            latency_ms=latency_ms,
            result=partial,
            cost=cost,
            first_token_ms=first_token_ms,
        )

    def retirement(self, model: str) -> Retirement | None:
        router = self.router
        if model not in router.retiring:  # most models: no date built
            return None
        return router.calendar.retirement_for(model, self.clock.today())

    def _skipped(
        self, position: int, candidate: Candidate, info: ModelInfo | None, unsuitable: Unsuitable | None
    ) -> ErrorKind | None:
        """Why to pass this model over without calling it (the skip is logged), or None to call it."""
        model = candidate.model
        router = self.router
        if model in router.retiring and self.settings.skip_retired_models:
            retired = self.retirement(model)
            if retired is not None:
                reason = _retired_reason(retired) + " (SKIP_RETIRED_MODELS=true: not called)"
                return self._skip(position, candidate, info, ErrorKind.DEPRECATED, reason)
        if unsuitable is not None:
            return self._skip(position, candidate, info, *unsuitable)
        if candidate.tier is not None and router.learning.enabled:
            learned = router.learning.too_often_refused(self.chain.task_type, candidate.tier, model)
            if learned is not None:
                return self._skip(position, candidate, info, ErrorKind.REFUSED, learned)
        # Last: for a half-open breaker this claims the probe, which only a call about to be made should do.
        health = router.health
        if model not in health.marks and model not in health.disabled:  # most models, most of the time
            return None
        state = health.blocked(model, self.clock.wall())
        if state is not None:
            return self._skip(
                position, candidate, info, _STATE_KIND.get(state.status, ErrorKind.COOLING_DOWN), state.describe()
            )
        return None

    def _skip(
        self, position: int, candidate: Candidate, info: ModelInfo | None, kind: ErrorKind, reason: str
    ) -> ErrorKind:
        self.record(
            Pick(position, candidate, info), Outcome.SKIPPED, provider=_provider_of(info), kind=kind, message=reason
        )
        logger.info(
            "Skipping task_type=%s model=%s error_kind=%s reason=%s request_id=%s",
            self.chain.task_type,
            candidate.model,
            kind.value,
            reason,
            self.request_id,
        )
        return kind

    # -- records ----------------------------------------------------------------------------------------------

    def record(
        self,
        pick: Pick,
        outcome: Outcome,
        *,
        provider: str,
        kind: ErrorKind | None = None,
        status: int | None = None,
        message: str | None = None,
        latency_ms: float | None = None,
        result: ProviderResponse | None = None,
        cost: float | None = None,
        first_token_ms: float | None = None,
        saved_usd: float | None = None,
    ) -> None:
        """One outcome: the caller's AttemptRecord, and the attempt log's row. `cost` is what the call was billed:
        None when the price is unknown, 0.0 for an unbilled failure."""
        candidate = pick.candidate
        self.records.append(
            _record(
                model=candidate.model,
                outcome=outcome,
                attempt=pick.position,
                error_kind=kind,
                status_code=status,
                message=message,
                latency_ms=latency_ms,
                is_fallback=candidate.is_fallback,
                provider=provider,
                retry=pick.retry,
            )
        )
        if self.telemetry is not None:
            self.telemetry.attempt(
                self,
                pick,
                outcome,
                provider=provider,
                kind=kind,
                status=status,
                message=message,
                latency_ms=latency_ms,
                result=result,
                cost=cost,
                first_token_ms=first_token_ms,
                saved_usd=saved_usd,
            )
        log = self.log
        if log is None:
            return
        chain = self.chain
        # Positional, in AttemptRow's column order (tests/test_hot_path.py checks each column by name): a hot-path
        # trick kept because the row built by name costs more than 5 % of the router's own work (bench/RESULTS.md).
        if result is None:
            called = outcome is not Outcome.SKIPPED
            zero = 0 if called else None
            log.record(
                _new_row(
                    (
                        self.request_id,
                        chain.task_type,
                        candidate.model,
                        provider,
                        pick.position,
                        outcome.value,
                        kind.value if kind else None,
                        status,
                        message[:MAX_MESSAGE_CHARS] if message else None,
                        int(candidate.is_fallback),
                        int(chain.forced),
                        zero,
                        zero,
                        zero,
                        latency_ms,
                        cost,
                        utc_now_iso(),
                        None,
                        None,
                        self.variant,
                        None,
                        None,
                        self.prompt if called else None,
                        None,
                        pick.retry,
                        int(pick.hedged),
                        first_token_ms,
                        chain.override_source,
                        candidate.tier,
                        saved_usd,
                        self.key_name,
                    )
                )
            )
            return
        usage = result.usage
        log.record(
            _new_row(
                (
                    self.request_id,
                    chain.task_type,
                    candidate.model,
                    provider,
                    pick.position,
                    outcome.value,
                    kind.value if kind else None,
                    status,
                    message[:MAX_MESSAGE_CHARS] if message else None,
                    int(candidate.is_fallback),
                    int(chain.forced),
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.total_tokens,
                    latency_ms,
                    cost,
                    utc_now_iso(),
                    usage.cached_tokens,
                    usage.reasoning_tokens,
                    self.variant,
                    result.finish_reason,
                    result.provider_request_id,
                    self.prompt,
                    result.content if self.log_content else None,
                    pick.retry,
                    int(pick.hedged),
                    first_token_ms,
                    chain.override_source,
                    candidate.tier,
                    saved_usd if saved_usd is not None or not self.measured else self.saved(usage, cost),
                    self.key_name,
                )
            )
        )

    def response(self, answer: Answer, attempts: tuple[AttemptRecord, ...], *, cached: bool = False) -> LLMResponse:
        result, pick = answer.result, answer.pick
        usage = result.usage if type(result.usage) is Usage else Usage.of(result.usage)  # a custom provider's dict
        return _response(
            content=result.content,
            model_used=pick.candidate.model,
            finish_reason=result.finish_reason,
            usage=usage,
            task_type=self.chain.task_type,
            request_id=self.request_id,
            fallback_used=pick.position > 1,
            latency_ms=(self.clock.monotonic() - self.started) * 1000.0,
            attempts=attempts,
            provider=answer.provider,
            cost_usd=answer.cost_usd,
            provider_request_id=result.provider_request_id,
            tool_calls=result.tool_calls,
            variant=self.variant,
            tier=pick.candidate.tier,
            complexity=self.complexity,
            cached=cached,
        )

    # -- the end of a request no model answered ---------------------------------------------------------------

    def calls_made(self) -> str:
        """How many calls reached a provider, for an error's summary. A call that could not be sent (no key, no
        client) is not one."""
        unsent = sum(1 for r in self.records if r.error_kind is ErrorKind.SETUP and r.status_code is None)
        sent = self.calls - unsent
        if sent <= 0:
            return "no provider call was sent"
        text = f"{sent} provider call{'s' if sent > 1 else ''}"
        if self.retries:
            text += f", {self.retries} of them retr{'ies' if self.retries > 1 else 'y'}"
        return text

    def deadline_error(self) -> DeadlineExceededError:
        task = self.chain.task_type
        return DeadlineExceededError(
            f"{task}: no answer within the request's deadline of {self.deadline_seconds:g}s "
            f"(LLM_REQUEST_DEADLINE_SECONDS or timeout=); {self.calls_made()}",
            self.records,
            task_type=task,
            request_id=self.request_id,
        )

    def final_error(self) -> TaskFailedError:
        """The error that ends a request no model answered."""
        task = self.chain.task_type
        if self.remaining() < MIN_ATTEMPT_SECONDS:
            return self.deadline_error()
        if self.calls == 0 and self.records and all(r.error_kind in _UNSUITABLE for r in self.records):
            return NoCapableModelError(
                self._unsuitable_summary(), self.records, task_type=task, request_id=self.request_id
            )
        return AllModelsFailedError(self._summary(), self.records, task_type=task, request_id=self.request_id)

    def _summary(self) -> str:
        chain = self.chain
        if chain.forced:
            head = f"{chain.task_type}: FORCE_MODEL={chain.candidates[0].model} failed (no fallback while forced)"
        else:
            count = len(chain.candidates)
            head = (
                f"{chain.task_type}: all {count} models failed or were skipped"
                if count > 1
                else f"{chain.task_type}: its only model, {chain.candidates[0].model}, failed or was skipped"
            )
        head += f"; {self.calls_made()}"
        if self.not_tried:
            head += f" (LLM_MAX_ATTEMPTS={self.max_calls}), not tried: {', '.join(self.not_tried)}"
        if self.stopped:
            head += f"; stopped retrying: {self.stopped}"
        return head

    def _unsuitable_summary(self) -> str:
        needs: Needs = self.needs
        wanted = ", ".join(sorted(needs.capabilities)) or "none"
        considered = ", ".join(r.model for r in self.records)
        return (
            f"{self.chain.task_type}: no model in the chain can take this request (needs capabilities: "
            f"{wanted}; estimated prompt: {needs.prompt_tokens} tokens); models considered: {considered}"
        )


def check_options(
    max_cost_usd: float | None,
    validate: Validator | None,
    required_fields: Any,
    timeout: Any,
    hedge_after_ms: Any,
    tier: Any = None,
    session_id: Any = None,
    cache_ttl: Any = None,
) -> None:
    """The caller's routing options, checked before anything is sent: a bad one names what to fix."""
    if tier is not None and tier != "auto" and tier not in TIERS:
        raise ConfigError(f"tier must be 'auto' or one of {', '.join(TIERS)}, got {tier!r}")
    if session_id is not None and (not isinstance(session_id, str) or not session_id or len(session_id) > 200):
        raise ConfigError(f"session_id must be a non-empty string of at most 200 characters, got {session_id!r}")
    if cache_ttl is not None and (
        isinstance(cache_ttl, bool) or not isinstance(cache_ttl, int | float) or not 0 <= cache_ttl <= 365 * 86_400
    ):
        raise ConfigError(f"cache_ttl must be seconds >= 0 (0: not cached), got {cache_ttl!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600
    ):
        raise ConfigError(f"timeout must be the request's deadline in seconds, in (0, 3600], got {timeout!r}")
    if hedge_after_ms is not None and (
        isinstance(hedge_after_ms, bool)
        or not isinstance(hedge_after_ms, int | float)
        or not 0 <= hedge_after_ms <= 3_600_000
    ):
        raise ConfigError(f"hedge_after_ms must be milliseconds >= 0 (0 turns hedging off), got {hedge_after_ms!r}")
    if max_cost_usd is not None and (
        isinstance(max_cost_usd, bool) or not isinstance(max_cost_usd, int | float) or max_cost_usd <= 0
    ):
        raise ConfigError(f"max_cost_usd must be a positive number of dollars, got {max_cost_usd!r}")
    if validate is not None and not callable(validate):
        raise ConfigError("validate must be a callable taking the response and returning None or a reason")
    if required_fields is not None and (
        isinstance(required_fields, str) or not all(isinstance(f, str) for f in required_fields)
    ):
        raise ConfigError(f"required_fields must be a list of field names, got {required_fields!r}")


def _cached_from(response: LLMResponse, now: float, ttl: float) -> CachedAnswer:
    from app.core.cache import CachedAnswer

    return CachedAnswer(
        content=response.content,
        finish_reason=response.finish_reason,
        usage=response.usage,
        tool_calls=response.tool_calls,
        model=response.model_used,
        provider=response.provider,
        cost_usd=response.cost_usd,
        provider_request_id=response.provider_request_id,
        tier=response.tier,
        created_at=now,
        expires_at=now + ttl,
    )


def _provider_of(info: ModelInfo | None) -> str:
    return info.provider if info is not None else "groq"


def _retired_reason(retired: Retirement) -> str:
    return (
        f"{retired.model} was shut down on {retired.shutdown.isoformat()} per the deprecation calendar; "
        f"{retired.suggestion()}"
    )


class _RequestIds:
    """32 hex digits like a uuid4's, as a random per-process prefix and a counter: cheaper than uuid4, and ids that
    sort by time within a process, so the attempt log's request_id index grows at its end instead of splitting
    pages at random."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)  # a forked child must not repeat its parent's ids

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds().next


# The owner builds one record per outcome and one response per answer. By field name, through the slots' own
# setters: the frozen dataclasses' constructors (a method call per field, __post_init__) cost the router more than
# 5 % of its own work per call (bench/RESULTS.md, "Named construction"). tests/test_hot_path.py holds each builder
# to its class's constructor.
def _slot_setters(cls: type, names: Sequence[str]) -> tuple[Callable[[object, Any], None], ...]:
    """The slots' setters of `cls`, for `names`, which must be its fields in order: a field added to the class
    and not here stops the import rather than leave a column unset."""
    declared = [f.name for f in fields(cls)]
    if list(names) != declared:
        raise TypeError(f"the builder of {cls.__name__} sets {list(names)}; its fields are {declared}")
    return tuple(cls.__dict__[name].__set__ for name in names)


_new = object.__new__
_new_row = AttemptRow._make
(
    _r_model,
    _r_outcome,
    _r_attempt,
    _r_error_kind,
    _r_status_code,
    _r_message,
    _r_latency_ms,
    _r_is_fallback,
    _r_provider,
    _r_retry,
) = _slot_setters(
    AttemptRecord,
    (
        "model",
        "outcome",
        "attempt",
        "error_kind",
        "status_code",
        "message",
        "latency_ms",
        "is_fallback",
        "provider",
        "retry",
    ),
)


def _record(
    *,
    model: str,
    outcome: Outcome,
    attempt: int,
    error_kind: ErrorKind | None,
    status_code: int | None,
    message: str | None,
    latency_ms: float | None,
    is_fallback: bool,
    provider: str,
    retry: int,
) -> AttemptRecord:
    record = _new(AttemptRecord)
    _r_model(record, model)
    _r_outcome(record, outcome)
    _r_attempt(record, attempt)
    _r_error_kind(record, error_kind)
    _r_status_code(record, status_code)
    _r_message(record, message)
    _r_latency_ms(record, latency_ms)
    _r_is_fallback(record, is_fallback)
    _r_provider(record, provider)
    _r_retry(record, retry)
    return record


(
    _a_content,
    _a_model_used,
    _a_finish_reason,
    _a_usage,
    _a_task_type,
    _a_request_id,
    _a_fallback_used,
    _a_latency_ms,
    _a_attempts,
    _a_provider,
    _a_cost_usd,
    _a_provider_request_id,
    _a_tool_calls,
    _a_variant,
    _a_tier,
    _a_complexity,
    _a_cached,
) = _slot_setters(
    LLMResponse,
    (
        "content",
        "model_used",
        "finish_reason",
        "usage",
        "task_type",
        "request_id",
        "fallback_used",
        "latency_ms",
        "attempts",
        "provider",
        "cost_usd",
        "provider_request_id",
        "tool_calls",
        "variant",
        "tier",
        "complexity",
        "cached",
    ),
)


def _response(
    *,
    content: str | None,
    model_used: str,
    finish_reason: str | None,
    usage: Usage,
    task_type: str,
    request_id: str,
    fallback_used: bool,
    latency_ms: float,
    attempts: tuple[AttemptRecord, ...],
    provider: str,
    cost_usd: float | None,
    provider_request_id: str | None,
    tool_calls: tuple[dict[str, Any], ...] | None,
    variant: str | None,
    tier: str | None,
    complexity: Complexity | None,
    cached: bool,
) -> LLMResponse:
    response = _new(LLMResponse)
    _a_content(response, content)
    _a_model_used(response, model_used)
    _a_finish_reason(response, finish_reason)
    _a_usage(response, usage)
    _a_task_type(response, task_type)
    _a_request_id(response, request_id)
    _a_fallback_used(response, fallback_used)
    _a_latency_ms(response, latency_ms)
    _a_attempts(response, attempts)
    _a_provider(response, provider)
    _a_cost_usd(response, cost_usd)
    _a_provider_request_id(response, provider_request_id)
    _a_tool_calls(response, tool_calls)
    _a_variant(response, variant)
    _a_tier(response, tier)
    _a_complexity(response, complexity)
    _a_cached(response, cached)
    return response

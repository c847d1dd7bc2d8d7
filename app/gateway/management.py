"""Seed 003's model-management API under /api: what models there are and how they are doing, a probe of one, the
models to use for a task, and the runtime levers the CLI has (force, default, disable, enable, end, clear).

Reads need the key the chat path needs; every lever needs an admin key, and its audit row names that key (who) and
"gateway" (via), where the CLI's rows name the operator and "cli". The levers write through the same store
functions as `taskrouter override` and `taskrouter model` (app/store/overrides.py); the worker that took the change
applies it before answering, every other worker and host at its next refresh (MODEL_STATUS_REFRESH_SECONDS).

Errors are OpenAI's error object with what to fix: 400 for a bad value, 404 for a model, task or override that
does not exist, so that one client library reads every error of the gateway the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from app import Router
from app.clock import iso_from_epoch, iso_millis
from app.core.failures import classify
from app.core.model_health import CIRCUIT_OPEN
from app.core.request import new_request_id
from app.errors import ProviderError, ProviderTimeout
from app.gateway.auth import NO_AUTH
from app.gateway.errors import INVALID_REQUEST, ErrorReply
from app.providers import run_llm
from app.registry.catalog import ModelInfo, cost_usd
from app.registry.chain import FALLBACK_KEY, environment_overrides
from app.store import AttemptRow, StoreProblem, open_database
from app.store.dialect import is_store_error
from app.store.overrides import DEFAULT, DISABLE, FORCE, Override, clear_overrides, end_override, set_override
from app.store.target import store_target
from app.store.usage import Usage, read_usage
from app.types import ErrorKind, Outcome

Caller = Callable[..., Awaitable[str]]  # a FastAPI dependency: the caller's name, or it raises/answers 401/403

PROBE_TASK = "probe"  # the task_type of a health check's row in the attempt log
PROBE_SECONDS = 4.5  # a health check answers within 5 s: the call gets this, the rest is the gateway's
PROBE_MESSAGES = ({"role": "user", "content": "ping"},)
MAX_USAGE_DAYS = 366
MAX_TTL_SECONDS = 366 * 86_400
RECOMMENDATION_DAYS = 7  # the observed success, latency and cost recommendations weigh
COST_PREFERENCES = ("cheapest", "balanced", "quality")
VIA = "gateway"
STORE_UNAVAILABLE = "the gateway cannot use its store just now (its log says why); nothing was changed: try again soon"

logger = logging.getLogger("taskrouter")


class Refused(Exception):
    """A request the management API answers with an error in OpenAI's shape."""

    def __init__(self, reply: ErrorReply) -> None:
        super().__init__(reply.message)
        self.reply = reply


def bad_value(param: str, message: str) -> Refused:
    return Refused(ErrorReply(400, INVALID_REQUEST, "invalid_parameter", message, param))


def not_found(param: str | None, code: str, message: str) -> Refused:
    return Refused(ErrorReply(404, INVALID_REQUEST, code, message, param))


class _OpenAIErrors(APIRoute):
    """FastAPI's own validation errors (a wrong type, a missing field) and our refusals, in OpenAI's error shape
    with status 400/404 instead of FastAPI's 422 detail list."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            try:
                return await handler(request)
            except RequestValidationError as exc:
                reply = _validation_reply(exc)
            except Refused as exc:
                reply = exc.reply
            except Exception as exc:
                if not (isinstance(exc, StoreProblem) or is_store_error(exc)):
                    raise
                # The problem's words name the file or the server: the operator's log has them, the client not.
                logger.warning("Management API: the store cannot be used: %s", exc)
                reply = ErrorReply(503, "server_error", "store_unavailable", STORE_UNAVAILABLE)
            return JSONResponse(reply.body(), status_code=reply.status)

        return handle


def _validation_reply(exc: RequestValidationError) -> ErrorReply:
    first = exc.errors()[0] if exc.errors() else {}
    where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(where) or None
    what = first.get("msg", "invalid value")
    message = f"{param}: {what}" if param else str(what)
    return ErrorReply(400, INVALID_REQUEST, "invalid_parameter", message, param)


# -- the bodies of the levers ---------------------------------------------------------------------------------

Reason = Annotated[str, Field(min_length=1, max_length=1000, description="why, for the audit trail (required)")]
Ttl = Annotated[
    float | None,
    Field(gt=0, le=MAX_TTL_SECONDS, description="seconds until it ends by itself (default: until ended)"),
]
AnyModel = Annotated[bool, Field(description="allow a model neither the catalog nor the registry knows")]


class ForceBody(BaseModel):
    model: str = Field(min_length=1, description="the model every request (of `task`) calls, alone")
    task: str | None = Field(None, description="only this task (default: every task)")
    ttl_seconds: Ttl = None
    reason: Reason
    any_model: AnyModel = False


class DefaultBody(BaseModel):
    task: str = Field(min_length=1, description="the task whose chain MODEL goes first in")
    model: str = Field(min_length=1, description="the model tried first, before the task's own chain")
    ttl_seconds: Ttl = None
    reason: Reason
    any_model: AnyModel = False


class DisableBody(BaseModel):
    model: str = Field(min_length=1, description="the model every router skips (logged `disabled`)")
    ttl_seconds: Ttl = None
    reason: Reason
    any_model: AnyModel = False


class EnableBody(BaseModel):
    model: str = Field(min_length=1, description="the disabled model to put back")
    reason: Reason


class EndBody(BaseModel):
    reason: Reason


class ClearBody(BaseModel):
    kind: Literal["force", "default"] | None = Field(None, description="only overrides of this kind (default: both)")
    task: str | None = Field(None, description="only the overrides set for this task")
    model: str | None = Field(None, description="only the overrides naming this model")
    reason: Reason


def management_routes(router: Router, *, caller: Caller, admin: Caller) -> APIRouter:
    """The /api routes in front of `router`. `caller`: the dependency that admits a client (its name); `admin`:
    the one that admits an admin, whose name the levers' audit rows record."""
    api = APIRouter(prefix="/api", tags=["management"], route_class=_OpenAIErrors)
    reader = [Depends(caller)]

    @api.get(
        "/models/available",
        dependencies=reader,
        summary="The models: provider, prices, limits, capabilities, marks, retirement",
    )
    async def available() -> dict[str, Any]:
        router.health.refresh_if_due(router.clock.wall())
        return {"object": "list", "data": [model_entry(router, m) for m in known_models(router)]}

    @api.get(
        "/models/usage",
        dependencies=reader,
        summary="Calls, success, fallback, latency percentiles, tokens and cost over N days",
    )
    async def usage(
        days: Annotated[int, Query(ge=1, le=MAX_USAGE_DAYS, description="the last N days, up to now")] = 7,
        model: Annotated[str | None, Query(description="only this model")] = None,
        task: Annotated[str | None, Query(description="only this task")] = None,
    ) -> dict[str, Any]:
        if model is not None:
            check_model(router, model, "model", any_model=False)
        if task is not None:
            check_task(router, task, "task", also=(PROBE_TASK,))
        end = router.clock.wall()
        start = end - timedelta(days=days).total_seconds()
        report = await asyncio.to_thread(
            read_usage,
            store_target(router.settings),
            start=iso_millis(start),
            end=iso_millis(end),
            model=model,
            task=task,
        )
        return {
            "days": days,
            "from": report.start,
            "to": report.end,
            "model": model,
            "task": task,
            "from_rollups": report.from_rollups,
            "total": report.total.to_json(),
            "by_model": [{"model": m, **u.to_json()} for m, u in sorted(report.by_model.items())],
            "by_task": [{"task": t, **u.to_json()} for t, u in sorted(report.by_task.items())],
        }

    @api.post("/models/health-check", summary="One minimal call to a model, answered within 5 s, logged as a probe")
    async def health_check(
        model: Annotated[str, Query(min_length=1, description="the model to probe")], who: str = Depends(caller)
    ) -> dict[str, Any]:
        check_model(router, model, "model", any_model=False)
        return await probe(router, model, key_name=None if who == NO_AUTH else who)

    @api.get("/models/recommendations", dependencies=reader, summary="The models to use, ranked, each with the reason")
    async def recommendations(
        task_type: Annotated[str | None, Query(description="rank this task's chain (default: every model)")] = None,
        context_length: Annotated[
            int | None, Query(ge=1, description="tokens the requests need: smaller context windows are left out")
        ] = None,
        cost_preference: Annotated[str, Query(description="cheapest | balanced | quality")] = "balanced",
    ) -> dict[str, Any]:
        if cost_preference not in COST_PREFERENCES:
            raise bad_value(
                "cost_preference",
                f"cost_preference must be one of {', '.join(COST_PREFERENCES)}, not {cost_preference!r}",
            )
        if task_type is not None:
            check_task(router, task_type, "task_type")
        models = list(router.chain_for(task_type).models) if task_type is not None else known_models(router)
        end = router.clock.wall()
        start = end - timedelta(days=RECOMMENDATION_DAYS).total_seconds()
        report = await asyncio.to_thread(
            read_usage, store_target(router.settings), start=iso_millis(start), end=iso_millis(end), task=task_type
        )
        router.health.refresh_if_due(end)
        ranked, excluded = recommend(router, models, report.by_model, context_length, cost_preference)
        return {
            "task_type": task_type,
            "context_length": context_length,
            "cost_preference": cost_preference,
            "observed_days": RECOMMENDATION_DAYS,
            "data": ranked,
            "excluded": excluded,
        }

    @api.get("/overrides", dependencies=reader, summary="The runtime overrides in effect, and the environment's")
    async def overrides() -> dict[str, Any]:
        router.health.refresh_if_due(router.clock.wall())
        environment = [e.to_json() for e in environment_overrides(router.settings)]
        return {"runtime": [o.to_json() for o in router.health.overrides], "environment": environment}

    async def put_first(kind: str, body: ForceBody | DefaultBody, who: str) -> dict[str, Any]:
        """A force or a default override, once its task and model are known to the router."""
        if body.task is not None:
            check_task(router, body.task, "task")
        check_model(router, body.model, "model", any_model=body.any_model)
        made = await change(
            router,
            set_override,
            kind,
            body.model,
            task=body.task,
            ttl_seconds=body.ttl_seconds,
            reason=reason_of(body.reason),
            by=who,
            via=VIA,
        )
        return {"override": made.to_json(), "note": refresh_note(router)}

    @api.post("/overrides/force", summary="Every task (or one) calls only this model", status_code=201)
    async def force(body: ForceBody, who: str = Depends(admin)) -> dict[str, Any]:
        return await put_first(FORCE, body, who)

    @api.post("/overrides/default", summary="This model goes first in the task's chain", status_code=201)
    async def default(body: DefaultBody, who: str = Depends(admin)) -> dict[str, Any]:
        return await put_first(DEFAULT, body, who)

    @api.post("/overrides/{override_id}/end", summary="End exactly one override, by its id")
    async def end(override_id: int, body: EndBody, who: str = Depends(admin)) -> dict[str, Any]:
        ended = await change(router, end_override, override_id, reason=reason_of(body.reason), by=who, via=VIA)
        if ended is None:
            raise not_found(
                "override_id",
                "override_not_found",
                f"no override #{override_id} is in effect (never set, ended or expired; GET /api/overrides lists "
                "those that are); nothing was changed",
            )
        return {"ended": ended.to_json(), "note": refresh_note(router)}

    @api.post("/overrides/clear", summary="End every force and default override matching the filters")
    async def clear(body: ClearBody, who: str = Depends(admin)) -> dict[str, Any]:
        kinds = [body.kind] if body.kind else [FORCE, DEFAULT]
        reason = reason_of(body.reason)
        ended: list[Override] = []
        for kind in kinds:
            ended += await change(
                router, clear_overrides, kind=kind, task=body.task, model=body.model, reason=reason, by=who, via=VIA
            )
        if not ended:
            raise not_found(
                None, "override_not_found", "no force or default override in effect matches; nothing was changed"
            )
        return {"ended": [o.to_json() for o in ended], "note": refresh_note(router)}

    @api.post("/models/disable", summary="Every router skips this model (logged `disabled`)", status_code=201)
    async def disable(body: DisableBody, who: str = Depends(admin)) -> dict[str, Any]:
        check_model(router, body.model, "model", any_model=body.any_model)
        made = await change(
            router,
            set_override,
            DISABLE,
            body.model,
            ttl_seconds=body.ttl_seconds,
            reason=reason_of(body.reason),
            by=who,
            via=VIA,
        )
        return {"override": made.to_json(), "note": refresh_note(router)}

    @api.post("/models/enable", summary="End a model's disable")
    async def enable(body: EnableBody, who: str = Depends(admin)) -> dict[str, Any]:
        ended = await change(
            router, clear_overrides, kind=DISABLE, model=body.model, reason=reason_of(body.reason), by=who, via=VIA
        )
        if not ended:
            raise not_found("model", "model_not_disabled", f"{body.model!r} is not disabled; nothing was changed")
        return {"ended": [o.to_json() for o in ended], "note": refresh_note(router)}

    return api


# -- what the routes share -------------------------------------------------------------------------------------


def reason_of(text: str) -> str:
    reason = text.strip()
    if not reason:
        raise bad_value("reason", 'reason is blank: say why (e.g. "incident 42"); the audit trail keeps it')
    return reason


def known_models(router: Router) -> list[str]:
    """The catalog's models and every model a registry list names, in order: catalog first, as listed."""
    found = dict.fromkeys(router.tables.MODEL_CATALOG)
    found.update(dict.fromkeys(router.catalog_file))
    for models in router.tables.MODEL_REGISTRY.values():
        found.update(dict.fromkeys(models))
    return list(found)


def check_model(router: Router, model: str, param: str, *, any_model: bool) -> None:
    if any_model or model in known_models(router):
        return
    raise not_found(
        param,
        "model_not_found",
        f"unknown model {model!r}: name one of {', '.join(known_models(router))} (GET /api/models/available lists "
        "them)" + ("" if param != "model" else "; or pass any_model to name one the catalog does not know"),
    )


def check_task(router: Router, task: str, param: str, *, also: Iterable[str] = ()) -> None:
    tasks = [k for k in router.tables.MODEL_REGISTRY if k != FALLBACK_KEY and ":" not in k]
    if task in tasks or task in also:
        return
    raise not_found(param, "task_not_found", f"unknown task {task!r}: name one of {', '.join([*tasks, *also])}")


async def change(router: Router, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """One lever's write, through the store's own function with its audit row, off the event loop; then this
    worker applies it at once, so that its very next request routes by it."""

    def run() -> Any:
        db = open_database(store_target(router.settings))
        with contextlib.closing(db.conn):
            return write(db.conn, *args, **kwargs)

    result = await asyncio.to_thread(run)
    router.health.refresh_now()
    return result


def refresh_note(router: Router) -> str:
    return (
        f"in effect in this worker now; in every other worker and host within "
        f"{router.settings.model_status_refresh_seconds:g} s (MODEL_STATUS_REFRESH_SECONDS)"
    )


# -- the catalog -------------------------------------------------------------------------------------------------


def circuit_of(router: Router, model: str, now: float) -> str:
    """closed, open, or half_open (its cooldown over: the next call probes it), as this worker sees it."""
    state = router.health.mark(model)
    if state is None or state.status != CIRCUIT_OPEN:
        return "closed"
    return "open" if state.active(now) else "half_open"


def model_entry(router: Router, model: str) -> dict[str, Any]:
    info = router.model_info(model)
    now = router.clock.wall()
    state = router.health.mark(model)
    mark = None
    if state is not None and state.active(now):
        mark = {"status": state.status, "detail": state.detail, "until": iso_from_epoch(state.until)}
    disabled = router.health.disabled.get(model)
    if disabled is not None and disabled.active(now):
        mark = mark or {"status": disabled.status, "detail": disabled.detail, "until": iso_from_epoch(disabled.until)}
    today = router.clock.today()
    retiring = router.calendar.scheduled(model, today)
    return {
        "id": model,
        "object": "model",
        "provider": info.provider if info is not None else None,
        "in_catalog": info is not None,
        "prices_usd_per_million_tokens": None
        if info is None
        else {"input": info.input_price, "output": info.output_price, "cached_input": info.cached_input_price},
        "context_window": info.context_window if info is not None else None,
        "max_completion_tokens": info.max_completion_tokens if info is not None else None,
        "capabilities": sorted(info.capabilities) if info is not None else [],
        "tasks": [key for key, models in router.tables.MODEL_REGISTRY.items() if model in models],
        "mark": mark,
        "circuit": circuit_of(router, model, now),
        "retirement": None
        if retiring is None
        else {
            "shutdown": retiring.shutdown.isoformat(),
            "days_left": retiring.days_left(today),
            "replacement": retiring.replacement,
        },
    }


# -- the probe -------------------------------------------------------------------------------------------------


async def probe(router: Router, model: str, *, key_name: str | None) -> dict[str, Any]:
    """One call asking for one token, cut off at PROBE_SECONDS, logged as a row of task `probe` carrying the
    caller's key (its cost counts against the key's budget). Not counted by the model's health (marks, circuit): a
    probe reports, it does not steer routing."""
    info = router.model_info(model)
    endpoint = router.endpoint_for(model, info)
    provider = router.providers.get(endpoint.provider)
    request_id = new_request_id()
    clock = router.clock
    started = clock.monotonic()
    created_at = iso_millis(clock.wall())
    error: ProviderError | None = None
    kind: str | None = None
    answer = None
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            answer = await run_llm(endpoint, model, PROBE_MESSAGES, {"max_tokens": 1}, PROBE_SECONDS, provider)
    except ProviderError as exc:
        error, kind = exc, classify(exc).value
    except TimeoutError:
        error, kind = ProviderTimeout(f"no answer within {PROBE_SECONDS:g} s"), ErrorKind.TIMEOUT.value
    latency_ms = (clock.monotonic() - started) * 1000
    usage = answer.usage if answer is not None else None
    cost = cost_usd(info, usage) if usage is not None else None
    row = AttemptRow(
        request_id=request_id,
        task_type=PROBE_TASK,
        model=model,
        provider=endpoint.provider,
        attempt=1,
        outcome=Outcome.SUCCESS.value if error is None else Outcome.FAILURE.value,
        error_kind=kind,
        status_code=None if error is None else error.status_code,
        error_message=None if error is None else error.message[:500],
        is_fallback=0,
        forced=0,
        prompt_tokens=usage.prompt_tokens if usage is not None else None,
        completion_tokens=usage.completion_tokens if usage is not None else None,
        total_tokens=usage.total_tokens if usage is not None else None,
        latency_ms=latency_ms,
        cost_usd=cost,
        created_at=created_at,
        provider_request_id=answer.provider_request_id if answer is not None else None,
        key_name=key_name,
    )
    if router.log is not None:
        router.log.record(row)
    return {
        "model": model,
        "healthy": error is None,
        "latency_ms": round(latency_ms, 1),
        "error_kind": kind,
        "status_code": row.status_code,
        "detail": row.error_message,
        "request_id": request_id,
        "cost_usd": cost,
        "logged": router.log is not None,
    }


# -- recommendations ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    position: int  # in the task's chain, or the list of every model: 1 is first
    info: ModelInfo | None
    success: float  # observed answers / (answers + failures), smoothed: (s + 1) / (n + 2); 0.5 with nothing seen
    calls: int
    p50_ms: int | None
    price: float | None  # USD per million tokens, blended 3 input : 1 output

    def reason(self, preference: str, cheapest: float | None, fastest: int | None) -> str:
        parts = [
            f"success {self.success:.0%} over {self.calls} call{'s' if self.calls != 1 else ''} in "
            f"{RECOMMENDATION_DAYS} days"
            if self.calls
            else "no calls observed yet (success taken as 50 %)"
        ]
        if self.p50_ms is not None:
            parts.append(f"p50 {self.p50_ms} ms" + (" (fastest)" if self.p50_ms == fastest else ""))
        if self.price is None:
            parts.append("price unknown")
        else:
            parts.append(f"${self.price:.3g} per million tokens" + (" (cheapest)" if self.price == cheapest else ""))
        if self.info is not None and self.info.context_window:
            parts.append(f"context {self.info.context_window} tokens")
        parts.append(f"position {self.position} in the chain")
        return f"{preference}: " + ", ".join(parts)


def blended_price(info: ModelInfo | None) -> float | None:
    """A typical chat call's price per million tokens: three input tokens for each output token."""
    if info is None or not info.priced:
        return None
    assert info.input_price is not None and info.output_price is not None
    return (3 * info.input_price + info.output_price) / 4


def recommend(
    router: Router,
    models: Sequence[str],
    observed: Mapping[str, Usage],
    context_length: int | None,
    preference: str,
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The usable models ranked by `preference`, each with its reason; and those left out, with why."""
    now = router.clock.wall()
    today = router.clock.today()
    excluded: list[dict[str, str]] = []
    candidates: list[Candidate] = []
    for position, model in enumerate(models, 1):
        info = router.model_info(model)
        why = left_out(router, model, info, context_length, now, today)
        if why is not None:
            excluded.append({"model": model, "reason": why})
            continue
        usage = observed.get(model, Usage())
        seen = usage.successes + usage.failures
        p50 = usage.to_json()["latency_ms"]["p50"]
        smoothed = (usage.successes + 1) / (seen + 2)
        candidates.append(Candidate(model, position, info, smoothed, seen, p50, blended_price(info)))
    ranked = sorted(candidates, key=_ORDER[preference](candidates))
    prices = [c.price for c in candidates if c.price is not None]
    latencies = [c.p50_ms for c in candidates if c.p50_ms is not None]
    cheapest, fastest = min(prices, default=None), min(latencies, default=None)
    return [
        {
            "rank": rank,
            "model": c.model,
            "provider": c.info.provider if c.info is not None else None,
            "success_rate": round(c.success, 4),
            "calls": c.calls,
            "p50_ms": c.p50_ms,
            "usd_per_million_tokens": c.price,
            "context_window": c.info.context_window if c.info is not None else None,
            "reason": c.reason(preference, cheapest, fastest),
        }
        for rank, c in enumerate(ranked, 1)
    ], excluded


def left_out(
    router: Router, model: str, info: ModelInfo | None, context_length: int | None, now: float, today: date
) -> str | None:
    window = info.context_window if info is not None else None
    if context_length is not None and window is not None and window < context_length:
        return f"context window {window} tokens is smaller than context_length {context_length}"
    if context_length is not None and window is None:
        return f"context window unknown: cannot tell whether {context_length} tokens fit"
    retired = router.calendar.retirement_for(model, today)
    if retired is not None:
        return f"retired on {retired.shutdown.isoformat()} ({retired.suggestion()})"
    mark = router.health.mark(model)
    state = mark if mark is not None and mark.active(now) else None
    disabled = router.health.disabled.get(model)
    if state is None and disabled is not None and disabled.active(now):
        state = disabled
    if state is not None:
        return f"held back: {state.describe()}"
    return None


def _cheapest(_: Sequence[Candidate]) -> Callable[[Candidate], tuple[Any, ...]]:
    return lambda c: (c.price is None, c.price or 0.0, -c.success, c.position)


def _quality(_: Sequence[Candidate]) -> Callable[[Candidate], tuple[Any, ...]]:
    """Observed success first; then the chain's own order, the registry's judgement of the task's best model."""
    return lambda c: (-round(c.success, 2), c.position)


def _balanced(candidates: Sequence[Candidate]) -> Callable[[Candidate], tuple[Any, ...]]:
    """Success weighs most, then price and latency, each measured against the others' (0 best, 1 worst)."""
    prices = [c.price for c in candidates if c.price is not None]
    latencies = [c.p50_ms for c in candidates if c.p50_ms is not None]

    def spread(value: float | None, values: list[float] | list[int]) -> float:
        if value is None or not values:
            return 1.0
        low, high = min(values), max(values)
        return 0.0 if math.isclose(low, high) else (value - low) / (high - low)

    def key(c: Candidate) -> tuple[Any, ...]:
        score = 0.6 * c.success - 0.25 * spread(c.price, prices) - 0.15 * spread(c.p50_ms, latencies)
        return (-round(score, 6), c.position)

    return key


_ORDER = {"cheapest": _cheapest, "quality": _quality, "balanced": _balanced}

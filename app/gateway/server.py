"""The ASGI application: OpenAI's chat-completion and model-list endpoints in front of one Router."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from app import Router
from app.config import Settings
from app.core.streaming import TaskStream
from app.errors import AllModelsFailedError, TaskFailedError, TaskRouterError
from app.gateway import openai_shapes as shapes
from app.gateway.auth import KeyRefused, Keys, admin_name, caller_name
from app.gateway.errors import ErrorReply, error_reply, every_model_rate_limited
from app.gateway.management import management_routes
from app.registry.chain import FALLBACK_KEY
from app.store.api_keys import ApiKey
from app.store.target import store_target

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed its connection before the answer was ready."""


CHAT_PATH = "/v1/chat/completions"
INSTRUMENTS_RECHECK_SECONDS = 1.0


class _Gateway(FastAPI):
    """FastAPI, with the chat path's requests handed straight to their endpoint (`chat`), past the middleware stack,
    the routing table and the dependency solver, which it does not use: they cost more CPU per request than
    everything the gateway itself does around the router. The route stays registered (for /docs, and for the
    requests the shortcut steps aside for: any added middleware, a body size limit, or FastAPI's own
    OpenTelemetry instrumentation on, each of which must see the request)."""

    chat: Callable[[Request], Awaitable[Response]] | None = None
    # Whether FastAPI's own instrumentation is on, as last read, and until when (monotonic) that reading stands.
    _instruments: bool = False
    _instruments_until: float = -math.inf

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        chat = self.chat
        if (
            chat is None
            or scope["type"] != "http"
            or scope["path"] != CHAT_PATH
            or scope["method"] != "POST"
            or self.user_middleware
            or getattr(self, "max_body_size", None) is not None
            or self._instrumented()
        ):
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        try:
            response = await chat(Request(scope, receive))
        except KeyRefused as exc:
            response = _error(exc.reply)
        except Exception as exc:  # as the `unexpected` handler answers it, and raised on for the server to log
            await _error(error_reply(exc))(scope, receive, send)
            raise
        await response(scope, receive, send)

    def _instrumented(self) -> bool:
        """`_fastapi_instruments`, read again at most every INSTRUMENTS_RECHECK_SECONDS rather than per request: it
        reads OpenTelemetry's three global providers, which costs more than the shortcut's other checks together.
        An SDK configured while the gateway serves is seen within that time."""
        now = time.monotonic()
        if now >= self._instruments_until:
            self._instruments = _fastapi_instruments(self)
            self._instruments_until = now + INSTRUMENTS_RECHECK_SECONDS
        return self._instruments


def _fastapi_instruments(app: FastAPI) -> bool:
    """FastAPI's own OpenTelemetry instrumentation is on (an SDK is configured): its spans need the whole stack."""
    telemetry = getattr(app, "_native_telemetry", None)
    return telemetry is not None and bool(telemetry.enabled())


def create_app(settings: Settings, *, router: Router | None = None, require_keys: bool) -> FastAPI:
    """The gateway's application. `router`: the one to serve (a test's); default a Router built from `settings`.
    The application owns the router it builds and closes it at shutdown, writing every pending attempt row.
    `require_keys`: every call but /healthz and /readyz needs an API key of the store (app/gateway/auth.py);
    without it anyone who reaches the port is served (`taskrouter serve --no-auth`, loopback only). It has no
    default: an application embedding the gateway says which it is."""
    owned = router is None
    served = router if router is not None else Router(settings)
    keys = Keys(store_target(served.settings), served.clock) if require_keys else None

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        if owned:
            await served.aclose()

    app = _Gateway(title="taskrouter", summary="The task router behind an OpenAI-compatible API", lifespan=lifespan)
    app.state.keys = keys  # read by app.gateway.auth's dependencies

    @app.exception_handler(KeyRefused)
    async def refused(_: Request, exc: KeyRefused) -> JSONResponse:
        return _error(exc.reply)

    @app.post(CHAT_PATH)
    async def chat_completions(request: Request) -> Response:
        key: ApiKey | None = None
        if keys is not None:  # who asks, before what they ask is read
            try:
                key = await keys.caller(request.headers.get("authorization"))
            except KeyRefused as exc:
                return _error(exc.reply)
        try:
            body = await request.json()
        except ValueError:
            return _error(ErrorReply(400, "invalid_request_error", "invalid_json", "the body is not valid JSON"))
        try:
            chat = shapes.read_chat_request(body, served.tables.MODEL_REGISTRY)
            if keys is not None and key is not None:
                await keys.admit(key, chat.task)
            key_name = key.name if key is not None else None
            if chat.stream:
                spent = functools.partial(keys.spent, key) if keys is not None else None
                return await _streamed(request, served, chat, key_name, spent)
            response = await _unless_client_leaves(
                request,
                served.execute(chat.task, chat.messages, variant=chat.variant, key_name=key_name, **chat.params),
            )
            if keys is not None:
                keys.spent(key, response.cost_usd)
        except KeyRefused as exc:
            return _error(exc.reply)
        except ClientGone:
            return Response(status_code=499)  # nobody reads it: the request was cancelled and logged as such
        except TaskRouterError as exc:
            return _error(error_reply(exc), _error_headers(served, exc))
        completion = shapes.completion(response, created=int(served.clock.wall()))
        return JSONResponse(completion, headers=shapes.headers_of(response))

    app.chat = chat_completions

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        """A fault of the gateway's own: OpenAI's error shape still, and nothing of the exception's text."""
        return _error(error_reply(exc))

    @app.get("/v1/models")
    async def models(request: Request) -> dict[str, Any]:
        caller = await keys.caller(request.headers.get("authorization")) if keys is not None else None
        data = []
        for key in served.tables.MODEL_REGISTRY:
            task, variant = shapes.resolve_task(key, served.tables.MODEL_REGISTRY)
            if caller is not None and not caller.may_use(task):
                continue
            chain = served.chain_for(task, variant)
            data.append(
                {
                    "id": key,
                    "object": "model",
                    "created": 0,
                    "owned_by": "taskrouter",
                    "x_taskrouter": {"task": task, "variant": variant, "chain": list(chain.models)},
                }
            )
        return {"object": "list", "data": data}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        problems = await _readiness_problems(served)
        if problems:
            return JSONResponse({"status": "not ready", "problems": problems}, status_code=503)
        return JSONResponse({"status": "ready"})

    app.include_router(management_routes(served, caller=caller_name, admin=admin_name))
    return app


def from_environment() -> FastAPI:
    """The application of one of `taskrouter serve --workers N`'s processes: its router from the environment, and
    API keys required."""
    from app.config import load_settings

    return create_app(load_settings(), require_keys=True)


def from_environment_no_auth() -> FastAPI:
    """As `from_environment`, under `taskrouter serve --no-auth --workers N` (loopback only): no key asked."""
    from app.config import load_settings

    return create_app(load_settings(), require_keys=False)


async def _readiness_problems(router: Router) -> list[str]:
    """The store open, and in each task's chain at least one model no circuit or mark is holding back."""
    problems = []
    log = router.log
    if log is not None and not await asyncio.to_thread(log.wait_opened, 2.0):
        problems.append("the attempt store could not be opened")
    now = router.clock.wall()
    marks = router.health.marks
    for key in router.tables.MODEL_REGISTRY:
        if key == FALLBACK_KEY:  # not a task: the list tried after every task's own, counted in their chains
            continue
        task, variant = shapes.resolve_task(key, router.tables.MODEL_REGISTRY)
        models = router.chain_for(task, variant).models
        if not any((state := marks.get(m)) is None or not state.active(now) for m in models):
            problems.append(f"{key}: every model is held back ({', '.join(models) or 'no models'})")
    return problems


async def _unless_client_leaves(request: Request, call: Awaitable[T]) -> T:
    """Await `call` in this task, cancelling it (the router logs the attempt as cancelled) if the client
    disconnects first. In this task, not another: the call keeps the request's context (its telemetry span)."""
    host = asyncio.current_task()
    assert host is not None
    left = False

    async def watch() -> None:
        nonlocal left
        while (await request.receive())["type"] != "http.disconnect":
            pass
        left = True
        host.cancel()

    watcher = asyncio.ensure_future(watch())
    try:
        result = await call
    except asyncio.CancelledError:
        if not left:
            raise
        host.uncancel()
        raise ClientGone from None
    finally:
        watcher.cancel()
    if left:  # it left as the answer arrived
        raise ClientGone
    return result


async def _streamed(
    request: Request,
    router: Router,
    chat: shapes.ChatRequest,
    key_name: str | None,
    spent: Callable[[float | None], None] | None,
) -> Response:
    """Wait for the first token (the router's fallback happens before it, unseen), then relay OpenAI chunks. An
    error before the first token is an ordinary HTTP error; after it, an error event ends the stream."""
    stream = router.stream(chat.task, chat.messages, variant=chat.variant, key_name=key_name, **chat.params)
    deltas = aiter(stream)
    first: str | None
    try:
        first = await _unless_client_leaves(request, anext(deltas))
    except StopAsyncIteration:
        first = None
    except BaseException:
        await stream.aclose()
        raise
    model = stream.model or chat.model
    headers = {"x-taskrouter-request-id": stream.request_id, "x-taskrouter-task": chat.task}
    created = int(router.clock.wall())
    return _EventStream(_chunks(stream, chat, model, first, created, spent), headers=headers)


async def _chunks(
    stream: TaskStream,
    chat: shapes.ChatRequest,
    model: str,
    first: str | None,
    created: int,
    spent: Callable[[float | None], None] | None,
) -> AsyncGenerator[bytes]:
    request_id = stream.request_id
    try:
        yield shapes.sse(shapes.chunk(request_id, model, created, {"role": "assistant", "content": ""}))
        if first:
            yield shapes.sse(shapes.chunk(request_id, model, created, {"content": first}))
        async for delta in stream:
            yield shapes.sse(shapes.chunk(request_id, model, created, {"content": delta}))
        response = stream.response
        if spent is not None:  # the key's budget counts the answer before its row is written
            spent(response.cost_usd)
        last = shapes.chunk(
            request_id, response.model_used, created, shapes.last_delta(response), finish_reason=response.finish_reason
        )
        last["x_taskrouter"] = shapes.extension(response)
        yield shapes.sse(last)
        if chat.include_usage:
            usage = shapes.chunk(request_id, response.model_used, created, {})
            usage["choices"], usage["usage"] = [], shapes.usage_of(response)
            yield shapes.sse(usage)
        yield shapes.DONE
    except TaskFailedError as exc:  # after the first token: the client has part of an answer, and is told why not more
        yield shapes.sse(error_reply(exc).body())
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()


class _EventStream(StreamingResponse):
    """Server-sent events that stop, and close the router's stream (logged as cancelled), as soon as the client
    disconnects, even while the model is between chunks."""

    def __init__(self, chunks: AsyncGenerator[bytes], *, headers: dict[str, str]) -> None:
        super().__init__(chunks, media_type="text/event-stream", headers={**headers, "cache-control": "no-cache"})
        self._chunks = chunks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(watch)
            try:
                await super().__call__(scope, _never, send)
            except OSError:  # the client left while a chunk was being sent
                pass
            finally:
                with anyio.CancelScope(shield=True):
                    await self._chunks.aclose()
            group.cancel_scope.cancel()


async def _never() -> Any:
    """The body is relayed without reading the request again: `watch` is the only reader of `receive`."""
    await anyio.sleep_forever()


def _error_headers(router: Router, exc: TaskRouterError) -> dict[str, str]:
    headers = {}
    if isinstance(exc, TaskFailedError) and exc.request_id:
        headers["x-taskrouter-request-id"] = exc.request_id
    if isinstance(exc, AllModelsFailedError) and every_model_rate_limited(exc):
        headers["retry-after"] = str(_retry_after(router, exc))
    return headers


def _retry_after(router: Router, exc: TaskFailedError) -> int:
    """Seconds until the first of the rate-limited models is free again, as their marks say; at least one."""
    now = router.clock.wall()
    marks = router.health.marks
    waits = [
        state.until - now
        for model in {a.model for a in exc.attempts}
        if (state := marks.get(model)) is not None and state.until is not None and state.active(now)
    ]
    return max(1, math.ceil(min(waits))) if waits else 1


def _error(reply: ErrorReply, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(reply.body(), status_code=reply.status, headers=headers)

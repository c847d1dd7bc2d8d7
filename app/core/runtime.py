"""The process-wide router that `execute_task` uses, and the loop behind the sync entry point."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import threading
from collections.abc import Coroutine, Iterator, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from app.clock import SYSTEM_CLOCK, Clock
from app.core.router import Router
from app.core.streaming import TaskStream
from app.providers import Provider
from app.types import LLMResponse

if TYPE_CHECKING:
    from app.config import Settings

T = TypeVar("T")


class _Current:
    """The process-wide router, read as an attribute by each execute_* call (`current.router or get_router()`)."""

    __slots__ = ("router",)

    def __init__(self) -> None:
        self.router: Router | None = None


current = _Current()
_router_lock = threading.Lock()


def get_router() -> Router:
    """Built on first use from the environment and `.env`; a bad setting raises ConfigError here."""
    router = current.router
    if router is None:
        with _router_lock:
            if current.router is None:
                from app.config import load_settings  # pydantic loads with the first call, not with `import app`

                current.router = _new_router(load_settings())
            router = current.router
    return router


def configure(
    settings: Settings | None = None,
    *,
    providers: Mapping[str, Provider] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    **overrides: Any,
) -> Router:
    """Replace the process-wide router, e.g. `configure(force_model=...)` or with explicit Settings.
    `providers`: implementations to use instead of the shipped ones; `clock`: where it reads time (see `Router`)."""
    router = build_router(settings, providers=providers, clock=clock, **overrides)
    use_router(router)
    return router


def build_router(
    settings: Settings | None = None,
    *,
    providers: Mapping[str, Provider] | None = None,
    clock: Clock = SYSTEM_CLOCK,
    **overrides: Any,
) -> Router:
    """A router on the registry of app/core/ai_models.py, without making it the process-wide one."""
    from app.config import load_settings

    return _new_router(settings if settings is not None else load_settings(**overrides), providers, clock)


def use_router(router: Router | None) -> Router | None:
    """Make `router` the process-wide one (None: built again from the settings on next use); returns the one it
    replaces, so that a test can put it back."""
    with _router_lock:
        previous, current.router = current.router, router
        return previous


def reset() -> None:
    """Forget the router; the next call reads the settings again."""
    with _router_lock:
        current.router = None


def flush_attempt_log(timeout: float | None = None) -> bool:
    """Write every attempt row recorded so far in this process; blocks (call it from a thread in async code).

    For a process that ends without running Python's exit hooks, such as an ASGI server that re-raises SIGTERM
    after its graceful shutdown: call it in the lifespan's shutdown. `timeout` defaults to
    ATTEMPT_LOG_EXIT_SECONDS. True when everything was written."""
    from app.store.attempt_log import flush_all

    return flush_all(timeout)


def _new_router(
    settings: Settings, providers: Mapping[str, Provider] | None = None, clock: Clock = SYSTEM_CLOCK
) -> Router:
    return Router(settings, providers=providers, clock=clock)  # on app/core/ai_models.py's tables (use_default_tables)


_loop: asyncio.AbstractEventLoop | None = None
_loop_thread: threading.Thread | None = None
_loop_lock = threading.Lock()


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run on one long-lived background loop, so that connection pools survive between sync calls."""
    global _loop, _loop_thread
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        coro.close()
        raise RuntimeError("execute_task_sync was called from a running event loop: use `await execute_task(...)`")
    with _loop_lock:
        if _loop is None:
            _loop = asyncio.new_event_loop()
            _loop_thread = threading.Thread(target=_loop.run_forever, name="taskrouter-sync", daemon=True)
            _loop_thread.start()
    return asyncio.run_coroutine_threadsafe(coro, _loop).result()


@atexit.register
def _shut_down_sync_loop() -> None:
    """Close what lives on the background loop (the provider's aiohttp sessions, via the loop's async generators)
    on that loop, as asyncio.run would: otherwise aiohttp reports unclosed sessions at exit."""
    loop = _loop
    if loop is None or not loop.is_running():
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(loop.shutdown_asyncgens(), loop).result(timeout=5)
    loop.call_soon_threadsafe(loop.stop)
    if _loop_thread is not None:
        _loop_thread.join(timeout=5)
    if not loop.is_running():
        loop.close()


class SyncTaskStream:
    """`stream_task_sync`: the same stream as a plain iterator, for code without an event loop. It runs on the
    router's background loop; `close()` (or leaving `with`) cancels the call."""

    def __init__(self, stream: TaskStream) -> None:
        self._stream = stream

    @property
    def response(self) -> LLMResponse:
        return self._stream.response

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        try:
            return run_sync(self._stream.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        run_sync(self._stream.aclose())

    def __enter__(self) -> SyncTaskStream:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

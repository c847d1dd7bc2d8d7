"""HTTP clients kept per event loop and per key, closed on their own loop when that loop shuts down.

A client's connections belong to the loop that opened them, so every provider keeps one client per loop. aiohttp
sessions must also be closed on that loop, or they complain at exit ("Unclosed client session"); and a client
never closed keeps its loop alive. Application code rarely closes a library's clients, so the closing rides on an
async generator parked at its first `yield`: `asyncio.run` (and every Runner) calls `aclose()` on the loop's live
async generators before closing the loop, which runs the `finally` below on that loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
import threading
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Hashable
from typing import Generic, TypeVar

import httpx

# The SDKs' default is 100 connections / 20 kept alive; under 50+ concurrent calls that closes and reopens sockets
# all the time. One pool per (loop, endpoint) with room to keep them alive.
POOL_LIMITS = httpx.Limits(max_connections=512, max_keepalive_connections=256)

Client = TypeVar("Client")


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The TLS context every client of this process uses, built as httpx builds its default (certifi's CA bundle,
    or SSL_CERT_FILE / SSL_CERT_DIR). Building one loads the CA bundle, slow enough to overrun a deadline: a client
    made per event loop would do it inside the first request of each loop. `prepare_providers` builds it when a
    router is built."""
    return httpx.create_ssl_context()


def start_shared_ssl_context() -> Callable[[], ssl.SSLContext]:
    """Start building shared_ssl_context() on a thread; returns a function that waits for it and returns it (or
    raises what building it raised). OpenSSL loads the CA bundle with the GIL released, so the SDK imports of a
    router's build, inside a process's first call, go on beside it. The thread imports nothing: what the build
    needs is imported here first (two threads importing at once could meet in an import cycle)."""
    import certifi  # noqa: F401  # httpx.create_ssl_context imports it

    def build() -> None:
        with contextlib.suppress(Exception):  # said by the waiting function, on the caller's thread
            shared_ssl_context()

    thread = threading.Thread(target=build, name="taskrouter-tls", daemon=True)
    thread.start()

    def wait() -> ssl.SSLContext:
        thread.join()
        return shared_ssl_context()  # cached by the thread; built again here, raising, if that failed

    return wait


class _OneLoop(Generic[Client]):
    def __init__(self, close: Callable[[Client], Awaitable[object]]) -> None:
        self.clients: dict[Hashable, Client] = {}
        self._close = close
        self._closer = self._close_at_shutdown()
        with contextlib.suppress(StopIteration):
            self._closer.asend(None).send(None)  # run to the `yield`: registers it with the running loop

    async def _close_at_shutdown(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        clients, self.clients = list(self.clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):  # closing is best effort: a dead socket must not fail shutdown
                await self._close(client)


class LoopClients(Generic[Client]):
    """`get(key, make)`: this loop's client for `key`, made on first use; `aclose()`: close this loop's."""

    def __init__(self, close: Callable[[Client], Awaitable[object]]) -> None:
        self._close = close
        # Each loop's clients (`loops.get(loop).clients`): a provider reads it directly on every call, and calls
        # `get` only to make a client.
        self.loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OneLoop[Client]]
        self.loops = weakref.WeakKeyDictionary()

    def get(self, key: Hashable, make: Callable[[], Client]) -> Client:
        loop = asyncio.get_running_loop()
        one = self.loops.get(loop)
        if one is None:
            one = self.loops[loop] = _OneLoop(self._close)
        client = one.clients.get(key)
        if client is None:
            client = one.clients[key] = make()
        return client

    async def aclose(self) -> None:
        one = self.loops.pop(asyncio.get_running_loop(), None)
        if one is not None:
            await one.aclose()

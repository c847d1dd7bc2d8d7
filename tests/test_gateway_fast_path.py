"""The gateway's shortcut for chat completions (app/gateway/server.py's _Gateway): the route is still documented,
and a middleware added to the application still sees every chat request, through a real uvicorn on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import ClassVar

import httpx
import openai
import pytest
import uvicorn
from conftest import USER
from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import ai_models
from app.core.router import Router
from app.gateway import create_app


@pytest.fixture
def running(make_router: Callable[..., Router]) -> Iterator[Callable[[FastAPI], str]]:
    """`running(app)`: the app served on a free 127.0.0.1 port, its URL; stopped after the test."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app: FastAPI) -> str:
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        thread = threading.Thread(target=server.run, name="gateway-fast-path", daemon=True)
        thread.start()
        servers.append((server, thread))
        deadline = time.monotonic() + 10
        while not server.started:  # a sync fixture waiting for another thread's event
            assert thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.01)
        return f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(15)
        assert not thread.is_alive(), "the gateway did not stop"


class Counting:
    """A pure ASGI middleware counting the HTTP requests it sees, by path."""

    seen: ClassVar[list[str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Counting.seen.append(scope["path"])
        await self.app(scope, receive, send)


def test_the_chat_route_is_documented(make_router: Callable[..., Router], running: Callable[[FastAPI], str]) -> None:
    router = make_router()
    url = running(create_app(router.settings, router=router))
    schema = httpx.get(f"{url}/openapi.json").json()
    assert "post" in schema["paths"]["/v1/chat/completions"]


def test_a_middleware_added_sees_every_chat_request(
    make_router: Callable[..., Router], running: Callable[[FastAPI], str]
) -> None:
    router = make_router()
    app = create_app(router.settings, router=router)
    app.add_middleware(Counting)
    Counting.seen = []
    url = running(app)
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=15) as client:
        first = client.chat.completions.create(model="fast", messages=USER)  # type: ignore[arg-type]
        second = client.chat.completions.create(model="fast", messages=USER)  # type: ignore[arg-type]
    assert Counting.seen == ["/v1/chat/completions", "/v1/chat/completions"]
    assert first.model == second.model == ai_models.MODEL_REGISTRY["fast"][0]

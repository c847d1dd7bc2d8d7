"""The gateway's shortcut for chat completions (app/gateway/server.py's _Gateway): the route is still documented,
and a middleware added to the application still sees every chat request, through a real uvicorn on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from conftest import USER
from gateway_server import Served
from starlette.types import ASGIApp, Receive, Scope, Send

from app.core import ai_models
from app.core.router import Router
from app.gateway import create_app


class Counting:
    """A pure ASGI middleware counting the HTTP requests it sees, by path."""

    seen: ClassVar[list[str]] = []

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            Counting.seen.append(scope["path"])
        await self.app(scope, receive, send)


def test_the_chat_route_is_documented(make_router: Callable[..., Router], served: Callable[..., Served]) -> None:
    router = make_router()
    gateway = served(create_app(router.settings, router=router, require_keys=False))
    schema = gateway.http.get("/openapi.json").json()
    assert "post" in schema["paths"]["/v1/chat/completions"]


def test_a_middleware_added_sees_every_chat_request(
    make_router: Callable[..., Router], served: Callable[..., Served]
) -> None:
    router = make_router()
    app = create_app(router.settings, router=router, require_keys=False)
    app.add_middleware(Counting)
    Counting.seen = []
    client = served(app).openai()
    first = client.chat.completions.create(model="fast", messages=USER)  # type: ignore[arg-type]
    second = client.chat.completions.create(model="fast", messages=USER)  # type: ignore[arg-type]
    assert Counting.seen == ["/v1/chat/completions", "/v1/chat/completions"]
    assert first.model == second.model == ai_models.MODEL_REGISTRY["fast"][0]

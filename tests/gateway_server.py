"""A gateway under test: an ASGI application under a real uvicorn on a free 127.0.0.1 port, with the clients that
talk to it (plain httpx and the official `openai` SDK), all stopped and closed by the `served` fixture (conftest)."""

from __future__ import annotations

import threading
import time

import httpx
import openai
import uvicorn
from starlette.types import ASGIApp


class Served:
    def __init__(self, app: ASGIApp, *, name: str = "gateway-under-test") -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        # Not the main thread: uvicorn leaves the process's signal handlers alone.
        self.thread = threading.Thread(target=self.server.run, name=name, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:  # a sync fixture waiting for another thread's event
            assert self.thread.is_alive() and time.monotonic() < deadline, "the gateway did not start"
            time.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"
        self.http = httpx.Client(base_url=self.url, timeout=15)
        self._clients: list[openai.OpenAI] = []

    def openai(self, key: str = "unused") -> openai.OpenAI:
        """The official SDK pointed at the gateway, with `key`; no retries of its own, so a test sees each answer."""
        client = openai.OpenAI(base_url=f"{self.url}/v1", api_key=key, max_retries=0, timeout=15)
        self._clients.append(client)
        return client

    def stop(self) -> None:
        for client in self._clients:
            client.close()
        self.http.close()
        self.server.should_exit = True
        self.thread.join(15)
        assert not self.thread.is_alive(), "the gateway did not stop"

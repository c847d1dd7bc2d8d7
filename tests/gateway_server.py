"""A gateway under test: an ASGI application under a real uvicorn on a free 127.0.0.1 port, with the clients that
talk to it (plain httpx and the official `openai` SDK), all stopped and closed by the `served` fixture (conftest);
or `taskrouter serve` itself, as a user runs it (`serve_command`)."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

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


@contextlib.contextmanager
def serve_command(options: list[str], env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`taskrouter serve OPTIONS` in a child process on a free 127.0.0.1 port, with `env` over this process's
    environment: (the child, its URL) once /healthz answers. Killed on the way out if it is still running."""
    with socket.socket() as probe:  # a free port for the child to bind
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "app", "serve", "--port", str(port), *options]
    child = subprocess.Popen(command, env={**os.environ, **env}, stderr=subprocess.PIPE, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert child.poll() is None, child.stderr.read() if child.stderr else "serve exited"
            try:
                if httpx.get(f"{url}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "taskrouter serve did not start"
                time.sleep(0.05)
        yield child, url
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()

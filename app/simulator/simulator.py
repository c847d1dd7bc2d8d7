"""`Simulator`: a Groq-compatible HTTP server in a background thread, controlled from tests and tools."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from app.simulator.handler import SimHandler
from app.simulator.profiles import DEFAULT_PROFILES_PATH, ModelProfile, load_default_profile, load_profiles
from app.simulator.server import HttpServer
from app.simulator.state import RequestRecord, SimState

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class Simulator:
    """Serves Groq's chat and model endpoints on its own event loop thread.

    Every public method is safe to call from any thread while the server runs. `max_records` bounds
    the request log (the oldest records go first); `calls()` keeps counting regardless.
    """

    def __init__(
        self,
        profiles: dict[str, ModelProfile] | None = None,
        *,
        seed: int = 0,
        api_key: str | None = None,
        default_profile: ModelProfile | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_records: int | None = None,
    ) -> None:
        self._state = SimState(profiles or {}, default_profile, seed, max_records)
        self._handler = SimHandler(self._state, api_key)
        self._host = host
        self._requested_port = port
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def from_toml(cls, path: str | Path = DEFAULT_PROFILES_PATH, **kwargs: Any) -> Simulator:
        """A simulator with a TOML file's models and its `[default]` profile (keyword arguments win)."""
        kwargs.setdefault("default_profile", load_default_profile(path))
        return cls(load_profiles(path), **kwargs)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Simulator:
        """Listen and serve in a daemon thread; returns once the port is bound."""
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        thread = threading.Thread(target=self._run, args=(ready, failure), name="groq-simulator", daemon=True)
        thread.start()
        if not ready.wait(_START_TIMEOUT):
            raise RuntimeError("simulator did not start in time")
        if failure:
            thread.join()
            raise failure[0]
        self._thread = thread
        return self

    def stop(self) -> None:
        """Close every connection (hung ones too) and end the thread. Safe to call twice."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join(_STOP_TIMEOUT)
        self._thread = None
        self._loop = None
        self._port = None

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        loop = asyncio.new_event_loop()
        server = HttpServer(self._handler, self._host, self._requested_port)
        try:
            self._port = loop.run_until_complete(server.start())
        except BaseException as exc:  # handed to start(), which re-raises it in the caller's thread
            failure.append(exc)
            loop.close()
            ready.set()
            return
        self._loop = loop
        ready.set()
        try:
            loop.run_forever()
        finally:
            loop.run_until_complete(server.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # -- addresses -------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("simulator is not running; call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """For the groq SDK, which appends /openai/v1/..."""
        return f"http://{self._host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        """For OpenAI-compatible clients, which append /chat/completions and /models."""
        return f"{self.base_url}/v1"

    # -- control ---------------------------------------------------------------------------------

    def set_profile(self, model: str, profile: ModelProfile) -> None:
        self._state.set_profile(model, profile)

    def remove_profile(self, model: str) -> None:
        self._state.remove_profile(model)

    def script(self, model: str, *outcomes: str | dict[str, Any]) -> None:
        """Queue outcomes for the next requests to `model`, used before any random draw."""
        self._state.script(model, outcomes)

    def reset(self) -> None:
        """Forget scripts, the request log and counters; restore the construction-time profiles."""
        self._state.reset()

    @property
    def requests(self) -> list[RequestRecord]:
        return self._state.records()

    def calls(self, model: str) -> int:
        return self._state.calls(model)

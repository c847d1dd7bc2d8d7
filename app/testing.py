"""Test your agents against the real router, with scripted models in-process: no socket, no server, no key.

    from app.core.ai_models import MODEL_REGISTRY
    from app.testing import failure, fake_models, reply

    async def test_my_agent_survives_a_rate_limit():
        primary = MODEL_REGISTRY["reasoning"][0]
        with fake_models({primary: [failure("rate_limited", retry_after=5), "second answer"],
                          "*": "default answer"}) as fake:
            answer = await my_agent("...")           # calls execute_reasoning_task(...) somewhere inside
        assert answer == "default answer" and fake.calls[0].model == primary

The router is the real one: chains, fallback by failure kind, retries, the circuit breaker, FORCE_MODEL and
DEFAULT_<TASK>_MODEL, parameter checks, validation, the budget and the attempt log all run as in production.
Only the provider is replaced, through the router's `providers` parameter (a seam, not a patch), for every
`execute_*` and `stream_*` function of the process while the block runs.

A script maps a model name (or "*", any other model) to what it does when called:
  - a string: the answer's text;
  - `reply(...)`: a whole answer (text, tool calls, finish reason, usage);
  - `failure(kind, ...)`: the provider error that the failure table classifies as `kind` (`rate_limited`,
    `server_error`, `timeout`, `deprecated`, ... every kind a provider can cause);
  - a callable `(messages, params) -> any of these`, for answers that depend on the request;
  - a list of any of these, consumed one call at a time (then the "*" entry answers, if there is one).
A call that nothing in the script answers raises `UnscriptedCall`, which fails the test loudly.

`fake.calls` records each call (model, messages, params); `fake.attempts()` reads the attempt log's rows,
written to a temporary database unless `attempts_db_path=` says otherwise. With pytest, the `fake_llm` fixture
(app/pytest_plugin.py, registered when taskrouter is installed) does the same without a `with`.

`FakeClock` is a clock the test moves by hand (`advance(seconds)`), for what waits on time: cooldowns, the circuit
breaker, retries' backoffs, the budget's UTC day. Give its `.clock` to what takes a `clock=` and nothing sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import sqlite3
import tempfile
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.clock import SYSTEM_CLOCK, Clock
from app.core.failures import classify
from app.core.runtime import build_router, use_router
from app.errors import (
    ConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderResponseError,
    ProviderSetupError,
    ProviderStatusError,
    ProviderTimeout,
)
from app.providers import Endpoint, ProviderResponse, StreamChunk
from app.types import ErrorKind, Usage

__all__ = [
    "FakeCall",
    "FakeClock",
    "FakeModels",
    "ProviderCallBlockedError",
    "UnscriptedCall",
    "failure",
    "fake_models",
    "reply",
]

FAKE_KEY = "gsk_fake_models_not_a_real_key"
FAKE_EPOCH = 1_796_428_800.0  # 2026-12-05T00:00:00Z: a fixed start, so that a test's days and hours do not vary


class FakeClock:
    """Time that moves only when the test says so. `.clock` is a `Clock` (app/clock.py) that reads this time, as
    both its wall (epoch seconds) and its monotonic reading, and whose `sleep(seconds)` moves it on by `seconds`
    then lets the event loop run once, so a retry's backoff takes no real time and still yields to other tasks.

        fake = FakeClock()
        health = ModelHealth(settings, None, clock=fake.clock)
        fake.advance(30)          # thirty seconds later, at once
    """

    def __init__(self, *, start: float = FAKE_EPOCH) -> None:
        if not math.isfinite(start):
            raise ValueError(f"FakeClock(start={start!r}): give the start as finite epoch seconds")
        self._now = float(start)
        self.clock = Clock(wall=self._read, monotonic=self._read, sleep=self._sleep)

    @property
    def now(self) -> float:
        """The fake wall time, in epoch seconds."""
        return self._now

    def advance(self, seconds: float) -> None:
        """Move time on by `seconds` (zero or more: time never goes back)."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise ValueError(
                f"FakeClock.advance({seconds!r}): time only moves forward; give a finite number of "
                "seconds, zero or more"
            )
        self._now += seconds

    def _read(self) -> float:
        return self._now

    async def _sleep(self, seconds: float) -> None:
        self.advance(max(seconds, 0.0))  # as asyncio.sleep, a wait of less than nothing returns at once
        await asyncio.sleep(0)


@dataclass(frozen=True, slots=True)
class Reply:
    content: str | None = None
    tool_calls: tuple[dict[str, Any], ...] | None = None
    finish_reason: str | None = None
    usage: Usage | None = None


def reply(
    content: str | None = None,
    *,
    tool_calls: Sequence[Mapping[str, Any]] | None = None,
    finish_reason: str | None = None,
    usage: Usage | Mapping[str, int] | None = None,
) -> Reply:
    """A whole answer. finish_reason defaults to "tool_calls" with tool calls, else "stop"; usage to an
    estimate from the prompt and the text (4 characters a token)."""
    calls = tuple(dict(c) for c in tool_calls) if tool_calls else None
    return Reply(
        content, calls, finish_reason or ("tool_calls" if calls else "stop"), None if usage is None else Usage.of(usage)
    )


# What a provider sends for each kind of failure, as Groq sends it (the simulator's faults, app/simulator/faults.py).
_STATUS: dict[ErrorKind, tuple[int, str | None, str]] = {
    ErrorKind.DEPRECATED: (400, "model_decommissioned", "The model has been decommissioned and is no longer supported"),
    ErrorKind.NOT_FOUND: (404, "model_not_found", "The model does not exist or you do not have access to it"),
    ErrorKind.RATE_LIMITED: (429, "rate_limit_exceeded", "Rate limit reached. Please try again later"),
    ErrorKind.TOO_LARGE: (413, "request_too_large", "Request too large for this model's tokens per minute limit"),
    ErrorKind.CONTEXT_LENGTH: (400, "context_length_exceeded", "Please reduce the length of the messages"),
    ErrorKind.CAPACITY: (498, "capacity_exceeded", "The model is at capacity"),
    ErrorKind.SERVER_ERROR: (500, "internal_server_error", "Internal Server Error"),
    ErrorKind.AUTH: (401, "invalid_api_key", "Invalid API Key"),
    ErrorKind.BAD_REQUEST: (400, "invalid_request_error", "The request is invalid"),
    ErrorKind.INVALID_OUTPUT: (400, "json_validate_failed", "Failed to generate JSON"),
    ErrorKind.UNEXPECTED_STATUS: (418, None, "Unexpected status"),
}
_RAISED: dict[ErrorKind, type[ProviderError]] = {
    ErrorKind.TIMEOUT: ProviderTimeout,
    ErrorKind.CONNECTION: ProviderConnectionError,
    ErrorKind.INVALID_RESPONSE: ProviderResponseError,
    ErrorKind.SETUP: ProviderSetupError,
}
FAILURE_KINDS = tuple(sorted(k.value for k in (*_STATUS, *_RAISED)))


@dataclass(frozen=True, slots=True)
class Failure:
    error: ProviderError


def failure(kind: str | ErrorKind, *, message: str | None = None, retry_after: float | None = None) -> Failure:
    """The provider error the router classifies as `kind`. `retry_after` (seconds): the Retry-After header a
    429 carries, which sets how long the model cools down."""
    try:
        kind = ErrorKind(kind)
    except ValueError:
        raise ValueError(f"unknown failure kind {kind!r}; a provider can cause: {', '.join(FAILURE_KINDS)}") from None
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    if kind in _RAISED:
        error: ProviderError = _RAISED[kind](
            message or f"fake {kind.value}", status_code=200 if kind is ErrorKind.INVALID_RESPONSE else None
        )
    elif kind in _STATUS:
        status, code, text = _STATUS[kind]
        error = ProviderStatusError(message or text, status_code=status, code=code, headers=headers)
    else:
        raise ValueError(
            f"{kind.value} is the router's own verdict, not something a provider does; a provider "
            f"can cause: {', '.join(FAILURE_KINDS)}"
        )
    assert classify(error) is kind, (kind, classify(error))  # the table above and classify() agree
    return Failure(error)


Outcome = str | Reply | Failure | Callable[[Sequence[Mapping[str, Any]], Mapping[str, Any]], Any]
Script = Mapping[str, "Outcome | Sequence[Outcome]"]


class UnscriptedCall(AssertionError):
    """A model was called that the script does not answer for: add it, or a "*" entry."""


class ProviderCallBlockedError(ConfigError):
    """Under pytest (the taskrouter plugin, app/pytest_plugin.py), a call was about to reach a provider outside this
    machine: a real request, and with a real key a paid one. Raised before any connection is opened; the message
    says how to mock or script the call, or to opt in. A ConfigError (the test's setup is what is wrong), not a
    provider failure: the request ends at once, no model is marked, retried or fallen back from, and the test shows
    this message, not an AllModelsFailedError."""


@dataclass(frozen=True, slots=True)
class FakeCall:
    model: str
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    stream: bool = False


@dataclass
class FakeModels:
    """The scripted provider. Also a Provider (complete, open_stream, list_models) for `Router(providers=...)`."""

    script: Script
    calls: list[FakeCall] = field(default_factory=list)
    db_path: Path | None = None
    _queues: dict[str, list[Any]] = field(default_factory=dict)
    _repeat: dict[str, bool] = field(default_factory=dict)  # a single outcome (not a list) answers every call
    _kept: list[dict[str, Any]] | None = None  # the rows as the block ended (its temporary database is gone)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for model, outcomes in self.script.items():
            items = list(outcomes) if isinstance(outcomes, list | tuple) else [outcomes]
            for item in items:
                if not isinstance(item, str | Reply | Failure) and not callable(item):
                    raise TypeError(
                        f"fake_models: {model!r} has {item!r}; give text, reply(...), failure(...), a "
                        "callable or a list of these"
                    )
            self._queues[model] = items
            self._repeat[model] = not isinstance(outcomes, list | tuple)

    def calls_to(self, model: str) -> list[FakeCall]:
        return [c for c in self.calls if c.model == model]

    def attempts(self) -> list[dict[str, Any]]:
        """The attempt log's rows so far, oldest first (empty with attempt logging off); after the `with` block,
        the rows it ended with."""
        from app.store import get_attempt_log

        if self._kept is not None:
            return list(self._kept)
        if self.db_path is None or not get_attempt_log(self.db_path).flush(timeout=30) or not self.db_path.exists():
            return []
        with contextlib.closing(sqlite3.connect(self.db_path)) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM attempts ORDER BY id")]

    def _next(
        self, model: str, messages: Sequence[Mapping[str, Any]], params: Mapping[str, Any], stream: bool
    ) -> Reply:
        with self._lock:
            self.calls.append(FakeCall(model, [dict(m) for m in messages], dict(params), stream))
            outcome = self._take(model) if model in self._queues else None
            if outcome is None and "*" in self._queues:
                outcome = self._take("*")
        if outcome is None:
            raise UnscriptedCall(
                f"fake_models: no answer scripted for {model!r} (call {len(self.calls)}); "
                f"scripted: {', '.join(self.script) or 'nothing'}"
            )
        if callable(outcome) and not isinstance(outcome, Reply | Failure):
            outcome = outcome(messages, params)
        if isinstance(outcome, Failure):
            raise outcome.error
        if isinstance(outcome, str) or outcome is None:
            outcome = reply(outcome)
        if not isinstance(outcome, Reply):
            raise TypeError(f"fake_models: the callable for {model!r} returned {outcome!r}")
        if outcome.usage is None:
            prompt = sum(len(str(m.get("content") or "")) for m in messages) // 4 + 1
            completion = len(outcome.content or "") // 4 + 1
            outcome = Reply(
                outcome.content,
                outcome.tool_calls,
                outcome.finish_reason,
                Usage(prompt, completion, prompt + completion),
            )
        return outcome

    def _take(self, model: str) -> Any:
        queue = self._queues[model]
        if not queue:
            return None
        return queue[0] if self._repeat[model] else queue.pop(0)

    # -- the Provider protocol -----------------------------------------------------------------------------

    async def complete(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> ProviderResponse:
        answer = self._next(model, messages, params, stream=False)
        return ProviderResponse(
            answer.content, answer.finish_reason, answer.usage or Usage(), f"fake-{len(self.calls)}", answer.tool_calls
        )

    async def open_stream(
        self,
        endpoint: Endpoint,
        model: str,
        messages: Sequence[Mapping[str, Any]],
        params: Mapping[str, Any],
        timeout: float,
    ) -> _FakeStream:
        return _FakeStream(self._next(model, messages, params, stream=True), f"fake-{len(self.calls)}")

    async def list_models(self, endpoint: Endpoint, timeout: float) -> list[dict[str, Any]]:
        return [{"id": m, "object": "model", "active": True} for m in self.script if m != "*"]


class _FakeStream:
    """The answer in a few chunks, then the finish reason and usage, as a provider streams them."""

    def __init__(self, answer: Reply, request_id: str) -> None:
        text = answer.content or ""
        step = max(1, len(text) // 3)
        chunks = [StreamChunk(content=text[i : i + step]) for i in range(0, len(text), step)]
        if answer.tool_calls:
            chunks.append(StreamChunk(tool_calls=tuple({"index": i, **c} for i, c in enumerate(answer.tool_calls))))
        chunks.append(
            StreamChunk(finish_reason=answer.finish_reason, usage=answer.usage, provider_request_id=request_id)
        )
        self._chunks = iter(chunks)

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self

    async def __anext__(self) -> StreamChunk:
        try:
            return next(self._chunks)
        except StopIteration:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        return None


@contextlib.contextmanager
def fake_models(script: Script, *, clock: FakeClock | None = None, **settings: Any) -> Iterator[FakeModels]:
    """Every execute_* / stream_* call in the block runs the real router against `script`. `settings` are
    Settings fields (force_model=..., default_models=..., daily_budget_usd=...; by default the environment's,
    with a fake key, no alerts and the attempt log in a temporary SQLite file, even when ATTEMPTS_DB_URL is set).
    `clock`: a FakeClock the router reads and waits on (retries' backoffs, cooldowns, the budget's day), so that
    the test moves time instead of sleeping. The previous router is restored after."""
    with contextlib.ExitStack() as stack:
        if settings.get("attempt_logging", True) and "attempts_db_path" not in settings:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="taskrouter-fake-"))
            settings["attempts_db_path"] = Path(folder) / "attempts.db"
            # A PostgreSQL store in the environment (ATTEMPTS_DB_URL) would take the scripted rows, and marks, away
            # from the temporary file that `attempts()` reads, into a shared database.
            settings.setdefault("attempts_db_url", None)
        fake = FakeModels(
            script, db_path=Path(settings["attempts_db_path"]) if settings.get("attempt_logging", True) else None
        )
        settings.setdefault("groq_api_key", FAKE_KEY)
        settings.setdefault("alert_webhook_url", None)  # scripted failures must not page anyone
        router = build_router(
            providers={"groq": fake, "openai_compatible": fake},
            clock=clock.clock if clock is not None else SYSTEM_CLOCK,
            **settings,
        )
        previous = use_router(router)
        try:
            yield fake
        finally:
            use_router(previous)
            if router.log is not None:
                router.log.close(timeout=30)  # written before the temporary folder goes, and no thread left
            fake._kept = fake.attempts()

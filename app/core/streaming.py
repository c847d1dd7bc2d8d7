"""Streamed answers: text deltas as the model generates them, with the router's routing decisions.

The rule. Until the first text (or tool call) reaches the caller, a stream is a call like any other: a status
error, a dropped connection or no first token within LLM_FIRST_TOKEN_TIMEOUT_SECONDS moves on to the next model
or a retry, exactly as execute_task does, and the caller sees nothing. After it, a failure (connection dropped,
an error event, no chunk within LLM_STREAM_IDLE_TIMEOUT_SECONDS) raises StreamInterruptedError with the text
received so far: replaying the request on another model would show the user the start of one answer followed by
another, different one. The request's deadline bounds the wait for the first token; a stream that is flowing is
not cut by it.

Usage and cost come from the stream's own last chunk (Groq's `x_groq.usage`); only a stream that ended without
one (interrupted, or a server that does not send it) is counted from its chunks, and says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import TYPE_CHECKING, Any

from app.core.request import Answer, Pick, Request
from app.errors import ProviderConnectionError, ProviderError, ProviderTimeout, StreamInterruptedError
from app.providers import ProviderResponse, ProviderStream, StreamChunk, open_stream
from app.registry.catalog import cost_usd
from app.types import LLMResponse, Usage

if TYPE_CHECKING:
    from app.core.budget import Reservation
    from app.telemetry import Telemetry

logger = logging.getLogger("taskrouter")

# A stream whose body ends cleanly before its finish reason: a close-delimited response cut by a server, a proxy or
# a load balancer's idle timeout looks like this to the client. It is not a complete answer.
_ENDED_EARLY = "the stream ended without a finish reason (closed early by the server or a proxy)"


class TaskStream:
    """`async for delta in stream` (text deltas, `str`), or `async with stream as s: ...`; after the last delta
    `stream.response` is the whole LLMResponse, as execute_task would have returned it. Closing early (`aclose()`,
    leaving `async with`) cancels the call and logs it as cancelled with the tokens seen so far."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self._response: LLMResponse | None = None
        self._model: str | None = None
        # With monitoring on, the deltas pass through the request's span; without, nothing stands between.
        self._deltas = self._run() if request.telemetry is None else self._traced(request.telemetry)

    @property
    def request_id(self) -> str:
        return self._request.request_id

    @property
    def model(self) -> str | None:
        """The model whose answer is streaming, once its first token has arrived (the fallback is over then)."""
        return self._model

    @property
    def response(self) -> LLMResponse:
        if self._response is None:
            raise RuntimeError("the stream has not finished: read it to its end before asking for .response")
        return self._response

    def __aiter__(self) -> TaskStream:
        return self

    async def __anext__(self) -> str:
        return await self._deltas.__anext__()

    async def aclose(self) -> None:
        await self._deltas.aclose()

    async def __aenter__(self) -> TaskStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _run(self) -> AsyncGenerator[str, None]:
        request = self._request
        request.restart_clock()  # the deadline counts from the first read
        hit = await request.cached()
        if hit is not None:
            response = request.from_cache(hit)
            if response is not None:
                self._model = response.model_used
                if response.content:
                    yield response.content  # the whole answer at once: it is all there
                self._response = response
                return
        while (pick := await request.next_pick()) is not None:
            attempt = _StreamAttempt(request, pick, request.reserve(pick))
            first = await attempt.open()
            if first is None:
                continue
            self._model = pick.candidate.model
            relay = attempt.relay(first)
            try:
                async for delta in relay:
                    yield delta
            finally:  # closed by the caller while suspended here: close the relay, which logs the call
                await relay.aclose()
            self._response = request.accepted(attempt.answer())
            return
        raise request.final_error()

    async def _traced(self, telemetry: Telemetry) -> AsyncGenerator[str, None]:
        """`_run` inside the request's span and metrics: begun at the first read, ended with the stream."""
        trace = telemetry.begin(self._request, stream=True)
        deltas = self._run()
        error: BaseException | None = None
        try:
            async for delta in deltas:
                yield delta
        except BaseException as exc:
            error = exc
            raise
        finally:
            await deltas.aclose()  # closed early by the caller: the call is logged as cancelled before the span ends
            trace.end(self._request, self._response, error)


class _StreamAttempt:
    """One streamed call: open it and wait for its first token (a failure there lets the request go on), then
    relay its chunks (a failure there ends the request)."""

    def __init__(self, request: Request, pick: Pick, reservation: Reservation | None) -> None:
        self.request, self.pick, self.reservation = request, pick, reservation
        self.stream: ProviderStream | None = None
        self.started = 0.0
        self.first_token_ms: float | None = None
        self.parts: list[str] = []
        self.tool_parts: dict[int, dict[str, Any]] = {}
        self.chunks = 0  # chunks that carried text: Groq sends about one token per chunk
        self.finish_reason: str | None = None
        self.usage: Usage | None = None
        self.provider_request_id: str | None = None

    async def open(self) -> StreamChunk | None:
        request, pick = self.request, self.pick
        settings = request.settings
        allowed = request.start_call(pick, self.reservation)  # past the deadline: released, and raises
        # The first token cannot take longer than a whole plain call to this model may (its attempt timeout).
        first_token_timeout = min(settings.llm_first_token_timeout_seconds, request.model_timeout(pick.info))
        wait = min(first_token_timeout, allowed)
        logger.info(
            "Streaming task_type=%s model=%s attempt=%d retry=%d request_id=%s",
            request.chain.task_type,
            pick.candidate.model,
            pick.position,
            pick.retry,
            request.request_id,
        )
        self.started = request.clock.monotonic()
        try:
            async with asyncio.timeout(wait):
                endpoint = request.endpoint(pick)
                self.stream = await open_stream(
                    endpoint,
                    pick.candidate.model,
                    request.messages,
                    request.params,
                    wait,
                    request.own_provider(endpoint),
                )
                while True:
                    chunk = await self.stream.__anext__()
                    self._take(chunk)
                    if chunk.content or chunk.tool_calls:
                        break
        except StopAsyncIteration:
            if self.finish_reason is None:
                # Closed before any text and without saying why: a server or proxy cut it, not an answer.
                await self._failed(ProviderConnectionError(_ENDED_EARLY), cut=False)
                return None
            await self._close()
            chunk = StreamChunk()  # it finished before any text: an empty answer is still an answer
        except (ProviderError, TimeoutError) as exc:
            error = (
                exc
                if isinstance(exc, ProviderError)
                else ProviderTimeout(
                    f"no first token within {wait:g}s (LLM_FIRST_TOKEN_TIMEOUT_SECONDS, at most the model's attempt "
                    f"timeout: {first_token_timeout:g}s)"
                )
            )
            # Less than half its own first-token timeout, cut by the deadline: not a fair test of the model.
            await self._failed(error, cut=wait < 0.5 * first_token_timeout)
            return None
        except asyncio.CancelledError:  # cancelled by the caller before the first token
            await self._close()
            self._cancelled()
            raise
        except Exception:  # not a provider's failure (a test guard, a custom provider's bug): nothing was answered
            await self._close()
            self._settle(0.0)
            raise
        self.first_token_ms = self._ms()
        return chunk

    async def _failed(self, error: ProviderError, *, cut: bool) -> None:
        """A failure before the first token: the request goes on, as after a plain call's failure."""
        await self._close()
        self._settle(0.0)
        self.request.failed(self.pick, error, self._ms(), cut=cut)

    async def relay(self, first: StreamChunk) -> AsyncGenerator[str, None]:
        stream = self.stream
        idle = self.request.settings.llm_stream_idle_timeout_seconds
        try:
            if first.content:
                yield first.content
            if stream is None:
                return
            while True:
                try:
                    async with asyncio.timeout(idle):
                        chunk = await stream.__anext__()
                except StopAsyncIteration:
                    if self.finish_reason is None:
                        raise self._interrupted(_ENDED_EARLY, None) from None
                    await self._close()
                    return
                except TimeoutError:
                    raise self._interrupted(
                        f"no chunk within LLM_STREAM_IDLE_TIMEOUT_SECONDS={idle:g}s", None
                    ) from None
                except ProviderError as error:
                    raise self._interrupted(error.message, error) from None
                self._take(chunk)
                if chunk.content:
                    yield chunk.content
        except StreamInterruptedError:
            await self._close()
            raise
        except BaseException:  # closed or cancelled by the caller mid-stream
            await self._close()
            self._cancelled()
            raise

    def answer(self) -> Answer:
        usage = self.usage
        estimated = usage is None
        if usage is None:
            usage = self._estimated_usage()
        cost = cost_usd(self.pick.info, usage)
        self._settle(cost)
        self.request.answered(self.pick)
        if estimated:
            logger.warning(
                "Stream ended without a usage chunk model=%s request_id=%s: tokens counted from chunks",
                self.pick.candidate.model,
                self.request.request_id,
            )
        result = ProviderResponse(
            "".join(self.parts), self.finish_reason, usage, self.provider_request_id, self._tool_calls()
        )
        info = self.pick.info
        return Answer(
            self.pick, result, info.provider if info is not None else "groq", cost, self._ms(), self.first_token_ms
        )

    def _take(self, chunk: StreamChunk) -> None:
        if chunk.content:
            self.parts.append(chunk.content)
            self.chunks += 1
        if chunk.tool_calls:
            for fragment in chunk.tool_calls:
                self._add_tool_fragment(fragment)
        if chunk.finish_reason:
            self.finish_reason = chunk.finish_reason
        if chunk.usage is not None:
            self.usage = chunk.usage
        if chunk.provider_request_id:
            self.provider_request_id = chunk.provider_request_id

    def _add_tool_fragment(self, fragment: dict[str, Any]) -> None:
        """OpenAI-style tool-call deltas: the first fragment of an index brings id, type and name; later ones
        append to the arguments."""
        empty = {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        tool_call = self.tool_parts.setdefault(int(fragment.get("index") or 0), empty)
        if fragment.get("id"):
            tool_call["id"] = fragment["id"]
        if fragment.get("type"):
            tool_call["type"] = fragment["type"]
        function = fragment.get("function") or {}
        if function.get("name"):
            tool_call["function"]["name"] += function["name"]
        if function.get("arguments"):
            tool_call["function"]["arguments"] += function["arguments"]

    def _tool_calls(self) -> tuple[dict[str, Any], ...] | None:
        return tuple(self.tool_parts[i] for i in sorted(self.tool_parts)) if self.tool_parts else None

    def _estimated_usage(self) -> Usage:
        prompt = self.request.needs.prompt_tokens
        return Usage(prompt_tokens=prompt, completion_tokens=self.chunks, total_tokens=prompt + self.chunks)

    def _interrupted(self, reason: str, error: ProviderError | None) -> StreamInterruptedError:
        usage = self._estimated_usage()  # an interrupted stream never sends its usage chunk
        cost = cost_usd(self.pick.info, usage)
        self._settle(cost)
        partial = ProviderResponse("".join(self.parts), None, usage, self.provider_request_id)
        return self.request.interrupted(
            self.pick,
            reason=reason,
            error=error,
            partial=partial,
            cost=cost,
            latency_ms=self._ms(),
            first_token_ms=self.first_token_ms,
            chunks=self.chunks,
        )

    def _cancelled(self) -> None:
        """Closed or cancelled by the caller: the tokens seen so far were generated, and may be billed."""
        usage = self._estimated_usage() if self.chunks else None
        cost = cost_usd(self.pick.info, usage) if usage is not None else None
        self._settle(cost)
        partial = ProviderResponse("".join(self.parts), None, usage, self.provider_request_id) if usage else None
        self.request.cancelled(
            self.pick,
            message=f"stream closed by the caller after {self.chunks} chunk(s) of text",
            partial=partial,
            cost=cost,
            latency_ms=self._ms(),
            first_token_ms=self.first_token_ms,
        )

    def _ms(self) -> float:
        """Milliseconds since the call started."""
        return (self.request.clock.monotonic() - self.started) * 1000.0

    async def _close(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            with contextlib.suppress(ProviderError):  # the connection is already gone: nothing left to close
                await stream.aclose()

    def _settle(self, cost: float | None) -> None:
        reservation, self.reservation = self.reservation, None
        self.request.settle(reservation, cost)

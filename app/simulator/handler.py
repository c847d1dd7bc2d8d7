"""Routes Groq's URLs to answers: chat completions (success, fault or stream) and the model list."""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any
from urllib.parse import unquote

from app.simulator.completions import (
    StreamPlan,
    build_answer,
    completion_json,
    estimate_prompt_tokens,
    invalid_reason,
    random_uuid,
    requested_max_tokens,
    stream_events,
)
from app.simulator.echo import echo_error_event, echo_response
from app.simulator.faults import (
    DAILY_REQUEST_LIMIT,
    DEFAULT_AFTER_CHUNKS,
    ECHO_AUTH,
    FOREIGN_ERROR,
    MINUTE_TOKEN_LIMIT,
    OK,
    STREAM_FAULTS,
    error_json,
    fault_error,
    fault_response,
    foreign_response,
    ratelimit_headers,
    stream_error_event,
    unknown_url,
)
from app.simulator.profiles import ModelProfile
from app.simulator.server import Disconnect, Hang, Reply, Request, Response, StreamResponse
from app.simulator.state import DEFAULT_HANG_SECONDS, Decision, SimState

# The groq SDK calls /openai/v1/...; OpenAI-compatible clients pointed at `openai_base_url` call /v1/...
CHAT_PATHS = frozenset({"/openai/v1/chat/completions", "/v1/chat/completions"})
MODELS_PATHS = frozenset({"/openai/v1/models", "/v1/models"})
MODEL_PREFIXES = ("/openai/v1/models/", "/v1/models/")


class SimHandler:
    def __init__(self, state: SimState, api_key: str | None) -> None:
        self._state = state
        self._expected_auth = f"Bearer {api_key}".encode() if api_key is not None else None

    async def __call__(self, request: Request) -> Reply:
        path, method = request.path, request.method
        if path in CHAT_PATHS and method == "POST":
            return await self._chat(request)
        if method == "GET":
            if path in MODELS_PATHS:
                return self._models(request)
            for prefix in MODEL_PREFIXES:
                if path.startswith(prefix):
                    # The SDK percent-encodes the slash in ids such as `vendor/model`.
                    return self._model(request, unquote(path[len(prefix) :]))
        return unknown_url(method, path)

    def _authorized(self, request: Request) -> bool:
        if self._expected_auth is None:
            return True
        given = request.headers.get("authorization", "").encode()
        return secrets.compare_digest(given, self._expected_auth)

    async def _chat(self, request: Request) -> Reply:
        request_id = f"req_{random_uuid().replace('-', '')}"
        try:
            parsed: Any = json.loads(request.body)
        except ValueError:
            parsed = None
        body: dict[str, Any] = parsed if isinstance(parsed, dict) else {}
        model = body["model"] if isinstance(body.get("model"), str) else ""
        rejection: tuple[str, dict[str, Any]] | None = None
        prompt_tokens, max_tokens = 0, None
        if not self._authorized(request):
            rejection = ("auth", {})
        elif (reason := invalid_reason(parsed)) is not None:
            rejection = ("invalid_request", {"message": reason[0], "param": reason[1]})
        else:
            prompt_tokens = estimate_prompt_tokens(body["messages"])
            max_tokens = requested_max_tokens(body)
        decision = self._state.decide(
            model=model,
            path=request.path,
            body=body,
            rejection=rejection,
            prompt_tokens=prompt_tokens,
            max_tokens=max_tokens,
        )
        if decision.delay > 0:
            await asyncio.sleep(decision.delay)
        outcome, options = decision.outcome, decision.options
        # What a proxy that echoes it sends back (the echo_auth fault, also as stream_error's `error`).
        authorization = request.headers.get("authorization", "")
        if outcome == OK or outcome in STREAM_FAULTS:  # stream faults only reach stream requests (see the state)
            return self._success(model, body, decision, prompt_tokens, request_id, authorization)
        if outcome == "disconnect":
            return Disconnect()
        if outcome == "hang":
            # Should the client outwait the hang, it gets an ordinary answer: a very slow success.
            then = self._success(model, body, decision, prompt_tokens, request_id, authorization)
            return Hang(float(options.get("seconds", DEFAULT_HANG_SECONDS)), then)
        if outcome == ECHO_AUTH:
            return echo_response(model, options, request_id, authorization)
        if outcome == FOREIGN_ERROR:
            return foreign_response(options, request_id)
        return fault_response(outcome, model, options, request_id)

    def _success(
        self,
        model: str,
        body: dict[str, Any],
        decision: Decision,
        prompt_tokens: int,
        request_id: str,
        authorization: str,
    ) -> Response | StreamResponse:
        answer = build_answer(
            model,
            body,
            decision.profile,
            decision.options,
            prompt_tokens,
            request_id,
            decision.delay,
            acceptable=decision.acceptable,
        )
        headers = [
            ("x-request-id", request_id),
            *ratelimit_headers(
                remaining_requests=max(1, DAILY_REQUEST_LIMIT - 1 - decision.sequence),
                remaining_tokens=max(1, MINUTE_TOKEN_LIMIT - answer.usage["total_tokens"]),
            ),
        ]
        if body.get("stream") is True:
            plan = _stream_plan(model, body, decision, authorization)
            close_delimited = decision.outcome == "stream_cut" and decision.options.get("framing") == "close"
            return StreamResponse(200, stream_events(answer, plan), headers, close_delimited=close_delimited)
        return Response(200, completion_json(answer), headers)

    def _models(self, request: Request) -> Response:
        if not self._authorized(request):
            return error_json(401, fault_error("auth", "", {}))
        data = [_model_object(name, profile) for name, profile in self._state.listed()]
        return Response(200, json.dumps({"object": "list", "data": data}).encode())

    def _model(self, request: Request, model: str) -> Response:
        if not self._authorized(request):
            return error_json(401, fault_error("auth", "", {}))
        for name, profile in self._state.listed():
            if name == model:
                return Response(200, json.dumps(_model_object(name, profile)).encode())
        return error_json(404, fault_error("not_found", model, {}))


def _stream_plan(model: str, body: dict[str, Any], decision: Decision, authorization: str) -> StreamPlan:
    options = decision.options
    stream_options = body.get("stream_options")
    fault = decision.outcome if decision.outcome in STREAM_FAULTS else None
    return StreamPlan(
        include_usage=isinstance(stream_options, dict) and stream_options.get("include_usage") is True,
        first_token_seconds=_seconds(options.get("first_token_ms")),
        chunk_seconds=_seconds(options.get("chunk_ms")),
        fault=fault,
        after_chunks=int(options.get("after_chunks", DEFAULT_AFTER_CHUNKS)),
        stall_seconds=None if options.get("seconds") is None else float(options["seconds"]),
        error_event=_error_event(model, options, authorization) if fault == "stream_error" else b"",
    )


def _error_event(model: str, options: dict[str, Any], authorization: str) -> bytes:
    if options.get("error") == ECHO_AUTH:
        return echo_error_event(model, options, authorization)
    return stream_error_event(model, options)


def _seconds(milliseconds: float | None) -> float | None:
    return None if milliseconds is None else float(milliseconds) / 1000


def _model_object(name: str, profile: ModelProfile) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": profile.created,
        "owned_by": profile.owned_by,
        "active": profile.active,
        "context_window": profile.context_window,
        "public_apps": None,
        "max_completion_tokens": profile.max_completion_tokens,
    }

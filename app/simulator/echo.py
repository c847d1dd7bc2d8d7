"""The `echo_auth` fault: a misbehaving proxy in front of Groq (a debugging proxy, some API gateways) that quotes
the request's Authorization header back, in the error message and in a response header, or in a stream's error
event. Groq itself never does; a test of secret handling uses it to see whether a key travels on from an error."""

from __future__ import annotations

import json
from typing import Any

from app.simulator.faults import ECHO_AUTH, ECHO_STATUSES, STATUS, error_event, fault_error, fault_response, status_of
from app.simulator.server import Response

ECHO_HEADER = "x-echoed-authorization"


def echo_error(model: str, options: dict[str, Any], authorization: str) -> dict[str, Any]:
    """The error object of Groq's fault for the scripted status, its message quoting `authorization`."""
    error = fault_error(ECHO_STATUSES[status_of(ECHO_AUTH, options)], model, options)
    error["message"] = f"{error['message']} (the proxy received Authorization: {authorization})"
    return error


def echo_response(model: str, options: dict[str, Any], request_id: str, authorization: str) -> Response:
    """Groq's answer for the scripted status (its headers too: a 429 keeps retry-after), plus the echo."""
    response = fault_response(ECHO_STATUSES[status_of(ECHO_AUTH, options)], model, options, request_id)
    response.body = json.dumps({"error": echo_error(model, options, authorization)}).encode()
    response.headers.append((ECHO_HEADER, authorization))
    return response


def echo_error_event(model: str, options: dict[str, Any], authorization: str) -> bytes:
    """stream_error's event with `error = "echo_auth"`: the echoing 401 body, as an error event."""
    return error_event({**echo_error(model, options, authorization), "status_code": STATUS[ECHO_AUTH]})

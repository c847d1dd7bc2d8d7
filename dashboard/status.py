"""A model's current state in words, from its `model_status` row (written by the router's model health)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from dashboard.timeframe import parse_iso

HEALTHY = "healthy"
COOLING_DOWN = "cooling down"
CIRCUIT_OPEN = "circuit open"
DEPRECATED = "deprecated"
NOT_FOUND = "not found"


def state_of(row: Mapping[str, Any] | None, now: datetime) -> tuple[str, str]:
    """(state, detail). A deprecated model is skipped for good; not found and cooling down last until `until`,
    after which the router calls the model again, so an expired mark reads as healthy (with the history)."""
    if row is None:
        return HEALTHY, ""
    status, detail = row.get("status"), row.get("detail") or ""
    until: str | None = row.get("until")
    lapsed = until if until is not None and parse_iso(until) <= now else None  # a mark whose time has run out
    active = lapsed is None
    when = f" until {until[:19].replace('T', ' ')} UTC" if until else ""
    if status == "deprecated":
        return DEPRECATED, detail
    if status == "cleared":  # `taskrouter status --clear`: the router calls it again
        return HEALTHY, detail
    if status == "closed":  # its circuit breaker's probe answered
        return HEALTHY, detail
    if status == "circuit_open":
        if lapsed is None:
            return CIRCUIT_OPEN, f"skipped{when}: {detail}".rstrip(": ")
        return HEALTHY, f"circuit half-open since {lapsed[:19].replace('T', ' ')} UTC: the next call probes it"
    if status == "not_found":
        if active:
            return NOT_FOUND, f"skipped{when}: {detail}".rstrip(": ")
        return HEALTHY, f"was not found (last {row.get('last_seen', '')[:19]}); retried since"
    if status == "cooling_down" and active:
        return COOLING_DOWN, f"{COOLING_DOWN}{when}: {detail}".rstrip(": ")
    return HEALTHY, ""


def is_runtime_deprecated(row: Mapping[str, Any] | None) -> bool:
    """Marked deprecated or not found by the router at some point (expired or not): deprecation evidence."""
    return row is not None and row.get("status") in ("deprecated", "not_found")

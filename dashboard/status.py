"""A model's current state in words, from its `model_status` row (written by the router's model health) and any
`disable` override in effect: one function, so every page calls a model the same (dashboard/words.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.store.overrides import Override
from dashboard import fmt
from dashboard.timeframe import parse_iso
from dashboard.words import CIRCUIT_OPEN, COOLING_DOWN, DEPRECATED, DISABLED, HEALTHY, NOT_FOUND

__all__ = ["CIRCUIT_OPEN", "COOLING_DOWN", "DEPRECATED", "DISABLED", "HEALTHY", "NOT_FOUND", "state_of"]

# The states in which the router does not call the model (right now, or for good).
AVOIDED = (DISABLED, CIRCUIT_OPEN, NOT_FOUND, DEPRECATED, COOLING_DOWN)


def _disabled(override: Override, now: datetime) -> tuple[str, str]:
    until = f" until {fmt.when_relative(override.expires_at, now)}" if override.expires_at else " until enabled"
    why = f": {override.reason}" if override.reason else ""
    return DISABLED, f"taken out of rotation by {override.set_by}{until}{why}"


def state_of(row: Mapping[str, Any] | None, now: datetime, *, disabled: Override | None = None) -> tuple[str, str]:
    """(state, detail). A disable override wins over any mark: the router skips the model whatever its health.
    A deprecated model is skipped for good; not found and cooling down last until `until`, after which the router
    calls the model again, so an expired mark reads as healthy (with the history)."""
    if disabled is not None:
        return _disabled(disabled, now)
    if row is None:
        return HEALTHY, ""
    status, detail = row.get("status"), row.get("detail") or ""
    until: str | None = row.get("until")
    lapsed = until if until is not None and parse_iso(until) <= now else None  # a mark whose time has run out
    active = lapsed is None
    when = f" until {fmt.when_relative(until, now)}" if until else ""
    if status == "deprecated":
        return DEPRECATED, detail
    if status == "cleared":  # `taskrouter status --clear`: the router calls it again
        return HEALTHY, detail
    if status == "closed":  # its circuit breaker's probe answered
        return HEALTHY, detail
    if status == "circuit_open":
        if lapsed is None:
            return CIRCUIT_OPEN, f"skipped{when}: {detail}".rstrip(": ")
        return HEALTHY, f"circuit half-open since {fmt.when(lapsed)}: the next call probes it"
    if status == "not_found":
        if active:
            return NOT_FOUND, f"skipped{when}: {detail}".rstrip(": ")
        return HEALTHY, f"was not found (last {row.get('last_seen', '')[:19]}); retried since"
    if status == "cooling_down" and active:
        return COOLING_DOWN, f"{COOLING_DOWN}{when}: {detail}".rstrip(": ")
    return HEALTHY, ""


def override_detail(o: Override, now: datetime) -> str:
    """Until when (and how long that is from now), who set it and why: `Until 2026-12-05 05:03:28 UTC (in 29 min);
    set by dana 2 min ago; reason: incident 7.`"""
    until = f"Until {fmt.when_relative(o.expires_at, now)}" if o.expires_at else "Until ended"
    why = f"; reason: {o.reason}" if o.reason else ""
    return f"{until}; set by {o.set_by} {fmt.relative(o.set_at, now)}{why}."


def disabled_models(overrides: list[Override]) -> dict[str, Override]:
    """model -> its disable override in effect."""
    return {o.model: o for o in overrides if o.kind == "disable"}


def is_runtime_deprecated(row: Mapping[str, Any] | None) -> bool:
    """Marked deprecated or not found by the router at some point (expired or not): deprecation evidence."""
    return row is not None and row.get("status") in ("deprecated", "not_found")

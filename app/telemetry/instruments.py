"""The metrics taskrouter exports: one table, read by the Prometheus collector, the OpenTelemetry meter, the
docs' metric list and the test that holds the shipped Grafana board and alert rules to names that exist.

Each instrument has its OpenTelemetry name and attributes (the GenAI semantic conventions' where they define one)
and the name Prometheus shows, translated as OpenTelemetry's Prometheus exporter does: dots become underscores,
the unit is appended (`_seconds`, `_usd`) and a counter ends in `_total`. Attributes are bounded: tasks and models
come from the registry, kinds and outcomes from enums; nothing is per request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["counter", "histogram", "gauge"]

# Attribute names, one meaning each (the GenAI conventions' where they have one).
TASK = "taskrouter.task"
OUTCOME = "taskrouter.outcome"  # a call's: the attempt log's outcome (success, failure)
ENDING = "taskrouter.ending"  # a request's: how it ended (answered, deadline, ...)
MODEL = "gen_ai.request.model"
PROVIDER = "gen_ai.provider.name"
OPERATION = "gen_ai.operation.name"
ERROR_TYPE = "error.type"
TOKEN_TYPE = "gen_ai.token.type"
RETIREMENT = "taskrouter.retirement"

# The GenAI conventions' advised bucket boundaries: seconds for durations, tokens for token counts.
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)


@dataclass(frozen=True, slots=True, kw_only=True)
class Instrument:
    name: str  # OpenTelemetry's
    prometheus: str  # what Prometheus shows (a histogram's series add _bucket, _sum, _count)
    kind: Kind
    unit: str  # UCUM, as OpenTelemetry takes it
    attributes: tuple[str, ...]
    description: str
    buckets: tuple[float, ...] = ()


def _prometheus_label(attribute: str) -> str:
    return attribute.replace(".", "_")


INSTRUMENTS: tuple[Instrument, ...] = (
    # -- the GenAI semantic conventions' client metrics: one observation per provider call ------------------------
    Instrument(
        name="gen_ai.client.operation.duration",
        prometheus="gen_ai_client_operation_duration_seconds",
        kind="histogram",
        unit="s",
        attributes=(OPERATION, PROVIDER, MODEL, TASK, ERROR_TYPE),
        description="How long each provider call took, answered or failed (error.type: the failure's kind).",
        buckets=DURATION_BUCKETS,
    ),
    Instrument(
        name="gen_ai.client.token.usage",
        prometheus="gen_ai_client_token_usage",
        kind="histogram",
        unit="{token}",
        attributes=(OPERATION, PROVIDER, MODEL, TASK, TOKEN_TYPE),
        description="Tokens per provider call that reported usage, by gen_ai.token.type (input, output).",
        buckets=TOKEN_BUCKETS,
    ),
    Instrument(
        name="gen_ai.client.operation.time_to_first_chunk",
        prometheus="gen_ai_client_operation_time_to_first_chunk_seconds",
        kind="histogram",
        unit="s",
        attributes=(OPERATION, PROVIDER, MODEL, TASK),
        description="Streams: from sending the call to its first chunk of text.",
        buckets=DURATION_BUCKETS,
    ),
    # -- taskrouter's own ----------------------------------------------------------------------------------------
    Instrument(
        name="taskrouter.requests",
        prometheus="taskrouter_requests_total",
        kind="counter",
        unit="{request}",
        attributes=(TASK, ENDING),
        description=(
            "Requests ended, by how they ended: answered, cache_hit, failed (every model failed or was skipped), "
            "deadline, budget, no_capable_model, rejected, auth, interrupted (a stream after its first token), "
            "cancelled, error (an exception the router does not raise itself, from a provider of the application's)."
        ),
    ),
    Instrument(
        name="taskrouter.request.duration",
        prometheus="taskrouter_request_duration_seconds",
        kind="histogram",
        unit="s",
        attributes=(TASK, ENDING),
        description="A request's whole time, every call, retry and backoff included.",
        buckets=DURATION_BUCKETS,
    ),
    Instrument(
        name="taskrouter.provider.calls",
        prometheus="taskrouter_provider_calls_total",
        kind="counter",
        unit="{call}",
        attributes=(TASK, MODEL, OUTCOME, ERROR_TYPE),
        description="Provider calls made, by the attempt log's outcome (success, failure) and error.type (the kind).",
    ),
    Instrument(
        name="taskrouter.skips",
        prometheus="taskrouter_skips_total",
        kind="counter",
        unit="{model}",
        attributes=(TASK, MODEL, ERROR_TYPE),
        description="Models passed over without a call (circuit open, cooling down, disabled, budget...).",
    ),
    Instrument(
        name="taskrouter.fallbacks",
        prometheus="taskrouter_fallbacks_total",
        kind="counter",
        unit="{request}",
        attributes=(TASK, MODEL),
        description="Requests answered by a model other than their chain's first (the model that answered).",
    ),
    Instrument(
        name="taskrouter.retries",
        prometheus="taskrouter_retries_total",
        kind="counter",
        unit="{call}",
        attributes=(TASK, MODEL),
        description="Calls that were a retry of a model already called in the same request.",
    ),
    Instrument(
        name="taskrouter.hedges",
        prometheus="taskrouter_hedges_total",
        kind="counter",
        unit="{call}",
        attributes=(TASK, MODEL),
        description="Hedged calls: a second model called while the first had not answered (HEDGE_AFTER_MS).",
    ),
    Instrument(
        name="taskrouter.cost",
        prometheus="taskrouter_cost_usd_total",
        kind="counter",
        unit="USD",
        attributes=(TASK, MODEL),
        description="What provider calls were billed, in US dollars (priced models only).",
    ),
    Instrument(
        name="taskrouter.cache.hits",
        prometheus="taskrouter_cache_hits_total",
        kind="counter",
        unit="{request}",
        attributes=(TASK,),
        description="Requests answered from the response cache (RESPONSE_CACHE_TASKS).",
    ),
    Instrument(
        name="taskrouter.cache.saved",
        prometheus="taskrouter_cache_saved_usd_total",
        kind="counter",
        unit="USD",
        attributes=(TASK,),
        description="What the cached answers would have cost had a model been called again.",
    ),
    Instrument(
        name="taskrouter.retired_model.calls",
        prometheus="taskrouter_retired_model_calls_total",
        kind="counter",
        unit="{call}",
        attributes=(TASK, MODEL, RETIREMENT),
        description=(
            "Calls to a model with an announced shutdown (taskrouter.retirement: scheduled, or past once the date "
            "has gone by): move the registry off it before the date."
        ),
    ),
    Instrument(
        name="taskrouter.circuit.state",
        prometheus="taskrouter_circuit_state",
        kind="gauge",
        unit="1",
        attributes=(MODEL,),
        description="Each registry model's circuit: 0 closed, 1 half-open (one probe call allowed), 2 open.",
    ),
    Instrument(
        name="taskrouter.budget.spent",
        prometheus="taskrouter_budget_spent_usd",
        kind="gauge",
        unit="USD",
        attributes=(),
        description="Spent today (UTC) against DAILY_BUDGET_USD, calls in flight not included.",
    ),
    Instrument(
        name="taskrouter.budget.limit",
        prometheus="taskrouter_budget_limit_usd",
        kind="gauge",
        unit="USD",
        attributes=(),
        description="DAILY_BUDGET_USD (the series is absent without a budget).",
    ),
)

BY_NAME = {instrument.name: instrument for instrument in INSTRUMENTS}


def prometheus_labels(instrument: Instrument) -> tuple[str, ...]:
    return tuple(map(_prometheus_label, instrument.attributes))


def prometheus_series() -> frozenset[str]:
    """Every series name a scrape can show (a histogram's _bucket, _sum and _count; a counter's own name)."""
    names: set[str] = set()
    for instrument in INSTRUMENTS:
        if instrument.kind == "histogram":
            names.update(f"{instrument.prometheus}{suffix}" for suffix in ("_bucket", "_sum", "_count"))
        else:
            names.add(instrument.prometheus)
    return frozenset(names)

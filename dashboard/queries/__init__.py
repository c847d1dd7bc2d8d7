"""Every SQL statement the dashboard runs, read-only, on SQLite or PostgreSQL: `ranges` for the pages' time ranges,
`rollups` for the hourly and daily totals that long ranges read instead (`merged` puts the two together), `live`
for the last minutes of traffic and one request, `dialect` for the connection and what differs between the two.
Pages use them as `queries.<name>`."""

from dashboard.queries.dialect import attempt_columns, connect
from dashboard.queries.live import (
    REQUEST_COLUMNS,
    Health,
    OverrideUse,
    health_cells,
    override_uses,
    request_attempts,
    request_ids_starting,
)

# Over a time range, the raw rows and the rollups together (merged.py); the rest reads raw rows only.
from dashboard.queries.merged import (
    ROLLED_UP,
    SpendReport,
    answers_by_model,
    deprecation_evidence,
    distinct_values,
    escalations,
    failure_kinds,
    first_and_last,
    first_token_by_model,
    latency,
    not_answered_by_model,
    reads_rollups,
    spend,
    task_depths,
    totals,
    trend,
)
from dashboard.queries.ranges import (
    CUT_SHORT,
    FAILED_OUTCOMES,
    FAILURE_COLUMNS,
    PERCENTILES,
    REFUSED_KINDS,
    RUNTIME_DEPRECATION_KINDS,
    Evidence,
    Latency,
    ModelAnswers,
    Scope,
    Spend,
    TaskDepth,
    Totals,
    model_status,
    recent_failures,
    why_empty,
)
from dashboard.queries.rollups import NOTE as ROLLUPS_NOTE

__all__ = [
    "CUT_SHORT", "FAILED_OUTCOMES", "FAILURE_COLUMNS", "PERCENTILES", "REFUSED_KINDS", "REQUEST_COLUMNS",
    "ROLLED_UP", "ROLLUPS_NOTE", "RUNTIME_DEPRECATION_KINDS",
    "Evidence", "Health", "Latency", "ModelAnswers", "OverrideUse", "Scope", "Spend", "SpendReport", "TaskDepth",
    "Totals",
    "answers_by_model", "attempt_columns", "connect", "deprecation_evidence", "distinct_values", "escalations",
    "failure_kinds", "first_and_last", "first_token_by_model", "health_cells", "latency", "model_status",
    "not_answered_by_model", "override_uses", "reads_rollups", "recent_failures", "request_attempts",
    "request_ids_starting", "spend", "task_depths", "totals", "trend", "why_empty",
]

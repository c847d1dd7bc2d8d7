"""The SQL of "right now" and of one request: the last minutes of traffic against the day before, the attempts
made under an override, and every row of one request. Each reads a few minutes of the created_at index, a day of
it at most, or the request_id index: fast whatever the size of the table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dashboard.queries.dialect import attempt_columns, bytewise, count_if
from dashboard.queries.ranges import ANSWERED, CUT_SHORT

if TYPE_CHECKING:
    from app.store.backend import Connection

# -- one request ---------------------------------------------------------------------------------------------

REQUEST_COLUMNS = (
    "attempt",
    "retry",
    "model",
    "outcome",
    "error_kind",
    "status_code",
    "latency_ms",
    "first_token_ms",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "error_message",
    "override_source",
    "is_fallback",
    "hedged",
    "task_type",
    "variant",
    "provider",
    "provider_request_id",
    "created_at",
)


def request_attempts(conn: Connection, request_id: str) -> list[dict[str, Any]]:
    """Every row of one request in the order the router made them: chain position, then the retries at that
    position, then time. A column an older database lacks reads as None."""
    have = attempt_columns(conn)
    select = ", ".join(c if c in have else f"NULL AS {c}" for c in REQUEST_COLUMNS)
    # ORDER BY names the output columns, so a missing `retry` orders as its NULL alias.
    rows = conn.execute(
        f"SELECT {select} FROM attempts WHERE request_id = ? ORDER BY attempt, retry, created_at, id", (request_id,)
    )
    return [dict(r) for r in rows]


def request_ids_starting(conn: Connection, prefix: str, limit: int = 20) -> list[str]:
    """Request ids that start with `prefix` (a pasted fragment), as a range on the request_id index, in byte order."""
    column = bytewise(conn, "request_id")
    rows = conn.execute(
        f"SELECT DISTINCT {column} FROM attempts WHERE {column} >= ? AND {column} < ? ORDER BY 1 LIMIT ?",
        (prefix, prefix + "\U0010ffff", limit),
    )
    return [r[0] for r in rows]


# -- right now -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    """One task's traffic on one model in a window: what both the per-task and the per-model verdicts need."""

    requests: int = 0  # first rows at chain position 1 (no retry): requests that started in the window
    answered: int = 0  # by a model or from the response cache
    calls: int = 0  # models' answers and failed calls: not cache hits, nor calls the router or the caller cut short
    failures: int = 0
    skipped: int = 0

    def __add__(self, other: Health) -> Health:
        return Health(
            self.requests + other.requests,
            self.answered + other.answered,
            self.calls + other.calls,
            self.failures + other.failures,
            self.skipped + other.skipped,
        )


def health_cells(conn: Connection, start: str, end: str) -> dict[tuple[str, str], Health]:
    """(task, model) -> Health over [start, end), in one pass over that stretch of the created_at index."""
    failed = f"(outcome = 'failure' AND COALESCE(error_kind, '') NOT IN {CUT_SHORT!r})"
    # A request's row at position 1 that is not a retry (a retry, or a hedge of the same model, is another row
    # there), as the ranges count requests; a database written before retries were logged has one such row.
    first = "attempt = 1 AND retry = 0" if "retry" in attempt_columns(conn) else "attempt = 1"
    rows = conn.execute(
        f"""SELECT task_type, model, {count_if(first)}, {count_if(ANSWERED)},
                   {count_if(f"outcome = 'success' OR {failed}")}, {count_if(failed)},
                   {count_if("outcome = 'skipped'")}
            FROM attempts WHERE created_at >= ? AND created_at < ? GROUP BY task_type, model""",
        (start, end),
    )
    return {(r[0], r[1]): Health(*(v or 0 for v in r[2:])) for r in rows}


@dataclass(frozen=True, slots=True)
class OverrideUse:
    """Attempts of one task on one model made under an override, as the routers logged them."""

    source: str | None  # "runtime force #12", "FORCE_MODEL", "DEFAULT_FAST_MODEL"; None: forced, source not logged
    task: str
    model: str
    rows: int
    last: str


def override_uses(conn: Connection, start: str) -> list[OverrideUse]:
    """What the routers did under an override since `start`, newest first: the evidence, whatever this process's
    own environment says."""
    if "override_source" in attempt_columns(conn):
        source, condition = "override_source", "(forced = 1 OR override_source IS NOT NULL)"
    else:  # a database written before override_source was logged
        source, condition = "NULL", "forced = 1"
    rows = conn.execute(
        f"""SELECT {source}, task_type, model, COUNT(*), MAX(created_at) FROM attempts
            WHERE created_at >= ? AND {condition} GROUP BY 1, 2, 3 ORDER BY 5 DESC""",
        (start,),
    )
    return [OverrideUse(*r) for r in rows]

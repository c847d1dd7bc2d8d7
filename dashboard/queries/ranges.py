"""The SQL of the pages' time ranges: read-only, aggregated by the store (SQLite or PostgreSQL, one statement for
both: dialect.py), shaped for the existing indexes.

Nothing here loads the attempts table into memory. What makes it fast at a million rows:
- each query restricts `created_at` (and `model`/`task_type`/`outcome`/`error_kind` when filtered) so the store
  picks one of the (column, created_at) indexes (PostgreSQL: in the days' partitions the range touches);
- the trend is one small range query per bucket instead of a GROUP BY over the whole range, which would sort
  every row of it;
- latency percentiles come from a histogram of whole milliseconds (GROUP BY the integer ms, a running total by
  window function), exact to 1 ms, one sort per page instead of one per percentile;
- "requests" counts the rows with attempt = 1 (every request logs its first chain position), not
  COUNT(DISTINCT request_id), which needs a temp B-tree of every id in the range; see _requests_expr.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from dashboard.queries.dialect import (
    attempt_columns,
    count_if,
    in_list,
    is_database_error,
    missing_table,
    same_request_days,
    whole_ms,
)

if TYPE_CHECKING:
    from app.store.backend import Connection

PERCENTILES = (50, 95, 99)
FAILED_OUTCOMES = ("failure", "skipped")
# A request is answered by a model (success) or from the response cache (cache_hit). A cache hit is no call to a
# model: it counts in the answers and the success rate, never in a model's calls, failures or latency.
ANSWERED = "outcome IN ('success', 'cache_hit')"
# Calls the router or the caller ended, not the model: a hedge's slower call, a cancelled request. Never counted as
# failures (the failure table counts neither against the model); the Models page shows them apart.
CUT_SHORT = ("hedge_lost", "cancelled")
RUNTIME_DEPRECATION_KINDS = ("deprecated", "not_found")


def why_empty(conn: Connection) -> str | None:
    """None when there are attempts to show, else what stands in the way, worded for the empty state."""
    try:
        if conn.execute("SELECT EXISTS (SELECT 1 FROM attempts)").fetchone()[0]:
            return None
        return "No attempts recorded yet in"
    except Exception as exc:
        if missing_table(exc):
            return "No attempts table (not a taskrouter database, or never used) in"
        if is_database_error(exc):
            return f"Cannot read the database ({exc}):"
        raise


@dataclass(frozen=True, slots=True)
class Scope:
    """What every query is restricted to: [start, end) as created_at text, and the task/model filters."""

    start: str | None
    end: str | None
    tasks: tuple[str, ...] = ()
    models: tuple[str, ...] = ()

    def between(self, start: str | None, end: str | None) -> Scope:
        return Scope(start, end, self.tasks, self.models)


def _where(scope: Scope, *extra: tuple[str, Sequence[Any]], alias: str = "") -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    col = f"{alias}." if alias else ""
    if scope.start:
        parts.append(f"{col}created_at >= ?")
        params.append(scope.start)
    if scope.end:
        parts.append(f"{col}created_at < ?")
        params.append(scope.end)
    if scope.tasks:
        parts.append(in_list(f"{col}task_type", scope.tasks))
        params += scope.tasks
    if scope.models:
        parts.append(in_list(f"{col}model", scope.models))
        params += scope.models
    for sql, values in extra:
        parts.append(sql)
        params += values
    return " AND ".join(parts) or "TRUE", params


def _requests_expr(conn: Connection, scope: Scope) -> tuple[str, list[Any]]:
    """Counts each request once, at its first row on the selected models: its first call (or skip) of the
    earliest of them it reached, the row no other of its rows on them precedes in (attempt, retry). Without a
    model filter, its attempt = 1, retry = 0 row; with one model, that model's retry = 0 row (its retries are
    further rows of the same request). With several, rows at attempt 1 are first; the others pay an index lookup
    by request_id for an earlier one. A database written before retries were logged has no retry column, and one
    row per request and model."""
    retries = "retry" in attempt_columns(conn)
    first = "a.retry = 0" if retries else "TRUE"
    if not scope.models:
        return count_if(f"a.attempt = 1 AND {first}"), []
    if len(scope.models) == 1:
        return count_if(first), []
    earlier = "p.attempt < a.attempt" + (" OR (p.attempt = a.attempt AND p.retry < a.retry)" if retries else "")
    sooner = (
        f"SELECT 1 FROM attempts AS p WHERE p.request_id = a.request_id AND ({earlier}) AND "
        + in_list("p.model", scope.models)
        + same_request_days(conn, "p", "a")
    )
    return (
        f"SUM(CASE WHEN a.attempt = 1 AND {first} THEN 1 WHEN EXISTS ({sooner}) THEN 0 ELSE 1 END)",
        list(scope.models),
    )


# -- totals and trend ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Totals:
    attempts: int = 0  # rows: calls and skips
    requests: int = 0
    answered: int = 0  # success and cache hit rows (at most one per request)
    fallback_answers: int = 0  # answered by a model at chain position > 1
    failures: int = 0  # failed calls, less those cut short by the router or the caller (CUT_SHORT)
    skipped: int = 0
    tokens: int = 0
    cost: float = 0.0  # known cost only
    unpriced: int = 0  # answers whose model has no price (cost NULL): the cost above leaves them out

    def __add__(self, other: Totals) -> Totals:
        return Totals(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Totals)))

    @property
    def success_rate(self) -> float | None:
        return self.answered / self.requests if self.requests else None

    @property
    def fallback_rate(self) -> float | None:
        return self.fallback_answers / self.answered if self.answered else None


def totals(conn: Connection, scope: Scope) -> Totals:
    requests_sql, request_params = _requests_expr(conn, scope)
    where, params = _where(scope, alias="a")
    row = conn.execute(
        f"""SELECT COUNT(*), {requests_sql}, {count_if("a." + ANSWERED)},
                   {count_if("a.outcome = 'success' AND a.attempt > 1")},
                   {count_if(f"a.outcome = 'failure' AND COALESCE(a.error_kind, '') NOT IN {CUT_SHORT!r}")},
                   {count_if("a.outcome = 'skipped'")}, SUM(a.total_tokens), SUM(a.cost_usd),
                   {count_if("a.outcome = 'success' AND a.cost_usd IS NULL")}
            FROM attempts AS a WHERE {where}""",
        request_params + params,
    ).fetchone()
    return Totals(*(value or 0 for value in row))


def trend(conn: Connection, scope: Scope, bounds: Iterable[tuple[str, str]]) -> list[Totals]:
    """Totals per [from, to) bucket; they add up to the whole range (each request counts in one bucket)."""
    return [totals(conn, scope.between(start, end)) for start, end in bounds]


def first_and_last(conn: Connection) -> tuple[str | None, str | None]:
    # Two subqueries: a lone MIN or MAX is answered from the index edge, not from a scan (PostgreSQL: from each
    # partition's edge).
    row = conn.execute("SELECT (SELECT MIN(created_at) FROM attempts), (SELECT MAX(created_at) FROM attempts)")
    first, last = row.fetchone()
    return first, last


def distinct_values(conn: Connection, column: str) -> list[str]:
    """Distinct models or task types by skipping through the (column, created_at) index: one seek per value,
    instead of reading a million index entries."""
    if column not in ("model", "task_type"):
        raise ValueError(column)
    rows = conn.execute(
        f"""WITH RECURSIVE v(x) AS (
                SELECT MIN({column}) FROM attempts
                UNION ALL
                SELECT (SELECT MIN({column}) FROM attempts WHERE {column} > v.x) FROM v WHERE v.x IS NOT NULL)
            SELECT x FROM v WHERE x IS NOT NULL"""
    )
    return [r[0] for r in rows]


# -- latency -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Latency:
    count: int
    p50: int | None
    p95: int | None
    p99: int | None


@dataclass(frozen=True, slots=True)
class ModelAnswers:
    """Per model, over its successful calls: latency percentiles, tokens and cost."""

    latency: Latency
    tokens: int
    cost: float
    unpriced: int


def _percentile_columns() -> str:
    # Nearest rank: the smallest ms whose running count reaches p% of n (cum >= p*n/100, in integers).
    return ", ".join(f"MIN(CASE WHEN cum * 100 >= {p} * n THEN ms END)" for p in PERCENTILES)


def latency(conn: Connection, scope: Scope) -> Latency:
    """Latency of the successful calls (the time of the call that answered), exact to the millisecond."""
    where, params = _where(scope, ("outcome = 'success' AND latency_ms IS NOT NULL", ()))
    row = conn.execute(
        f"""WITH h AS (SELECT {whole_ms(conn, "latency_ms")} AS ms, COUNT(*) AS c FROM attempts WHERE {where}
                       GROUP BY ms),
                 r AS (SELECT ms, SUM(c) OVER (ORDER BY ms) AS cum, SUM(c) OVER () AS n FROM h)
            SELECT MAX(n), {_percentile_columns()} FROM r""",
        params,
    ).fetchone()
    return Latency(int(row[0] or 0), *row[1:])  # int: PostgreSQL sums counts as numeric


def answers_by_model(conn: Connection, scope: Scope) -> dict[str, ModelAnswers]:
    """One pass over the successful calls grouped by (model, ms): the percentiles and the sums come together."""
    where, params = _where(scope, ("outcome = 'success' AND latency_ms IS NOT NULL", ()))
    rows = conn.execute(
        # (ms, model), not (model, ms): the sorter then mostly compares integers, not strings.
        f"""WITH h AS (SELECT model, {whole_ms(conn, "latency_ms")} AS ms, COUNT(*) AS c, SUM(total_tokens) AS tok,
                              SUM(cost_usd) AS cost, {count_if("cost_usd IS NULL")} AS unpriced
                       FROM attempts WHERE {where} GROUP BY ms, model),
                 r AS (SELECT model, ms, tok, cost, unpriced,
                              SUM(c) OVER (PARTITION BY model ORDER BY ms) AS cum,
                              SUM(c) OVER (PARTITION BY model) AS n FROM h)
            SELECT model, MAX(n), {_percentile_columns()}, SUM(tok), SUM(cost), SUM(unpriced)
            FROM r GROUP BY model""",
        params,
    )
    # int() and float(): PostgreSQL sums counts and sums as numeric (Decimal), which mixes with no float.
    return {
        r[0]: ModelAnswers(Latency(int(r[1]), r[2], r[3], r[4]), int(r[5] or 0), float(r[6] or 0.0), int(r[7] or 0))
        for r in rows
    }


def first_token_by_model(conn: Connection, scope: Scope) -> dict[str, Latency]:
    """Per model, over its answered streams: time to first token percentiles. Empty for a database written before
    streams were logged (it has no first_token_ms column, and the dashboard opens it read-only)."""
    if "first_token_ms" not in attempt_columns(conn):
        return {}
    where, params = _where(scope, ("outcome = 'success' AND first_token_ms IS NOT NULL", ()))
    rows = conn.execute(
        f"""WITH h AS (SELECT model, {whole_ms(conn, "first_token_ms")} AS ms, COUNT(*) AS c FROM attempts
                       WHERE {where} GROUP BY ms, model),
                 r AS (SELECT model, ms, SUM(c) OVER (PARTITION BY model ORDER BY ms) AS cum,
                              SUM(c) OVER (PARTITION BY model) AS n FROM h)
            SELECT model, MAX(n), {_percentile_columns()} FROM r GROUP BY model""",
        params,
    )
    return {r[0]: Latency(int(r[1]), r[2], r[3], r[4]) for r in rows}


# -- failures ------------------------------------------------------------------------------------------------


def not_answered_by_model(conn: Connection, scope: Scope) -> list[tuple[str, str, str | None, int]]:
    """(model, outcome, error_kind, rows) for failures and skips: the (outcome, created_at) index reads only them."""
    where, params = _where(scope, (in_list("outcome", FAILED_OUTCOMES), FAILED_OUTCOMES))
    rows = conn.execute(
        f"SELECT model, outcome, error_kind, COUNT(*) FROM attempts WHERE {where} GROUP BY model, outcome, error_kind",
        params,
    )
    return [tuple(r) for r in rows]


def failure_kinds(conn: Connection, scope: Scope, outcomes: Sequence[str]) -> dict[str, int]:
    where, params = _where(scope, (in_list("outcome", outcomes), outcomes))
    rows = conn.execute(
        f"SELECT COALESCE(error_kind, 'unknown'), COUNT(*) FROM attempts WHERE {where} GROUP BY 1 ORDER BY 2 DESC",
        params,
    )
    return {r[0]: r[1] for r in rows}


FAILURE_COLUMNS = (
    "created_at",
    "task_type",
    "model",
    "attempt",
    "outcome",
    "error_kind",
    "status_code",
    "error_message",
    "latency_ms",
    "request_id",
)


def recent_failures(
    conn: Connection,
    scope: Scope,
    outcomes: Sequence[str],
    kinds: Sequence[str],
    limit: int,
    *,
    leave_out: Sequence[str] = (),
) -> list[Any]:
    """Newest first, walking the (outcome, created_at) index backwards: cheap whatever the range. `kinds`: only
    these error kinds; `leave_out`: not these (calls cut short, which are not failures)."""
    extra = [(in_list("outcome", outcomes), outcomes)]
    if kinds:
        extra.append((in_list("COALESCE(error_kind, 'unknown')", kinds), kinds))
    if leave_out:
        extra.append(("NOT " + in_list("COALESCE(error_kind, 'unknown')", leave_out), leave_out))
    where, params = _where(scope, *extra)
    return conn.execute(
        f"SELECT {', '.join(FAILURE_COLUMNS)} FROM attempts WHERE {where} ORDER BY created_at DESC LIMIT ?",
        [*params, limit],
    ).fetchall()


# -- tasks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TaskDepth:
    requests: int
    answered: int
    by_position: tuple[int, ...]  # answers at chain position 1, 2, ...; the last entry counts that position on


def task_depths(conn: Connection, scope: Scope, positions: int) -> dict[str, TaskDepth]:
    """Fallback depth per task in one pass: the `attempt` of a success row is the chain position that answered.
    Conditional sums over a fixed number of positions keep it a single GROUP BY task_type."""
    positions = max(positions, 1)
    columns = [count_if(f"a.{ANSWERED} AND a.attempt = {i}") for i in range(1, positions)]
    columns.append(count_if(f"a.{ANSWERED} AND a.attempt >= {positions}"))
    requests_sql, request_params = _requests_expr(conn, scope)
    where, params = _where(scope, alias="a")
    rows = conn.execute(
        f"""SELECT a.task_type, {requests_sql}, {count_if("a." + ANSWERED)}, {", ".join(columns)}
            FROM attempts AS a WHERE {where} GROUP BY a.task_type""",
        request_params + params,
    )
    return {r[0]: TaskDepth(r[1] or 0, r[2] or 0, tuple(v or 0 for v in r[3:])) for r in rows}


# -- model status and deprecations ---------------------------------------------------------------------------


def model_status(conn: Connection) -> dict[str, dict[str, Any]]:
    try:
        return {r["model"]: dict(r) for r in conn.execute("SELECT * FROM model_status")}
    except Exception as exc:
        if missing_table(exc):
            return {}
        raise


@dataclass(frozen=True, slots=True)
class Evidence:
    rows: int
    first: str
    last: str


def deprecation_evidence(conn: Connection, scope: Scope) -> dict[tuple[str, str], Evidence]:
    """(model, error_kind) -> the attempts that met a retired or unknown model, via the (error_kind, created_at)
    index. Each row is one request: a request tries a model once."""
    kinds = RUNTIME_DEPRECATION_KINDS
    where, params = _where(scope, (in_list("error_kind", kinds), kinds))
    rows = conn.execute(
        f"""SELECT model, error_kind, COUNT(*), MIN(created_at), MAX(created_at) FROM attempts WHERE {where}
            GROUP BY model, error_kind""",
        params,
    )
    return {(r[0], r[1]): Evidence(r[2], r[3], r[4]) for r in rows}


# -- spend ---------------------------------------------------------------------------------------------------

# Error kinds of an answer the router refused: the caller's checks (validation), a tiered request's cascade (refused).
REFUSED_KINDS = ("refused", "validation")
CACHE_HIT = "cache_hit"


@dataclass(frozen=True, slots=True)
class Spend:
    """What a task's rows on one tier cost and saved."""

    answered: int = 0  # success rows: answers the models gave
    cache_hits: int = 0  # answers served from the response cache
    cost: float = 0.0  # every row's known cost
    unpriced: int = 0  # answers whose cost is unknown (their model had no price): the cost above leaves them out
    saved: float = 0.0  # saved_usd added up: against the task's first model, a cache hit's whole original cost
    cache_saved: float = 0.0  # of which the cache hits'
    prompt_tokens: int = 0  # of the answers: what the single-model baseline prices
    completion_tokens: int = 0
    cached_tokens: int = 0  # of the prompt tokens (row by row at most them); unknown in the rollups, so 0 there

    def __add__(self, other: Spend) -> Spend:
        return Spend(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Spend)))


def spend_by_tier(conn: Connection, scope: Scope) -> dict[tuple[str, str | None], Spend]:
    """(task, tier) -> Spend, in one GROUP BY over the range; tier None for the rows that ran on no tier. A store
    written before tiers has neither `tier` nor `saved_usd` (every row untiered, nothing measured)."""
    have = attempt_columns(conn)
    tier = "tier" if "tier" in have else "NULL"
    saved = "saved_usd" if "saved_usd" in have else "CAST(NULL AS REAL)"
    cached = "COALESCE(cached_tokens, 0)" if "cached_tokens" in have else "0"
    answer = "outcome = 'success'"
    where, params = _where(scope)
    rows = conn.execute(
        f"""SELECT task_type, {tier}, {count_if(answer)}, {count_if(f"outcome = '{CACHE_HIT}'")}, SUM(cost_usd),
                   {count_if(f"{answer} AND cost_usd IS NULL")}, SUM({saved}),
                   SUM(CASE WHEN outcome = '{CACHE_HIT}' THEN {saved} END),
                   SUM(CASE WHEN {answer} THEN prompt_tokens END), SUM(CASE WHEN {answer} THEN completion_tokens END),
                   SUM(CASE WHEN {answer} THEN (CASE WHEN {cached} > COALESCE(prompt_tokens, 0)
                                                     THEN COALESCE(prompt_tokens, 0) ELSE {cached} END) END)
            FROM attempts WHERE {where} GROUP BY 1, 2""",
        params,
    )
    # int() and float(): PostgreSQL sums counts and sums as numeric (Decimal).
    return {
        (r[0], r[1] or None): Spend(
            int(r[2] or 0),
            int(r[3] or 0),
            float(r[4] or 0),
            int(r[5] or 0),
            float(r[6] or 0),
            float(r[7] or 0),
            int(r[8] or 0),
            int(r[9] or 0),
            int(r[10] or 0),
        )
        for r in rows
    }


def escalations(conn: Connection, scope: Scope) -> dict[str, int]:
    """Per task, the requests whose answer was refused (REFUSED_KINDS) and that another model then answered: the
    (error_kind, created_at) index reads the refused rows only, each request's answer is looked up by request_id."""
    # Only failed calls carry these kinds: no outcome condition, which would lead the planner to the (outcome,
    # created_at) index over every failure. The answer's outcome is compared through COALESCE for the same reason:
    # the lookup must go by request_id, not walk every success.
    where, params = _where(scope, (in_list("a.error_kind", REFUSED_KINDS), REFUSED_KINDS), alias="a")
    answered = (
        f"SELECT 1 FROM attempts AS s WHERE s.request_id = a.request_id AND COALESCE(s.outcome, '') = "
        f"'success' AND s.model <> a.model{same_request_days(conn, 's', 'a')}"
    )
    rows = conn.execute(
        f"""SELECT a.task_type, COUNT(DISTINCT a.request_id) FROM attempts AS a
            WHERE {where} AND EXISTS ({answered}) GROUP BY a.task_type""",
        params,
    )
    return {r[0]: int(r[1]) for r in rows}

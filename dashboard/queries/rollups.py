"""The SQL of the rollups (`attempts_hourly`, `attempts_daily`: app/store/retention.py), and which part of a range
is read from them rather than from the raw rows.

A range reads the rollups when it reaches back into the pruned hours (they exist only there), is
"All time", or is longer than ROLLUP_SPAN (a week at 100 requests/s is 60 million raw rows; its hours are a few
thousand rollup rows). Then every whole hour of it up to the last rolled-up one comes from the rollups (whole
days from the daily table, the hours around them from the hourly one), and only its ragged edges (the part of an
hour at its start, the hour or two not rolled up yet at its end) from the raw rows. Shorter ranges stay on the
raw rows: exact to the millisecond, and fast enough.

What the rollups cannot give exactly: latency percentiles, from log-spaced buckets (app/store/histogram.py:
within 2 %); and, with several models selected, requests, counted per hour and task as those that reached the
selected model the most requests reached (every request walks its chain in order, so that one's requests include
the others'). Everything else adds up to what the raw rows say.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.store import histogram
from dashboard.queries.dialect import in_list, missing_table, whole_ms
from dashboard.queries.ranges import (
    ANSWERED,
    CACHE_HIT,
    CUT_SHORT,
    RUNTIME_DEPRECATION_KINDS,
    Evidence,
    Scope,
    Spend,
    TaskDepth,
    Totals,
)
from dashboard.timeframe import parse_iso

if TYPE_CHECKING:
    from app.store.backend import Connection

ROLLUP_SPAN = timedelta(days=2)  # up to this (the hourly-bucket trends), ranges stay on the raw rows
NOTE = (
    "Most of this range comes from the hourly and daily rollups (raw rows are kept ATTEMPTS_RETENTION_DAYS): "
    "latency percentiles there are within 2 %, and with several models selected a request counts once per "
    "hour and task, at the selected model most requests reached."
)
HOURLY = ("attempts_hourly", "hour")
DAILY = ("attempts_daily", "day")


@dataclass(frozen=True, slots=True)
class Part:
    """A stretch of a range in one rollup table: periods in [start, end) (start None: from the first)."""

    table: str
    column: str
    start: str | None
    end: str


@dataclass(frozen=True, slots=True)
class Split:
    raw: tuple[Scope, ...]  # read from the attempts table
    rolled: tuple[Part, ...]  # read from the rollups


def _read(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[Any] | None:
    """Rows of a statement on the rollups, or None where there are none: a store written by an older router (the
    dashboard never migrates)."""
    try:
        return conn.execute(sql, params).fetchall()
    except Exception as exc:
        if missing_table(exc):
            return None
        raise


@dataclass(frozen=True, slots=True)
class Coverage:
    through: str  # the hour ('YYYY-MM-DDTHH') before which every hour is in the rollups
    pruned_before: str | None  # the hour before which raw rows may be gone


def coverage(conn: Connection) -> Coverage | None:
    """How far the rollups go, and how far back raw rows are kept; None before the first rollup."""
    rows = _read(conn, "SELECT through_hour, pruned_before FROM rollup_state WHERE name = 'attempts'")
    return Coverage(*rows[0]) if rows and rows[0][0] else None


def first_rolled(conn: Connection) -> str | None:
    """created_at of the first row the rollups hold (its raw row may be gone)."""
    rows = _read(conn, "SELECT MIN(first_at) FROM attempts_daily WHERE day = (SELECT MIN(day) FROM attempts_daily)")
    return rows[0][0] if rows else None


def rolled_values(conn: Connection, column: str) -> list[str]:
    """The distinct models or tasks of the rollups: those of pruned hours too."""
    if column not in ("model", "task_type"):
        raise ValueError(column)
    return [r[0] for r in _read(conn, f"SELECT DISTINCT {column} FROM attempts_daily") or ()]


def coverage_for(conn: Connection, scope: Scope) -> Coverage | None:
    """What the range may read from the rollups (None: raw rows only), by the rule in the module's doc."""
    found = coverage(conn)
    if found is None:
        return None
    if scope.start is None or scope.end is None:
        return found
    if found.pruned_before is not None and scope.start < _created_at(found.pruned_before):
        return found
    return found if parse_iso(scope.end) - parse_iso(scope.start) > ROLLUP_SPAN else None


def _created_at(hour: str) -> str:
    return f"{hour}:00:00.000Z"


def _next_hour(text: str) -> str:
    """The first whole hour at or after a created_at-style moment, as an hour key."""
    hour = text[:13]
    if text[13:].strip(":0.Z"):
        hour = (parse_iso(text).replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)).strftime("%Y-%m-%dT%H")
    return hour


def split(scope: Scope, rolled: Coverage) -> Split:
    """The range as raw edges and rolled-up whole hours (whole days from the daily table). An edge inside an hour
    whose raw rows may be gone takes that whole hour from the rollups."""
    scope = _whole_pruned_hours(scope, rolled.pruned_before)
    through = rolled.through
    h_lo = None if scope.start is None else _next_hour(scope.start)
    h_hi = through if scope.end is None else min(through, scope.end[:13])
    if h_lo is not None and h_lo >= h_hi:
        return Split((scope,), ())
    raw = []
    if scope.start is not None and h_lo is not None and scope.start < _created_at(h_lo):
        raw.append(scope.between(scope.start, _created_at(h_lo)))
    if scope.end is None or _created_at(h_hi) < scope.end:
        raw.append(scope.between(_created_at(h_hi), scope.end))
    d_lo = None if h_lo is None else (h_lo[:10] if h_lo.endswith("T00") else _next_day(h_lo))
    d_hi = h_hi[:10]
    if d_lo is not None and d_lo >= d_hi:
        return Split(tuple(raw), (Part(*HOURLY, h_lo, h_hi),))
    parts: list[Part] = []
    if h_lo is not None and d_lo is not None and h_lo < f"{d_lo}T00":
        parts.append(Part(*HOURLY, h_lo, f"{d_lo}T00"))
    parts.append(Part(*DAILY, d_lo, d_hi))
    if f"{d_hi}T00" < h_hi:
        parts.append(Part(*HOURLY, f"{d_hi}T00", h_hi))
    return Split(tuple(raw), tuple(parts))


def _whole_pruned_hours(scope: Scope, pruned_before: str | None) -> Scope:
    if pruned_before is None:
        return scope
    if scope.start is not None and _next_hour(scope.start) <= pruned_before:
        scope = replace(scope, start=_created_at(scope.start[:13]))
    if scope.end is not None and _next_hour(scope.end) <= pruned_before:
        scope = replace(scope, end=_created_at(_next_hour(scope.end)))
    return scope


def _next_day(hour: str) -> str:
    return (datetime.strptime(hour[:10], "%Y-%m-%d").replace(tzinfo=UTC) + timedelta(days=1)).strftime("%Y-%m-%d")


# -- the statements ------------------------------------------------------------------------------------------


def _where(part: Part, scope: Scope, *extra: tuple[str, Sequence[Any]]) -> tuple[str, list[Any]]:
    parts, params = [f"{part.column} < ?"], [part.end]
    if part.start is not None:
        parts.append(f"{part.column} >= ?")
        params.append(part.start)
    for column, values in (("task_type", scope.tasks), ("model", scope.models)):
        if values:
            parts.append(in_list(column, values))
            params += values
    for sql, extra_params in extra:
        parts.append(sql)
        params += extra_params
    return " AND ".join(parts), params


def _sum_if(condition: str) -> str:
    return f"SUM(CASE WHEN {condition} THEN row_count ELSE 0 END)"


_FAILED = f"outcome = 'failure' AND error_kind NOT IN {CUT_SHORT!r}"


def _requests(scope: Scope) -> str:
    """As the raw queries count them: without a model filter, first calls at attempt = 1; with one model, its
    first calls. Several models: `requests_by_task`."""
    return "SUM(CASE WHEN attempt = 1 THEN first_calls ELSE 0 END)" if not scope.models else "SUM(first_calls)"


def requests_by_task(conn: Connection, part: Part, scope: Scope) -> dict[str, int]:
    """With several models selected: per period and task, the requests that reached the selected model most
    requests reached (first calls, retries left out), added up per task."""
    where, params = _where(part, scope)
    rows = conn.execute(
        f"""SELECT task_type, SUM(reached) FROM (
                SELECT {part.column}, task_type, MAX(reached) AS reached FROM (
                    SELECT {part.column}, task_type, model, SUM(first_calls) AS reached FROM {part.table}
                    WHERE {where} GROUP BY {part.column}, task_type, model) AS per_model
                GROUP BY {part.column}, task_type) AS per_task
            GROUP BY task_type""",
        params,
    )
    return {r[0]: r[1] or 0 for r in rows}


def totals(conn: Connection, part: Part, scope: Scope) -> Totals:
    where, params = _where(part, scope)
    row = conn.execute(
        f"""SELECT SUM(row_count), {_requests(scope)}, {_sum_if(ANSWERED)},
                   {_sum_if("outcome = 'success' AND attempt > 1")}, {_sum_if(_FAILED)},
                   {_sum_if("outcome = 'skipped'")}, SUM(total_tokens), SUM(cost_usd),
                   SUM(CASE WHEN outcome = 'success' THEN row_count - priced_rows ELSE 0 END)
            FROM {part.table} WHERE {where}""",
        params,
    ).fetchone()
    found = Totals(*(value or 0 for value in row))
    if len(scope.models) > 1:
        return replace(found, requests=sum(requests_by_task(conn, part, scope).values()))
    return found


@dataclass(slots=True)
class Answers:
    """A model's successful calls: milliseconds -> calls (exact from raw rows, bucket middles from rollups)."""

    values: Counter[int]
    tokens: int = 0
    cost: float = 0.0
    unpriced: int = 0


def answers(conn: Connection, part: Part, scope: Scope, out: dict[str, Answers]) -> None:
    """Add each model's latency histogram, tokens and cost over its successful calls to `out`."""
    where, params = _where(part, scope, ("outcome = 'success' AND latency_hist IS NOT NULL", ()))
    for model, hist, tokens, cost, unpriced in conn.execute(
        f"SELECT model, latency_hist, total_tokens, cost_usd, row_count - priced_rows FROM {part.table} WHERE {where}",
        params,
    ):
        mine = out.setdefault(model, Answers(Counter()))
        mine.values.update(histogram.as_values(histogram.decode(hist)))
        mine.tokens += tokens
        mine.cost += cost
        mine.unpriced += unpriced


def first_tokens(conn: Connection, part: Part, scope: Scope, out: dict[str, Counter[int]]) -> None:
    where, params = _where(part, scope, ("outcome = 'success' AND first_token_hist IS NOT NULL", ()))
    for model, hist in conn.execute(f"SELECT model, first_token_hist FROM {part.table} WHERE {where}", params):
        out.setdefault(model, Counter()).update(histogram.as_values(histogram.decode(hist)))


def raw_answers(conn: Connection, scope: Scope, column: str, out: dict[str, Answers]) -> None:
    """The same from raw rows, to the millisecond: `column` latency_ms (with tokens and cost) or first_token_ms."""
    parts, params = ["outcome = 'success'", f"{column} IS NOT NULL"], []
    for name, value in (("created_at >= ?", scope.start), ("created_at < ?", scope.end)):
        if value is not None:
            parts.append(name)
            params.append(value)
    for name, values in (("task_type", scope.tasks), ("model", scope.models)):
        if values:
            parts.append(in_list(name, values))
            params += values
    rows = conn.execute(
        f"""SELECT model, {whole_ms(conn, column)} AS ms, COUNT(*), SUM(total_tokens), SUM(cost_usd),
                   SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END)
            FROM attempts WHERE {" AND ".join(parts)} GROUP BY model, ms""",
        params,
    )
    for model, ms, count, tokens, cost, unpriced in rows:
        mine = out.setdefault(model, Answers(Counter()))
        mine.values[ms] += count
        mine.tokens += tokens or 0
        mine.cost += cost or 0.0
        mine.unpriced += unpriced or 0


def not_answered(conn: Connection, part: Part, scope: Scope) -> Iterator[tuple[str, str, str | None, int]]:
    where, params = _where(part, scope, ("outcome IN ('failure', 'skipped')", ()))
    for model, outcome, kind, rows in conn.execute(
        f"SELECT model, outcome, error_kind, SUM(row_count) FROM {part.table} WHERE {where} "
        f"GROUP BY model, outcome, error_kind",
        params,
    ):
        yield model, outcome, kind or None, rows


def failure_kinds(conn: Connection, part: Part, scope: Scope, outcomes: Sequence[str]) -> dict[str, int]:
    where, params = _where(part, scope, (in_list("outcome", outcomes), outcomes))
    rows = conn.execute(
        f"SELECT CASE WHEN error_kind = '' THEN 'unknown' ELSE error_kind END, SUM(row_count) FROM {part.table} "
        f"WHERE {where} GROUP BY 1",
        params,
    )
    return {r[0]: r[1] for r in rows}


def task_depths(conn: Connection, part: Part, scope: Scope, positions: int) -> dict[str, TaskDepth]:
    columns = [_sum_if(f"{ANSWERED} AND attempt = {i}") for i in range(1, positions)]
    columns.append(_sum_if(f"{ANSWERED} AND attempt >= {positions}"))
    where, params = _where(part, scope)
    rows = conn.execute(
        f"""SELECT task_type, {_requests(scope)}, {_sum_if(ANSWERED)}, {", ".join(columns)}
            FROM {part.table} WHERE {where} GROUP BY task_type""",
        params,
    ).fetchall()
    reached = requests_by_task(conn, part, scope) if len(scope.models) > 1 else {}
    return {r[0]: TaskDepth(reached.get(r[0], r[1] or 0), r[2] or 0, tuple(v or 0 for v in r[3:])) for r in rows}


def deprecation_evidence(conn: Connection, part: Part, scope: Scope) -> dict[tuple[str, str], Evidence]:
    kinds = RUNTIME_DEPRECATION_KINDS
    where, params = _where(part, scope, (in_list("error_kind", kinds), kinds))
    rows = conn.execute(
        f"SELECT model, error_kind, SUM(row_count), MIN(first_at), MAX(last_at) FROM {part.table} WHERE {where} "
        f"GROUP BY model, error_kind",
        params,
    )
    return {(r[0], r[1]): Evidence(r[2], r[3], r[4]) for r in rows}


def columns(conn: Connection) -> frozenset[str]:
    """The rollups' columns (both tables have the same): a store rolled up by an older router lacks the newer
    sums, and the dashboard never migrates. None of them when there are no rollups."""
    try:
        cursor = conn.execute("SELECT * FROM attempts_hourly WHERE FALSE")
    except Exception as exc:
        if missing_table(exc):
            return frozenset()
        raise
    return frozenset(c[0] for c in cursor.description or ())


def spend_by_task(conn: Connection, part: Part, scope: Scope) -> dict[str, Spend]:
    """Per task, what its rows cost and saved: the rollups keep neither the tier nor the cached tokens, and
    saved_usd only once the store is migrated that far (`columns`)."""
    saved = "saved_usd" if "saved_usd" in columns(conn) else "CAST(NULL AS REAL)"
    answer = "outcome = 'success'"
    where, params = _where(part, scope)
    rows = conn.execute(
        f"""SELECT task_type, {_sum_if(answer)}, {_sum_if(f"outcome = '{CACHE_HIT}'")}, SUM(cost_usd),
                   SUM(CASE WHEN {answer} THEN row_count - priced_rows ELSE 0 END), SUM({saved}),
                   SUM(CASE WHEN outcome = '{CACHE_HIT}' THEN {saved} END),
                   SUM(CASE WHEN {answer} THEN prompt_tokens ELSE 0 END),
                   SUM(CASE WHEN {answer} THEN completion_tokens ELSE 0 END)
            FROM {part.table} WHERE {where} GROUP BY task_type""",
        params,
    )
    return {
        r[0]: Spend(
            int(r[1] or 0),
            int(r[2] or 0),
            float(r[3] or 0),
            int(r[4] or 0),
            float(r[5] or 0),
            float(r[6] or 0),
            int(r[7] or 0),
            int(r[8] or 0),
        )
        for r in rows
    }

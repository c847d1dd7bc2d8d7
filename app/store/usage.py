"""How each model and task fared over a time range, for the gateway's `GET /api/models/usage` and its
recommendations: calls, answers, fallbacks, latency percentiles, tokens and cost, from the raw attempt rows and,
for the hours already pruned from them, from the hourly rollups (app/store/rollup.py).

The raw rows give exact figures; a range reaching back before the rows kept (ATTEMPTS_RETENTION_DAYS) reads the
pruned hours from `attempts_hourly`, whole hours, with latency percentiles within 2 % (app/store/histogram.py).
Read-only on either backend: nothing is created, and a store nothing was written to reads as empty.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app.store import histogram
from app.store.backend import backend_for
from app.store.dialect import dialect_of, missing_table
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.connection import Connection

PERCENTILES = (50, 95, 99)
# Calls the router or the caller ended, not the model (a hedge's slower call, a cancelled request): neither an
# answer nor a failure of the model, as the dashboard counts them.
CUT_SHORT = frozenset({"hedge_lost", "cancelled"})


@dataclass(slots=True)
class Usage:
    """The sums of one model, one task, or everything in the range."""

    calls: int = 0  # calls made to a model: answers, failures and calls cut short (skips and cache hits are none)
    successes: int = 0
    failures: int = 0  # the model's failures; calls cut short are not counted here
    cut_short: int = 0
    skipped: int = 0  # the model was passed over (marked, disabled, unsuitable) without a call
    cache_hits: int = 0
    fallback_answers: int = 0  # answers from a later chain position than the task's first
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float = 0.0  # of the priced calls; the others' cost is unknown, not 0
    priced_calls: int = 0
    latency: Counter[int] = field(default_factory=Counter)  # successful calls' whole milliseconds -> count

    def add(self, other: Usage) -> None:
        for name in _SUMS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.latency.update(other.latency)

    def to_json(self) -> dict[str, Any]:
        p50, p95, p99 = histogram.percentiles(self.latency, PERCENTILES)
        answers = self.successes + self.cache_hits
        return {
            "calls": self.calls,
            "successes": self.successes,
            "failures": self.failures,
            "cut_short": self.cut_short,
            "skipped": self.skipped,
            "cache_hits": self.cache_hits,
            "success_rate": _ratio(self.successes, self.successes + self.failures),
            "fallback_rate": _ratio(self.fallback_answers, answers),
            "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "total": self.total_tokens,
            },
            "cost_usd": round(self.cost_usd, 10),
            "unpriced_calls": self.calls - self.priced_calls,
        }


_SUMS = (
    "calls",
    "successes",
    "failures",
    "cut_short",
    "skipped",
    "cache_hits",
    "fallback_answers",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "priced_calls",
)


@dataclass(frozen=True, slots=True)
class UsageReport:
    start: str  # created_at of the range's first instant, and of the instant after its last
    end: str
    total: Usage
    by_model: dict[str, Usage]
    by_task: dict[str, Usage]
    from_rollups: bool  # some of the range came from the hourly rollups (its percentiles are within 2 %)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def read_usage(
    where: Target | str, *, start: str, end: str, model: str | None = None, task: str | None = None
) -> UsageReport:
    """Usage in [start, end) (created_at text, UTC ISO-8601), restricted to `model` and `task` when given."""
    conn = backend_for(where).open_reader(application="taskrouter-gateway")
    if conn is None:
        return UsageReport(start, end, Usage(), {}, {}, from_rollups=False)
    with contextlib.closing(conn):
        try:
            return _read(conn, start, end, model, task)
        except Exception as exc:
            if missing_table(exc):  # a store the attempt log's writer has not created its tables in yet
                return UsageReport(start, end, Usage(), {}, {}, from_rollups=False)
            raise


def _read(conn: Connection, start: str, end: str, model: str | None, task: str | None) -> UsageReport:
    pruned_before = _pruned_before(conn)
    raw_from, rolled = start, None
    if pruned_before is not None:
        kept_from = f"{pruned_before}:00:00.000Z"  # the first instant of the first hour whose raw rows are kept
        if start < kept_from:
            rolled = (start[:13], min(pruned_before, end[:13]))
            raw_from = min(kept_from, end)
    groups: dict[tuple[str, str], Usage] = {}
    _raw(conn, raw_from, end, model, task, groups)
    if rolled is not None and rolled[0] < rolled[1]:
        _rolled(conn, rolled[0], rolled[1], model, task, groups)
    total, by_model, by_task = Usage(), dict[str, Usage](), dict[str, Usage]()
    for (its_model, its_task), usage in sorted(groups.items()):
        total.add(usage)
        by_model.setdefault(its_model, Usage()).add(usage)
        by_task.setdefault(its_task, Usage()).add(usage)
    return UsageReport(start, end, total, by_model, by_task, from_rollups=rolled is not None)


def _pruned_before(conn: Connection) -> str | None:
    """The hour ('YYYY-MM-DDTHH') before which raw rows may have been pruned; None when none ever were."""
    try:
        row = conn.execute("SELECT pruned_before FROM rollup_state WHERE name = 'attempts'").fetchone()
    except Exception as exc:
        if missing_table(exc):
            return None
        raise
    return row[0] if row and row[0] else None


def _filters(model: str | None, task: str | None) -> tuple[str, list[Any]]:
    sql, params = "", list[Any]()
    if model is not None:
        sql, params = sql + " AND model = ?", [*params, model]
    if task is not None:
        sql, params = sql + " AND task_type = ?", [*params, task]
    return sql, params


def _add(groups: dict[tuple[str, str], Usage], rows: Iterable[Any]) -> None:
    """Rows of (model, task, outcome, error_kind, later position, count, prompt, completion, total, cost, priced)."""
    for its_model, its_task, outcome, error_kind, later, count, prompt, completion, total, cost, priced in rows:
        usage = groups.setdefault((its_model or "", its_task or ""), Usage())
        count = int(count)
        if outcome == "skipped":
            usage.skipped += count
            continue
        if outcome == "cache_hit":
            usage.cache_hits += count
            usage.fallback_answers += count if later else 0
            continue
        usage.calls += count
        usage.prompt_tokens += int(prompt)
        usage.completion_tokens += int(completion)
        usage.total_tokens += int(total)
        usage.cost_usd += float(cost)
        usage.priced_calls += int(priced)
        if outcome == "success":
            usage.successes += count
            usage.fallback_answers += count if later else 0
        elif error_kind in CUT_SHORT:
            usage.cut_short += count
        else:
            usage.failures += count


_GROUP = "model, task_type, outcome, error_kind, CASE WHEN attempt > 1 THEN 1 ELSE 0 END"


def _raw(
    conn: Connection, start: str, end: str, model: str | None, task: str | None, groups: dict[tuple[str, str], Usage]
) -> None:
    where, params = _filters(model, task)
    rows = conn.execute(
        f"""SELECT {_GROUP}, COUNT(*), COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0),
                   COALESCE(SUM(total_tokens), 0), COALESCE(SUM(cost_usd), 0), COUNT(cost_usd)
            FROM attempts WHERE created_at >= ? AND created_at < ?{where} GROUP BY 1, 2, 3, 4, 5""",
        (start, end, *params),
    ).fetchall()
    _add(groups, rows)
    whole = dialect_of(conn).whole_ms("latency_ms")
    latencies = conn.execute(
        f"""SELECT model, task_type, {whole}, COUNT(*) FROM attempts
            WHERE created_at >= ? AND created_at < ? AND outcome = 'success' AND latency_ms IS NOT NULL{where}
            GROUP BY 1, 2, 3""",
        (start, end, *params),
    ).fetchall()
    for its_model, its_task, ms, count in latencies:
        groups.setdefault((its_model or "", its_task or ""), Usage()).latency[int(ms)] += int(count)


def _rolled(
    conn: Connection,
    first_hour: str,
    end_hour: str,
    model: str | None,
    task: str | None,
    groups: dict[tuple[str, str], Usage],
) -> None:
    """Whole hours in [first_hour, end_hour) ('YYYY-MM-DDTHH') from `attempts_hourly`."""
    where, params = _filters(model, task)
    try:
        rows = conn.execute(
            f"""SELECT {_GROUP}, SUM(row_count), SUM(prompt_tokens), SUM(completion_tokens), SUM(total_tokens),
                       SUM(cost_usd), SUM(priced_rows)
                FROM attempts_hourly WHERE hour >= ? AND hour < ?{where} GROUP BY 1, 2, 3, 4, 5""",
            (first_hour, end_hour, *params),
        ).fetchall()
        hists = conn.execute(
            f"""SELECT model, task_type, latency_hist FROM attempts_hourly
                WHERE hour >= ? AND hour < ? AND outcome = 'success' AND latency_hist IS NOT NULL{where}""",
            (first_hour, end_hour, *params),
        ).fetchall()
    except Exception as exc:
        if missing_table(exc):
            return
        raise
    _add(groups, rows)
    for its_model, its_task, text in hists:
        buckets: Counter[int] = Counter()
        histogram.merge_into(buckets, text)
        groups.setdefault((its_model or "", its_task or ""), Usage()).latency.update(histogram.as_values(buckets))

"""What the pages ask for over a time range, from the raw rows, the rollups or both (rollups.py says which part
comes from where): the same answers as ranges.py's, which they call unchanged for the raw parts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import reduce
from typing import TYPE_CHECKING

from app.store import histogram
from dashboard.queries import ranges, rollups
from dashboard.queries.dialect import attempt_columns
from dashboard.queries.ranges import PERCENTILES, Evidence, Latency, ModelAnswers, Scope, Spend, TaskDepth, Totals

if TYPE_CHECKING:
    from app.store.backend import Connection


def _split(conn: Connection, scope: Scope) -> rollups.Split | None:
    rolled = rollups.coverage_for(conn, scope)
    return None if rolled is None else rollups.split(scope, rolled)


def reads_rollups(conn: Connection, scope: Scope) -> bool:
    """Whether some of the range comes from the rollups (its latency percentiles are then within 2 %)."""
    split = _split(conn, scope)
    return split is not None and bool(split.rolled)


def first_and_last(conn: Connection) -> tuple[str | None, str | None]:
    """The oldest and newest attempt the dashboard can show: the rollups may go back further than the raw rows."""
    first, last = ranges.first_and_last(conn)
    rolled = rollups.first_rolled(conn)
    return min(filter(None, (first, rolled)), default=None), last


def distinct_values(conn: Connection, column: str) -> list[str]:
    return sorted({*ranges.distinct_values(conn, column), *rollups.rolled_values(conn, column)})


def totals(conn: Connection, scope: Scope) -> Totals:
    return _totals(conn, scope, _split(conn, scope))


def _totals(conn: Connection, scope: Scope, split: rollups.Split | None) -> Totals:
    if split is None:
        return ranges.totals(conn, scope)
    raw = [ranges.totals(conn, part) for part in split.raw]
    return sum([*raw, *(rollups.totals(conn, part, scope) for part in split.rolled)], Totals())


def trend(conn: Connection, scope: Scope, bounds: Iterable[tuple[str, str]]) -> list[Totals]:
    """Totals per [from, to) bucket, each read the way the whole range is: a day of "All time" from the daily
    rollups even though a day alone would stay on the raw rows."""
    rolled = rollups.coverage_for(conn, scope)
    out = []
    for start, end in bounds:
        bucket = scope.between(start, end)
        out.append(_totals(conn, bucket, None if rolled is None else rollups.split(bucket, rolled)))
    return out


def _answers(conn: Connection, split: rollups.Split, scope: Scope) -> dict[str, rollups.Answers]:
    out: dict[str, rollups.Answers] = {}
    for part in split.raw:
        rollups.raw_answers(conn, part, "latency_ms", out)
    for rolled in split.rolled:
        rollups.answers(conn, rolled, scope, out)
    return out


def _latency(values: Counter[int]) -> Latency:
    return Latency(sum(values.values()), *histogram.percentiles(values, PERCENTILES))


def latency(conn: Connection, scope: Scope) -> Latency:
    split = _split(conn, scope)
    if split is None:
        return ranges.latency(conn, scope)
    every: Counter[int] = Counter()
    for mine in _answers(conn, split, scope).values():
        every.update(mine.values)
    return _latency(every)


def answers_by_model(conn: Connection, scope: Scope) -> dict[str, ModelAnswers]:
    split = _split(conn, scope)
    if split is None:
        return ranges.answers_by_model(conn, scope)
    return {
        model: ModelAnswers(_latency(a.values), a.tokens, a.cost, a.unpriced)
        for model, a in _answers(conn, split, scope).items()
    }


def first_token_by_model(conn: Connection, scope: Scope) -> dict[str, Latency]:
    split = _split(conn, scope)
    if split is None:
        return ranges.first_token_by_model(conn, scope)
    if "first_token_ms" not in attempt_columns(conn):
        return {}
    raw: dict[str, rollups.Answers] = {}
    for part in split.raw:
        rollups.raw_answers(conn, part, "first_token_ms", raw)
    out: dict[str, Counter[int]] = {model: a.values for model, a in raw.items()}
    for rolled in split.rolled:
        rollups.first_tokens(conn, rolled, scope, out)
    return {model: _latency(values) for model, values in out.items()}


def not_answered_by_model(conn: Connection, scope: Scope) -> list[tuple[str, str, str | None, int]]:
    split = _split(conn, scope)
    if split is None:
        return ranges.not_answered_by_model(conn, scope)
    counts: Counter[tuple[str, str, str | None]] = Counter()
    for part in split.raw:
        for model, outcome, kind, rows in ranges.not_answered_by_model(conn, part):
            counts[(model, outcome, kind)] += rows
    for rolled in split.rolled:
        for model, outcome, kind, rows in rollups.not_answered(conn, rolled, scope):
            counts[(model, outcome, kind)] += rows
    return [(*key, rows) for key, rows in counts.items()]


def failure_kinds(conn: Connection, scope: Scope, outcomes: Sequence[str]) -> dict[str, int]:
    split = _split(conn, scope)
    if split is None:
        return ranges.failure_kinds(conn, scope, outcomes)
    counts: Counter[str] = Counter()
    for part in split.raw:
        counts.update(ranges.failure_kinds(conn, part, outcomes))
    for rolled in split.rolled:
        counts.update(rollups.failure_kinds(conn, rolled, scope, outcomes))
    return dict(counts.most_common())


def task_depths(conn: Connection, scope: Scope, positions: int) -> dict[str, TaskDepth]:
    split = _split(conn, scope)
    if split is None:
        return ranges.task_depths(conn, scope, positions)
    positions = max(positions, 1)
    found: list[dict[str, TaskDepth]] = [ranges.task_depths(conn, part, positions) for part in split.raw]
    found += [rollups.task_depths(conn, rolled, scope, positions) for rolled in split.rolled]
    out: dict[str, TaskDepth] = {}
    for depths in found:
        for task, depth in depths.items():
            have = out.get(task)
            out[task] = (
                depth
                if have is None
                else TaskDepth(
                    have.requests + depth.requests,
                    have.answered + depth.answered,
                    tuple(a + b for a, b in zip(have.by_position, depth.by_position, strict=True)),
                )
            )
    return out


def deprecation_evidence(conn: Connection, scope: Scope) -> dict[tuple[str, str], Evidence]:
    split = _split(conn, scope)
    if split is None:
        return ranges.deprecation_evidence(conn, scope)
    pieces = [ranges.deprecation_evidence(conn, part) for part in split.raw]
    pieces += [rollups.deprecation_evidence(conn, rolled, scope) for rolled in split.rolled]
    grouped: defaultdict[tuple[str, str], list[Evidence]] = defaultdict(list)
    for piece in pieces:
        for key, evidence in piece.items():
            grouped[key].append(evidence)
    return {
        key: reduce(lambda a, b: Evidence(a.rows + b.rows, min(a.first, b.first), max(a.last, b.last)), found)
        for key, found in grouped.items()
    }


# The tier of the rows read from the rollups, which do not keep it.
ROLLED_UP = "rolled up"


@dataclass(frozen=True, slots=True)
class SpendReport:
    by_tier: dict[tuple[str, str | None], Spend]  # (task, tier) -> Spend; tier None: no tier, ROLLED_UP: not kept
    saved_known: bool  # False when some hours come from rollups that do not keep saved_usd (an older store)


def spend(conn: Connection, scope: Scope) -> SpendReport:
    """What each task's rows cost and saved per tier, over the range: raw rows by tier, the hours read from the
    rollups (rollups.py says which) as one ROLLED_UP tier per task."""
    split = _split(conn, scope)
    if split is None:
        return SpendReport(ranges.spend_by_tier(conn, scope), True)
    out: defaultdict[tuple[str, str | None], Spend] = defaultdict(Spend)
    for part in split.raw:
        for key, found in ranges.spend_by_tier(conn, part).items():
            out[key] += found
    for rolled in split.rolled:
        for task, found in rollups.spend_by_task(conn, rolled, scope).items():
            out[(task, ROLLED_UP)] += found
    return SpendReport(dict(out), not split.rolled or "saved_usd" in rollups.columns(conn))


def raw_kept(conn: Connection, scope: Scope) -> Scope:
    """The part of the range whose raw rows are all kept: from the hour before which they may be pruned."""
    rolled = rollups.coverage(conn)
    if rolled is None or rolled.pruned_before is None:
        return scope
    kept = f"{rolled.pruned_before}:00:00.000Z"
    return scope if scope.start is not None and scope.start >= kept else scope.between(kept, scope.end)


def escalations(
    conn: Connection, scope: Scope, requests: dict[str, int] | None = None
) -> tuple[dict[str, int], dict[str, int], Scope]:
    """(escalated requests per task, requests per task, the range they cover): requests whose answer was refused
    and that another model then answered, which only the raw rows tell, over the part of the range they cover.
    `requests`: the whole range's requests per task, when the caller has counted them already."""
    kept = raw_kept(conn, scope)
    if kept.end is not None and kept.start is not None and kept.start >= kept.end:
        return {}, {}, kept
    if requests is None or kept != scope:
        requests = {task: depth.requests for task, depth in task_depths(conn, kept, 1).items()}
    return ranges.escalations(conn, kept), requests, kept

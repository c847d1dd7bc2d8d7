"""Adding the attempt log up into hourly and daily totals (`attempts_hourly`, `attempts_daily`), exactly once.

`rollup(conn)` adds every closed hour, and every row written late for an hour already rolled up, to both tables.
`rollup_state` keeps how far it went, as an hour and as the highest row id; each step reads in one snapshot, then
re-checks both under the write lock before it writes, so two processes rolling up the same file never count a row
twice. Sums add up in SQL (ON CONFLICT upserts, CASE sums: statements PostgreSQL reads too); latency histograms
are merged here (app/store/histogram.py). What differs between the backends is how a step knows which rows it may
count: each backend has its step (app/store/sqlite/rollup.py, app/store/postgres/rollup.py), which `run_rollup`
drives; `app.store.retention.rollup(conn)` picks the connection's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from app.clock import iso_millis
from app.store import histogram

if TYPE_CHECKING:
    from app.store.connection import Connection

STATE = "attempts"  # rollup_state's row for the attempts table
GRACE = timedelta(minutes=5)  # an hour counts as closed this long after its end: rows reach the file within ms
HOURS_PER_STEP = 24  # hours added per write: a backlog (a first run on a big file) goes in bounded steps

_KEY = "task_type, model, attempt, outcome, error_kind"
_SUMS = (
    "row_count",
    "first_calls",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost_usd",
    "priced_rows",
    "latency_ms_sum",
    "latency_count",
    "first_token_count",
    "saved_usd",
    "cache_hits",
)
_GROUP = (
    "SUBSTR(created_at, 1, 13), COALESCE(task_type, ''), COALESCE(model, ''), COALESCE(attempt, 0), "
    "COALESCE(outcome, ''), COALESCE(error_kind, '')"
)
_AGGREGATE = f"""
    SELECT {_GROUP}, COUNT(*), SUM(CASE WHEN COALESCE(retry, 0) = 0 THEN 1 ELSE 0 END),
           COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), COALESCE(SUM(total_tokens), 0),
           COALESCE(SUM(cost_usd), 0), COUNT(cost_usd), COALESCE(SUM(latency_ms), 0), COUNT(latency_ms),
           COUNT(first_token_ms), COALESCE(SUM(saved_usd), 0), SUM(CASE WHEN outcome = 'cache_hit' THEN 1 ELSE 0 END),
           MIN(created_at), MAX(created_at)
    FROM attempts WHERE {{where}} GROUP BY 1, 2, 3, 4, 5, 6"""
# Whole milliseconds, as the dashboard's raw percentiles take them (the step's `whole_ms`: each backend truncates in
# its own words). The buckets are applied in Python: every reader and writer then agrees on their edges.
_HISTOGRAM = f"""
    SELECT {_GROUP}, {{whole}}, COUNT(*) FROM attempts
    WHERE {{where}} AND {{column}} IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6, 7"""


def hour_key(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H")


def hour_start(key: str) -> datetime:
    return datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=UTC)


def iso(moment: datetime) -> str:
    return iso_millis(moment.timestamp())


class Group:
    """One rollup row being built: the sums in _SUMS order, the first and last created_at, two histograms."""

    __slots__ = ("first_at", "first_token", "last_at", "latency", "sums")

    def __init__(self) -> None:
        self.sums = [0] * len(_SUMS)
        self.first_at = self.last_at = ""
        self.latency: Counter[int] = Counter()
        self.first_token: Counter[int] = Counter()

    def add(self, sums: Iterable[Any], first_at: str, last_at: str) -> None:
        self.sums = [a + b for a, b in zip(self.sums, sums, strict=True)]
        self.first_at = min(self.first_at or first_at, first_at)
        self.last_at = max(self.last_at, last_at)

    def absorb(self, other: Group) -> None:
        self.add(other.sums, other.first_at, other.last_at)
        self.latency.update(other.latency)
        self.first_token.update(other.first_token)


Key = tuple[str, str, str, int, str, str]  # (period, task_type, model, attempt, outcome, error_kind)


def aggregate(
    conn: Connection, where: str, params: tuple[Any, ...], groups: dict[Key, Group], *, whole_ms: Callable[[str], str]
) -> int:
    """Add the rows matching `where` to `groups`, per hour; returns how many rows that was. `whole_ms`: the
    backend's expression for a column in whole milliseconds, truncated (Dialect.whole_ms)."""
    rows = 0
    end = 6 + len(_SUMS)
    for r in conn.execute(_AGGREGATE.format(where=where), params):
        key: Key = tuple(r[:6])
        groups.setdefault(key, Group()).add(r[6:end], r[end], r[end + 1])
        rows += r[6]
    for column, attr in (("latency_ms", "latency"), ("first_token_ms", "first_token")):
        for r in conn.execute(_HISTOGRAM.format(where=where, column=column, whole=whole_ms(column)), params):
            getattr(groups[tuple(r[:6])], attr)[histogram.bucket_of(r[6])] += r[7]
    return rows


# -- the state -------------------------------------------------------------------------------------------------


def read_state(conn: Connection) -> tuple[str | None, int]:
    """(through_hour, max_id): every hour before through_hour and every row up to max_id is rolled up. (None, 0)
    before the first rollup."""
    row = conn.execute("SELECT through_hour, max_id FROM rollup_state WHERE name = ?", (STATE,)).fetchone()
    return (row[0], row[1]) if row else (None, 0)


def _write_state(conn: Connection, through: str, max_id: int, now: datetime) -> None:
    conn.execute(
        """INSERT INTO rollup_state (name, through_hour, max_id, rolled_at) VALUES (?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET through_hour = excluded.through_hour,
                                                     max_id = excluded.max_id, rolled_at = excluded.rolled_at""",
        (STATE, through, max_id, iso(now)),
    )


# -- rollup ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RollupReport:
    hours: int  # closed hours newly rolled up
    rows: int  # raw rows added to the rollups, late ones included
    late_rows: int  # of which rows written after their hour had been rolled up
    through_hour: str | None  # every hour before this one is in the rollups


# One step of a rollup: (conn, closed hour, hours per step, now) -> (hours, rows, late rows), or None when there is
# nothing to do.
Step = Callable[[Any, str, int, datetime], tuple[int, int, int] | None]


def run_rollup(
    conn: Connection,
    step_of: Step,
    *,
    now: datetime | None = None,
    hours_per_step: int = HOURS_PER_STEP,
    dry_run: bool = False,
) -> RollupReport:
    """Bring the rollups up to date with every closed hour, one backend's `step_of` at a time. Idempotent: what is
    rolled up is never added again. `conn` must not be inside a transaction. `dry_run`: what it would add, writing
    nothing."""
    now = now or datetime.now(UTC)
    closed = hour_key(now - GRACE)  # hours before this one are closed
    if dry_run:
        return _pending(conn, closed)
    hours = rows = late = 0
    while (step := step_of(conn, closed, hours_per_step, now)) is not None:
        hours, rows, late = hours + step[0], rows + step[1], late + step[2]
        if step[0] == 0:
            # Only late rows (or another process's step) this time: more may keep coming (a host whose clock runs
            # behind writes into closed hours all the time), so they wait for the next run instead of holding
            # this one for ever.
            break
    return RollupReport(hours, rows, late, read_state(conn)[0])


def step_span(
    conn: Connection, through: str | None, max_id: int, newest: int, closed: str, max_hours: int
) -> tuple[str, str, bool] | None:
    """What one rollup step takes, the same on every backend: (start, end, late_due), the closed hours from the last
    one done (at most `max_hours`) and whether rows arrived late for hours already done; None when there is nothing."""
    start = start_of(conn, through)
    if start is None:
        return None
    end = min(closed, hour_key(hour_start(start) + timedelta(hours=max_hours)))
    late_due = through is not None and newest > max_id
    if start >= end and not late_due:
        return None
    return start, end, late_due


def start_of(conn: Connection, through: str | None) -> str | None:
    if through is not None:
        return through
    first = conn.execute("SELECT MIN(created_at) FROM attempts").fetchone()[0]
    return first[:13] if first else None


def _pending(conn: Connection, closed: str) -> RollupReport:
    through, max_id = read_state(conn)
    start = start_of(conn, through)
    if start is None or start >= closed:
        return RollupReport(0, 0, 0, through)
    hours = int((hour_start(closed) - hour_start(start)).total_seconds() // 3600)
    rows = conn.execute(
        "SELECT COUNT(*) FROM attempts WHERE created_at >= ? AND created_at < ?", (start, closed)
    ).fetchone()[0]
    late = (
        conn.execute("SELECT COUNT(*) FROM attempts WHERE id > ? AND created_at < ?", (max_id, through)).fetchone()[0]
        if through
        else 0
    )
    return RollupReport(hours, rows + late, late, closed)


def write_step(conn: Connection, groups: dict[Key, Group], through: str, max_id: int, now: datetime) -> None:
    """Inside the caller's write transaction: the hours' groups, the same added up per day, and the new state."""
    days: dict[Key, Group] = {}
    for key, group in groups.items():
        days.setdefault((key[0][:10], *key[1:]), Group()).absorb(group)
    _upsert(conn, "attempts_hourly", "hour", groups)
    _upsert(conn, "attempts_daily", "day", days)
    _write_state(conn, through, max_id, now)


def _upsert(conn: Connection, table: str, period: str, groups: dict[Key, Group]) -> None:
    """Add the groups to the table: sums add up in SQL; histograms are merged here with the stored ones."""
    if not groups:
        return
    stored: dict[Key, tuple[str | None, str | None]] = {}
    periods = sorted({key[0] for key in groups})
    for i in range(0, len(periods), 500):
        chunk = periods[i : i + 500]
        for r in conn.execute(
            f"SELECT {period}, {_KEY}, latency_hist, first_token_hist FROM {table} "
            f"WHERE {period} IN ({', '.join('?' for _ in chunk)})",
            chunk,
        ):
            stored[tuple(r[:6])] = (r[6], r[7])
    params = []
    for key, group in groups.items():
        latency, first_token = stored.get(key, (None, None))
        histogram.merge_into(group.latency, latency)
        histogram.merge_into(group.first_token, first_token)
        params.append(
            (
                *key,
                *group.sums,
                histogram.encode(group.latency),
                histogram.encode(group.first_token),
                group.first_at,
                group.last_at,
            )
        )
    added = ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in _SUMS)
    conn.executemany(
        f"""INSERT INTO {table} ({period}, {_KEY}, {", ".join(_SUMS)}, latency_hist, first_token_hist, first_at,
                                 last_at)
            VALUES ({", ".join("?" for _ in range(6 + len(_SUMS) + 4))})
            ON CONFLICT ({period}, {_KEY}) DO UPDATE SET {added},
                latency_hist = excluded.latency_hist, first_token_hist = excluded.first_token_hist,
                first_at = CASE WHEN excluded.first_at < {table}.first_at THEN excluded.first_at
                                ELSE {table}.first_at END,
                last_at = CASE WHEN excluded.last_at > {table}.last_at THEN excluded.last_at
                               ELSE {table}.last_at END""",
        params,
    )

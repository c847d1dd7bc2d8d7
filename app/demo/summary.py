"""The end-of-run report, computed from the attempts table (what was really logged), not from memory."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from app.store import epoch_from_iso


@dataclass(frozen=True, slots=True)
class Stat:
    """One table row. For a task a request is the unit; for a model, a call (skips are counted apart)."""

    name: str
    requests: int
    succeeded: int
    fallback: int  # task: answered by a model other than the chain's first; model: answered as a fallback
    p50_ms: float | None
    p95_ms: float | None
    tokens: int
    cost_usd: float
    skipped: int = 0
    retries: int = 0  # calls that retried a model already called in the same request
    hedges: int = 0  # calls started beside a slow one (HEDGE_AFTER_MS)

    @property
    def success_pct(self) -> float:
        return 100.0 * self.succeeded / self.requests if self.requests else 0.0

    @property
    def fallback_pct(self) -> float:
        return 100.0 * self.fallback / self.requests if self.requests else 0.0


@dataclass
class Summary:
    db_path: Path
    first_id: int  # rows with a larger id belong to this run
    requests: int = 0
    answered: int = 0
    all_failed: int = 0
    attempts: int = 0
    tasks: list[Stat] = field(default_factory=list)
    models: list[Stat] = field(default_factory=list)
    failures: dict[str, Counter[str]] = field(default_factory=dict)  # model -> error_kind -> count
    model_status: list[dict[str, Any]] = field(default_factory=list)
    retried_requests: int = 0  # requests that made at least one retry
    answered_by_retry: int = 0
    hedges_won: int = 0
    streams: int = 0  # calls that were streamed and reached their first token
    streams_interrupted: int = 0
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None

    @property
    def retries(self) -> int:
        return sum(s.retries for s in self.tasks)

    @property
    def hedges(self) -> int:
        return sum(s.hedges for s in self.tasks)

    def to_dict(self) -> dict[str, Any]:
        row = lambda s: {**asdict(s), "success_pct": s.success_pct, "fallback_pct": s.fallback_pct}  # noqa: E731
        return {
            "db_path": str(self.db_path),
            "requests": self.requests,
            "answered": self.answered,
            "all_failed": self.all_failed,
            "attempts": self.attempts,
            "retries": self.retries,
            "retried_requests": self.retried_requests,
            "answered_by_retry": self.answered_by_retry,
            "hedges": self.hedges,
            "hedges_won": self.hedges_won,
            "streams": self.streams,
            "streams_interrupted": self.streams_interrupted,
            "ttft_p50_ms": self.ttft_p50_ms,
            "ttft_p95_ms": self.ttft_p95_ms,
            "tasks": [row(s) for s in self.tasks],
            "models": [row(s) for s in self.models],
            "failures": {m: dict(c) for m, c in self.failures.items()},
            "model_status": self.model_status,
        }


def last_attempt_id(db_path: Path) -> int:
    """The attempts table's highest id before a run, so the summary covers only that run's rows."""
    if not db_path.exists():
        return 0
    conn = sqlite3.connect(db_path)
    try:
        return int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM attempts").fetchone()[0])
    except sqlite3.OperationalError:  # a database without the table yet
        return 0
    finally:
        conn.close()


def summarize(db_path: Path, first_id: int = 0, since_iso: str = "") -> Summary:
    conn = sqlite3.connect(db_path)
    conn.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in conn.execute("SELECT * FROM attempts WHERE id > ? ORDER BY id", (first_id,))]
        status = [
            dict(r)
            for r in conn.execute(
                "SELECT model, status, detail, until, first_seen, last_seen, hits FROM model_status "
                "WHERE last_seen >= ? AND status != 'cleared' ORDER BY model",
                (since_iso,),
            )
        ]
    finally:
        conn.close()
    summary = Summary(db_path, first_id, model_status=status)
    by_request: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_request[row["request_id"]].append(row)
    summary.requests = len(by_request)
    summary.attempts = sum(1 for r in rows if r["outcome"] != "skipped")
    summary.tasks = _task_stats(by_request)
    summary.models = _model_stats(rows)
    summary.answered = sum(s.succeeded for s in summary.tasks)
    summary.all_failed = summary.requests - summary.answered
    for row in rows:
        if row["error_kind"]:
            summary.failures.setdefault(row["model"], Counter())[row["error_kind"]] += 1
    first_tokens = [r["first_token_ms"] for r in rows if r.get("first_token_ms") is not None]
    summary.streams = len(first_tokens)
    summary.streams_interrupted = sum(1 for r in rows if r["error_kind"] == "stream_interrupted")
    summary.ttft_p50_ms, summary.ttft_p95_ms = percentile(first_tokens, 50), percentile(first_tokens, 95)
    for attempts in by_request.values():
        win = next((a for a in attempts if a["outcome"] == "success"), None)
        summary.retried_requests += any(a["retry"] for a in attempts)
        summary.answered_by_retry += bool(win and win["retry"])
        summary.hedges_won += bool(win and win["hedged"])
    return summary


def _task_stats(by_request: dict[str, list[dict[str, Any]]]) -> list[Stat]:
    grouped: dict[str, list[list[dict[str, Any]]]] = defaultdict(list)
    for attempts in by_request.values():
        grouped[attempts[0]["task_type"]].append(attempts)
    stats = []
    for task in sorted(grouped):
        requests = grouped[task]
        wins = [next((a for a in r if a["outcome"] == "success"), None) for r in requests]
        latencies = [_span_ms(r) for r, w in zip(requests, wins, strict=True) if w]
        stats.append(
            Stat(
                name=task,
                requests=len(requests),
                succeeded=sum(1 for w in wins if w),
                fallback=sum(1 for w in wins if w and w["attempt"] > 1),
                p50_ms=percentile(latencies, 50),
                p95_ms=percentile(latencies, 95),
                tokens=sum(a["total_tokens"] or 0 for r in requests for a in r),
                cost_usd=sum(a["cost_usd"] or 0.0 for r in requests for a in r),
                retries=sum(1 for r in requests for a in r if a["retry"] and a["outcome"] != "skipped"),
                hedges=sum(1 for r in requests for a in r if a["hedged"]),
            )
        )
    return stats


def _span_ms(attempts: list[dict[str, Any]]) -> float:
    """A request's latency from its rows: from the start of its first call to the end of its last. Calls may
    overlap (hedges) and backoffs lie between them, so the sum of call latencies would be wrong both ways."""
    ends = [epoch_from_iso(a["created_at"]) or 0.0 for a in attempts]
    starts = [end - (a["latency_ms"] or 0.0) / 1000 for end, a in zip(ends, attempts, strict=True)]
    return (max(ends) - min(starts)) * 1000


def _model_stats(rows: list[dict[str, Any]]) -> list[Stat]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        grouped[row["model"]].append(row)
    stats = []
    for model, attempts in grouped.items():
        calls = [a for a in attempts if a["outcome"] != "skipped"]
        wins = [a for a in calls if a["outcome"] == "success"]
        latencies = [a["latency_ms"] for a in calls if a["latency_ms"] is not None]
        stats.append(
            Stat(
                name=model,
                requests=len(calls),
                succeeded=len(wins),
                fallback=sum(1 for a in wins if a["attempt"] > 1),
                p50_ms=percentile(latencies, 50),
                p95_ms=percentile(latencies, 95),
                tokens=sum(a["total_tokens"] or 0 for a in calls),
                cost_usd=sum(a["cost_usd"] or 0.0 for a in calls),
                skipped=len(attempts) - len(calls),
            )
        )
    return sorted(stats, key=lambda s: (-s.requests, s.name))


def percentile(values: list[float], pct: float) -> float | None:
    """Nearest rank: always a value that was really observed."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


_HEAD = ("REQUESTS", "SUCCESS", "FALLBACK", "P50 MS", "P95 MS", "TOKENS", "COST USD")
_TASK_EXTRA = ("RETRIES", "HEDGES")


def render(summary: Summary) -> str:
    lines = [
        f"{_n(summary.requests, 'request')}, {summary.answered} answered, {summary.all_failed} failed on every "
        f"model; {_n(summary.attempts, 'provider call')} logged",
        "",
    ]
    lines += _table("TASK", summary.tasks, skipped=False)
    lines += [
        "",
        "  (task latency: answered requests, first call to answer; fallback: answered by a later model;",
        "   RETRIES: calls to a model the request had called before; HEDGES: calls started beside a slow one)",
        "",
    ]
    lines += _table("MODEL", summary.models, skipped=True)
    lines += ["", "  (model: REQUESTS are calls; SKIPPED were not called: cooling down, circuit open or deprecated)"]
    lines += [
        "",
        f"retries: {_n(summary.retries, 'call')} in {_n(summary.retried_requests, 'request')}, "
        f"{_n(summary.answered_by_retry, 'request')} answered by a retry; hedges: {summary.hedges} started, "
        f"{summary.hedges_won} won (the slower call cancelled, logged hedge_lost)",
    ]
    lines += [
        f"streams: {_n(summary.streams, 'call')} reached their first token (time to first token p50 "
        f"{_ms(summary.ttft_p50_ms)} ms, p95 {_ms(summary.ttft_p95_ms)} ms), {summary.streams_interrupted} "
        "interrupted after it"
    ]
    if summary.failures:
        lines += ["", "failures and skips by kind:"]
        for model, kinds in sorted(summary.failures.items()):
            lines.append(f"  {model}: " + ", ".join(f"{k} {n}" for k, n in kinds.most_common()))
    if summary.model_status:
        lines += ["", "model_status (what the router now knows; other processes sharing the database see it too):"]
        for row in summary.model_status:
            until = "for good" if row["until"] is None else f"until {row['until']}"
            lines.append(
                f"  {row['model']}: {row['status']} {until} ({_n(row['hits'], 'mark')}): {_short(row['detail'])}"
            )
    return "\n".join(lines)


def _table(first: str, stats: list[Stat], *, skipped: bool) -> list[str]:
    head = (first, *_HEAD, *(("SKIPPED",) if skipped else _TASK_EXTRA))
    cells = [head]
    for s in stats:
        row = (
            s.name,
            str(s.requests),
            f"{s.success_pct:.1f}%",
            f"{s.fallback_pct:.1f}%",
            _ms(s.p50_ms),
            _ms(s.p95_ms),
            f"{s.tokens:,}",
            f"{s.cost_usd:.6f}",
        )
        cells.append(row + ((str(s.skipped),) if skipped else (str(s.retries), str(s.hedges))))
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return [
        "  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]


def _n(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _short(text: str | None, limit: int = 80) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"

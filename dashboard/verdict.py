"""The "right now" verdict of a task or a model: its last minutes against its own usual error rate. Pure functions.

A model is judged on its calls (answers and failed calls; calls the router or the caller cut short are left out),
a task on its requests (answered or not). Each against the same measure over the day before, so a model that
always fails 3 % is not flagged for failing 3 % tonight, and one that usually never fails is flagged at 6 %.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard.queries import Health

OK = "OK"
DEGRADED = "degraded"
DOWN = "down"
IDLE = "idle"  # nothing in the window: not a fault by itself, but traffic that stopped shows here
SEVERITY = {DOWN: 3, DEGRADED: 2, IDLE: 1, OK: 0}

# Degraded: the error rate is above both of these. The floor keeps a few failures among a handful of calls, or a
# model that usually never fails, from being flagged at 1 %.
TIMES_USUAL = 2.0
FLOOR = 0.05


@dataclass(frozen=True, slots=True)
class Verdict:
    state: str
    total: int  # calls (model) or requests (task) in the window
    bad: int  # failed calls, or requests no model answered
    usual_rate: float | None  # over the day before; None without traffic then
    reason: str

    @property
    def rate(self) -> float | None:
        return self.bad / self.total if self.total else None


def _judge(total: int, bad: int, usual_total: int, usual_bad: int, noun: str, skipped: int = 0) -> Verdict:
    usual = usual_bad / usual_total if usual_total else None
    if total == 0:
        if skipped:
            return Verdict(DOWN, 0, 0, usual, f"not called: skipped {skipped:,} times by the router")
        since = f"; usually {usual_total:,} in 24 h" if usual_total else ""
        return Verdict(IDLE, 0, 0, usual, f"no {noun}s{since}")
    rate = bad / total
    if bad == total:
        return Verdict(DOWN, total, bad, usual, f"every {noun} failed ({bad:,} of {total:,})")
    threshold = max(TIMES_USUAL * (usual or 0.0), FLOOR)
    if rate > threshold:
        usual_text = f"usual {usual:.1%}" if usual is not None else "no traffic the day before"
        return Verdict(DEGRADED, total, bad, usual, f"{rate:.1%} failed ({usual_text})")
    return Verdict(OK, total, bad, usual, "")


def model_verdict(now: Health, usual: Health) -> Verdict:
    return _judge(now.calls, now.failures, usual.calls, usual.failures, "call", now.skipped)


def task_verdict(now: Health, usual: Health) -> Verdict:
    """Requests that started in the window; one still under way at its end counts as not answered."""
    return _judge(
        now.requests,
        max(now.requests - now.answered, 0),
        usual.requests,
        max(usual.requests - usual.answered, 0),
        "request",
    )


def worst(verdicts: list[Verdict]) -> str:
    return max((v.state for v in verdicts), key=SEVERITY.__getitem__, default=OK)

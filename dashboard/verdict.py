"""The "right now" verdict of a task or a model: its last minutes against its own usual error rate. Pure functions.

A model is judged on its calls (answers and failed calls; calls the router or the caller cut short are left out),
a task on its requests (answered or not). Each against the same measure over the day before, so a model that
always fails 3 % is not flagged for failing 3 % tonight, and one that usually never fails is flagged at 6 %.
"""

from __future__ import annotations

from dataclasses import dataclass

from dashboard import fmt
from dashboard.queries import Health, Latency
from dashboard.words import CIRCUIT_OPEN, COOLING_DOWN, DEPRECATED, DISABLED, NOT_FOUND

OK = "OK"
DEGRADED = "degraded"
DOWN = "down"
IDLE = "idle"  # nothing in the window: not a fault by itself, but traffic that stopped shows here
# DISABLED (words.py): an operator took the model out of rotation; no traffic is expected, so it is not "idle".
SEVERITY = {DOWN: 3, DEGRADED: 2, DISABLED: 1, IDLE: 1, OK: 0}

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


def model_verdict(now: Health, usual: Health, *, disabled: str | None = None) -> Verdict:
    """`disabled`: the detail of a disable override in effect; the model then reads "disabled", not idle or down
    (its skips are the override's doing)."""
    if disabled is not None:
        usual_rate = usual.failures / usual.calls if usual.calls else None
        return Verdict(DISABLED, now.calls, now.failures, usual_rate, disabled)
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


# -- why: the fact that explains a verdict --------------------------------------------------------------------

# A model state that keeps the router from calling it, in the words of the explanation.
_CANNOT = {
    DISABLED: "is disabled",
    CIRCUIT_OPEN: "has its circuit open",
    COOLING_DOWN: "is cooling down",
    DEPRECATED: "is retired (deprecated)",
    NOT_FOUND: "is not found at the provider",
}


@dataclass(frozen=True, slots=True)
class Force:
    """A force in effect: `task` None means every task."""

    model: str
    task: str | None
    source: str


def forced_but_unusable(forces: list[Force], states: dict[str, tuple[str, str]]) -> list[str]:
    """One sentence per force whose only model the router cannot call: with no fallback, nothing can answer."""
    out = []
    for force in forces:
        state, detail = states.get(force.model, ("", ""))
        if state not in _CANNOT:
            continue
        scope = "every task" if force.task is None else f"task {force.task}"
        until = f" ({detail})" if detail else ""
        out.append(
            f"The only forced model for {scope}, {force.model} ({force.source}), {_CANNOT[state]}{until}: "
            f"nothing can answer {scope}. End the force or lift the mark."
        )
    return out


def top_failure(model: str, verdict: Verdict, kinds: dict[str, int]) -> str:
    """A degraded or down model with its most frequent kind of failure (`kinds`: plain word -> failed calls):
    `openai/x: 5 of 6 calls failed in the last 15 minutes, mostly rate limited (4)`."""
    most = max(kinds.items(), key=lambda kv: (kv[1], kv[0]), default=None)
    mostly = f", mostly {most[0]} ({most[1]:,})" if most else ""
    return f"{model}: {verdict.bad:,} of {verdict.total:,} calls failed in the last 15 minutes{mostly}."


# -- slower than usual: each model's last hour against its own previous 24 hours -------------------------------

SLOWER_TIMES = 1.5  # the median grew by half...
SLOWER_FLOOR_MS = 100.0  # ...and by this much at least, so a 40 ms model is not flagged for reaching 70 ms
SLOWER_MIN_CALLS = 3  # in the last hour, and in the 24 hours before: a median of one call says little


@dataclass(frozen=True, slots=True)
class Pace:
    """One model's median latency and time to first token, last hour against its previous 24 hours."""

    model: str
    latency_now: float | None
    latency_usual: float | None
    ttft_now: float | None
    ttft_usual: float | None
    calls_now: int
    slower: bool
    why: str


def _grew(what: str, now: Latency | None, usual: Latency | None) -> str | None:
    """`what p50 X against Y usually` when the median grew past both thresholds, else None."""
    if now is None or usual is None or now.p50 is None or usual.p50 is None:
        return None
    if now.count < SLOWER_MIN_CALLS or usual.count < SLOWER_MIN_CALLS:
        return None
    if now.p50 > usual.p50 * SLOWER_TIMES and now.p50 - usual.p50 >= SLOWER_FLOOR_MS:
        return f"{what} p50 {fmt.ms(now.p50)} against {fmt.ms(usual.p50)} usually"
    return None


def pace(
    model: str,
    latency: tuple[Latency | None, Latency | None],
    ttft: tuple[Latency | None, Latency | None],
) -> Pace:
    """`latency` and `ttft`: (last hour, previous 24 hours) of the model's answered calls."""
    (lat_now, lat_usual), (ttft_now, ttft_usual) = latency, ttft
    found = (_grew("latency", lat_now, lat_usual), _grew("time to first token", ttft_now, ttft_usual))
    reasons = [r for r in found if r]
    return Pace(
        model,
        lat_now.p50 if lat_now else None,
        lat_usual.p50 if lat_usual else None,
        ttft_now.p50 if ttft_now else None,
        ttft_usual.p50 if ttft_usual else None,
        lat_now.count if lat_now else 0,
        bool(reasons),
        "; ".join(reasons),
    )

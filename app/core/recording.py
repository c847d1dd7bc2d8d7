"""One request's attempts: the records the caller gets back, and the rows the attempt log receives."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from app.providers import ProviderResponse
from app.registry.chain import Candidate, Chain
from app.store import AttemptLog, AttemptRow, utc_now_iso
from app.types import AttemptRecord, ErrorKind, Outcome

MAX_MESSAGE_CHARS = 2000


class _RequestIds:
    """32 hex digits like a uuid4's, as a random per-process prefix and a counter: a fifth of uuid4's cost, and
    ids that sort by time within a process, so the attempt log's request_id index grows at its end instead of
    splitting pages at random (a few microseconds per row on the writer)."""

    def __init__(self) -> None:
        self.reseed()
        os.register_at_fork(after_in_child=self.reseed)  # a forked child must not repeat its parent's ids

    def reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._counter = itertools.count()

    def next(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds().next


@dataclass(slots=True)
class RequestLog:
    request_id: str
    chain: Chain
    variant: str | None
    log: AttemptLog | None
    prompt: str | None = None  # JSON of the messages, only with LOG_CONTENT=true
    log_content: bool = False
    records: list[AttemptRecord] = field(default_factory=list)

    def add(
        self,
        position: int,
        candidate: Candidate,
        outcome: Outcome,
        *,
        provider: str = "groq",
        kind: ErrorKind | None = None,
        status: int | None = None,
        message: str | None = None,
        latency_ms: float | None = None,
        result: ProviderResponse | None = None,
        cost: float | None = None,
        retry: int = 0,
        hedged: bool = False,
        first_token_ms: float | None = None,
    ) -> None:
        """`cost` is what the attempt was billed: None when the price is unknown, 0.0 for an unbilled failure."""
        self.records.append(AttemptRecord(
            model=candidate.model, outcome=outcome, attempt=position, error_kind=kind, status_code=status,
            message=message, latency_ms=latency_ms, is_fallback=candidate.is_fallback, provider=provider, retry=retry))
        if self.log is None:
            return
        called = outcome is not Outcome.SKIPPED
        usage = result.usage if result is not None else None
        # A skipped model's token counts are unknown (NULL); a call that failed without an answer used none (0).
        no_tokens = 0 if called else None
        self.log.record(AttemptRow(
            request_id=self.request_id,
            task_type=self.chain.task_type,
            model=candidate.model,
            provider=provider,
            attempt=position,
            outcome=outcome.value,
            error_kind=kind.value if kind else None,
            status_code=status,
            error_message=message[:MAX_MESSAGE_CHARS] if message else None,
            is_fallback=int(candidate.is_fallback),
            forced=int(self.chain.forced),
            prompt_tokens=usage.prompt_tokens if usage else no_tokens,
            completion_tokens=usage.completion_tokens if usage else no_tokens,
            total_tokens=usage.total_tokens if usage else no_tokens,
            latency_ms=latency_ms,
            cost_usd=cost,
            created_at=utc_now_iso(),
            cached_tokens=usage.cached_tokens if usage else None,
            reasoning_tokens=usage.reasoning_tokens if usage else None,
            variant=self.variant,
            finish_reason=result.finish_reason if result is not None else None,
            provider_request_id=result.provider_request_id if result is not None else None,
            prompt=self.prompt if called else None,
            response=result.content if result is not None and self.log_content else None,
            retry=retry,
            hedged=int(hedged),
            first_token_ms=first_token_ms,
            override_source=self.chain.override_source,
        ))

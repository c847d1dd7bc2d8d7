"""One request's attempts: the records the caller gets back, and the rows the attempt log receives."""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass, field

from app.providers import ProviderResponse
from app.registry.chain import Candidate, Chain
from app.store import AttemptLog, AttemptRow, utc_now_iso
from app.types import AttemptRecord, ErrorKind, Outcome, new_record

MAX_MESSAGE_CHARS = 2000
_new_row = AttemptRow._make  # from a tuple already in column order


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
        self.records.append(new_record(candidate.model, outcome, position, kind, status, message, latency_ms,
                                       candidate.is_fallback, provider, retry))
        if self.log is None:
            return
        called = outcome is not Outcome.SKIPPED
        none_if_skipped = 0 if called else None
        # Positional, in AttemptRow's column order: a hot-path trick kept because building the row, the record and
        # the response by name grew the router's own instructions per call by more than 5 % (bench/RESULTS.md).
        row: tuple[object, ...]
        if result is None:
            row = (self.request_id, self.chain.task_type, candidate.model, provider, position, outcome.value,
                   kind.value if kind else None, status, message[:MAX_MESSAGE_CHARS] if message else None,
                   int(candidate.is_fallback), int(self.chain.forced), none_if_skipped, none_if_skipped,
                   none_if_skipped, latency_ms, cost, utc_now_iso(), None, None, self.variant, None, None,
                   self.prompt if called else None, None, retry, int(hedged), first_token_ms,
                   self.chain.override_source)
        else:
            usage = result.usage
            row = (self.request_id, self.chain.task_type, candidate.model, provider, position, outcome.value,
                   kind.value if kind else None, status, message[:MAX_MESSAGE_CHARS] if message else None,
                   int(candidate.is_fallback), int(self.chain.forced), usage.prompt_tokens, usage.completion_tokens,
                   usage.total_tokens, latency_ms, cost, utc_now_iso(), usage.cached_tokens,
                   usage.reasoning_tokens, self.variant, result.finish_reason, result.provider_request_id,
                   self.prompt, result.content if self.log_content else None, retry, int(hedged), first_token_ms,
                   self.chain.override_source)
        self.log.record(_new_row(row))

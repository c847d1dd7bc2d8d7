"""What a rollup and a prune report, whichever the backend, and the cutoff a retention sets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from app.store.rollup import RollupReport, hour_key, hour_start, iso

__all__ = ["MAX_RETENTION_DAYS", "PruneReport", "RollupReport", "cutoff_for"]

MAX_RETENTION_DAYS = 36_500  # a hundred years (ATTEMPTS_RETENTION_DAYS allows the same)


@dataclass(frozen=True, slots=True)
class PruneReport:
    path: str
    dry_run: bool
    retention_days: int
    cutoff: str  # raw rows created before this are removed (the start of the hour `retention_days` ago)
    rows_removed: int  # or, dry run, that would be
    removed_from: str | None  # created_at of the oldest and newest row removed
    removed_to: str | None
    oldest_kept: str | None  # the oldest raw row left
    hours_rolled_up: int  # closed hours added to the rollups first
    rolled_up_through: str | None
    batches: int
    longest_batch_ms: float  # the longest the write lock was held for one batch: what a writer may have waited
    size_before: int  # the database's size in bytes (its pages)
    size_after: int
    freed: int  # bytes of pages the removed rows occupied (dry run: an estimate from the average row)
    returned: int  # of which handed back to the disk (auto_vacuum = incremental); the rest is reused by new rows
    auto_vacuum: str  # incremental, or none (full: every delete shrinks the file at once); partitions: PostgreSQL

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def cutoff_for(retention_days: int, now: datetime) -> str:
    """The start of the hour `retention_days` ago: raw rows from whole hours only, so a range starting after it
    finds every raw row it needs."""
    if not 1 <= retention_days <= MAX_RETENTION_DAYS:
        raise ValueError(
            f"retention_days must be a whole number of days from 1 to {MAX_RETENTION_DAYS} (got "
            f"{retention_days}); to keep raw rows for ever, do not prune"
        )
    return iso(hour_start(hour_key(now - timedelta(days=retention_days))))

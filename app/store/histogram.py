"""Latency histograms for the rollups: fixed log-spaced buckets of milliseconds, stored as compact JSON text.

Histograms of any hours, tasks and models merge by adding their counts, so p50/p95/p99 over any range come from
the rollups without the raw rows. Buckets are exact up to LINEAR_MS, then each is RATIO times as wide as the one
before; a percentile read from them is the bucket's geometric middle, within (sqrt(RATIO) - 1) = 2 % of the
true value (plus the whole-millisecond truncation the raw queries make too). The bucket edges are computed here,
in Python, never in SQL, so every reader and writer agrees on them.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache

LINEAR_MS = 32  # below this, one bucket per millisecond: a 2 % bucket would be narrower than the 1 ms truncation
RATIO = 1.04  # a percentile read from the buckets is within sqrt(RATIO) - 1 of the truth
_LOG_RATIO = math.log(RATIO)


@lru_cache(maxsize=65_536)
def bucket_of(ms: int) -> int:
    """The bucket of a whole number of milliseconds (negative values count as 0)."""
    if ms < LINEAR_MS:
        return max(ms, 0)
    return LINEAR_MS + int(math.log(ms / LINEAR_MS) / _LOG_RATIO)


@lru_cache(maxsize=4_096)
def bucket_value(index: int) -> int:
    """The milliseconds a bucket stands for: itself below LINEAR_MS, else the geometric middle of its edges."""
    if index < LINEAR_MS:
        return index
    low = LINEAR_MS * RATIO ** (index - LINEAR_MS)
    return round(low * math.sqrt(RATIO))


def encode(histogram: Mapping[int, int]) -> str | None:
    """`{"40":3,"41":12}`, buckets in order; None for an empty histogram."""
    counts = {str(index): count for index, count in sorted(histogram.items()) if count}
    return json.dumps(counts, separators=(",", ":")) if counts else None


def decode(text: str | None) -> Counter[int]:
    if not text:
        return Counter()
    return Counter({int(index): count for index, count in json.loads(text).items()})


def merge_into(histogram: Counter[int], text: str | None) -> None:
    """Add an encoded histogram (a rollup row's) to `histogram`, without building another Counter."""
    if text:
        for index, count in json.loads(text).items():
            histogram[int(index)] += count


def as_values(histogram: Mapping[int, int]) -> Counter[int]:
    """Bucket indexes -> the milliseconds they stand for, ready to merge with exact whole-ms counts."""
    values: Counter[int] = Counter()
    for index, count in histogram.items():
        values[bucket_value(index)] += count
    return values


def percentiles(values: Mapping[int, int], ps: Sequence[int]) -> tuple[int | None, ...]:
    """Nearest rank over (ms -> count): for each p, the smallest ms whose running count reaches p % of all, as the
    dashboard's SQL computes it (cum * 100 >= p * n). None for each p when there is nothing."""
    total = sum(values.values())
    found: dict[int, int] = {}
    running = 0
    for ms, count in sorted(values.items()):
        running += count
        for p in ps:
            if p not in found and running * 100 >= p * total:
                found[p] = ms
        if len(found) == len(ps):
            break
    return tuple(found.get(p) for p in ps)

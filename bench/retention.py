"""Retention at scale: what a row costs on disk, what the rollups cost, and what a prune does to a writer and a
reader of the same file.

    python bench/retention.py                        # 1M rows over 30 days, keep 7 (a few minutes)
    python bench/retention.py --rows 20000 --keep-days 3    # small (the suite runs it)
    python bench/retention.py --rows 360000 --days 0.04167 --keep-days 1   # one hour at 100 requests/s

1. seed: --rows rows like the router's (bench/dashboard.py's traffic) over --days days, written the way the
   attempt log writes them (its multi-row INSERTs, 2,000-row transactions, every index maintained row by row);
   bytes per row, table and indexes (SQLite's dbstat), and the growth per day that makes at 10 and 100 requests/s.
2. rollup: the backlog of every closed hour (a first run on a file never rolled up), timed; the rollups' bytes per
   hour and per day of traffic.
3. prune: keep --keep-days days, while a writer thread records a row through the attempt log and flushes every
   50 ms (its latency: record() to flushed) and a reader runs the dashboard's "All time" totals every 250 ms;
   idle first, then during the prune. Rows removed per second, the longest batch, the file before and after.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.clock import utc_now_iso  # noqa: E402
from app.store import AttemptRow, get_attempt_log, open_database  # noqa: E402
from app.store.retention import BATCH_SECONDS, prune, rollup  # noqa: E402
from app.store.sqlite.rows import write_rows  # noqa: E402

WRITER_BATCH = 2_000  # the attempt log's rows per transaction
IDLE_SECONDS = 2.0
WRITE_EVERY, READ_EVERY = 0.05, 0.25


def _traffic() -> ModuleType:
    """bench/dashboard.py, by path: this folder's name would shadow the dashboard package."""
    spec = importlib.util.spec_from_file_location("bench_dashboard", ROOT / "bench" / "dashboard.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seed(path: Path, rows: int, days: int) -> float:
    db = open_database(path)
    started = time.perf_counter()
    batch: list[AttemptRow] = []
    for values in _traffic()._rows(rows, days, 7):
        batch.append(AttemptRow(*values))
        if len(batch) == WRITER_BATCH:
            write_rows(db, batch)
            batch = []
    write_rows(db, batch)
    db.conn.close()
    return time.perf_counter() - started


def sizes(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        return dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
    finally:
        conn.close()


def _ms(samples: list[float]) -> str:
    """p50 / p99 / max in ms."""
    if not samples:
        return "-"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1e3:.1f} / {p99 * 1e3:.1f} / {ordered[-1] * 1e3:.1f}"


class Probe:
    """A writer recording a row and flushing every WRITE_EVERY s, and a reader running the dashboard's All-time
    totals every READ_EVERY s, each latency filed under the phase it started in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.phase = "idle"
        self.writes: dict[str, list[float]] = {}
        self.reads: dict[str, list[float]] = {}
        self.written = 0
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write), threading.Thread(target=self._read)]

    def __enter__(self) -> Probe:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def _every(self, seconds: float, sample: Callable[[], None], into: dict[str, list[float]]) -> None:
        while not self._stop.is_set():
            phase, started = self.phase, time.perf_counter()
            sample()
            took = time.perf_counter() - started
            into.setdefault(phase, []).append(took)
            self._stop.wait(max(seconds - took, 0))

    def _write(self) -> None:
        log = get_attempt_log(self.path)

        def one() -> None:
            log.record(
                AttemptRow(
                    f"probe{self.written}",
                    "fast",
                    "probe/model",
                    "groq",
                    1,
                    "success",
                    None,
                    None,
                    None,
                    False,
                    False,
                    10,
                    5,
                    15,
                    100.0,
                    0.0,
                    utc_now_iso(),
                )
            )
            self.written += 1
            log.flush(30)

        one()  # the first opens the file (a quick_check reads every page, once per process): not a latency
        self._every(WRITE_EVERY, one, self.writes)

    def _read(self) -> None:
        from dashboard import queries

        conn = queries.connect(self.path)
        assert conn is not None
        try:
            self._every(READ_EVERY, lambda: queries.totals(conn, queries.Scope(None, None)) and None, self.reads)
        finally:
            conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=float, default=30, help="the rows are spread over this many days up to now")
    parser.add_argument("--keep-days", type=int, default=7, help="the prune keeps raw rows of this many days")
    parser.add_argument("--dir", type=Path, help="where to put the file (default: a temporary folder)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="taskrouter-retention-", dir=args.dir) as folder:
        path = Path(folder) / "retention.db"
        took = seed(path, args.rows, args.days)
        found = sizes(path)
        table = found["attempts"]
        indexes = sum(v for k, v in found.items() if k.startswith("idx_attempts_"))
        per_row = (table + indexes) / args.rows
        print(
            f"## 1. Seed: {args.rows:,} rows over {args.days:g} days through the attempt log's INSERTs, "
            f"{WRITER_BATCH:,}-row transactions ({args.rows / took:,.0f} rows/s)\n"
        )
        print(
            f"table {table / args.rows:.0f} B/row, indexes {indexes / args.rows:.0f} B/row, together "
            f"{per_row:.0f} B/row; file {os.path.getsize(path) / 1e6:,.1f} MB"
        )
        for rate in (10, 100):
            print(
                f"at {rate} requests/s ({rate * 86_400:,} rows a day, one attempt each): "
                f"{per_row * rate * 86_400 / 1e9:,.2f} GB a day"
            )

        db = open_database(path)
        started = time.perf_counter()
        rolled = rollup(db.conn)
        took = time.perf_counter() - started
        db.conn.close()
        found = sizes(path)
        hourly, daily = found.get("attempts_hourly", 0), found.get("attempts_daily", 0)
        print(
            f"\n## 2. Rollup of the backlog: {rolled.hours:,} hours, {rolled.rows:,} rows in {took:.1f} s "
            f"({rolled.rows / took:,.0f} rows/s)\n"
        )
        print(
            f"attempts_hourly {hourly / 1e6:.2f} MB = {hourly / rolled.hours:,.0f} B per hour; attempts_daily "
            f"{daily / 1e6:.2f} MB = {daily / max(rolled.hours / 24, 1):,.0f} B per day "
            f"({hourly / rolled.rows:.1f} + {daily / rolled.rows:.2f} B per raw row rolled up)"
        )

        with Probe(path) as probe:
            time.sleep(IDLE_SECONDS)  # the baseline: nothing but the probe running
            probe.phase = "prune"
            started = time.perf_counter()
            report = prune(path, args.keep_days)
            took = time.perf_counter() - started
            probe.phase = "after"
            time.sleep(READ_EVERY * 2)
        print(f"\n## 3. Prune, keep {args.keep_days} days, a writer and a reader on the file\n")
        print(
            f"removed {report.rows_removed:,} rows in {took:.1f} s ({report.rows_removed / took:,.0f} rows/s), "
            f"{report.batches:,} batches (sized to hold the lock {BATCH_SECONDS * 1000:.0f} ms), the longest write "
            f"(a batch or a vacuum step) {report.longest_batch_ms:.0f} ms; "
            f"file {report.size_before / 1e6:,.1f} MB -> {report.size_after / 1e6:,.1f} MB "
            f"({report.returned / 1e6:,.1f} MB returned, auto_vacuum {report.auto_vacuum})"
        )
        print(
            "\n| phase | writer record -> flushed, ms p50 / p99 / max | samples | dashboard All time totals, "
            "ms p50 / p99 / max | samples |\n|---|---|---:|---|---:|"
        )
        for phase in ("idle", "prune"):
            print(
                f"| {phase} | {_ms(probe.writes.get(phase, []))} | {len(probe.writes.get(phase, []))} | "
                f"{_ms(probe.reads.get(phase, []))} | {len(probe.reads.get(phase, []))} |"
            )
        kept = sqlite3.connect(path).execute("SELECT COUNT(*) FROM attempts WHERE model = 'probe/model'")
        lost = probe.written - kept.fetchone()[0]
        print(
            f"\nprobe rows written {probe.written:,}, in the file {probe.written - lost:,}: "
            f"{'none lost' if lost == 0 else f'{lost} LOST'}; run at {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
        )
        get_attempt_log(path).close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

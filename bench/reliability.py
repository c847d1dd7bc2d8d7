"""Rows lost by the attempt log, per way a process can end, counted against what the provider really received.

    python bench/reliability.py            # about a minute; the full-disk rows need root and a tmpfs mount

Each scenario runs child processes that call `execute_fast_task` at concurrency 50 against one simulator in
this process (20 ms per answer), then counts the requests the simulator received and the rows in the database
(plus rows waiting in the .unwritten.jsonl spill file, which the next process imports): every request that
reached the provider must have its row. "lost" = received - rows - spilled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.simulator import ModelProfile, Simulator  # noqa: E402
from app.store import open_database, spill_path  # noqa: E402

KEY = "gsk_bench_reliability"

CHILD = """
import asyncio, os, signal, sys, app
{handler}
app.configure(groq_api_key={key!r}, groq_base_url={url!r}, attempts_db_path={db!r}, attempt_log_exit_seconds={exit_s})
async def lane(n):
    for _ in range(n):
        await app.execute_fast_task([{{"role": "user", "content": "hi"}}])
async def main():
    print("started", flush=True)
    await asyncio.gather(*(lane({per_lane}) for _ in range(50)))
asyncio.run(main())
"""


def child(url: str, db: Path, *, calls: int, handler: str = "", exit_s: float = 30) -> subprocess.Popen[str]:
    script = textwrap.dedent(CHILD).format(
        handler=handler, key=KEY, url=url, db=str(db), exit_s=exit_s, per_lane=max(1, calls // 50)
    )
    return subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=db.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def count(db: Path) -> tuple[int, int]:
    rows = 0
    if db.exists():
        with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn, contextlib.suppress(sqlite3.OperationalError):
            rows = int(conn.execute("SELECT count(*) FROM attempts").fetchone()[0])
    spill = spill_path(db)
    spilled = len(spill.read_text().splitlines()) if spill.exists() else 0
    return rows, spilled


def report(name: str, received: int, db: Path, note: str = "") -> str:
    rows, spilled = count(db)
    lost = received - rows - spilled
    if lost < 0:  # calls cancelled before their request was sent are logged too, and never reached the provider
        note = f"{-lost} more rows than requests: calls cancelled before they were sent. {note}"
    return f"| {name} | {received:,} | {rows:,} | {spilled:,} | {max(lost, 0):,} | {note} |"


def stop_after(proc: subprocess.Popen[str], seconds: float, sig: int) -> str:
    assert proc.stdout is not None
    proc.stdout.readline()  # "started"
    time.sleep(seconds)
    proc.send_signal(sig)
    _out, err = proc.communicate(timeout=120)
    return err


def main() -> int:
    lines = [
        "command: python bench/reliability.py",
        "",
        "| how the process ended | requests received | rows in the database | rows in the spill file | lost | note |",
        "|---|---:|---:|---:|---:|---|",
    ]
    with (
        tempfile.TemporaryDirectory(prefix="reliability_") as tmp,
        Simulator(api_key=KEY, default_profile=ModelProfile(latency_ms=20, latency_sigma=0.0), seed=0) as sim,
    ):
        work = Path(tmp)

        def fresh(name: str) -> Path:
            sim.reset()
            folder = work / name
            folder.mkdir()
            return folder / "attempts.db"

        db = fresh("normal")
        child(sim.base_url, db, calls=2000).communicate(timeout=300)
        lines.append(report("normal exit", len(sim.requests), db))

        db = fresh("sigterm_cli")
        stop_after(
            child(
                sim.base_url,
                db,
                calls=10**6,
                handler="from app.cli import _on_sigterm; signal.signal(signal.SIGTERM, _on_sigterm)",
            ),
            2,
            signal.SIGTERM,
        )
        lines.append(
            report(
                "SIGTERM, the CLI's handler (taskrouter run/demo)",
                len(sim.requests),
                db,
                "calls in flight logged as cancelled",
            )
        )

        db = fresh("sigterm_default")
        stop_after(child(sim.base_url, db, calls=10**6), 2, signal.SIGTERM)
        lines.append(
            report(
                "SIGTERM, Python's default action (a plain script)",
                len(sim.requests),
                db,
                "killed at once: rows recorded in the last linger window and the batch being written",
            )
        )

        db = fresh("kill9")
        stop_after(child(sim.base_url, db, calls=10**6), 2, signal.SIGKILL)
        lines.append(report("kill -9", len(sim.requests), db, "the same window: no process can save it"))

        db = fresh("lock_15s")
        open_database(db).conn.close()
        blocker = sqlite3.connect(db, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        proc = child(sim.base_url, db, calls=1000)
        time.sleep(15)
        blocker.rollback()
        blocker.close()
        proc.communicate(timeout=120)
        lines.append(
            report(
                "a lock held 15 s, past the calls' end (busy timeout 10 s)",
                len(sim.requests),
                db,
                f"exited {time.monotonic() - started:.0f} s after start, once the lock was released",
            )
        )

        db = fresh("lock_forever")
        open_database(db).conn.close()
        blocker = sqlite3.connect(db, timeout=0)
        blocker.execute("BEGIN EXCLUSIVE")
        child(sim.base_url, db, calls=1000, exit_s=2).communicate(timeout=120)
        blocker.rollback()
        blocker.close()
        lines.append(
            report(
                "a lock held past ATTEMPT_LOG_EXIT_SECONDS (2 s here)",
                len(sim.requests),
                db,
                "spilled; the next process imports them",
            )
        )

        disk = work / "disk"
        disk.mkdir()
        mounted = (
            os.geteuid() == 0
            and subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(disk)], capture_output=True
            ).returncode
            == 0
        )
        if mounted:
            try:
                sim.reset()
                db = disk / "attempts.db"
                ballast = disk / "ballast"
                stats = os.statvfs(disk)
                ballast.write_bytes(b"\0" * (stats.f_bavail * stats.f_frsize - 4096))
                proc = child(sim.base_url, db, calls=10_000)  # about 4 s of calls
                assert proc.stdout is not None
                proc.stdout.readline()
                time.sleep(1)
                ballast.unlink()  # room again before the process ends
                proc.communicate(timeout=120)
                lines.append(report("disk full from the start, room made before exit", len(sim.requests), db))
                for path in disk.iterdir():
                    path.unlink()
                sim.reset()
                ballast.write_bytes(b"\0" * (os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize - 4096))
                child(sim.base_url, db, calls=1000, exit_s=2).communicate(timeout=120)
                lines.append(
                    report(
                        "disk full through exit",
                        len(sim.requests),
                        db,
                        "the spill file is on the same full disk: lost, and the exit line says so",
                    )
                )
            finally:
                subprocess.run(["umount", str(disk)], check=False)
        else:
            lines.append("| disk full | - | - | - | - | not measured: needs root and a tmpfs mount |")

        sim.reset()
        db = work / "shared.db"
        procs = [child(sim.base_url, db, calls=500) for _ in range(8)]
        errors = sum(p.wait(timeout=300) != 0 for p in procs)
        lines.append(report("8 processes on one new file", len(sim.requests), db, f"{errors} processes failed"))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())

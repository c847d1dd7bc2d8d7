"""The attempt log's store on its two backends, a SQLite file and a PostgreSQL database, side by side in one run.

    python bench/store.py                             # every part at full size: 1M-row stores (about 8 minutes)
    python bench/store.py --rows 20000 --calls 200    # every part at a tiny size (about 1.5 minutes; the suite
                                                      # runs it with one round of each part, in about 40 s)
    python bench/store.py --part cpu --rounds 7       # one part (log, cpu, size, retention; repeatable)
    python bench/store.py --pg-url postgresql://u@host/db   # a database of a running server: its tables are DROPPED

1. log: attempt-log rows per second. A worker process records --log-rows pre-built rows through AttemptLog as
   fast as it can (record() each, then flush()), timed from the first record() to the flush's return; then
   --processes workers at once on one store. Each measurement gets a fresh store (a new file, an emptied
   database); the backends alternate within each of --log-rounds rounds; medians over rounds.
2. cpu: the router's CPU per call on each backend. Workers (one per backend, variant and concurrency) call
   `Router.execute("fast", ...)` against the simulator (own process, zero latency, loopback), attempt logging on,
   and measure process CPU (time.process_time: every thread, so the log's writer too) over --windows windows of
   --calls calls in all, each window ending with a flush. Variants: DAILY_BUDGET_USD unset, and set far above what
   the run spends (PostgreSQL then takes one atomic reservation per call in the database, SQLite counts in
   memory). Rounds pair the backends (order alternating); the ratio PG/SQLite is taken within each round, then
   its median. Nothing is subtracted; the PostgreSQL server's own CPU (all its processes) is a column beside,
   and the router's CPU is split by thread (the event loop, the log's writer, the rest) and user/kernel mode.
3. size: two stores seeded with --rows rows like the router's over --days days, through the attempt log's own
   write path (SQLite: multi-row INSERTs in 50,000-row transactions; PostgreSQL: COPY into daily partitions,
   then VACUUM ANALYZE as autovacuum would); bytes per row, table and indexes.
4. retention: app/store/retention.py on those stores (keep --keep-days days), while a probe process records a
   row and flushes every 50 ms (the writer's latency: record() to flushed) and runs the dashboard's totals
   (dashboard.queries.totals) over the last 24 h every 100 ms: idle first, then during the rollup of the
   backlog and during the prune (SQLite: batched deletes, then incremental vacuum; PostgreSQL: whole days
   dropped). Rows pruned per second, sizes before and after.

PostgreSQL, without --pg-url: a throwaway cluster started as the tests start theirs (tests/pg_server.py: initdb into
a temp dir, 127.0.0.1; fsync and full_page_writes off), shared_buffers at the stock 128MB; --pg-durable turns fsync
and full_page_writes on (a commit then waits for its WAL flush, as on a stock server). SQLite as shipped: WAL,
synchronous=NORMAL, so neither backend syncs the disk per commit by default. Figures go in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import random
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
SCRIPT = Path(__file__).resolve()
sys.path.insert(0, str(ROOT))  # ahead of bench/ (this script's folder), which has a dashboard.py of its own
for extra in (BENCH, ROOT / "tests"):  # own_cpu.py's simulator and calls; tests/pg_server.py's cluster
    if str(extra) not in sys.path:
        sys.path.append(str(extra))

from _common import cpu_name  # noqa: E402
from own_cpu import KEY, MAX_TOKENS, MESSAGES, TASK, clean_environment, simulator  # noqa: E402

from app.clock import iso_millis  # noqa: E402
from app.core import ai_models  # noqa: E402
from app.registry.chain import FALLBACK_KEY  # noqa: E402
from app.store.rows import AttemptRow  # noqa: E402

Call = Callable[[], Awaitable[Any]]
BUDGET_USD = 1_000_000.0  # far above what any run spends: every call takes and settles a reservation
SEED_TRANSACTION_ROWS = 50_000
PROBE_WRITE_EVERY = 0.05
PROBE_QUERY_EVERY = 0.1
IDLE_SECONDS = 3.0  # probe samples taken before the retention starts: the baseline
_FAILURES = (
    (
        "rate_limited",
        429,
        "Rate limit reached for model in organization on tokens per minute (TPM): "
        "Limit 6000, Used 5800, Requested 900. Please try again in 7.1s.",
    ),
    ("server_error", 503, "Service Unavailable"),
    ("timeout", None, "Request timed out."),
    ("capacity", 498, "The service is currently over capacity. Please try again later."),
)


# -- rows like the router's ------------------------------------------------------------------------------------


def _chains() -> dict[str, list[tuple[str, bool]]]:
    registry = ai_models.MODEL_REGISTRY
    fallback = registry.get(FALLBACK_KEY, [])
    return {
        task: [(m, False) for m in models] + [(m, True) for m in fallback if m not in models]
        for task, models in registry.items()
        if task != FALLBACK_KEY and ":" not in task
    }


def attempt_rows(count: int, start: float, end: float, seed: int) -> Iterator[AttemptRow]:
    """`count` rows with created_at spread evenly over [start, end) (epoch seconds), in time order, shaped as the
    router writes them: requests on the registry's chains, 6 % of calls failing over to the next model, a
    provider request id and a finish reason on answers, ids from a per-process prefix and a counter (a new
    prefix every 50,000 rows: processes restart)."""
    rnd = random.Random(seed)
    chains = _chains()
    tasks = list(chains)
    weights = [5 if t == "fast" else 2 for t in tasks]
    catalog = ai_models.MODEL_CATALOG
    step = (end - start) / count
    made = 0
    prefix, counter, renew_at = "", 0, 0
    while made < count:
        if made >= renew_at:
            prefix, counter, renew_at = f"{rnd.getrandbits(64):016x}", 0, made + 50_000
        task = rnd.choices(tasks, weights)[0]
        request_id = f"{prefix}{counter:016x}"
        counter += 1
        for position, (model, is_fallback) in enumerate(chains[task], 1):
            if made >= count:
                return
            created_at = iso_millis(start + made * step)
            made += 1
            info = catalog.get(model)
            priced = info is not None and info.priced
            if rnd.random() < 0.06:
                kind, status, message = rnd.choice(_FAILURES)
                latency = 30_000.0 if kind == "timeout" else rnd.uniform(50, 400)
                yield AttemptRow(
                    request_id,
                    task,
                    model,
                    "groq",
                    position,
                    "failure",
                    kind,
                    status,
                    message,
                    is_fallback,
                    False,
                    None,
                    None,
                    None,
                    latency,
                    0.0 if priced else None,
                    created_at,
                )
                continue
            prompt, completion = rnd.randint(100, 3000), rnd.randint(20, 1200)
            reasoning = rnd.randint(0, completion // 2) if info and "reasoning" in info.capabilities else 0
            cost = None
            if priced:
                cost = (prompt * info.input_price + completion * info.output_price) / 1e6  # type: ignore[union-attr,operator]
            yield AttemptRow(
                request_id,
                task,
                model,
                "groq",
                position,
                "success",
                None,
                None,
                None,
                is_fallback,
                False,
                prompt,
                completion,
                prompt + completion,
                rnd.lognormvariate(6.2, 0.5),
                cost,
                created_at,
                rnd.choice((0, 0, 0, prompt // 2)),
                reasoning,
                None,
                "stop",
                f"req_{rnd.getrandbits(128):032x}",
            )
            break


# -- the stores ------------------------------------------------------------------------------------------------


def target_of(where: str, scratch: Path) -> Any:
    from app.store.target import locate

    return locate(where, spill_to=scratch / "spill.db")


def wipe_pg(url: str) -> None:
    """Drop every table of the database's current schema: the next open migrates a fresh store."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""DO $$ DECLARE r record; BEGIN
                          FOR r IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
                            EXECUTE 'DROP TABLE IF EXISTS ' || quote_ident(r.tablename) || ' CASCADE';
                          END LOOP; END $$""")


def count_rows(where: str) -> int:
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])  # type: ignore[index]
    with contextlib.closing(sqlite3.connect(where, timeout=30)) as conn:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])


def postmaster_pid(url: str) -> int | None:
    """The server's postmaster, when it runs on this machine and its data directory is readable (a local
    cluster, as root or its owner): its processes' CPU is then counted."""
    import psycopg

    try:
        with psycopg.connect(url, autocommit=True) as conn:
            datadir = conn.execute("SHOW data_directory").fetchone()[0]  # type: ignore[index]
        pid = int((Path(datadir) / "postmaster.pid").read_text().split()[0])
        return pid if Path(f"/proc/{pid}/stat").exists() else None
    except Exception:
        return None


def server_cpu(pid: int | None) -> float | None:
    """CPU seconds of the PostgreSQL server: the postmaster, its children, and its children that exited."""
    if pid is None:
        return None
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        this = int(stat.parent.name)
        if this == pid:
            total += sum(int(x) for x in fields[11:15])  # utime, stime, cutime, cstime
        elif int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


# -- workers ---------------------------------------------------------------------------------------------------


def log_worker(where: str, rows: int, seed: int) -> dict[str, Any]:
    """Part 1: record `rows` rows as fast as possible, then flush; between "ready" and "go" on stdin the store is
    open (the first row's open, migration and quick_check are not timed)."""
    from app.store import get_attempt_log

    log = get_attempt_log(target_of(where, Path.cwd()))
    log.prepare()
    now = time.time()
    batch = list(attempt_rows(rows + 1, now - 60, now, seed))
    log.record(batch.pop())
    if not log.flush(60):
        raise RuntimeError(f"the store did not open: {log.problem}")
    print("ready", flush=True)
    sys.stdin.readline()
    started, cpu = time.time(), time.process_time()
    record = log.record
    for row in batch:
        record(row)
    if not log.flush(600):
        raise RuntimeError(f"flush timed out: {log.problem}")
    ended, cpu = time.time(), time.process_time() - cpu
    if log.problem or log.spilled or log.dropped:
        raise RuntimeError(f"rows not written: {log.problem}, spilled {log.spilled}, dropped {log.dropped}")
    return {"started": started, "ended": ended, "rows": len(batch), "cpu": cpu}


async def cpu_worker(
    port: int, where: str, budget: bool, concurrency: int, calls: int, windows: int, warmup: int
) -> dict[str, Any]:
    """Part 2: CPU per call of the router on one store, one variant, one concurrency."""
    from app.config import Settings, load_settings
    from app.core.router import Router
    from app.providers import get_provider

    clean_environment(Settings.model_fields)
    pg = where.startswith("postgresql://")
    settings = load_settings(
        env_file=None,
        groq_api_key=KEY,
        groq_base_url=f"http://127.0.0.1:{port}",
        attempts_db_path=Path.cwd() / ("spill.db" if pg else where),
        attempts_db_url=where if pg else None,
        force_model=None,
        default_models={},
        daily_budget_usd=BUDGET_USD if budget else None,
        attempt_logging=True,
    )
    router = Router(settings)
    assert router.log is not None
    model = ai_models.MODEL_REGISTRY[TASK][0]
    pid = postmaster_pid(where) if pg else None

    async def execute() -> Any:
        return await router.execute(TASK, MESSAGES, max_tokens=MAX_TOKENS)

    async def window(n: int) -> tuple[float, float]:
        remaining = iter(range(n))

        async def lane() -> None:
            for _ in remaining:
                await execute()

        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(lane() for _ in range(concurrency)))
        if not router.log.flush(60):  # type: ignore[union-attr]
            raise RuntimeError("attempt log did not flush")
        return (time.process_time() - cpu) / n * 1e6, time.perf_counter() - wall

    first = await execute()
    if first.model_used != model or len(first.attempts) != 1:
        raise RuntimeError(f"not the happy path: {first.model_used}, {len(first.attempts)} attempts")
    await window(warmup)  # connections, caches, the store's pages warm; not measured
    per_window = max(calls // windows, 1)
    server_before, threads_before, times_before = server_cpu(pid), thread_cpu(), os.times()
    measured = [await window(per_window) for _ in range(windows)]
    server_after, threads_after, times_after = server_cpu(pid), thread_cpu(), os.times()
    executed = 1 + warmup + per_window * windows
    rows = count_rows(where)
    if rows != executed:
        raise RuntimeError(f"attempt log: {rows} rows for {executed} calls")
    await router.aclose()  # a shared budget gives its unspent lease back, then the log is flushed
    reserved = None
    if pg and budget:
        import psycopg

        with psycopg.connect(where) as conn:
            reserved = float(conn.execute("SELECT COALESCE(SUM(reserved), 0) FROM spend").fetchone()[0])  # type: ignore[index]
    await get_provider("groq").aclose()  # type: ignore[attr-defined]  # else aiohttp warns at exit
    server = None
    n = per_window * windows
    if server_before is not None and server_after is not None:
        server = (server_after - server_before) / n * 1e6
    # Where the process's CPU went over the measured windows, per call: the event loop's thread, the log's writer,
    # every other thread (the store's watch, threads that came and went); in user and in kernel mode.
    user = (times_after.user - times_before.user) / n * 1e6
    system = (times_after.system - times_before.system) / n * 1e6
    split = {k: (threads_after.get(k, 0.0) - threads_before.get(k, 0.0)) / n * 1e6 for k in ("loop", "writer")}
    split["other"] = user + system - split["loop"] - split["writer"]
    return {
        "cpu_us": statistics.median(us for us, _ in measured),
        "calls_per_s": n / sum(wall for _, wall in measured),
        "server_us": server,
        "windows": [round(us, 1) for us, _ in measured],
        "reserved": reserved,
        "user_us": user,
        "system_us": system,
        **{f"{k}_us": v for k, v in split.items()},
    }


def thread_cpu() -> dict[str, float]:
    """CPU seconds of this process's threads so far (/proc: user + kernel), as the event loop's (the main
    thread) and the attempt log's writer."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    seconds: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(task.name), "")
        kind = "loop" if name == "MainThread" else "writer" if name.startswith("taskrouter-log") else "other"
        seconds[kind] = seconds.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return seconds


def probe_worker(where: str, path_for_spill: str) -> dict[str, Any]:
    """Part 4: until a line arrives on stdin, record a row and flush every PROBE_WRITE_EVERY s (the writer's
    latency) on one thread, and run the totals over the last 24 h every PROBE_QUERY_EVERY s on another. Samples
    are (time.time() at the start, seconds)."""
    from app.store import get_attempt_log

    target = target_of(where, Path(path_for_spill))
    log = get_attempt_log(target)
    log.prepare()
    stop = threading.Event()
    writes: list[tuple[float, float]] = []
    queries: list[tuple[float, float]] = []
    rows = attempt_rows(10**7, time.time(), time.time() + 10**6, 99)
    log.record(next(rows)._replace(created_at=iso_millis(time.time())))
    log.flush(60)

    def write() -> None:
        while not stop.is_set():
            at = time.time()
            log.record(next(rows)._replace(created_at=iso_millis(at)))
            if not log.flush(120):
                raise RuntimeError("probe: flush timed out")
            writes.append((at, time.time() - at))
            stop.wait(PROBE_WRITE_EVERY)

    def query() -> None:
        run = reader(where)
        while not stop.is_set():
            at = time.time()
            run(iso_millis(at - 86_400), iso_millis(at))
            queries.append((at, time.time() - at))
            stop.wait(PROBE_QUERY_EVERY)

    threads = [threading.Thread(target=fn, daemon=True) for fn in (write, query)]
    for thread in threads:
        thread.start()
    print("ready", flush=True)
    sys.stdin.readline()
    stop.set()
    for thread in threads:
        thread.join(120)
    return {"writes": writes, "queries": queries}


def reader(where: str) -> Callable[[str, str], object]:
    """The dashboard's totals (dashboard.queries.totals) as a function of (start, end), on the dashboard's own
    read-only connection to either store."""
    from dashboard import queries

    conn = queries.connect(target_of(where, Path.cwd()))
    assert conn is not None
    return lambda start, end: queries.totals(conn, queries.Scope(start, end))


# -- the parent ------------------------------------------------------------------------------------------------


class Stores:
    """The SQLite file of the moment and the PostgreSQL database (throwaway cluster or --pg-url)."""

    def __init__(self, args: argparse.Namespace, scratch: Path, stack: contextlib.ExitStack) -> None:
        self.scratch = scratch
        self.server: Any = None
        if args.pg_url:
            self.url = args.pg_url
        else:
            from pg_server import PgServer

            self.server = PgServer()
            stack.callback(self.server.cleanup)
            import psycopg

            with psycopg.connect(self.server.url, autocommit=True) as conn:
                conn.execute("ALTER SYSTEM SET shared_buffers = '128MB'")
                if args.pg_durable:
                    conn.execute("ALTER SYSTEM SET fsync = on")
                    conn.execute("ALTER SYSTEM SET full_page_writes = on")
            self.server.restart()
            self.url = self.server.url
        self.pid = postmaster_pid(self.url)
        self.files = 0

    def fresh(self, backend: str) -> str:
        if backend == "pg":
            wipe_pg(self.url)
            return self.url
        self.files += 1
        folder = self.scratch / f"sqlite{self.files}"
        folder.mkdir()
        return str(folder / "attempts.db")

    def describe(self) -> str:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
            values = {
                name: conn.execute(f"SHOW {name}").fetchone()[0]  # type: ignore[index]
                for name in ("shared_buffers", "fsync", "synchronous_commit", "full_page_writes")
            }
        where = "--pg-url (a server of its own)" if self.server is None else "throwaway cluster on 127.0.0.1 (TCP)"
        return (
            f"PostgreSQL {version}, {where}: "
            + ", ".join(f"{k}={v}" for k, v in values.items())
            + f"; server CPU {'counted' if self.pid else 'not visible (not local)'}; "
            f"SQLite {sqlite3.sqlite_version}: WAL, synchronous=NORMAL"
        )


def spawn(kind: str, scratch: Path, **params: Any) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), "--worker", kind, "--params", json.dumps(params)],
        cwd=scratch,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def result_of(proc: subprocess.Popen[str], what: str) -> dict[str, Any]:
    out, err = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"{what} worker failed ({proc.returncode}):\n{err[-3000:]}")
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def wait_ready(proc: subprocess.Popen[str], what: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if line.strip() != "ready":
        _out, err = proc.communicate(timeout=60)
        raise RuntimeError(f"{what} worker did not start ({proc.returncode}): {line!r}\n{err[-3000:]}")


def markdown(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    out = ["| " + " | ".join(x.rjust(w) for x, w in zip(r, widths, strict=True)) + " |" for r in [head, *rows]]
    out.insert(1, "|" + "|".join("-" * (w + 1) + ":" for w in widths) + "|")
    return out


def spread(values: list[float]) -> str:
    """(max - min) / median: how far identical rounds disagree."""
    return f"{(max(values) - min(values)) / statistics.median(values):.0%}" if len(values) > 1 else "-"


def joined(values: list[float], spec: str = ".0f") -> str:
    return ", ".join(format(v, spec) for v in values)


def say(*lines: str) -> None:
    print("\n".join(lines), flush=True)


def progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


BACKENDS = {"sqlite": "SQLite", "pg": "PostgreSQL"}


def part_log(args: argparse.Namespace, stores: Stores) -> None:
    """Part 1: rows per second through AttemptLog, one process and --processes processes on one store."""
    results: dict[tuple[str, int], list[dict[str, Any]]] = {}
    for r in range(args.log_rounds):
        for procs in (1, args.processes):
            for backend in ("sqlite", "pg") if r % 2 == 0 else ("pg", "sqlite"):
                where = stores.fresh(backend)
                workers = [
                    spawn("log", stores.scratch, where=where, rows=args.log_rows, seed=r * 100 + i)
                    for i in range(procs)
                ]
                for w in workers:
                    wait_ready(w, "log")
                server_before = server_cpu(stores.pid) if backend == "pg" else None
                for w in workers:
                    assert w.stdin is not None
                    w.stdin.write("go\n")
                    w.stdin.flush()
                done = [result_of(w, "log") for w in workers]
                server_after = server_cpu(stores.pid) if backend == "pg" else None
                total = sum(d["rows"] for d in done)
                if count_rows(where) != total + procs:  # + the row each worker opened the store with
                    raise RuntimeError(f"{backend}: {count_rows(where)} rows, {total + procs} recorded")
                wall = max(d["ended"] for d in done) - min(d["started"] for d in done)
                results.setdefault((backend, procs), []).append(
                    {
                        "per_process": statistics.median(d["rows"] / (d["ended"] - d["started"]) for d in done),
                        "aggregate": total / wall,
                        "cpu_us": sum(d["cpu"] for d in done) / total * 1e6,
                        "server_us": None
                        if server_before is None or server_after is None
                        else (server_after - server_before) / total * 1e6,
                    }
                )
        progress(f"log: round {r + 1}/{args.log_rounds} done")

    def med(backend: str, procs: int, key: str) -> float:
        return statistics.median(x[key] for x in results[(backend, procs)])

    head = (
        "processes",
        "SQLite rows/s per process",
        "PG rows/s per process",
        "ratio PG/SQLite",
        "SQLite rows/s all",
        "PG rows/s all",
        "ratio all",
        "SQLite CPU us/row",
        "PG CPU us/row",
        "PG server CPU us/row",
        "spread SQLite",
        "spread PG",
    )
    rows = []
    for procs in (1, args.processes):
        server = [x["server_us"] for x in results[("pg", procs)] if x["server_us"] is not None]
        rows.append(
            (
                str(procs),
                f"{med('sqlite', procs, 'per_process'):,.0f}",
                f"{med('pg', procs, 'per_process'):,.0f}",
                f"{med('pg', procs, 'per_process') / med('sqlite', procs, 'per_process'):.2f}",
                f"{med('sqlite', procs, 'aggregate'):,.0f}",
                f"{med('pg', procs, 'aggregate'):,.0f}",
                f"{med('pg', procs, 'aggregate') / med('sqlite', procs, 'aggregate'):.2f}",
                f"{med('sqlite', procs, 'cpu_us'):.1f}",
                f"{med('pg', procs, 'cpu_us'):.1f}",
                f"{statistics.median(server):.1f}" if server else "-",
                spread([x["aggregate"] for x in results[("sqlite", procs)]]),
                spread([x["aggregate"] for x in results[("pg", procs)]]),
            )
        )
    say(
        "",
        "## 1. Attempt-log rows per second (record() each row, then flush())",
        "",
        f"{args.log_rows:,} rows per process; {args.log_rounds} rounds, backends alternating, a fresh store each; "
        f"medians over rounds",
        "",
        *markdown(head, rows),
        "",
        "rows/s per process: its rows / (its last flush - its first record); all: every row / (the last flush - "
        "the first record); CPU us/row: the writing processes' CPU (the recording thread and the writer); "
        "server: the PostgreSQL server's processes; spread: (max - min) / median of 'all' over rounds",
    )


def where_it_went(results: list[dict[str, Any]]) -> str:
    def med(key: str) -> float:
        return statistics.median(r[key] for r in results)

    return (
        f"{med('loop_us'):,.0f} / {med('writer_us'):,.0f} / {med('other_us'):,.0f}; "
        f"{med('user_us'):,.0f} / {med('system_us'):,.0f}"
    )


def part_cpu(args: argparse.Namespace, stores: Stores) -> None:
    """Part 2: the router's CPU per call, PostgreSQL against SQLite, paired rounds."""
    concurrencies = [int(x) for x in args.concurrency.split(",")]
    variants = [(c, budget) for c in concurrencies for budget in (False, True)]
    results: dict[tuple[int, bool, str], list[dict[str, Any]]] = {}
    warmup = max(args.calls // 4, 50)
    with contextlib.ExitStack() as stack:
        port = stack.enter_context(simulator(stores.scratch))
        for r in range(args.rounds):
            for c, budget in variants:
                for backend in ("sqlite", "pg") if r % 2 == 0 else ("pg", "sqlite"):
                    where = stores.fresh(backend)
                    proc = spawn(
                        "cpu",
                        stores.scratch,
                        port=port,
                        where=where,
                        budget=budget,
                        concurrency=c,
                        calls=args.calls,
                        windows=args.windows,
                        warmup=warmup,
                    )
                    result = result_of(proc, f"cpu {backend} c={c} budget={budget}")
                    if result["reserved"] is not None and result["reserved"] > 1e-6:
                        raise RuntimeError(f"{result['reserved']} USD still reserved after every call settled")
                    results.setdefault((c, budget, backend), []).append(result)
            progress(f"cpu: round {r + 1}/{args.rounds} done")

    head = (
        "conc",
        "DAILY_BUDGET_USD",
        "SQLite CPU us/call",
        "PG CPU us/call",
        "ratio PG/SQLite",
        "PG higher in",
        "SQLite calls/s",
        "PG calls/s",
        "PG server CPU us/call",
        "spread SQLite",
        "spread PG",
    )
    rows, details = [], []
    for c, budget in variants:
        lite, pg = results[(c, budget, "sqlite")], results[(c, budget, "pg")]
        paired = [p["cpu_us"] / s["cpu_us"] for s, p in zip(lite, pg, strict=True)]
        server = [p["server_us"] for p in pg if p["server_us"] is not None]
        rows.append(
            (
                str(c),
                "set" if budget else "unset",
                f"{statistics.median(s['cpu_us'] for s in lite):,.0f}",
                f"{statistics.median(p['cpu_us'] for p in pg):,.0f}",
                f"{statistics.median(paired):.3f}",
                f"{sum(x > 1 for x in paired)}/{len(paired)} rounds",
                f"{statistics.median(s['calls_per_s'] for s in lite):,.0f}",
                f"{statistics.median(p['calls_per_s'] for p in pg):,.0f}",
                f"{statistics.median(server):,.0f}" if server else "-",
                spread([s["cpu_us"] for s in lite]),
                spread([p["cpu_us"] for p in pg]),
            )
        )
        details.append(
            f"concurrency {c}, budget {'set' if budget else 'unset'}: PG/SQLite per round "
            f"{joined(paired, '.2f')}; us/call per round SQLite {joined([s['cpu_us'] for s in lite])}, "
            f"PG {joined([p['cpu_us'] for p in pg])}; where it went, us/call (loop / writer / other "
            f"threads; user / kernel): SQLite {where_it_went(lite)}, PG {where_it_went(pg)}"
        )
    say(
        "",
        "## 2. The router's CPU per call, PostgreSQL store against SQLite",
        "",
        f"Router.execute({TASK!r}) on the simulator (own process, zero latency); attempt logging on; "
        f"{args.calls} calls per worker in {args.windows} windows after {warmup} warm-up calls; one worker per "
        f"backend, variant and concurrency; {args.rounds} rounds, backends alternating; medians",
        "",
        *markdown(head, rows),
        "",
        *details,
        "CPU = the router process's (every thread: the loop, the log's writer, the store's watch); ratio = median "
        "over rounds of PG/SQLite within a round; server = the PostgreSQL server's processes, not in the ratio; "
        f"budget set = DAILY_BUDGET_USD {BUDGET_USD:,.0f} (never reached)",
    )


def seed_store(where: str, rows: int, days: int, now: float) -> float:
    """Fill a fresh store with `rows` rows over the `days` days before `now`; returns seconds taken."""
    from app.store.database import open_database, write_batch
    from app.store.postgres.database import PgDatabase

    started = time.perf_counter()
    db = open_database(target_of(where, Path(tempfile.gettempdir())))
    try:
        start = now - days * 86_400
        if isinstance(db, PgDatabase):
            from app.store.postgres.migrations import ensure_partitions

            first = datetime.fromtimestamp(start, UTC).date()
            for n in range(days + 1):
                ensure_partitions(db.conn, first + timedelta(days=n), ahead=0)  # the days a router would have made
        else:
            db.conn.execute("PRAGMA synchronous=OFF")  # a bulk load; WAL and the schema as the writer leaves them
        chunk: list[object] = []
        for row in attempt_rows(rows, start, now - 600, seed=7):
            chunk.append(row)
            if len(chunk) == SEED_TRANSACTION_ROWS:
                write_batch(db, chunk)
                chunk = []
        if chunk:
            write_batch(db, chunk)
        if isinstance(db, PgDatabase):
            db.conn.execute("VACUUM ANALYZE attempts")  # what autovacuum would have done by now
        else:
            db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        db.conn.close()
    return time.perf_counter() - started


def sizes(where: str) -> dict[str, float]:
    """Bytes of the attempts table (its heap / B-tree), of its indexes, and of the whole file or database."""
    if where.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(where) as conn:
            table, indexes = conn.execute(
                "SELECT SUM(pg_table_size(inhrelid)), SUM(pg_indexes_size(inhrelid)) FROM pg_inherits "
                "WHERE inhparent = 'attempts'::regclass"
            ).fetchone()  # type: ignore[misc]
            whole = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
            count = conn.execute("SELECT COUNT(*) FROM pg_indexes WHERE tablename = 'attempts'").fetchone()[0]  # type: ignore[index]
        return {"table": float(table), "indexes": float(indexes), "whole": float(whole), "count": count}
    with contextlib.closing(sqlite3.connect(where)) as conn:
        per = dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall())
        index_names = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'attempts'")
        ]
    whole = sum(os.path.getsize(p) for p in (where, where + "-wal") if os.path.exists(p))
    return {
        "table": float(per.get("attempts", 0)),
        "indexes": float(sum(per.get(n, 0) for n in index_names)),
        "whole": float(whole),
        "count": len(index_names),
    }


def part_size(args: argparse.Namespace, stores: Stores, seeded: dict[str, str]) -> None:
    """Part 3: seed both stores, then bytes per row."""
    now = time.time()
    took, measured = {}, {}
    for backend in ("sqlite", "pg"):
        where = seeded[backend] = stores.fresh(backend)
        took[backend] = seed_store(where, args.rows, args.days, now)
        measured[backend] = sizes(where)
        progress(f"size: seeded {args.rows:,} rows in {BACKENDS[backend]} in {took[backend]:.0f} s")
    head = (
        "backend",
        "indexes",
        "table B/row",
        "indexes B/row",
        "table + indexes B/row",
        "file / database MB",
        "seeded in s",
        "rows/s seeding",
    )
    rows = [
        (
            BACKENDS[b],
            str(m["count"]),
            f"{m['table'] / args.rows:.0f}",
            f"{m['indexes'] / args.rows:.0f}",
            f"{(m['table'] + m['indexes']) / args.rows:.0f}",
            f"{m['whole'] / 1e6:,.1f}",
            f"{took[b]:.1f}",
            f"{args.rows / took[b]:,.0f}",
        )
        for b, m in measured.items()
    ]
    ratio = (measured["pg"]["table"] + measured["pg"]["indexes"]) / (
        measured["sqlite"]["table"] + measured["sqlite"]["indexes"]
    )
    say(
        "",
        f"## 3. Bytes per row at {args.rows:,} rows, indexes included",
        "",
        f"seeded over {args.days} days through the attempt log's write path, {SEED_TRANSACTION_ROWS:,}-row "
        f"transactions, indexes maintained row by row as in production",
        "",
        *markdown(head, rows),
        "",
        f"ratio PG/SQLite, table + indexes: {ratio:.2f}; SQLite: dbstat's pages per object (id is the rowid, "
        "no index of its own), the file with its -wal; PostgreSQL: pg_table_size (heap, TOAST, free space and "
        "visibility maps) and pg_indexes_size summed over the daily partitions, pg_database_size for the whole",
    )


def percentiles(samples: list[float]) -> str:
    """p50 / p99 / max in ms."""
    if not samples:
        return "-"
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered) * 1e3:.1f} / {p99 * 1e3:.1f} / {ordered[-1] * 1e3:.1f}"


def retention_sqlite(path: str, keep_days: int, now: datetime) -> list[tuple[str, float, float, dict[str, Any]]]:
    """The rollup of every closed hour (the backlog of a store never rolled up), then prune() (which finds the
    rollups current and deletes), each timed. [(phase, started, ended, what it did)]"""
    from app.store import retention
    from app.store.database import open_database

    db = open_database(Path(path))
    try:
        started = time.time()
        rolled = retention.rollup(db.conn, now=now)  # type: ignore[arg-type]
        ended = time.time()
    finally:
        db.conn.close()
    phases = [("rollup", started, ended, {"rows": rolled.rows, "what": f"{rolled.hours:,} hours rolled up"})]
    started = time.time()
    report = retention.prune(Path(path), keep_days, now=now)
    ended = time.time()
    phases.append(
        (
            "prune",
            started,
            ended,
            {
                "rows": report.rows_removed,
                "what": f"{report.batches:,} delete batches, the longest write {report.longest_batch_ms:.0f} ms "
                f"holding the write lock; {report.freed / 1e6:,.0f} MB of pages freed, "
                f"{report.returned / 1e6:,.0f} MB handed back to the disk (auto_vacuum {report.auto_vacuum})",
            },
        )
    )
    return phases


def retention_pg(url: str, keep_days: int, now: datetime) -> list[tuple[str, float, float, dict[str, Any]]]:
    """The same on PostgreSQL: the rollup (app/store/postgres/rollup.py), then prune(), which drops the whole days past
    the cutoff that the rollups hold (app/store/postgres/retention.py)."""
    from app.store import retention
    from app.store.database import open_database
    from app.store.retention import rollup

    target = target_of(url, Path(tempfile.gettempdir()))
    db = open_database(target)
    try:
        started = time.time()
        rolled = rollup(db.conn, now=now)  # type: ignore[arg-type]
        ended = time.time()
    finally:
        db.conn.close()
    phases = [("rollup", started, ended, {"rows": rolled.rows, "what": f"{rolled.hours:,} hours rolled up"})]
    started = time.time()
    report = retention.prune(target, keep_days, now=now)
    ended = time.time()
    phases.append(
        (
            "prune",
            started,
            ended,
            {
                "rows": report.rows_removed,
                "what": f"{report.batches:,} days dropped (and batches of the default partition), the longest "
                f"{report.longest_batch_ms:.0f} ms; {report.freed / 1e6:,.0f} MB freed and handed back to the disk",
            },
        )
    )
    return phases


def part_retention(args: argparse.Namespace, stores: Stores, seeded: dict[str, str]) -> None:
    """Part 4: the retention on each seeded store, with the probe measuring the writer and the dashboard."""
    now = datetime.now(UTC)
    head = (
        "backend",
        "phase",
        "seconds",
        "rows",
        "rows/s",
        "writer ms p50/p99/max",
        "dashboard ms p50/p99/max",
        "samples",
    )
    rows: list[tuple[str, ...]] = []
    notes, size_rows = [], []
    for backend, run in (("sqlite", retention_sqlite), ("pg", retention_pg)):
        where = seeded[backend]
        before = sizes(where)
        probe = spawn("probe", stores.scratch, where=where, path_for_spill=str(stores.scratch))
        wait_ready(probe, "probe")
        idle_from = time.time()
        time.sleep(IDLE_SECONDS)
        phases: list[tuple[str, float, float, dict[str, Any]]] = [("idle", idle_from, time.time(), {})]
        try:
            phases += run(where, args.keep_days, now)
        finally:
            time.sleep(0.5)  # the probe's samples that started during the last phase end
            assert probe.stdin is not None
            probe.stdin.write("stop\n")
            probe.stdin.flush()
            samples = result_of(probe, "probe")
        after = sizes(where)
        for name, started, ended, info in phases:
            writes = [s for at, s in samples["writes"] if started <= at < ended]
            queries = [s for at, s in samples["queries"] if started <= at < ended]
            took = ended - started
            done = info.get("rows")
            rows.append(
                (
                    BACKENDS[backend],
                    name,
                    f"{took:.1f}",
                    "-" if done is None else f"{done:,}",
                    "-" if not done else f"{done / took:,.0f}",
                    percentiles(writes),
                    percentiles(queries),
                    f"{len(writes)} / {len(queries)}",
                )
            )
            if "what" in info:
                notes.append(f"{BACKENDS[backend]} {name}: {info['what']}")
        size_rows.append(
            (
                BACKENDS[backend],
                f"{count_rows(where):,}",
                f"{before['whole'] / 1e6:,.1f}",
                f"{after['whole'] / 1e6:,.1f}",
                f"{(before['table'] + before['indexes']) / 1e6:,.1f}",
                f"{(after['table'] + after['indexes']) / 1e6:,.1f}",
            )
        )
        progress(f"retention: {BACKENDS[backend]} done")
    say(
        "",
        f"## 4. Retention on the {args.rows:,}-row stores: keep {args.keep_days} of {args.days} days",
        "",
        f"while a probe process records a row and flushes every {PROBE_WRITE_EVERY * 1e3:.0f} ms (writer: record() "
        f"to flushed) and runs the dashboard's totals over the last 24 h every {PROBE_QUERY_EVERY * 1e3:.0f} ms; "
        f"idle = {IDLE_SECONDS:g} s before the retention starts, nothing else running; samples = writes / queries "
        f"started in the phase",
        "",
        *markdown(head, rows),
        "",
        *notes,
    )
    say(
        "",
        *markdown(
            (
                "backend",
                "rows left",
                "file / database MB before",
                "after",
                "attempts table + indexes MB before",
                "after",
            ),
            size_rows,
        ),
    )


def fingerprint() -> str:
    """A hash of the code the workers import (app/, dashboard/, this script): teammates edit this work tree, and a
    change mid-run would mix two versions. To measure one commit while the tree moves, run the script from a
    worktree of it (git worktree add --detach /tmp/store_bench HEAD; python /tmp/store_bench/bench/store.py)."""
    digest = hashlib.sha256()
    for path in sorted([*(ROOT / "app").rglob("*.py"), *(ROOT / "dashboard").rglob("*.py"), SCRIPT]):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def parent(args: argparse.Namespace, argv: list[str]) -> int:
    parts = args.part or ["log", "cpu", "size", "retention"]
    started = time.perf_counter()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", "app", "dashboard", "bench/store.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout.strip()
    before = fingerprint()
    with contextlib.ExitStack() as stack:
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench_store_")))
        os.chmod(scratch, 0o755)
        stores = Stores(args, scratch, stack)
        cpu = cpu_name()
        shown = [a if not a.startswith("postgresql://") else "postgresql://..." for a in argv]
        say(
            f"command: {shlex.join(['python', 'bench/store.py', *shown])}",
            f"commit: {commit}{' + uncommitted changes in app/, dashboard/ or bench/store.py' if dirty else ''}",
            f"machine: {cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}",
            f"stores: {stores.describe()}",
        )
        seeded: dict[str, str] = {}
        if "log" in parts:
            part_log(args, stores)
        if "cpu" in parts:
            part_cpu(args, stores)
        if "size" in parts or "retention" in parts:
            part_size(args, stores, seeded)
        if "retention" in parts:
            part_retention(args, stores, seeded)
    say("", f"wall time {time.perf_counter() - started:.0f} s")
    if fingerprint() != before:
        say(
            "WARNING: app/, dashboard/ or this script changed during the run, so parts ran different code: rerun "
            "(from a worktree of one commit: see fingerprint())"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--part",
        action="append",
        choices=("log", "cpu", "size", "retention"),
        help="run only this part (repeatable); default every part",
    )
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the seeded stores (1,000,000)")
    parser.add_argument("--days", type=int, default=60, help="days the seeded rows span (60)")
    parser.add_argument("--keep-days", type=int, default=30, help="retention: days of raw rows kept (30)")
    parser.add_argument("--log-rows", type=int, help="part 1: rows per process (100,000, at most --rows)")
    parser.add_argument("--processes", type=int, default=4, help="part 1: processes writing at once (4)")
    parser.add_argument("--log-rounds", type=int, default=3, help="part 1: rounds (3)")
    parser.add_argument("--calls", type=int, default=2000, help="part 2: measured calls per worker (2,000)")
    parser.add_argument("--windows", type=int, default=10, help="part 2: windows per worker (10)")
    parser.add_argument("--rounds", type=int, default=5, help="part 2: paired rounds (5)")
    parser.add_argument("--concurrency", default="1,50", help="part 2: comma-separated (1,50)")
    parser.add_argument(
        "--pg-url", help="a database on a running server (its tables are dropped); default: a throwaway cluster"
    )
    parser.add_argument(
        "--pg-durable", action="store_true", help="the throwaway cluster with fsync and full_page_writes on"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--params", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        params = json.loads(args.params)
        if args.worker == "log":
            result = log_worker(**params)
        elif args.worker == "cpu":
            result = asyncio.run(cpu_worker(**params))
        else:
            result = probe_worker(**params)
        print(json.dumps(result))
        return 0
    if args.log_rows is None:
        args.log_rows = min(100_000, args.rows)
    return parent(args, sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())

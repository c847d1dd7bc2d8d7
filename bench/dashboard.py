"""Dashboard at scale: seed N attempt rows (default 1,000,000), then time every page's queries and its full render.

    python bench/dashboard.py                      # 1M rows in a temp file, 30 days of traffic
    python bench/dashboard.py --db /tmp/big.db     # reuse (or create) that file
    python bench/dashboard.py --db postgresql://user@host/db   # a PostgreSQL store: seeded when it has no attempts
    python bench/dashboard.py --rows 200000 --no-render
    python bench/dashboard.py --no-rollups         # the raw rows alone, as before any rollup ran

Per page (the request drill-down included, on a request that fell back) it prints the SQL time of the page's
`load()` for several ranges and filters, then the whole Streamlit script run through AppTest, each with its ratio
to the 1 s target. A SQLite file is first rolled up the way routers do it every hour (app/store/retention.py), so
the long ranges read the hourly and daily rollups as they would in production.
"""

from __future__ import annotations

import argparse
import os
import random
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.clock import iso_millis  # noqa: E402
from app.core import ai_models  # noqa: E402
from app.registry.chain import FALLBACK_KEY  # noqa: E402
from app.store import AttemptRow, open_database  # noqa: E402
from app.store.target import PostgresTarget, Target, label_of, locate  # noqa: E402

TARGET_S = 1.0
RETIRED = "bench/retired-model"  # a made-up model the bench marks deprecated, so that page has work to do
_FAILURE_KINDS = [("rate_limited", 429), ("server_error", 503), ("timeout", None), ("capacity", 498)]
_COLUMNS = (
    "request_id",
    "task_type",
    "model",
    "provider",
    "attempt",
    "outcome",
    "error_kind",
    "status_code",
    "error_message",
    "is_fallback",
    "forced",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "latency_ms",
    "cost_usd",
    "created_at",
)


def _chains() -> dict[str, list[tuple[str, bool]]]:
    registry = ai_models.MODEL_REGISTRY
    fallback = registry.get(FALLBACK_KEY, [])
    chains = {}
    for task, models in registry.items():
        if task == FALLBACK_KEY:
            continue
        chain = [(m, False) for m in models] + [(m, True) for m in fallback if m not in models]
        chains[task] = chain
    chains["reasoning"] = [(RETIRED, False), *chains.get("reasoning", [])]  # an old config still naming it
    return chains


def _rows(count: int, days: int, seed: int) -> Iterator[tuple]:
    """Plausible traffic: most requests answer first time, some fall back, a retired model keeps 404-ing."""
    rnd = random.Random(seed)
    chains = _chains()
    tasks = list(chains)
    weights = [5 if t == "fast" else 2 for t in tasks]
    end_ms = int(time.time() * 1000)
    step = days * 86_400_000 / count
    moment = end_ms - days * 86_400_000.0
    made = 0
    while made < count:
        task = rnd.choices(tasks, weights)[0]
        request_id = f"{rnd.getrandbits(128):032x}"
        for position, (model, is_fallback) in enumerate(chains[task], 1):
            moment += step
            made += 1
            created_at = iso_millis(int(moment) / 1000)
            if model == RETIRED:
                yield (
                    request_id,
                    task,
                    model,
                    "groq",
                    position,
                    "failure",
                    "deprecated",
                    404,
                    "The model has been decommissioned",
                    int(is_fallback),
                    0,
                    None,
                    None,
                    None,
                    rnd.uniform(40, 90),
                    0.0,
                    created_at,
                )
                continue
            info = ai_models.MODEL_CATALOG.get(model)
            if rnd.random() < 0.06:
                kind, status = rnd.choice(_FAILURE_KINDS)
                latency = 30_000.0 if kind == "timeout" else rnd.uniform(50, 400)
                yield (
                    request_id,
                    task,
                    model,
                    "groq",
                    position,
                    "failure",
                    kind,
                    status,
                    f"{kind} (bench)",
                    int(is_fallback),
                    0,
                    None,
                    None,
                    None,
                    latency,
                    0.0 if info else None,
                    created_at,
                )
                if made >= count:
                    return
                continue
            prompt, completion = rnd.randint(100, 3000), rnd.randint(20, 1200)
            cost = None
            if info and info.priced:
                cost = (prompt * info.input_price + completion * info.output_price) / 1_000_000  # type: ignore[operator]
            latency = rnd.lognormvariate(6.2, 0.5) * (2 if "120b" in model else 1)
            yield (
                request_id,
                task,
                model,
                "groq",
                position,
                "success",
                None,
                None,
                None,
                int(is_fallback),
                0,
                prompt,
                completion,
                prompt + completion,
                latency,
                cost,
                created_at,
            )
            break


def seed(path: Target, count: int, days: int = 30, seed_value: int = 7) -> float:
    """Create the schema the normal way, then bulk insert in one transaction. Returns seconds taken."""
    if isinstance(path, PostgresTarget):
        return seed_postgres(path, count, days, seed_value)
    started = time.perf_counter()
    open_database(path).conn.close()
    conn = sqlite3.connect(path, isolation_level=None)
    # Bulk load: no journal, and the indexes built once afterwards (one sort each) instead of row by row.
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'attempts' AND sql IS NOT NULL"
    ).fetchall()
    conn.execute("BEGIN")
    for name, _ in indexes:
        conn.execute(f"DROP INDEX [{name}]")
    conn.executemany(
        f"INSERT INTO attempts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
        _rows(count, days, seed_value),
    )
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute(
        "INSERT OR REPLACE INTO model_status (model, status, detail, until, first_seen, last_seen, hits) "
        "SELECT model, 'deprecated', 'model_decommissioned (bench)', NULL, MIN(created_at), MAX(created_at), "
        "COUNT(*) FROM attempts WHERE model = ? GROUP BY model",
        (RETIRED,),
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA journal_mode=WAL")  # as the attempt log leaves it
    conn.close()
    return time.perf_counter() - started


PG_BATCH_ROWS = 50_000


def seed_postgres(target: PostgresTarget, count: int, days: int, seed_value: int) -> float:
    """As routers running for `days` would leave the store: a partition per UTC day, the rows COPYed in by the
    attempt log's own batch write (the day's spend with them), then VACUUM ANALYZE, as autovacuum would have run
    by then. Returns seconds taken."""
    from app.store.database import write_batch
    from app.store.postgres.migrations import ensure_partitions

    started = time.perf_counter()
    db = open_database(target)
    try:
        first = datetime.now(UTC).date() - timedelta(days=days)
        for n in range(days + 1):
            ensure_partitions(db.conn, first + timedelta(days=n), ahead=0)
        batch: list[object] = []
        for values in _rows(count, days, seed_value):
            batch.append(AttemptRow(*values))
            if len(batch) == PG_BATCH_ROWS:
                write_batch(db, batch)  # type: ignore[arg-type]
                batch = []
        write_batch(db, batch)  # type: ignore[arg-type]
        db.conn.execute(
            "INSERT INTO model_status (model, status, detail, until, first_seen, last_seen, hits) "
            "SELECT model, 'deprecated', 'model_decommissioned (bench)', NULL, MIN(created_at), MAX(created_at), "
            "COUNT(*) FROM attempts WHERE model = ? GROUP BY model ON CONFLICT (model) DO NOTHING",
            (RETIRED,),
        )
        db.conn.execute("VACUUM ANALYZE")
    finally:
        db.conn.close()
    return time.perf_counter() - started


def has_attempts(where: Target) -> bool:
    from dashboard import queries

    conn = queries.connect(where)
    if conn is None:
        return False
    try:
        return queries.why_empty(conn) is None
    finally:
        conn.close()


def count_attempts(where: Target) -> int:
    from dashboard import queries

    conn = queries.connect(where)
    assert conn is not None
    try:
        return int(conn.execute("SELECT COUNT(*) FROM attempts").fetchone()[0])
    finally:
        conn.close()


def roll_up(path: Target) -> str:
    """What a router's hourly upkeep does to the file (the first time: every closed hour)."""
    from app.store.retention import rollup

    db = open_database(path)
    started = time.perf_counter()
    try:
        report = rollup(db.conn)
    finally:
        db.conn.close()
    return (
        f"rolled up {report.hours:,} closed hours ({report.rows:,} rows) in {time.perf_counter() - started:.1f} s, "
        "as routers do every hour"
    )


# -- timing --------------------------------------------------------------------------------------------------

PAGES = ("Overview", "Models", "Tasks", "Spend", "Deprecations", "Failures", "Request")


def _drill_down_request(path: Target) -> str:
    """The newest request that fell back (several rows): what an operator opens from the Failures page."""
    from dashboard import queries

    conn = queries.connect(path)
    assert conn is not None
    try:
        row = conn.execute("SELECT request_id FROM attempts WHERE attempt > 1 ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        conn.close()
    return row[0] if row else ""


def _busiest_models(count: int) -> tuple[str, ...]:
    """The first models of the registry (every one the bench's traffic calls), e.g. both gpt-oss models."""
    seen = dict.fromkeys(m for models in ai_models.MODEL_REGISTRY.values() for m in models)
    return tuple(seen)[:count]


# (column title, time range, model filter). The filtered case is the costliest shape: with two models selected a
# request is counted at its first row on either, which takes one request_id lookup per fallback row.
SCENARIOS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("Last 6 hours", "Last 6 hours", ()),  # the most trend buckets: 72 of five minutes
    ("Last 24 hours", "Last 24 hours", ()),
    ("Last 7 days", "Last 7 days", ()),
    ("All time", "All time", ()),
    ("All time, 2 models", "All time", _busiest_models(2)),
)


def _best_of(runs: int, fn: Callable[[], float | None]) -> float:
    """Best of `runs`; `fn` may return its own measure (to leave set-up out), else it is timed whole."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        measured = fn()
        best = min(best, measured if measured is not None else time.perf_counter() - started)
    return best


Scenario = tuple[str, str, tuple[str, ...]]


def time_queries(path: Target, runs: int, scenarios: tuple[Scenario, ...] = SCENARIOS) -> dict[tuple[str, str], float]:
    """Each page's `load(ctx)`: exactly the SQL the page runs, no drawing."""
    from dashboard import queries, registry
    from dashboard.context import make_context
    from dashboard.filters import Selection
    from dashboard.views import PAGES as MODULES

    conn = queries.connect(path)
    assert conn is not None
    out = {}
    settings = registry.current_settings()  # as the app does: once per run
    request_id = _drill_down_request(path)
    for title, label, models in scenarios:
        ctx = make_context(conn, path, Selection(label, None, (), models, None), datetime.now(UTC), settings)
        for page in PAGES:
            args = (request_id,) if page == "Request" else ()
            out[(page, title)] = _best_of(
                runs, lambda page=page, ctx=ctx, args=args: MODULES[page].load(ctx, *args) and None
            )
    conn.close()
    return out


def time_renders(path: Target, runs: int, scenarios: tuple[Scenario, ...] = SCENARIOS) -> dict[tuple[str, str], float]:
    """The whole Streamlit script run per page (sidebar, queries, tables, charts) through AppTest."""
    from streamlit.testing.v1 import AppTest

    os.environ["TASKROUTER_DASHBOARD_DB"] = path.url if isinstance(path, PostgresTarget) else str(path)
    script = str(ROOT / "dashboard" / "main.py")
    AppTest.from_file(script, default_timeout=120).run()  # warm-up: imports, first-run caches

    request_id = _drill_down_request(path)

    def render(page: str, label: str, models: tuple[str, ...]) -> float:
        at = AppTest.from_file(script, default_timeout=120)
        at.query_params.update({"page": page, "range": label})
        if page == "Request":
            at.query_params["request"] = request_id
        if models:  # picking models is a rerun of an open page, as in the browser: time that rerun
            at.run()
            at.sidebar.multiselect(key="model").set_value(list(models))
        started = time.perf_counter()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        return time.perf_counter() - started

    return {
        (p, title): _best_of(runs, lambda p=p, r=r, m=m: render(p, r, m)) for title, r, m in scenarios for p in PAGES
    }


def _report(title: str, timings: dict[tuple[str, str], float], scenarios: tuple[Scenario, ...]) -> None:
    print(f"\n{title}")
    print(f"{'page':<14}" + "".join(f"{t:>22}" for t, _, _ in scenarios))
    for page in PAGES:
        cells = "".join(
            f"{timings[(page, t)]:>10.3f} s ({timings[(page, t)] / TARGET_S:>4.0%})" for t, _, _ in scenarios
        )
        print(f"{page:<14}{cells}")
    worst = max(timings.values())
    print(
        f"worst: {worst:.3f} s = {worst / TARGET_S:.0%} of the {TARGET_S:.0f} s target"
        f" -> {'OK' if worst < TARGET_S else 'OVER'}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--db",
        help="a database file, or a postgresql:// URL (default: a temporary file, removed "
        "afterwards); seeded when it has no attempts, else used as it is",
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30, help="the rows are spread over this many days up to now")
    parser.add_argument("--runs", type=int, default=3, help="timings are the best of this many runs")
    parser.add_argument("--no-render", action="store_true", help="time the SQL only, not the Streamlit runs")
    parser.add_argument(
        "--no-rollups",
        action="store_true",
        help="do not roll the file up first (a file never rolled up: every range reads raw rows)",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        choices=[t for t, _, _ in SCENARIOS],
        help="time only this column (repeatable; default: every one)",
    )
    args = parser.parse_args(argv)
    scenarios = tuple(s for s in SCENARIOS if not args.scenario or s[0] in args.scenario)

    workdir = None
    if args.db is None:
        workdir = tempfile.TemporaryDirectory(prefix="taskrouter-bench-")
        args.db = Path(workdir.name) / "bench.db"
    store = locate(args.db)
    try:
        if has_attempts(store):
            print(f"using {label_of(store)} as it is")
        else:
            seconds = seed(store, args.rows, args.days)
            print(f"seeded {args.rows:,} attempt rows over {args.days} days into {label_of(store)} in {seconds:.1f} s")
        if not args.no_rollups:
            print(roll_up(store))
        print(f"{count_attempts(store):,} rows; best of {args.runs} runs; target {TARGET_S:.0f} s per page")
        _report("SQL per page (the page's load())", time_queries(store, args.runs, scenarios), scenarios)
        if not args.no_render:
            _report(
                "Full page render (Streamlit script run via AppTest)",
                time_renders(store, args.runs, scenarios),
                scenarios,
            )
    finally:
        if isinstance(store, PostgresTarget):
            from app.store.postgres.reader import close_readers

            close_readers()
        if workdir is not None:
            workdir.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())

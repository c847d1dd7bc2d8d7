"""The PostgreSQL schema: an append-only list of small functions, run in order when a process opens the store.

The same rules as SQLite's migrations (app/store/sqlite/migrations.py): never edit or reorder one that has shipped.
Every process that opens the store runs `migrate` under one advisory lock, so many starting at once apply each
migration exactly once; a process that finds every migration applied takes no lock.

The tables mirror SQLite's, column for column, so the store's shared statements run on both. What differs:
- `attempts` is partitioned by UTC day on `created_at` (text in the "C" collation, so it sorts byte by byte as it
  does in SQLite): retention drops a day whole instead of deleting its rows. Rows outside every day's partition
  (an import of old rows) land in the default partition.
- a trigger on `model_status` and `overrides` sends NOTIFY `taskrouter_state` on every change, so every router
  re-reads them within milliseconds instead of at its next periodic refresh.
- `spend` keeps each UTC day's logged spend and the reservations of calls in flight, so that the daily budget is
  checked atomically across hosts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from app.store.postgres.connection import PgConnection

logger = logging.getLogger("taskrouter.store")

PG_MIGRATIONS: list[Callable[[PgConnection], None]] = []
migration = PG_MIGRATIONS.append

NOTIFY_CHANNEL = "taskrouter_state"
_LOCK_KEY = 0x7461736B  # "task": the advisory lock every process migrating the store takes
_APPLIED = "_taskrouter_migrations"
# Writers hold it shared for each batch; the rollup takes it exclusively for an instant, so that once it has, every
# attempt with an id below the sequence's current value is committed (PostgreSQL hands out ids at insert, not in
# commit order) and "every row up to max_id" is a fact, as in SQLite.
IDS_SETTLED_LOCK = 0x726F6C6C  # "roll"


def applied(conn: PgConnection) -> set[str]:
    exists = conn.execute("SELECT to_regclass(?) IS NOT NULL", (_APPLIED,)).fetchone()
    if not exists or not exists[0]:
        return set()
    return {r[0] for r in conn.execute(f"SELECT name FROM {_APPLIED}")}


def migrate(conn: PgConnection) -> list[str]:
    """Apply what is missing, each migration in its own transaction; returns the names applied now."""
    if len(applied(conn)) >= len(PG_MIGRATIONS):
        return []
    conn.execute("SELECT pg_advisory_lock(?)", (_LOCK_KEY,))
    try:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_APPLIED} (name text PRIMARY KEY, applied_at text NOT NULL)")
        done = applied(conn)
        names = []
        for fn in PG_MIGRATIONS:
            if fn.__name__ in done:
                continue
            with conn:
                fn(conn)
                conn.execute(
                    f"INSERT INTO {_APPLIED} (name, applied_at) VALUES (?, ?)",
                    (fn.__name__, datetime.now(UTC).isoformat()),
                )
            names.append(fn.__name__)
        return names
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", (_LOCK_KEY,))


def partition_name(day: date) -> str:
    return f"attempts_{day:%Y%m%d}"


def daily_partitions(conn: PgConnection) -> list[tuple[str, date]]:
    """(name, day) of each daily partition of `attempts`, oldest first (the default partition left out)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'attempts' "
        "AND c.relname LIKE 'attempts\\_2%' ORDER BY 1"
    ).fetchall()
    return [(r[0], datetime.strptime(r[0][len("attempts_") :], "%Y%m%d").date()) for r in rows]


def ensure_partitions(conn: PgConnection, today: date, ahead: int = 2) -> None:
    """Yesterday's, today's and the next `ahead` days' partitions, under the migration lock (two processes
    creating the same partition at once would otherwise collide in the catalog). Writers call it when they open
    and at the first batch of each UTC day, so a writer running for weeks keeps days ahead of its rows."""
    wanted = [today + timedelta(days=n) for n in range(-1, ahead + 1)]
    have = {day for _, day in daily_partitions(conn)}
    missing = [d for d in wanted if d not in have]
    if not missing:
        conn.partitions_through = today
        return
    import psycopg

    conn.execute("SELECT pg_advisory_lock(?)", (_LOCK_KEY,))
    try:
        for day in missing:
            try:
                conn.execute(
                    f"CREATE TABLE IF NOT EXISTS {partition_name(day)} PARTITION OF attempts FOR VALUES "
                    f"FROM ('{day.isoformat()}') TO ('{(day + timedelta(days=1)).isoformat()}')"
                )
            except psycopg.errors.CheckViolation:
                # The default partition already holds rows of that day (a writer that ran past the days it had
                # made): they stay there, where retention deletes them by date like any other.
                logger.warning("store: no partition for %s: the default partition holds rows of that day", day)
    finally:
        conn.execute("SELECT pg_advisory_unlock(?)", (_LOCK_KEY,))
    conn.partitions_through = today


@migration
def p001_attempts(conn: PgConnection) -> None:
    conn.execute("""
        CREATE TABLE IF NOT EXISTS attempts (
            id bigserial,
            request_id text, task_type text, model text, provider text, attempt integer,
            outcome text,  -- success | failure | skipped
            error_kind text, status_code integer, error_message text,
            is_fallback smallint, forced smallint,
            prompt_tokens integer, completion_tokens integer, total_tokens integer,
            latency_ms double precision,
            cost_usd double precision,  -- NULL when the model has no known price, never a made-up 0
            created_at text COLLATE "C" NOT NULL,  -- UTC ISO-8601, 2026-11-22T10:00:00.123Z: sorts as text
            cached_tokens integer, reasoning_tokens integer, variant text, finish_reason text,
            provider_request_id text, prompt text, response text,
            retry integer NOT NULL DEFAULT 0, hedged smallint NOT NULL DEFAULT 0,
            first_token_ms double precision, override_source text
        ) PARTITION BY RANGE (created_at)""")
    conn.execute("CREATE TABLE IF NOT EXISTS attempts_default PARTITION OF attempts DEFAULT")
    for name, columns in (
        ("id", "id"),
        ("created_at", "created_at"),
        ("model_created_at", "model, created_at"),
        ("task_type_created_at", "task_type, created_at"),
        ("request_id", "request_id"),
        ("outcome_created_at", "outcome, created_at"),
        ("error_kind_created_at", "error_kind, created_at"),
    ):
        conn.execute(f"CREATE INDEX IF NOT EXISTS idx_attempts_{name} ON attempts ({columns})")


@migration
def p002_model_status_and_checks(conn: PgConnection) -> None:
    conn.execute("""
        CREATE TABLE IF NOT EXISTS model_status (
            model text PRIMARY KEY,
            status text,  -- deprecated | not_found | cooling_down | circuit_open | closed | cleared
            detail text, until text, first_seen text, last_seen text, hits integer)""")
    conn.execute("""
        CREATE TABLE IF NOT EXISTS checks (
            id bigserial PRIMARY KEY, checked_at text COLLATE "C", exit_code integer, errors integer,
            warnings integer, summary text, report_json text)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_checks_checked_at ON checks (checked_at)")


@migration
def p003_overrides_and_audit(conn: PgConnection) -> None:
    conn.execute("""
        CREATE TABLE IF NOT EXISTS overrides (
            id bigserial PRIMARY KEY, kind text, task text, model text, reason text, set_by text,
            set_at text COLLATE "C", expires_at text COLLATE "C", cleared_at text, cleared_by text)""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_overrides_cleared_at ON overrides (cleared_at)")
    conn.execute("""
        CREATE TABLE IF NOT EXISTS audit (
            id bigserial PRIMARY KEY, at text, who text, action text, target text, task text, detail text,
            reason text, via text)""")


@migration
def p004_notify_state_changes(conn: PgConnection) -> None:
    # Statement-level: one notification per statement, sent at commit, collapsed within a transaction.
    conn.execute(f"""
        CREATE OR REPLACE FUNCTION taskrouter_notify_state() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('{NOTIFY_CHANNEL}', TG_TABLE_NAME); RETURN NULL; END $$""")
    for table in ("model_status", "overrides"):
        conn.execute(f"DROP TRIGGER IF EXISTS {table}_notify ON {table}")
        conn.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION taskrouter_notify_state()"
        )


@migration
def p005_spend(conn: PgConnection) -> None:
    # spent: the cost of every attempt logged that UTC day, added by the writers in the transaction that logs
    # the rows. reserved: the estimates of calls in flight, taken atomically before each call when a budget is set.
    conn.execute("""
        CREATE TABLE IF NOT EXISTS spend (
            day text PRIMARY KEY,
            spent double precision NOT NULL DEFAULT 0,
            reserved double precision NOT NULL DEFAULT 0)""")


@migration
def p006_request_id_byte_order(conn: PgConnection) -> None:
    # The dashboard finds the requests whose id starts with a pasted fragment as a range in byte order, as SQLite's
    # request_id index serves it. The index of p001 sorts by the database's collation, in which that range is not
    # the ids with that prefix (and the planner cannot use it for a "C" comparison), so without this one the
    # lookup reads every partition.
    conn.execute('CREATE INDEX IF NOT EXISTS idx_attempts_request_id_c ON attempts (request_id COLLATE "C")')


@migration
def p007_attempt_rollups(conn: PgConnection) -> None:
    # The same rollups as SQLite's (app/store/sqlite/migrations.py m007, m008; app/store/rollup.py): per hour and
    # per UTC day, one row per (period, task, model, chain position, outcome, error kind), '' for a NULL error kind.
    for table, period in (("attempts_hourly", "hour"), ("attempts_daily", "day")):
        conn.execute(f"""
            CREATE TABLE IF NOT EXISTS {table} (
                {period} text COLLATE "C" NOT NULL,
                task_type text NOT NULL, model text NOT NULL, attempt integer NOT NULL, outcome text NOT NULL,
                error_kind text NOT NULL,
                row_count bigint NOT NULL, first_calls bigint NOT NULL,
                prompt_tokens bigint NOT NULL, completion_tokens bigint NOT NULL, total_tokens bigint NOT NULL,
                cost_usd double precision NOT NULL, priced_rows bigint NOT NULL,
                latency_ms_sum double precision NOT NULL, latency_count bigint NOT NULL, latency_hist text,
                first_token_count bigint NOT NULL, first_token_hist text,
                first_at text COLLATE "C" NOT NULL, last_at text COLLATE "C" NOT NULL,
                PRIMARY KEY ({period}, task_type, model, attempt, outcome, error_kind))""")
    conn.execute("""
        CREATE TABLE IF NOT EXISTS rollup_state (
            name text PRIMARY KEY, through_hour text COLLATE "C", max_id bigint NOT NULL DEFAULT 0, rolled_at text,
            upkeep_at text, pruned_before text COLLATE "C")""")


@migration
def p008_tiers_and_savings(conn: PgConnection) -> None:
    # As SQLite's m009: the tier a request ran at and what each row saved; NULL when not measured.
    conn.execute("ALTER TABLE attempts ADD COLUMN IF NOT EXISTS tier text")
    conn.execute("ALTER TABLE attempts ADD COLUMN IF NOT EXISTS saved_usd double precision")


@migration
def p009_response_cache(conn: PgConnection) -> None:
    # As SQLite's m010: the response cache, one answer per request key, shared by every host.
    conn.execute("""
        CREATE TABLE IF NOT EXISTS response_cache (
            key text PRIMARY KEY, task_type text NOT NULL, model text NOT NULL, provider text NOT NULL, tier text,
            answer text NOT NULL, cost_usd double precision,
            created_at text COLLATE "C" NOT NULL, expires_at text COLLATE "C" NOT NULL,
            size_bytes integer NOT NULL, hits bigint NOT NULL DEFAULT 0,
            saved_usd double precision NOT NULL DEFAULT 0, last_hit_at text COLLATE "C")""")
    conn.execute("CREATE INDEX IF NOT EXISTS idx_response_cache_expires_at ON response_cache (expires_at)")


@migration
def p010_rollup_savings(conn: PgConnection) -> None:
    # As SQLite's m011: the rollups' sum of saved_usd and count of cache hits.
    for table in ("attempts_hourly", "attempts_daily"):
        conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS saved_usd double precision NOT NULL DEFAULT 0")
        conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS cache_hits bigint NOT NULL DEFAULT 0")


@migration
def p011_operators(conn: PgConnection) -> None:
    # As SQLite's m012: the dashboard's named operators, each with a salted scrypt hash of its secret.
    conn.execute("""
        CREATE TABLE IF NOT EXISTS operators (
            name text PRIMARY KEY, secret_hash text NOT NULL, created_at text NOT NULL, created_by text NOT NULL,
            revoked_at text, revoked_by text)""")


@migration
def p012_api_keys(conn: PgConnection) -> None:
    # As SQLite's m013: the gateway's API keys (a SHA-256 hash of each), and the key's name on each attempt row.
    conn.execute("""
        CREATE TABLE IF NOT EXISTS api_keys (
            name text PRIMARY KEY, key_hash text NOT NULL UNIQUE, prefix text NOT NULL, tasks text,
            daily_budget_usd double precision, admin integer NOT NULL DEFAULT 0, expires_at text COLLATE "C",
            created_at text NOT NULL, created_by text NOT NULL, revoked_at text, revoked_by text)""")
    conn.execute("ALTER TABLE attempts ADD COLUMN IF NOT EXISTS key_name text")
    conn.execute(
        "CREATE INDEX IF NOT EXISTS idx_attempts_key_name_created_at ON attempts (key_name, created_at) "
        "WHERE key_name IS NOT NULL"
    )

"""Schema migrations: an append-only list of small functions, run in order when the store opens.

Never edit or reorder a migration that has shipped; add a new one. Each must be idempotent (IF NOT EXISTS,
or check the columns first) because two processes may open a brand-new database at the same moment.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlite_utils import Database


MIGRATIONS: list[Callable[[Database], None]] = []
migration = MIGRATIONS.append

_APPLIED = "_taskrouter_migrations"


def applied_migrations(conn: sqlite3.Connection) -> set[str]:
    """Plain SQL, without sqlite-utils: a router's writer asks this on every open, and most opens need nothing more."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (_APPLIED,)).fetchone() is None:
        return set()
    return {row[0] for row in conn.execute(f"SELECT name FROM {_APPLIED}").fetchall()}


def migrate(db: Database) -> list[str]:
    """Apply what is missing; returns the names applied now."""
    db.table(_APPLIED).create({"name": str, "applied_at": str}, pk="name", if_not_exists=True)
    done = {row["name"] for row in db.table(_APPLIED).rows}
    applied = []
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        fn(db)
        db.table(_APPLIED).insert({"name": fn.__name__, "applied_at": datetime.now(UTC).isoformat()}, ignore=True)
        applied.append(fn.__name__)
    return applied


@migration
def m001_attempts(db: Database) -> None:
    db.table("attempts").create(
        {
            "id": int,
            "request_id": str,
            "task_type": str,
            "model": str,
            "provider": str,
            "attempt": int,
            "outcome": str,  # success | failure | skipped
            "error_kind": str,
            "status_code": int,
            "error_message": str,
            "is_fallback": int,
            "forced": int,
            "prompt_tokens": int,
            "completion_tokens": int,
            "total_tokens": int,
            "latency_ms": float,
            "cost_usd": float,  # NULL when the model has no known price, never a made-up 0
            "cached_tokens": int,
            "reasoning_tokens": int,
            "variant": str,
            "finish_reason": str,
            "provider_request_id": str,
            "prompt": str,  # only with LOG_CONTENT=true
            "response": str,  # only with LOG_CONTENT=true
            "created_at": str,  # UTC ISO-8601, e.g. 2026-11-22T10:00:00.123Z: sorts as text
        },
        pk="id",
        if_not_exists=True,
    )
    table = db.table("attempts")
    table.create_index(["created_at"], if_not_exists=True)
    table.create_index(["model", "created_at"], if_not_exists=True)
    table.create_index(["task_type", "created_at"], if_not_exists=True)
    table.create_index(["request_id"], if_not_exists=True)
    table.create_index(["outcome", "created_at"], if_not_exists=True)
    table.create_index(["error_kind", "created_at"], if_not_exists=True)


@migration
def m002_model_status(db: Database) -> None:
    db.table("model_status").create(
        {
            "model": str,
            "status": str,  # deprecated | not_found | cooling_down
            "detail": str,
            "until": str,  # UTC ISO-8601; NULL = for good (decommissioned)
            "first_seen": str,
            "last_seen": str,
            "hits": int,
        },
        pk="model",
        if_not_exists=True,
    )


@migration
def m003_deprecation_checks(db: Database) -> None:
    # One row per `taskrouter check` run; the dashboard shows the latest (app.deprecations.latest_check).
    db.table("checks").create(
        {
            "id": int,
            "checked_at": str,  # UTC ISO-8601, sorts as text
            "exit_code": int,  # 0 healthy, 1 warnings with --strict, 2 errors
            "errors": int,
            "warnings": int,
            "summary": str,
            "report_json": str,  # the `taskrouter check --json` document
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("checks").create_index(["checked_at"], if_not_exists=True)


def _add_column(db: Database, table: str, column: str, kind: type, default: object) -> None:
    """Idempotent, and safe when two processes migrate a new file at once. `default` None: nullable."""
    if column in db.table(table).columns_dict:
        return
    try:
        db.table(table).add_column(column, kind, not_null_default=default)
    except sqlite3.OperationalError as exc:  # another process added it between the check and here
        if "duplicate column" not in str(exc):
            raise


@migration
def m004_retries_and_hedges(db: Database) -> None:
    _add_column(db, "attempts", "retry", int, 0)  # 0: the first call to the model in its request
    _add_column(db, "attempts", "hedged", int, 0)  # 1: started in parallel with a slower call (HEDGE_AFTER_MS)


@migration
def m005_first_token(db: Database) -> None:
    _add_column(db, "attempts", "first_token_ms", float, None)  # streamed attempts only; NULL otherwise


@migration
def m006_overrides_and_audit(db: Database) -> None:
    # Runtime overrides (app/store/overrides.py): active while cleared_at is NULL and expires_at is in the future.
    db.table("overrides").create(
        {
            "id": int,
            "kind": str,
            "task": str,
            "model": str,
            "reason": str,
            "set_by": str,
            "set_at": str,
            "expires_at": str,
            "cleared_at": str,
            "cleared_by": str,
        },
        pk="id",
        if_not_exists=True,
    )
    db.table("overrides").create_index(["cleared_at"], if_not_exists=True)
    # Who changed what, when and why: every override set or cleared, every mark cleared by hand.
    db.table("audit").create(
        {
            "id": int,
            "at": str,
            "who": str,
            "action": str,
            "target": str,
            "task": str,
            "detail": str,
            "reason": str,
            "via": str,
        },
        pk="id",
        if_not_exists=True,
    )
    # Where a forced or default model came from: "runtime force #12", "FORCE_MODEL", "DEFAULT_FAST_MODEL"; NULL
    # when the registry's order was followed.
    _add_column(db, "attempts", "override_source", str, None)


@migration
def m007_attempt_rollups(db: Database) -> None:
    # What the attempt log adds up to per hour and per UTC day, kept when raw rows are pruned
    # (app/store/retention.py). One row per (period, task, model, chain position, outcome, error kind); '' stands
    # for a NULL error kind, since NULL cannot be part of a key that ON CONFLICT matches. WITHOUT ROWID: the key
    # is the table's only B-tree, so a range of periods is one contiguous read and there is no second index.
    for table, period in (("attempts_hourly", "hour"), ("attempts_daily", "day")):
        db.execute(f"""
            CREATE TABLE IF NOT EXISTS {table} (
                {period} TEXT NOT NULL,  -- hour: 'YYYY-MM-DDTHH', day: 'YYYY-MM-DD' (UTC; both sort as text)
                task_type TEXT NOT NULL,
                model TEXT NOT NULL,
                attempt INTEGER NOT NULL,  -- the chain position: attempt = 1 rows are the requests
                outcome TEXT NOT NULL,
                error_kind TEXT NOT NULL,
                row_count INTEGER NOT NULL,
                first_calls INTEGER NOT NULL,  -- rows with retry = 0: the requests that reached this model
                prompt_tokens INTEGER NOT NULL,
                completion_tokens INTEGER NOT NULL,
                total_tokens INTEGER NOT NULL,
                cost_usd REAL NOT NULL,  -- the sum over priced_rows; the other rows' cost is unknown, not 0
                priced_rows INTEGER NOT NULL,
                latency_ms_sum REAL NOT NULL,
                latency_count INTEGER NOT NULL,
                latency_hist TEXT,  -- JSON bucket -> count (app/store/histogram.py); NULL: none
                first_token_count INTEGER NOT NULL,
                first_token_hist TEXT,
                first_at TEXT NOT NULL,  -- created_at of the group's first and last rows
                last_at TEXT NOT NULL,
                PRIMARY KEY ({period}, task_type, model, attempt, outcome, error_kind)
            ) WITHOUT ROWID""")
    # How far the rollups go: every hour before through_hour is in them, and so is every row with id <= max_id
    # (a row written late, for an hour already rolled up, has a higher id). upkeep_at: the last automatic run by
    # any process (app/store/upkeep.py), so that several routers on one file run it once an hour between them.
    db.execute("""CREATE TABLE IF NOT EXISTS rollup_state (
                      name TEXT PRIMARY KEY, through_hour TEXT, max_id INTEGER NOT NULL DEFAULT 0,
                      rolled_at TEXT, upkeep_at TEXT)""")


@migration
def m008_pruned_before(db: Database) -> None:
    # The hour ('YYYY-MM-DDTHH') before which raw attempt rows may have been pruned: the dashboard reads those
    # hours from the rollups only, a range starting inside one from the whole hour.
    _add_column(db, "rollup_state", "pruned_before", str, None)


@migration
def m009_tiers_and_savings(db: Database) -> None:
    # The complexity tier a request ran at, and what each row saved against the task's first model (for a cache
    # hit, the cost of the answer it replayed); both NULL when not measured.
    _add_column(db, "attempts", "tier", str, None)
    _add_column(db, "attempts", "saved_usd", float, None)


@migration
def m010_response_cache(db: Database) -> None:
    # The response cache (app/store/response_cache.py): one answer per request key, shared by every process on the
    # file. Times are UTC ISO-8601 text, as everywhere in the store. An ordinary rowid table: answers can be a few
    # kilobytes, which a WITHOUT ROWID table would carry in its key's B-tree.
    db.execute("""
        CREATE TABLE IF NOT EXISTS response_cache (
            key TEXT NOT NULL PRIMARY KEY,  -- sha256 hex of the request (app.core.cache.cache_key)
            task_type TEXT NOT NULL,
            model TEXT NOT NULL,
            provider TEXT NOT NULL,
            tier TEXT,
            answer TEXT NOT NULL,  -- JSON: content, finish_reason, usage, tool_calls, provider_request_id
            cost_usd REAL,  -- what the answer cost when made; NULL when its price is unknown
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            hits INTEGER NOT NULL DEFAULT 0,
            saved_usd REAL NOT NULL DEFAULT 0,  -- the sum of what its hits saved
            last_hit_at TEXT
        )""")
    db.execute("CREATE INDEX IF NOT EXISTS idx_response_cache_expires_at ON response_cache (expires_at)")


@migration
def m011_rollup_savings(db: Database) -> None:
    # The rollups add up saved_usd (rows whose saving is unknown add nothing) and count the cache hits, so that the
    # Spend page reads long ranges from them.
    for table in ("attempts_hourly", "attempts_daily"):
        _add_column(db, table, "saved_usd", float, 0)
        _add_column(db, table, "cache_hits", int, 0)


@migration
def m012_operators(db: Database) -> None:
    # The people who may act from the dashboard (app/store/operators.py): a salted scrypt hash of each one's
    # secret, never the secret. A revoked operator's row stays, so that the audit's names keep their meaning.
    db.execute("""
        CREATE TABLE IF NOT EXISTS operators (
            name TEXT NOT NULL PRIMARY KEY,  -- lower case; an e-mail address for an OIDC login
            secret_hash TEXT NOT NULL,  -- scrypt$N$r$p$salt$hash
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at TEXT,  -- NULL: may act
            revoked_by TEXT
        )""")


@migration
def m013_api_keys(db: Database) -> None:
    # The gateway's API keys (app/store/api_keys.py): a SHA-256 hash of each key, never the key (keys are random
    # and long, so a fast hash is enough and every request can afford it). A revoked key's row stays, so that the
    # attempt rows and the audit keep naming it. Each attempt row carries the key's name; the per-key daily
    # budget sums a key's costs of the day, which the partial index serves without weighing on rows without a key.
    db.execute("""
        CREATE TABLE IF NOT EXISTS api_keys (
            name TEXT NOT NULL PRIMARY KEY,  -- lower case
            key_hash TEXT NOT NULL UNIQUE,  -- sha256 hex of the key
            prefix TEXT NOT NULL,  -- the key's first characters, to tell keys apart in a listing; not a secret
            tasks TEXT,  -- comma-separated registry keys the key may name; NULL: every task
            daily_budget_usd REAL,  -- NULL: only the global DAILY_BUDGET_USD
            admin INTEGER NOT NULL DEFAULT 0,  -- 1: may use the management API's writes
            expires_at TEXT,  -- UTC ISO-8601; NULL: never
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            revoked_at TEXT,  -- NULL: in use
            revoked_by TEXT
        )""")
    _add_column(db, "attempts", "key_name", str, None)
    db.execute(
        "CREATE INDEX IF NOT EXISTS idx_attempts_key_name_created_at ON attempts (key_name, created_at) "
        "WHERE key_name IS NOT NULL"
    )

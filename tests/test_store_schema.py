"""Both backends' migration lists (SQLite's m001..., PostgreSQL's p001...) reach the same schema: the same tables,
the same columns of the same kinds, the same primary keys and the indexes the readers rely on. What differs on
purpose is listed here, each with its reason, so that a migration added to one list and not the other fails."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from app.store import open_database
from app.store.postgres.connection import connect
from app.store.postgres.migrations import PG_MIGRATIONS
from app.store.sqlite.migrations import MIGRATIONS
from app.store.target import PostgresTarget

# Tables only one backend has.
POSTGRES_ONLY_TABLES = {
    "spend",  # the shared budget's ledger: hosts reserve from it; a SQLite file's budget sums the attempts instead
}
# Indexes only PostgreSQL needs: `attempts` is partitioned by day, and a partitioned table's primary key would have
# to hold the partition key, so `id` is indexed instead of being the key; request_id in byte order ("C") serves the
# dashboard's prefix lookups, which SQLite's request_id index serves as it is.
POSTGRES_ONLY_INDEXES = {"attempts": {("id",), ('request_id COLLATE "C"',)}}
POSTGRES_ONLY_KEYS = {"attempts": ()}  # see above: no primary key on a partitioned attempts table
SQLITE_ONLY_KEYS = {"attempts": ("id",)}

# A column's kind, as both backends store its values.
_KINDS = {
    "integer": "integer",
    "bigint": "integer",
    "smallint": "integer",
    "text": "text",
    "real": "real",
    "float": "real",
    "double precision": "real",
}


def _kind(declared: str) -> str:
    return _KINDS[declared.lower()]


def sqlite_schema(path: Path) -> dict[str, dict]:
    conn = sqlite3.connect(path)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        schema: dict[str, dict] = {}
        for table in tables:
            info = conn.execute(f"PRAGMA table_info({table})").fetchall()
            indexes = set()
            for _, name, _unique, origin, _partial in conn.execute(f"PRAGMA index_list({table})"):
                if origin == "pk":  # the key of a WITHOUT ROWID table, or a text primary key: compared as the key
                    continue
                indexes.add(tuple(r[2] for r in conn.execute(f"PRAGMA index_info({name})")))
            schema[table] = {
                "columns": {r[1]: _kind(r[2]) for r in info},
                "key": tuple(r[1] for r in sorted((r for r in info if r[5]), key=lambda r: r[5])),
                "indexes": indexes,
            }
        return schema
    finally:
        conn.close()


def postgres_schema(target: PostgresTarget) -> dict[str, dict]:
    conn = connect(target, read_only=True)
    try:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace "
                "AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1"
            )
        ]
        schema: dict[str, dict] = {}
        for table in tables:
            columns = {
                r[0]: _kind(r[1])
                for r in conn.execute(
                    "SELECT a.attname, format_type(a.atttypid, NULL) FROM pg_attribute a "
                    "WHERE a.attrelid = ?::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                    (table,),
                )
            }
            key: tuple[str, ...] = ()
            indexes = set()
            # Each indexed column, with the index's collation when it is not the column's own.
            for r in conn.execute(
                "SELECT i.indisprimary, ARRAY(SELECT a.attname || CASE WHEN c.oid <> a.attcollation "
                "THEN ' COLLATE \"' || c.collname || '\"' ELSE '' END "
                "FROM unnest(i.indkey::int2[], i.indcollation::oid[]) WITH ORDINALITY k(n, coll, o) "
                "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n "
                "LEFT JOIN pg_collation c ON c.oid = k.coll ORDER BY k.o) "
                "FROM pg_index i WHERE i.indrelid = ?::regclass",
                (table,),
            ):
                if r[0]:
                    key = tuple(r[1])
                else:
                    indexes.add(tuple(r[1]))
            schema[table] = {"columns": columns, "key": key, "indexes": indexes}
        return schema
    finally:
        conn.close()


@pytest.fixture
def schemas(tmp_path: Path, pg_url: str) -> tuple[dict[str, dict], dict[str, dict]]:
    path = tmp_path / "schema.db"
    target = PostgresTarget(pg_url, tmp_path / "spill.db")
    for where in (path, target):
        open_database(where).conn.close()  # every migration of its list
    return sqlite_schema(path), postgres_schema(target)


def test_both_migration_lists_create_the_same_tables(schemas):
    sqlite, postgres = schemas
    assert set(postgres) - set(sqlite) == POSTGRES_ONLY_TABLES
    assert set(sqlite) - set(postgres) == set()
    assert {
        "attempts",
        "model_status",
        "checks",
        "overrides",
        "audit",
        "attempts_hourly",
        "attempts_daily",
        "rollup_state",
        "response_cache",
        "_taskrouter_migrations",
    } <= set(sqlite)


def test_every_table_has_the_same_columns_of_the_same_kinds(schemas):
    sqlite, postgres = schemas
    for table in sqlite:
        assert sqlite[table]["columns"] == postgres[table]["columns"], table


def test_primary_keys_and_the_indexes_readers_rely_on_are_the_same(schemas):
    sqlite, postgres = schemas
    for table in sqlite:
        assert SQLITE_ONLY_KEYS.get(table, sqlite[table]["key"]) == sqlite[table]["key"], table
        assert POSTGRES_ONLY_KEYS.get(table, sqlite[table]["key"]) == postgres[table]["key"], table
        assert postgres[table]["indexes"] == sqlite[table]["indexes"] | POSTGRES_ONLY_INDEXES.get(table, set()), table
    assert sqlite["attempts"]["indexes"] == {
        ("created_at",),
        ("model", "created_at"),
        ("task_type", "created_at"),
        ("request_id",),
        ("outcome", "created_at"),
        ("error_kind", "created_at"),
        ("key_name", "created_at"),  # partial: rows with a key; a key's daily budget sums its day
    }
    assert sqlite["api_keys"]["indexes"] == {("key_hash",)}  # a request's key is looked up by its hash
    assert sqlite["attempts_hourly"]["key"] == ("hour", "task_type", "model", "attempt", "outcome", "error_kind")
    assert (sqlite["response_cache"]["key"], sqlite["response_cache"]["indexes"]) == (("key",), {("expires_at",)})


def test_each_list_is_recorded_whole_in_its_store(schemas, tmp_path, pg_url):
    from app.store.model_status import query_read_only

    applied = "SELECT name FROM _taskrouter_migrations ORDER BY name"
    assert [r["name"] for r in query_read_only(tmp_path / "schema.db", applied)] == [f.__name__ for f in MIGRATIONS]
    target = PostgresTarget(pg_url, tmp_path / "spill.db")
    assert [r["name"] for r in query_read_only(target, applied)] == [f.__name__ for f in PG_MIGRATIONS]

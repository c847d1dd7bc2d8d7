"""The store's contract, run against SQLite and PostgreSQL alike: migrations, batch writes and read-back, model
status, overrides and their audit, the day's spend, the spill file's import, and secrets kept out of messages."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.store import (
    AttemptRow,
    ModelStatusRow,
    clear_model_status,
    get_attempt_log,
    open_database,
    read_model_status,
    utc_now_iso,
)
from app.store.model_status import query_read_only
from app.store.overrides import (
    DISABLE,
    FORCE,
    clear_overrides,
    end_override,
    read_active,
    read_audit,
    set_override,
)
from app.store.spend import spent_on
from app.store.spill import spill
from app.store.target import PostgresTarget, Target, label_of


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """A new store of each kind. Afterwards a SQLite file's attempt log is closed (pg_url closes PostgreSQL's)."""
    if request.param != "sqlite":
        yield PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db")
        return
    path = tmp_path / "store.db"
    yield path
    get_attempt_log(path).close(timeout=10)


def row(request_id: str, *, cost: float | None = 0.001, created_at: str | None = None, **extra: object) -> AttemptRow:
    return AttemptRow(
        request_id,
        "fast",
        "m1",
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
        12.5,
        cost,
        created_at or utc_now_iso(),
        **extra,
    )  # type: ignore[arg-type]


def attempts(store: Target) -> list[dict]:
    assert get_attempt_log(store).flush(timeout=30)
    return query_read_only(store, "SELECT * FROM attempts ORDER BY id")


def test_migrations_apply_once_when_many_processes_open_a_new_store_at_once(store):
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            open_database(store).conn.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    names = [r["name"] for r in query_read_only(store, "SELECT name FROM _taskrouter_migrations ORDER BY name")]
    # Every migration recorded once (applied twice, the column-adding ones would have raised above).
    if isinstance(store, PostgresTarget):
        from app.store.postgres.migrations import PG_MIGRATIONS as expected
    else:
        from app.store.sqlite.migrations import MIGRATIONS as expected
    assert names == sorted(fn.__name__ for fn in expected)


def test_a_batch_is_written_whole_and_reads_back_column_for_column(store):
    log = get_attempt_log(store)
    sent = [
        row(
            f"r{i}",
            retry=i % 2,
            hedged=bool(i % 3 == 0),
            first_token_ms=1.5 if i % 5 == 0 else None,
            override_source="FORCE_MODEL" if i == 7 else None,
            tier="simple" if i % 4 == 0 else None,
            saved_usd=0.002 * i if i % 6 == 0 else None,
        )
        for i in range(2500)
    ]
    for r in sent:
        log.record(r)
    got = attempts(store)
    assert len(got) == 2500
    for r, g in zip(sent, got, strict=True):
        assert tuple(g[name] for name in AttemptRow._fields) == tuple(int(v) if isinstance(v, bool) else v for v in r)
    assert log.problem is None


def test_model_status_upserts_count_hits_and_a_clear_by_hand_replaces_the_mark(store):
    log = get_attempt_log(store)
    for _ in range(3):
        log.record_now(ModelStatusRow("m1", "deprecated", "decommissioned", None, utc_now_iso()))
    log.record_now(ModelStatusRow("m2", "cooling_down", "rate limited", "2099-01-01T00:00:00.000Z", utc_now_iso()))
    assert log.flush(timeout=30)
    marks = {r["model"]: r for r in read_model_status(store)}
    assert (marks["m1"]["status"], marks["m1"]["hits"]) == ("deprecated", 3)
    assert marks["m2"]["until"] == "2099-01-01T00:00:00.000Z"
    db = open_database(store)
    try:
        replaced = clear_model_status(db.conn, ["m1", "unmarked"], utc_now_iso())
    finally:
        db.conn.close()
    assert list(replaced) == ["m1"]
    marks = {r["model"]: r for r in read_model_status(store)}
    assert marks["m1"]["status"] == "cleared"
    assert marks["m1"]["detail"] == "cleared by hand; was deprecated: decommissioned"


def test_overrides_replace_their_scope_expire_and_leave_an_audit_trail(store):
    db = open_database(store)
    try:
        first = set_override(db.conn, FORCE, "m1", reason="outage", by="ops@a")
        second = set_override(db.conn, FORCE, "m2", by="ops@b")  # the same scope: replaces the first
        set_override(db.conn, DISABLE, "m3", by="ops@a", ttl_seconds=-1)  # already expired
        per_task = set_override(db.conn, FORCE, "m4", task="fast", by="ops@a")
    finally:
        db.conn.close()
    assert second.id > first.id
    assert [(o.kind, o.task, o.model) for o in read_active(store)] == [(FORCE, None, "m2"), (FORCE, "fast", "m4")]
    db = open_database(store)
    try:
        cleared = clear_overrides(db.conn, task="fast", by="ops@c")
    finally:
        db.conn.close()
    assert [o.id for o in cleared] == [per_task.id]
    trail = [(a["action"], a["target"], a["who"], a["detail"]) for a in read_audit(store)]
    assert [t[:3] for t in trail] == [
        ("force cleared", "m4", "ops@c"),
        ("force set", "m4", "ops@a"),
        ("disable set", "m3", "ops@a"),
        ("force set", "m2", "ops@b"),
        ("force set", "m1", "ops@a"),
    ]
    assert trail[3][3].endswith(f"replaced #{first.id}")


def test_ending_an_override_by_id_ends_that_one_only(store):
    db = open_database(store)
    try:
        fast = set_override(db.conn, FORCE, "m1", task="fast", by="ops@a")
        reasoning = set_override(db.conn, FORCE, "m1", task="reasoning", by="ops@a")
        ended = end_override(db.conn, fast.id, reason="recovered", by="alice", via="dashboard as ops@a")
        again = end_override(db.conn, fast.id, by="alice")  # no longer active: nothing is changed
    finally:
        db.conn.close()
    assert ended is not None and ended.id == fast.id
    assert again is None
    assert [o.id for o in read_active(store)] == [reasoning.id]
    trail = [(a["action"], a["task"], a["who"], a["reason"], a["via"]) for a in read_audit(store)]
    assert trail[0] == ("force cleared", "fast", "alice", "recovered", "dashboard as ops@a")
    assert [t[0] for t in trail] == ["force cleared", "force set", "force set"]


def test_the_days_spend_is_the_sum_of_its_logged_costs(store):
    log = get_attempt_log(store)
    today = utc_now_iso()[:10]
    for cost in (0.25, None, 0.5, 1.25):
        log.record(row("r", cost=cost))
    log.record(row("old", cost=100.0, created_at="2020-01-01T00:00:00.000Z"))
    assert log.flush(timeout=30)
    assert spent_on(store, today)[0] == pytest.approx(2.0)
    assert spent_on(store, "2020-01-01")[0] == pytest.approx(100.0)


def test_spilled_rows_are_imported_at_the_next_open_and_never_twice(store):
    spill_base = store.spill_to if isinstance(store, PostgresTarget) else store
    rows = [row(f"s{i}") for i in range(5)]
    spill(spill_base, rows)
    spill(spill_base, rows[:2])  # a crash between an import's commit and the file's removal spills twice
    log = get_attempt_log(store)
    log.record(row("live"))
    got = attempts(store)
    assert sorted(r["request_id"] for r in got) == ["live", "s0", "s1", "s2", "s3", "s4"]


def test_messages_name_the_store_without_its_password(tmp_path):
    target = PostgresTarget("postgresql://app:hunter2@127.0.0.1:1/x?sslmode=disable", tmp_path / "s.db")
    from app.store import diagnose

    problem = diagnose(target)
    assert problem is not None and "hunter2" not in problem and "app:***@127.0.0.1:1/x" in problem
    assert "hunter2" not in repr(target) and "hunter2" not in label_of(target)
    assert "cannot be reached" in problem


@pytest.mark.slow
def test_a_store_that_cannot_be_reached_keeps_rows_until_it_can(pg_server, pg_url, tmp_path):
    if not pg_server.can_restart:
        pytest.skip("TASKROUTER_TEST_PG_URL: the server is not this session's to stop")
    store = PostgresTarget(pg_url, tmp_path / "spill.db")
    log = get_attempt_log(store)
    log.record(row("before"))
    assert log.flush(timeout=30)
    pg_server.stop()
    try:
        for i in range(50):
            log.record(row(f"down{i}"))
        assert not log.flush(timeout=1.5)  # the writer retries with a backoff meanwhile
        assert log.problem is not None and "cannot be reached" in log.problem
    finally:
        pg_server.start()
    got = attempts(store)
    assert len(got) == 51
    assert log.problem is None


def _when(predicate: Callable[[], bool], timeout: float) -> bool:
    import time

    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            return False
        threading.Event().wait(0.005)
    return True


def test_a_mark_recorded_in_one_process_reaches_another_through_the_servers_notification(pg_url, tmp_path):
    from app.store.postgres.watch import acquire_watch, release_watch

    store = PostgresTarget(pg_url, tmp_path / "spill.db")
    open_database(store).conn.close()
    watch = acquire_watch(store, every=3600)  # the periodic read cannot be what delivers it
    try:
        assert _when(lambda: watch.latest is not None, 10)
        before = watch.latest
        writer = get_attempt_log(PostgresTarget(pg_url + "?application_name=host-a", tmp_path / "a.db"))
        writer.record_now(ModelStatusRow("m1", "deprecated", "decommissioned", None, utc_now_iso()))
        # The watch reads by itself once an hour: the mark arriving at all is the server's notification at work.
        assert _when(lambda: any(m["model"] == "m1" for m in watch.latest.marks), 5)
        assert watch.latest is not before and not any(m["model"] == "m1" for m in before.marks)
    finally:
        release_watch(watch)


def test_postgres_keeps_each_day_in_its_own_partition_and_old_rows_in_the_default_one(pg_url, tmp_path, caplog):
    from datetime import date, timedelta

    from app.store.postgres.migrations import ensure_partitions, partition_name

    store = PostgresTarget(pg_url, tmp_path / "spill.db")
    log = get_attempt_log(store)
    today = utc_now_iso()
    log.record(row("now", created_at=today))
    log.record(row("old", created_at="2020-01-01T12:00:00.000Z"))
    assert log.flush(timeout=30)
    where = {
        r["request_id"]: r["part"]
        for r in query_read_only(store, "SELECT request_id, tableoid::regclass::text AS part FROM attempts")
    }
    assert where == {"now": partition_name(date.fromisoformat(today[:10])), "old": "attempts_default"}
    db = open_database(store)
    try:
        ensure_partitions(db.conn, date(2020, 1, 1))  # that day's rows already sit in the default partition
        parts = {
            r[0] for r in db.conn.execute("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid")
        }
    finally:
        db.conn.close()
    assert partition_name(date(2020, 1, 1)) not in parts and partition_name(date(2020, 1, 2)) in parts
    assert "the default partition holds rows of that day" in caplog.text
    assert {partition_name(date.fromisoformat(today[:10]) + timedelta(days=n)) for n in (-1, 0, 1, 2)} <= parts


def test_text_postgres_cannot_hold_is_written_with_a_replacement_character_not_dropped(store):
    log = get_attempt_log(store)
    log.record(row("nul")._replace(error_message="bad\x00byte"))
    got = attempts(store)
    assert [r["request_id"] for r in got] == ["nul"]
    expected = "bad\ufffdbyte" if isinstance(store, PostgresTarget) else "bad\x00byte"
    assert got[0]["error_message"] == expected

"""The store's backend object (app/store/backend.py): chosen once from where the store lives, it answers for the
store without its caller asking which kind it is. Run on SQLite and PostgreSQL alike."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from app.clock import iso_millis
from app.store import AttemptRow, backend_for
from app.store.backend import StoreBackend
from app.store.target import PostgresTarget

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreBackend]:
    if request.param == "sqlite":
        yield backend_for(tmp_path / "store.db")
        return
    yield backend_for(PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db"))


def _row(request_id: str, created_at: datetime, cost: float) -> AttemptRow:
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
        0,
        0,
        10,
        5,
        15,
        12.5,
        cost,
        iso_millis(created_at.timestamp()),
    )


def test_a_store_is_written_read_rolled_up_and_pruned_through_its_object(store):
    db = store.open_for_rows()
    try:
        old = [_row(f"old{i}", NOW - timedelta(days=10, minutes=i), 0.25) for i in range(3)]
        new = [_row(f"new{i}", NOW - timedelta(hours=2, minutes=i), 0.5) for i in range(2)]
        assert db.write([*old, *new]) == 5
    finally:
        db.conn.close()
    day = (NOW - timedelta(hours=2)).date().isoformat()
    assert store.spent_on(day)[0] == pytest.approx(1.0)
    assert store.read([("SELECT COUNT(*) AS n FROM attempts", ())]) == [[{"n": 5}]]
    assert store.rollup(now=NOW, dry_run=True).rows == 5
    report = store.prune(7, now=NOW)
    assert (report.rows_removed, report.hours_rolled_up > 0) == (3, True)
    assert [r["request_id"] for r in store.read([("SELECT request_id FROM attempts ORDER BY request_id", ())])[0]] == [
        "new0",
        "new1",
    ]
    assert store.rollup(now=NOW).rows == 0  # the prune rolled every closed hour up first
    assert store.diagnose() is None and not store.missing()


def test_a_reader_refuses_every_write(store):
    store.open().conn.close()  # created and migrated
    reader = store.open_reader(application="taskrouter-test")
    assert reader is not None
    try:
        with pytest.raises(Exception, match=r"readonly|read-only|query_only"):
            reader.execute("DELETE FROM attempts")
    finally:
        reader.close()


def test_a_password_stays_out_of_the_label_and_in_the_locator(tmp_path):
    store = backend_for("postgresql://ops:s3cret@db.example/taskrouter")
    assert "s3cret" not in store.label and "s3cret" not in repr(store)
    assert store.locator == "postgresql://ops:s3cret@db.example/taskrouter"
    assert store.key == store.locator and not store.missing() and store.glance() is None
    assert store.why_no_vacuum is not None and store.spend_ledger is not None


def test_a_sqlite_store_is_one_store_under_each_of_its_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    store = backend_for("logs/../store.db")
    assert store.key == backend_for(tmp_path / "store.db").key == tmp_path / "store.db"
    assert store.absolute().target == tmp_path / "logs/../store.db"
    assert store.label == "logs/../store.db" and store.locator == "logs/../store.db"
    assert store.missing() and store.why_no_vacuum is None and store.spend_ledger is None
    assert store.state_feed(1.0) is None and store.open_reader(application="taskrouter-test") is None
    (tmp_path / "store.db").write_bytes(b"not a database at all")
    assert "not a SQLite database" in (backend_for("store.db").glance() or "")

"""`taskrouter prune`: what it removed (rows, dates, bytes) or would remove, in text and JSON; a file made before
auto_vacuum is named as such and shrunk by --vacuum; bad input is refused before anything is touched."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import count_rows
from stores import insert_attempts
from traffic import make_traffic, write_traffic

from app import cli
from app.clock import iso_millis
from app.store.model_status import query_read_only
from app.store.retention import cutoff_for
from app.store.target import PostgresTarget, Target


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "attempts.db"
    rows = make_traffic(datetime.now(UTC), 24 * 10, requests=800)
    for row in rows:
        row["error_message"] = "x" * 200  # rows big enough for the freed bytes to show
    write_traffic(path, rows)
    return path


def test_a_dry_run_says_what_would_go_and_changes_nothing(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = count_rows(path)
    old = count_rows(path, "created_at < ?", cutoff_for(3, datetime.now(UTC)))
    assert cli.main(["prune", "--db", str(path), "--days", "3", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "dry run, nothing changed" in out and "raw rows older than 3 days" in out
    assert f"would remove {old:,} rows from " in out
    assert "would roll up 2" in out  # 10 days of closed hours
    assert "would free about " in out and "returned to the disk" in out
    assert count_rows(path) == before
    assert sqlite3.connect(path).execute("SELECT COUNT(*) FROM attempts_hourly").fetchone()[0] == 0


def test_prune_says_what_it_removed(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTEMPTS_DB_PATH", str(path))
    monkeypatch.setenv("ATTEMPTS_RETENTION_DAYS", "3")
    old = count_rows(path, "created_at < ?", cutoff_for(3, datetime.now(UTC)))
    assert cli.main(["prune"]) == 0
    out = capsys.readouterr().out.splitlines()
    cutoff = cutoff_for(3, datetime.now(UTC))
    assert out[0] == f"{path}: raw rows older than 3 days (before {cutoff[:19].replace('T', ' ')} UTC)"
    assert out[1].startswith("rolled up ") and "closed hours first (the rollups reach " in out[1]
    assert re.fullmatch(
        rf"removed {old:,} rows from .* in (1 batch|\d+ batches) \(the longest held the write lock "
        r"\d+ ms\)",
        out[2],
    )
    assert out[3].startswith("oldest row kept: ")
    assert out[4].startswith("free ") and ", returned to the disk (the file: " in out[4]
    assert count_rows(path) == count_rows(path, "created_at >= ?", cutoff_for(3, datetime.now(UTC)))
    assert cli.main(["prune"]) == 0
    assert "no raw row is that old: nothing removed" in capsys.readouterr().out


def test_prune_as_json(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prune", "--db", str(path), "--days", "2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_removed"] > 0 and report["dry_run"] is False
    assert report["cutoff"] == cutoff_for(2, datetime.now(UTC))
    assert report["removed_to"] < report["cutoff"] <= report["oldest_kept"]
    assert report["auto_vacuum"] == "incremental" and report["returned"] >= report["freed"] > 0
    assert report["size_after"] < report["size_before"]


def test_a_file_made_before_auto_vacuum_is_named_and_vacuumed_on_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).execute("CREATE TABLE made_before (x)").connection.close()  # auto_vacuum stays off
    write_traffic(path, make_traffic(datetime.now(UTC), 24 * 10, requests=800))
    assert cli.main(["prune", "--db", str(path), "--days", "5"]) == 0
    out = capsys.readouterr().out
    assert "inside the file, which new rows reuse; the file keeps its size" in out
    assert "run `taskrouter prune --vacuum` once to shrink it" in out
    assert cli.main(["prune", "--db", str(path), "--days", "2", "--vacuum"]) == 0
    out = capsys.readouterr().out
    assert "done now with --vacuum" in out and "vacuumed: the file went from " in out
    assert sqlite3.connect(path).execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    assert cli.main(["prune", "--db", str(path), "--days", "1", "--vacuum"]) == 0
    assert "--vacuum: not needed" in capsys.readouterr().out


def test_retention_zero_rolls_up_and_removes_nothing(
    path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ATTEMPTS_RETENTION_DAYS", "0")
    before = count_rows(path)
    assert cli.main(["prune", "--db", str(path)]) == 0
    out = capsys.readouterr().out
    assert "ATTEMPTS_RETENTION_DAYS is 0, so raw rows are kept for ever and none was removed" in out
    assert "rolled up 2" in out
    assert count_rows(path) == before


@pytest.mark.parametrize("days", ["0", "-3", "1.5", "week", "36501"])
def test_a_days_value_that_is_not_a_whole_number_of_days_is_refused(
    path: Path, days: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = count_rows(path)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["prune", "--db", str(path), "--days", days])
    assert exit_.value.code == 2
    assert f"--days: must be a whole number of days from 1 to 36500 (got '{days}')" in capsys.readouterr().err
    assert count_rows(path) == before


def test_nothing_to_prune_where_there_is_no_database(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prune", "--db", str(tmp_path / "none.db")]) == 2
    assert capsys.readouterr().err == (
        f"taskrouter prune: there is no attempts database at {tmp_path / 'none.db'}: give --db the store the routers "
        "write (their ATTEMPTS_DB_PATH or ATTEMPTS_DB_URL), or set those; nothing was read or created\n"
    )
    assert not (tmp_path / "none.db").exists()


def test_vacuum_and_dry_run_do_not_go_together(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["prune", "--db", str(path), "--vacuum", "--dry-run"]) == 2
    assert "give one or the other" in capsys.readouterr().err


def test_a_file_that_is_not_a_database_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "notes.db"
    path.write_text("not a database, just words" * 100)
    assert cli.main(["prune", "--db", str(path)]) == 1
    assert "the attempts database cannot be used: " in capsys.readouterr().err
    assert path.read_text().startswith("not a database")


def test_every_row_written_is_in_the_rollups_or_still_raw_after_a_prune(path: Path) -> None:
    written = count_rows(path)
    assert cli.main(["prune", "--db", str(path), "--days", "1"]) == 0
    conn = sqlite3.connect(path)
    rolled = conn.execute("SELECT SUM(row_count) FROM attempts_daily").fetchone()[0]
    through = conn.execute("SELECT through_hour FROM rollup_state").fetchone()[0]
    assert rolled + count_rows(path, "created_at >= ?", through) == written
    assert count_rows(path) < written


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Target:
    """An empty store of each kind (the store contract's pattern)."""
    if request.param == "postgres":
        return PostgresTarget(request.getfixturevalue("pg_url"), tmp_path / "spill.db")
    return tmp_path / "august.db"


def test_prune_leaves_no_row_older_than_the_retention_the_newest_included(
    store: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    base = make_traffic(datetime(2026, 8, 2, tzinfo=UTC), 24, requests=5)[0]
    start = datetime(2026, 8, 1, 6, 0, tzinfo=UTC)
    insert_attempts(
        store,
        [
            dict(base, request_id=f"r{i}", created_at=iso_millis((start + timedelta(minutes=10 * i)).timestamp()))
            for i in range(50)
        ],
    )
    db = str(store.url if isinstance(store, PostgresTarget) else store)
    assert cli.main(["prune", "--db", db, "--days", "30"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[2].startswith("removed 50 rows from 2026-08-01 06:00:00 UTC to 2026-08-01 14:10:00 UTC in 1 batch ")
    assert out[3] == "no raw row is left: the rollups hold the totals of every removed hour"
    assert query_read_only(store, "SELECT COUNT(*) AS n FROM attempts") == [{"n": 0}]
    assert query_read_only(store, "SELECT SUM(row_count) AS n FROM attempts_daily") == [{"n": 50}]
    assert cli.main(["prune", "--db", db, "--days", "30"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "no raw row is that old: nothing removed; the log is empty"

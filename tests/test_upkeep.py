"""Retention without cron: a router's file is rolled up and pruned about once an hour, after a first delay, on a
thread of its own; once between all the processes sharing the file; never for a file no router logs to any more,
nor one that does not exist; a failing run is logged once and tried again the next hour."""

from __future__ import annotations

import gc
import logging
import sqlite3
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import count_rows
from traffic import make_traffic, write_traffic

from app.config import load_settings
from app.core.router import Router
from app.store import upkeep as upkeep_module
from app.store.retention import PruneReport, RollupReport
from app.store.upkeep import Upkeep, maintain

NOW = datetime(2026, 11, 22, 12, 30, tzinfo=UTC)


class Owner:
    """Stands for a router: the upkeep holds it weakly."""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_file_is_first_maintained_after_the_delay_then_every_interval(tmp_path: Path) -> None:
    clock, runs = Clock(), []
    upkeep = Upkeep(interval=3600, first_delay=300, clock=clock, run=lambda path, days: runs.append((path, days)))
    owner = Owner()
    upkeep.watch(tmp_path / "a.db", 30, owner)
    assert upkeep.run_due() == [] and runs == []
    clock.now += 300
    assert upkeep.run_due() == [tmp_path / "a.db"]
    assert runs == [(tmp_path / "a.db", 30)]
    clock.now += 3599
    assert upkeep.run_due() == []
    upkeep.watch(tmp_path / "a.db", 7, owner)  # a router built with another retention: the latest wins
    clock.now += 1
    upkeep.run_due()
    assert runs[-1] == (tmp_path / "a.db", 7) and len(runs) == 2


def test_a_file_no_router_logs_to_any_more_is_forgotten(tmp_path: Path) -> None:
    clock, runs = Clock(), []
    upkeep = Upkeep(interval=60, first_delay=0, clock=clock, run=lambda path, days: runs.append(path))
    owner = Owner()
    upkeep.watch(tmp_path / "a.db", 30, owner)
    assert upkeep.watched() == {tmp_path / "a.db": 30}
    del owner
    gc.collect()
    assert upkeep.run_due() == [] and runs == [] and upkeep.watched() == {}


def test_a_failing_run_is_logged_once_and_retried_next_interval(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()

    def broken(path: Path, days: int) -> None:
        raise sqlite3.OperationalError("database is locked")

    upkeep = Upkeep(interval=60, first_delay=0, clock=clock, run=broken)
    owner = Owner()
    upkeep.watch(tmp_path / "a.db", 30, owner)
    with caplog.at_level(logging.WARNING, logger="taskrouter.store"):
        for _ in range(3):
            assert upkeep.run_due() == [tmp_path / "a.db"]  # tried every interval, never raised
            clock.now += 60
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "database is locked" in warnings[0] and "a.db" in warnings[0]


def test_the_thread_runs_what_is_due_by_itself(tmp_path: Path) -> None:
    ran = threading.Event()
    upkeep = Upkeep(interval=3600, first_delay=0, run=lambda path, days: ran.set())
    owner = Owner()
    upkeep.watch(tmp_path / "a.db", 30, owner)
    upkeep.start()
    try:
        assert ran.wait(10)
    finally:
        upkeep.stop()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    path = tmp_path / "attempts.db"
    write_traffic(path, make_traffic(NOW, 72))
    return path


def test_maintain_rolls_up_and_prunes_once_per_interval_between_processes(path: Path) -> None:
    first = maintain(path, 1, now=NOW, min_gap=3600)
    assert isinstance(first, PruneReport) and first.rows_removed > 0 and first.hours_rolled_up == 72
    assert maintain(path, 1, now=NOW + timedelta(minutes=59), min_gap=3600) is None  # another process's turn
    later = maintain(path, 1, now=NOW + timedelta(hours=1), min_gap=3600)
    assert isinstance(later, PruneReport) and later.hours_rolled_up == 1


def test_retention_zero_keeps_raw_rows_but_still_rolls_up(path: Path) -> None:
    rows = count_rows(path)
    report = maintain(path, 0, now=NOW)
    assert isinstance(report, RollupReport) and report.hours == 72
    assert count_rows(path) == rows


def test_maintain_never_creates_a_file(tmp_path: Path) -> None:
    assert maintain(tmp_path / "nothing-here.db", 30, now=NOW) is None
    assert not (tmp_path / "nothing-here.db").exists()


def test_a_router_has_its_file_maintained_with_its_retention(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    watched = Upkeep(run=lambda path, days: None)
    monkeypatch.setattr(upkeep_module, "_UPKEEP", watched)
    try:
        router = Router(load_settings(None, attempts_db_path=tmp_path / "r.db", attempts_retention_days=7))
        assert watched.watched() == {(tmp_path / "r.db").absolute(): 7}
        Router(load_settings(None, attempts_db_path=tmp_path / "off.db", attempt_logging=False))
        assert set(watched.watched()) == {(tmp_path / "r.db").absolute()}  # no log, nothing to maintain
        assert router.log is not None and router.log.close(timeout=10)
        del router
        gc.collect()
        assert watched.watched() == {}
    finally:
        watched.stop()

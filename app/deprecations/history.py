"""Stored results of `taskrouter check` (the `checks` table), for the dashboard and for trend questions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from app.store import open_database
from app.store.model_status import query_read_only
from app.store.target import Target


@dataclass(frozen=True, slots=True)
class StoredCheck:
    checked_at: str  # UTC ISO-8601
    exit_code: int  # 0 healthy, 1 warnings (with --strict), 2 errors
    errors: int
    warnings: int
    summary: str
    report: dict[str, Any]  # the `taskrouter check --json` document


def save_check(db_path: Target | str, report: dict[str, Any]) -> None:
    """Append one check; `report` is the JSON document (it carries checked_at, exit_code and the counts).
    Written directly, not through the attempt log's queue: the CLI exits right after."""
    db = open_database(db_path)
    try:
        with db.conn:
            db.conn.execute(
                "INSERT INTO checks (checked_at, exit_code, errors, warnings, summary, report_json) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    report["checked_at"],
                    report["exit_code"],
                    report["errors"],
                    report["warnings"],
                    report["summary"],
                    json.dumps(report, sort_keys=True),
                ),
            )
    finally:
        db.conn.close()


def recent_checks(db_path: Target | str, limit: int = 20) -> list[StoredCheck]:
    """The latest checks, newest first; empty when the database or the table does not exist yet. Read-only: the
    dashboard must never create or migrate the store it only looks at."""
    rows = query_read_only(
        db_path,
        "SELECT checked_at, exit_code, errors, warnings, summary, report_json FROM checks "
        "ORDER BY checked_at DESC, id DESC LIMIT ?",
        (limit,),
    )
    return [
        StoredCheck(
            r["checked_at"], r["exit_code"], r["errors"], r["warnings"], r["summary"], json.loads(r["report_json"])
        )
        for r in rows
    ]


def latest_check(db_path: Target | str) -> StoredCheck | None:
    """The most recent `taskrouter check`, or None when none was stored in this database."""
    checks = recent_checks(db_path, 1)
    return checks[0] if checks else None

"""Stored results of `taskrouter check` (the `checks` table), for the dashboard and for trend questions."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from app.store import open_database, read_only_uri


@dataclass(frozen=True, slots=True)
class StoredCheck:
    checked_at: str  # UTC ISO-8601
    exit_code: int  # 0 healthy, 1 warnings (with --strict), 2 errors
    errors: int
    warnings: int
    summary: str
    report: dict[str, Any]  # the `taskrouter check --json` document


def save_check(db_path: Path | str, report: dict[str, Any]) -> None:
    """Append one check; `report` is the JSON document (it carries checked_at, exit_code and the counts).
    Written directly, not through the attempt log's queue: the CLI exits right after."""
    db = open_database(db_path)
    try:
        with db.conn:
            db["checks"].insert({
                "checked_at": report["checked_at"],
                "exit_code": report["exit_code"],
                "errors": report["errors"],
                "warnings": report["warnings"],
                "summary": report["summary"],
                "report_json": json.dumps(report, sort_keys=True),
            })
    finally:
        db.conn.close()


def recent_checks(db_path: Path | str, limit: int = 20) -> list[StoredCheck]:
    """The latest checks, newest first; empty when the database or the table does not exist yet."""
    if not Path(db_path).exists():
        return []
    # Read-only: the dashboard must never create or migrate the file it only looks at.
    conn = sqlite3.connect(read_only_uri(db_path), uri=True, timeout=5)
    try:
        rows = conn.execute(
            "SELECT checked_at, exit_code, errors, warnings, summary, report_json FROM checks "
            "ORDER BY checked_at DESC, id DESC LIMIT ?", (limit,),
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()
    return [StoredCheck(r[0], r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]


def latest_check(db_path: Path | str) -> StoredCheck | None:
    """The most recent `taskrouter check`, or None when none was stored in this database."""
    checks = recent_checks(db_path, 1)
    return checks[0] if checks else None

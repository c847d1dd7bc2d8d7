"""Runtime overrides, set by ops while routers run, and the audit trail of every change (`taskrouter override`,
`taskrouter model`, the dashboard's admin actions).

Kinds: `force` (every task, or one task, calls only this model: FORCE_MODEL without a restart), `default` (this
model goes first in the task's chain: DEFAULT_<TASK>_MODEL without a restart), `disable` (the model is skipped,
logged `disabled`, until enabled). An override is active until cleared or until its expiry. Setting one replaces
the active one of the same kind and scope. Every change writes an `audit` row (who, what, when, why) in the same
transaction. Routers read the active ones at most every MODEL_STATUS_REFRESH_SECONDS (read-only; an unreadable
file reads as none).
"""

from __future__ import annotations

import getpass
import socket
import sqlite3
from typing import TYPE_CHECKING, Any

from app.clock import epoch_from_iso, iso_from_epoch, utc_now_iso
from app.store.model_status import queries_read_only, query_read_only
from app.store.state import ACTIVE_SQL, DEFAULT, DISABLE, FORCE, KINDS, MODEL_STATUS_SQL, Override, override_from_row
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.connection import Connection

__all__ = [
    "ACTIVE_SQL",
    "DEFAULT",
    "DISABLE",
    "FORCE",
    "KINDS",
    "Override",
    "clear_overrides",
    "end_override",
    "override_from_row",
    "read_active",
    "read_audit",
    "read_marks_and_overrides",
    "record_audit",
    "set_override",
    "who",
]


def who() -> str:
    """user@host of this process, for the audit trail."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _active(conn: Connection, now: str) -> list[Override]:
    conn.row_factory = sqlite3.Row
    return [override_from_row(r) for r in conn.execute(ACTIVE_SQL, (now,))]


def read_active(path: Target | str, now: str | None = None) -> list[Override]:
    """The overrides in effect; none when the file does not exist or cannot be read (routers must answer)."""
    return [override_from_row(r) for r in query_read_only(path, ACTIVE_SQL, (now or utc_now_iso(),))]


def read_marks_and_overrides(path: Target | str, now: str) -> tuple[list[dict[str, Any]], list[Override]]:
    """What a router refreshes: the `model_status` rows and the overrides in effect, through one connection."""
    marks, active = queries_read_only(path, [(MODEL_STATUS_SQL, ()), (ACTIVE_SQL, (now,))])
    return marks, [override_from_row(r) for r in active]


def set_override(
    conn: Connection,
    kind: str,
    model: str,
    *,
    task: str | None = None,
    ttl_seconds: float | None = None,
    reason: str = "",
    by: str | None = None,
    via: str = "cli",
    now_epoch: float | None = None,
) -> Override:
    """Make `model` the active `kind` override for `task` (replacing the one there), with its audit row."""
    if kind not in KINDS:
        raise ValueError(f"override kind must be one of {', '.join(KINDS)}, got {kind!r}")
    by = by or who()
    now = utc_now_iso() if now_epoch is None else iso_from_epoch(now_epoch)
    assert now is not None
    expires = None
    if ttl_seconds is not None:
        expires = iso_from_epoch((epoch_from_iso(now) or 0.0) + ttl_seconds)
    with conn:
        replaced = _clear(
            conn, now, by, kind=kind, task=task, model=model if kind == DISABLE else None, same_scope=True
        )
        new_id = conn.execute(
            "INSERT INTO overrides (kind, task, model, reason, set_by, set_at, expires_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (kind, task, model, reason, by, now, expires),
        ).fetchone()[0]
        override = Override(int(new_id), kind, task, model, reason, by, now, expires)
        detail = override.describe() + (f"; replaced #{', #'.join(str(o.id) for o in replaced)}" if replaced else "")
        _audit(conn, now, by, f"{kind} set", model, task, detail, reason, via)
    return override


def clear_overrides(
    conn: Connection,
    *,
    kind: str | None = None,
    task: str | None = None,
    model: str | None = None,
    reason: str = "",
    by: str | None = None,
    via: str = "cli",
) -> list[Override]:
    """Clear the active overrides matching every given filter (none given: all); returns them."""
    by = by or who()
    now = utc_now_iso()
    with conn:
        cleared = _clear(conn, now, by, kind=kind, task=task, model=model, same_scope=False)
        for o in cleared:
            _audit(conn, now, by, f"{o.kind} cleared", o.model, o.task, o.describe(), reason, via)
    return cleared


def end_override(
    conn: Connection, override_id: int, *, reason: str = "", by: str | None = None, via: str = "cli"
) -> Override | None:
    """End the one active override with this id (none other, whatever it shares with it), with its audit row;
    None when it is not active any more (cleared or expired meanwhile), and nothing is changed then."""
    by = by or who()
    now = utc_now_iso()
    with conn:
        ended = [o for o in _active(conn, now) if o.id == override_id]
        for o in ended:
            conn.execute("UPDATE overrides SET cleared_at = ?, cleared_by = ? WHERE id = ?", (now, by, o.id))
            _audit(conn, now, by, f"{o.kind} cleared", o.model, o.task, o.describe(), reason, via)
    return ended[0] if ended else None


def _clear(
    conn: Connection, now: str, by: str, *, kind: str | None, task: str | None, model: str | None, same_scope: bool
) -> list[Override]:
    """`same_scope`: `task` None means the every-task override only (setting one replaces its own scope);
    otherwise None matches any task (clearing by filter)."""
    matching = [
        o
        for o in _active(conn, now)
        if (kind is None or o.kind == kind)
        and (o.task == task if same_scope else task is None or o.task == task)
        and (model is None or o.model == model)
    ]
    for o in matching:
        conn.execute("UPDATE overrides SET cleared_at = ?, cleared_by = ? WHERE id = ?", (now, by, o.id))
    return matching


def record_audit(
    conn: Connection,
    action: str,
    target: str,
    *,
    task: str | None = None,
    detail: str = "",
    reason: str = "",
    by: str | None = None,
    via: str = "cli",
) -> None:
    """An audit row for a change made elsewhere (a mark cleared with `taskrouter status --clear`, ...)."""
    with conn:
        _audit(conn, utc_now_iso(), by or who(), action, target, task, detail, reason, via)


def _audit(
    conn: Connection, at: str, by: str, action: str, target: str, task: str | None, detail: str, reason: str, via: str
) -> None:
    conn.execute(
        "INSERT INTO audit (at, who, action, target, task, detail, reason, via) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (at, by, action, target, task, detail[:1000], reason[:1000], via),
    )


def read_audit(path: Target | str, limit: int = 200) -> list[dict[str, Any]]:
    """The newest audit rows first."""
    return query_read_only(path, "SELECT * FROM audit ORDER BY id DESC LIMIT ?", (limit,))

"""The gateway's API keys (`taskrouter keys`, app/gateway/auth.py): who may call `taskrouter serve`.

`create_api_key` makes a key (`tr-` and 32 random bytes, URL-safe) and returns it once; the store keeps only its
SHA-256 hash. A key is random and long, so a fast hash is as good as a slow one here, and the gateway can afford to
hash the key of every request (an operator's secret is chosen by a person and gets scrypt instead). A key may be
limited to some tasks, given its own daily budget, an expiry, and the admin right (the management API's writes).
`revoke_api_key` ends one; its row stays, so that attempt rows and the audit keep naming it. Every create and revoke
writes an audit row in the same transaction.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from app.clock import utc_now_iso
from app.store.model_status import query_read_only
from app.store.overrides import record_audit, who
from app.store.target import Target, label_of

if TYPE_CHECKING:
    from app.store.connection import Connection

__all__ = [
    "KEY_PREFIX",
    "ApiKey",
    "ApiKeyError",
    "KeyStoreUnreadable",
    "check_key_name",
    "create_api_key",
    "find_api_key",
    "hash_key",
    "key_spent_on",
    "read_api_keys",
    "revoke_api_key",
]

KEY_PREFIX = "tr-"
_KEY_BYTES = 32
_SHOWN = len(KEY_PREFIX) + 6  # the characters of a key `keys list` shows: enough to tell keys apart, not to guess
# The name is written to every attempt row and the audit: letters, digits and . _ @ + -.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")


class ApiKeyError(ValueError):
    """A request about API keys that cannot be met; the message says what to do instead."""


class KeyStoreUnreadable(Exception):
    """The store cannot be read just now (missing, locked, the server unreachable): no key can be checked."""


@dataclass(frozen=True, slots=True)
class ApiKey:
    """A key as the store describes it: never the key itself."""

    name: str
    prefix: str
    tasks: tuple[str, ...] | None  # None: every task
    daily_budget_usd: float | None  # None: only the global DAILY_BUDGET_USD
    admin: bool
    expires_at: str | None  # UTC ISO-8601; None: never
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None

    def expired(self, now_iso: str) -> bool:
        return self.expires_at is not None and self.expires_at <= now_iso

    def may_use(self, task: str) -> bool:
        return self.tasks is None or task in self.tasks


def check_key_name(name: str) -> str:
    """The name as stored (lower case), or ApiKeyError saying what a name may hold."""
    if not _NAME.fullmatch(name):
        raise ApiKeyError(
            f"key name {name!r} is not allowed: use 1 to 100 letters, digits and . _ @ + - "
            "(starting with a letter or digit), e.g. billing-agent"
        )
    return name.lower()


def hash_key(key: str) -> str:
    """What the store keeps of a key, and what a request's key is looked up by."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_api_key(
    conn: Connection,
    name: str,
    *,
    tasks: tuple[str, ...] | None = None,
    daily_budget_usd: float | None = None,
    expires_at: str | None = None,
    admin: bool = False,
    by: str | None = None,
    via: str = "cli",
) -> str:
    """Store a new key and return it, kept nowhere else. A revoked name can be made again (a new key); an active
    one cannot (revoke it first)."""
    name = check_key_name(name)
    if daily_budget_usd is not None and not daily_budget_usd > 0:
        raise ApiKeyError(f"a key's daily budget must be more than 0 USD, not {daily_budget_usd!r}")
    if tasks is not None and not tasks:
        raise ApiKeyError("a key limited to tasks needs at least one task (leave the limit out for every task)")
    key = KEY_PREFIX + secrets.token_urlsafe(_KEY_BYTES)
    by = by or who()
    conn.row_factory = sqlite3.Row
    with conn:
        row = conn.execute("SELECT revoked_at FROM api_keys WHERE name = ?", (name,)).fetchone()
        if row is not None and row["revoked_at"] is None:
            raise ApiKeyError(
                f"key {name!r} already exists: revoke it first "
                f'(taskrouter keys revoke {name} --reason "why") to make a new one of that name'
            )
        conn.execute("DELETE FROM api_keys WHERE name = ?", (name,))
        conn.execute(
            "INSERT INTO api_keys (name, key_hash, prefix, tasks, daily_budget_usd, admin, expires_at, created_at, "
            "created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                name,
                hash_key(key),
                key[:_SHOWN],
                ",".join(tasks) if tasks is not None else None,
                daily_budget_usd,
                int(admin),
                expires_at,
                utc_now_iso(),
                by,
            ),
        )
        detail = _describe(tasks, daily_budget_usd, expires_at, admin)
        record_audit(conn, "api key created", name, detail=detail, by=by, via=via)
    return key


def _describe(tasks: tuple[str, ...] | None, budget: float | None, expires_at: str | None, admin: bool) -> str:
    parts = [f"tasks {','.join(tasks)}" if tasks is not None else "every task"]
    if budget is not None:
        parts.append(f"daily budget ${budget:g}")
    if expires_at is not None:
        parts.append(f"expires {expires_at}")
    if admin:
        parts.append("admin")
    return "; ".join(parts)


def revoke_api_key(conn: Connection, name: str, *, reason: str = "", by: str | None = None, via: str = "cli") -> bool:
    """End a key; every gateway refuses it within its cache's few seconds. False when no key of that name is in
    use (nothing is changed then)."""
    by = by or who()
    with conn:
        changed = conn.execute(
            "UPDATE api_keys SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at IS NULL RETURNING name",
            (utc_now_iso(), by, name.lower()),
        ).fetchall()
        if changed:
            record_audit(conn, "api key revoked", name.lower(), reason=reason, by=by, via=via)
    return bool(changed)


_COLUMNS = "name, prefix, tasks, daily_budget_usd, admin, expires_at, created_at, created_by, revoked_at, revoked_by"


def read_api_keys(where: Target | str) -> list[ApiKey]:
    """Every key, revoked ones too, by name; none when the store does not exist or predates keys."""
    return [_api_key(r) for r in query_read_only(where, f"SELECT {_COLUMNS} FROM api_keys ORDER BY name")]


def find_api_key(where: Target | str, key: str) -> ApiKey | None:
    """The key's row, revoked or expired too (the caller says which); None when no key is this one. Raises
    KeyStoreUnreadable when the store cannot be read, which is not the same as a key it does not hold."""
    # One statement with one row whenever the table can be read, the key's columns NULL when it is not there: no
    # row at all is a store that could not be read.
    columns = ", ".join(f"k.{c.strip()}" for c in _COLUMNS.split(","))
    rows = query_read_only(
        where, f"SELECT {columns} FROM (SELECT 1 AS one) p LEFT JOIN api_keys k ON k.key_hash = ?", (hash_key(key),)
    )
    if not rows:
        raise KeyStoreUnreadable(f"the API keys in {label_of(where)} cannot be read")
    return _api_key(rows[0]) if rows[0]["name"] is not None else None


def key_spent_on(where: Target | str, name: str, day: str) -> float:
    """What the attempt rows of one key cost on one UTC day 'YYYY-MM-DD', as logged so far (every process's)."""
    rows = query_read_only(
        where,
        "SELECT COALESCE(SUM(cost_usd), 0) AS spent FROM attempts WHERE key_name = ? AND created_at >= ? "
        "AND created_at < ?",
        (name, day, (date.fromisoformat(day) + timedelta(days=1)).isoformat()),
    )
    return float(rows[0]["spent"]) if rows else 0.0


def _api_key(r: dict[str, Any]) -> ApiKey:
    tasks = r["tasks"]
    return ApiKey(
        name=r["name"],
        prefix=r["prefix"],
        tasks=tuple(tasks.split(",")) if tasks is not None else None,
        daily_budget_usd=r["daily_budget_usd"],
        admin=bool(r["admin"]),
        expires_at=r["expires_at"],
        created_at=r["created_at"],
        created_by=r["created_by"],
        revoked_at=r["revoked_at"],
        revoked_by=r["revoked_by"],
    )

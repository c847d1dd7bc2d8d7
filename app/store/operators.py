"""Named operators: the people who may act from the dashboard, each with a secret of their own.

`taskrouter operators create NAME` makes one and prints its secret once; the store keeps only a salted scrypt hash
of it, so a copy of the database does not sign anyone in. `revoke` ends one at once: a dashboard session signed in
under that name can no longer act. Every create and revoke writes an audit row in the same transaction.

A name is also what the dashboard accepts from Streamlit's OIDC login: a logged-in user whose e-mail is the name of
an operator that is not revoked acts as that operator without a secret (the identity provider vouched for them).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app.clock import utc_now_iso
from app.store.model_status import query_read_only
from app.store.overrides import record_audit, who
from app.store.target import Target

if TYPE_CHECKING:
    from app.store.connection import Connection

__all__ = [
    "LEGACY_TOKEN_NAME",
    "Operator",
    "OperatorError",
    "check_name",
    "create_operator",
    "hash_secret",
    "read_operators",
    "revoke_operator",
    "secret_matches",
    "signed_in_operator",
    "verify_operator",
]

# The identity the dashboard records for whoever enters DASHBOARD_ADMIN_TOKEN: no operator may take the name.
LEGACY_TOKEN_NAME = "admin-token"
# Letters, digits and . _ @ + - (an e-mail address fits): the name is shown on pages and written to the audit.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}")
# scrypt's cost: about 16 MiB and tens of milliseconds per check, so that a stolen hash is slow to guess from.
_N, _R, _P = 2**14, 8, 1
_SALT_BYTES = 16


class OperatorError(ValueError):
    """A request about operators that cannot be met; the message says what to do instead."""


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def check_name(name: str) -> str:
    """The name as stored (e-mail addresses compare without case), or OperatorError saying what a name may hold."""
    if not _NAME.fullmatch(name):
        raise OperatorError(
            f"operator name {name!r} is not allowed: use 1 to 100 letters, digits and . _ @ + - "
            "(starting with a letter or digit), e.g. alice or alice@example.com"
        )
    if name.lower() == LEGACY_TOKEN_NAME:
        raise OperatorError(f"{LEGACY_TOKEN_NAME!r} names whoever enters DASHBOARD_ADMIN_TOKEN: choose another name")
    return name.lower()


def hash_secret(secret: str, *, salt: bytes | None = None) -> str:
    """`scrypt$N$r$p$salt$hash` (base64), the parameters kept with the hash so that they can change later."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(secret.encode(), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    return f"scrypt${_N}${_R}${_P}${_b64(salt)}${_b64(digest)}"


def secret_matches(secret: str, stored: str) -> bool:
    """Whether `secret` is the one `stored` was made from; compared in constant time. A malformed hash matches
    nothing."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(expected)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# Checked against when the name is unknown, so that a wrong name costs the same time as a wrong secret.
_DUMMY = hash_secret("no operator has this secret", salt=b"\0" * _SALT_BYTES)


def create_operator(conn: Connection, name: str, *, by: str | None = None, via: str = "cli") -> str:
    """Store a new operator and return its secret, which is kept nowhere else. A revoked name can be made again
    (with a new secret); an active one cannot (revoke it first)."""
    name = check_name(name)
    secret = secrets.token_urlsafe(32)
    by = by or who()
    now = utc_now_iso()
    conn.row_factory = sqlite3.Row
    with conn:
        row = conn.execute("SELECT revoked_at FROM operators WHERE name = ?", (name,)).fetchone()
        if row is not None and row["revoked_at"] is None:
            raise OperatorError(
                f"operator {name!r} already exists: revoke it first "
                f'(taskrouter operators revoke {name} --reason "why") to give it a new secret'
            )
        conn.execute("DELETE FROM operators WHERE name = ?", (name,))
        conn.execute(
            "INSERT INTO operators (name, secret_hash, created_at, created_by) VALUES (?, ?, ?, ?)",
            (name, hash_secret(secret), now, by),
        )
        record_audit(conn, "operator created", name, by=by, via=via)
    return secret


def revoke_operator(conn: Connection, name: str, *, reason: str = "", by: str | None = None, via: str = "cli") -> bool:
    """End an operator at once; False when no active operator has that name (nothing is changed then)."""
    by = by or who()
    with conn:
        changed = conn.execute(
            "UPDATE operators SET revoked_at = ?, revoked_by = ? WHERE name = ? AND revoked_at IS NULL RETURNING name",
            (utc_now_iso(), by, name.lower()),
        ).fetchall()
        if changed:
            record_audit(conn, "operator revoked", name.lower(), reason=reason, by=by, via=via)
    return bool(changed)


_COLUMNS = "name, created_at, created_by, revoked_at, revoked_by"


def read_operators(path: Target | str) -> list[Operator]:
    """Every operator, revoked ones too, by name; none when the store does not exist or predates operators."""
    return [_operator(r) for r in query_read_only(path, f"SELECT {_COLUMNS} FROM operators ORDER BY name")]


def _operator(r: dict[str, Any]) -> Operator:
    return Operator(r["name"], r["created_at"], r["created_by"], r["revoked_at"], r["revoked_by"])


def verify_operator(path: Target | str, name: str, secret: str) -> str | None:
    """The operator's name when `secret` is its secret and it is not revoked; None otherwise. A name that is not
    there costs as long to refuse as a wrong secret."""
    rows = query_read_only(
        path, "SELECT name, secret_hash FROM operators WHERE name = ? AND revoked_at IS NULL", (name.strip().lower(),)
    )
    stored = rows[0]["secret_hash"] if rows else _DUMMY
    if secret_matches(secret, stored) and rows:
        return str(rows[0]["name"])
    return None


def signed_in_operator(path: Target | str, name: str) -> str | None:
    """`name` when it is an operator that is not revoked (checked before every dashboard action, so a revoke takes
    effect at once); None otherwise."""
    rows = query_read_only(
        path, "SELECT name FROM operators WHERE name = ? AND revoked_at IS NULL", (name.strip().lower(),)
    )
    return str(rows[0]["name"]) if rows else None

"""A PostgreSQL connection that speaks the part of sqlite3's API the store's shared code uses.

The store's statements are written once, with `?` and `:name` placeholders, and run on either backend:
`PgConnection.execute` turns them into psycopg's `%s` / `%(name)s` (outside quoted text, leaving `::` casts
alone), and its rows answer both `row[0]` and `row["column"]`, as `sqlite3.Row` does. `with conn:` is one
transaction, committed or rolled back, as with sqlite3; outside it every statement commits by itself
(autocommit), so a long-lived reader never sits idle in a transaction holding back vacuum.

Errors from the server or the network become `StoreProblem`s naming the server without its password.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from app.store.problem import StoreProblem
from app.store.target import PostgresTarget

if TYPE_CHECKING:
    import psycopg

CONNECT_TIMEOUT_SECONDS = 5
USER_TIMEOUT_MS = 10_000  # unacknowledged data for this long: the connection is dead
QUICK_TIMEOUT_MS = 1_000
_NumberLoader: Any = None  # made at the first connection: psycopg loads with the store, not with `import app`
_PLACEHOLDER = re.compile(r"\?|(?<![:\w]):([A-Za-z_]\w*)|%")


@lru_cache(maxsize=512)
def translate(sql: str) -> str:
    """sqlite3's placeholders as psycopg's, outside single-quoted text; a literal `%` doubled."""
    pieces = sql.split("'")
    for i in range(0, len(pieces), 2):  # even pieces are outside quotes
        pieces[i] = _PLACEHOLDER.sub(_placeholder, pieces[i])
    for i in range(1, len(pieces), 2):
        pieces[i] = pieces[i].replace("%", "%%")
    return "'".join(pieces)


def _placeholder(match: re.Match[str]) -> str:
    text = match.group(0)
    if text == "?":
        return "%s"
    if text == "%":
        return "%%"
    return f"%({match.group(1)})s"


class PgRow(Sequence[Any]):
    """One row: by position or by column name, and `dict(row)` gives the columns (like sqlite3.Row)."""

    __slots__ = ("_names", "_values")

    def __init__(self, names: dict[str, int], values: tuple[Any, ...]) -> None:
        self._names = names
        self._values = values

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._values[self._names[key]]
        return self._values[key]

    def __len__(self) -> int:
        return len(self._values)

    def keys(self) -> list[str]:
        return list(self._names)

    def __repr__(self) -> str:
        return f"PgRow({dict(zip(self._names, self._values, strict=True))!r})"


class PgCursor:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor
        names = [c.name for c in cursor.description or ()]
        self._names = {name: i for i, name in enumerate(names)}
        self.rowcount = cursor.rowcount
        self.description = cursor.description

    def fetchone(self) -> Any:  # PgRow | None, typed as sqlite3's is: callers that know a row comes index it
        if self._cursor.description is None:
            return None
        row = self._cursor.fetchone()
        return None if row is None else PgRow(self._names, row)

    def fetchall(self) -> list[PgRow]:
        if self._cursor.description is None:
            return []
        return [PgRow(self._names, row) for row in self._cursor.fetchall()]

    def __iter__(self) -> Iterator[PgRow]:
        return iter(self.fetchall())


class PgConnection:
    """See the module docstring. `raw` is the psycopg connection, for what only PostgreSQL has (COPY, LISTEN)."""

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any], target: PostgresTarget) -> None:
        self.raw = raw
        self.target = target
        self.row_factory: object = None  # accepted and ignored: rows already answer by name and by position
        self._transaction: Any = None
        self._depth = 0
        self.partitions_through: date | None = None  # the UTC day ensure_partitions last ran for (migrations.py)

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> PgCursor:
        cursor = self.raw.cursor()
        cursor.execute(translate(sql), params if params else None)
        return PgCursor(cursor)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(translate(sql), rows)

    def __enter__(self) -> PgConnection:
        if self._depth == 0:
            self._transaction = self.raw.transaction()
            self._transaction.__enter__()
        self._depth += 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._depth -= 1
        if self._depth == 0:
            transaction, self._transaction = self._transaction, None
            transaction.__exit__(*exc)

    def close(self) -> None:
        self.raw.close()

    @property
    def closed(self) -> bool:
        return bool(self.raw.closed)


def connect(
    target: PostgresTarget, *, read_only: bool = False, application: str = "taskrouter", quick: bool = False
) -> PgConnection:
    """Raises StoreProblem only. TCP keepalives and a user timeout on every connection: a server that vanishes
    without closing the socket (a partition, a host gone) is noticed in seconds, not at TCP's retransmission
    limit of a quarter of an hour. `quick`: a connection used on a router's event loop (the budget's
    reservations), whose statements give up after QUICK_TIMEOUT_MS so a slow server delays calls by that at most."""
    import psycopg

    global _NumberLoader
    if _NumberLoader is None:
        _NumberLoader = _number_loader()
    timeout_ms = QUICK_TIMEOUT_MS if quick else USER_TIMEOUT_MS
    try:
        raw = psycopg.connect(
            target.url,
            autocommit=True,
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name=application,
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=3,
            tcp_user_timeout=timeout_ms,
        )
        raw.adapters.register_loader("numeric", _NumberLoader)
        if quick:
            raw.execute(f"SET statement_timeout = {QUICK_TIMEOUT_MS}")
        if read_only:
            raw.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        raise as_problem(target, exc) from None
    return PgConnection(raw, target)


def _number_loader() -> type:
    from psycopg.adapt import Loader

    class NumberLoader(Loader):
        """numeric as int or float, as SQLite gives them: the store has no numeric column, but PostgreSQL sums
        bigint columns into numeric, and a Decimal would then meet floats in the caller's arithmetic."""

        def load(self, data: Any) -> int | float:
            text = bytes(data).decode("ascii")
            return int(text) if text.lstrip("-").isdigit() else float(text)

    return NumberLoader


def as_problem(target: PostgresTarget, exc: BaseException) -> StoreProblem:
    """A psycopg error in words that say what to do; the URL's password never appears."""
    if isinstance(exc, StoreProblem):
        return exc
    text = _without_secret(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, target)
    lowered = text.lower()
    where = target.label
    if (
        "password authentication failed" in lowered
        or "no password supplied" in lowered
        or ("role" in lowered and "does not exist" in lowered)
    ):
        return StoreProblem(
            where,
            f"the server refused the login ({text})",
            "Check the user and password in ATTEMPTS_DB_URL (README: PostgreSQL, roles and grants)",
        )
    if "database" in lowered and "does not exist" in lowered:
        return StoreProblem(
            where,
            f"the database does not exist ({text})",
            "Create it (createdb) or name an existing one in ATTEMPTS_DB_URL",
        )
    if "permission denied" in lowered or "must be owner" in lowered:
        return StoreProblem(
            where,
            f"the role lacks a privilege ({text})",
            "Grant the role what README's 'PostgreSQL: roles and grants' lists",
        )
    if "read-only" in lowered or "read only" in lowered:
        return StoreProblem(
            where, f"the server takes no writes ({text})", "Point ATTEMPTS_DB_URL at the primary, not a replica"
        )
    if (
        "connection" in lowered
        or "could not" in lowered
        or "timeout" in lowered
        or "terminat" in lowered
        or "server closed" in lowered
        or "shutting down" in lowered
        or "starting up" in lowered
    ):
        return StoreProblem(
            where,
            f"the server cannot be reached ({text})",
            "Rows wait in memory and are written once it answers; check that it runs and that ATTEMPTS_DB_URL names it",
        )
    return StoreProblem(
        where, f"it cannot be used ({type(exc).__name__}: {text})", "Check ATTEMPTS_DB_URL and the server's log"
    )


def _without_secret(text: str, target: PostgresTarget) -> str:
    from urllib.parse import urlsplit

    try:
        password = urlsplit(target.url).password
    except ValueError:
        password = None
    return text.replace(password, "***") if password else text

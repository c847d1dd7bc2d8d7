"""Where the store lives: a SQLite file (a `Path`) or a PostgreSQL server (a `PostgresTarget`).

Every store function takes either, and app/store/backend.py's `backend_for` turns it into the store's backend
object, so the router, the CLI and the dashboard never ask which one they use. A PostgreSQL URL may hold a
password: `PostgresTarget` keeps it out of its `repr` and `label`, so neither a log line, an exception nor the
dashboard can show it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from app.urls import POSTGRES_SCHEMES, redact_url

if TYPE_CHECKING:
    from app.config import Settings


@dataclass(frozen=True, slots=True)
class PostgresTarget:
    """A PostgreSQL database. `spill_to`: the local file base for rows the server cannot take (its
    `.unwritten.jsonl` sibling), the same file a SQLite store at that path would use."""

    url: str = field(repr=False)
    spill_to: Path = Path("taskrouter.db")

    @property
    def label(self) -> str:
        return redact_url(self.url)

    def __str__(self) -> str:
        return self.label


Target = Path | PostgresTarget


def store_target(settings: Settings) -> Target:
    """Where the settings put the store: ATTEMPTS_DB_URL when set, else the SQLite file at ATTEMPTS_DB_PATH."""
    if settings.attempts_db_url is not None:
        require_psycopg()
        return PostgresTarget(settings.attempts_db_url.get_secret_value(), Path(settings.attempts_db_path))
    return Path(settings.attempts_db_path)


def require_psycopg() -> None:
    """Raises ConfigError, saying what to install, when a PostgreSQL store is named without psycopg installed."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        from app.errors import ConfigError

        raise ConfigError(
            "A PostgreSQL store (ATTEMPTS_DB_URL, or a postgresql:// --db) needs psycopg 3: "
            "pip install 'taskrouter[postgres]' (or unset ATTEMPTS_DB_URL to use SQLite)"
        ) from None


def chosen_store(db: str | Path | None, settings: Settings) -> Target:
    """A command's `--db` (a path or a postgresql:// URL) when given, else the settings' store."""
    if db is None:
        return store_target(settings)
    return locate(str(db), spill_to=Path(settings.attempts_db_path))


def is_postgres_url(text: str) -> bool:
    return text.startswith(POSTGRES_SCHEMES)


def locate(where: Target | str, *, spill_to: Path | None = None) -> Target:
    """A path, a `postgresql://` URL or a target, as a target."""
    if isinstance(where, PostgresTarget):
        return where
    if isinstance(where, str) and is_postgres_url(where):
        return PostgresTarget(where, spill_to or Path("taskrouter.db"))
    return Path(where)


def label_of(where: Target | str) -> str:
    """How messages name the store: the path, or the URL without its password (PostgresTarget's str)."""
    return str(locate(where))

"""The type of an open store connection: sqlite3's, or PostgreSQL's that speaks the same API
(app/store/postgres/connection.py). The store's shared statements run on either."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    import sqlite3

    from app.store.postgres.connection import PgConnection

    Connection: TypeAlias = sqlite3.Connection | PgConnection

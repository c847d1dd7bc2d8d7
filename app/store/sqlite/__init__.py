"""The SQLite backend: a store in one file (app/store/backend.py's StoreBackend, as `SqliteStore`)."""

from app.store.sqlite.store import SqliteStore

__all__ = ["SqliteStore"]

"""The PostgreSQL backend: a store shared by many hosts (app/store/backend.py's StoreBackend, as `PostgresStore`).
psycopg loads only when such a store is opened."""

from app.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]

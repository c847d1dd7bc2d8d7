"""The store: the attempt log, model status, overrides and rollups, shared by every process (and, on PostgreSQL,
every host) that names the same store. Which backend serves it is `backend_for`'s to say (app/store/backend.py)."""

from app.clock import epoch_from_iso, iso_from_epoch, iso_millis, utc_now_iso
from app.store.attempt_log import AttemptLog, get_attempt_log
from app.store.backend import StoreBackend, backend_for
from app.store.database import StoreProblem, diagnose, open_database
from app.store.model_status import (
    CLEARED,
    CLOSED,
    ModelStatusRow,
    clear_model_status,
    read_model_status,
    read_only_uri,
)
from app.store.rows import AttemptRow
from app.store.spill import spill_path
from app.store.sqlite.migrations import MIGRATIONS, migrate

__all__ = [
    "CLEARED",
    "CLOSED",
    "MIGRATIONS",
    "AttemptLog",
    "AttemptRow",
    "ModelStatusRow",
    "StoreBackend",
    "StoreProblem",
    "backend_for",
    "clear_model_status",
    "diagnose",
    "epoch_from_iso",
    "get_attempt_log",
    "iso_from_epoch",
    "iso_millis",
    "migrate",
    "open_database",
    "read_model_status",
    "read_only_uri",
    "spill_path",
    "utc_now_iso",
]

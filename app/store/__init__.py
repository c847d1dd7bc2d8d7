"""The SQLite store: the attempt log and model status, shared by every process that names the same file."""

from app.store.attempt_log import (
    AttemptLog,
    AttemptRow,
    epoch_from_iso,
    get_attempt_log,
    iso_from_epoch,
    open_database,
    utc_now_iso,
)
from app.store.migrations import MIGRATIONS, migrate
from app.store.model_status import (
    CLEARED,
    CLOSED,
    ModelStatusRow,
    clear_model_status,
    read_model_status,
    read_only_uri,
)

__all__ = [
    "CLEARED",
    "CLOSED",
    "MIGRATIONS",
    "AttemptLog",
    "AttemptRow",
    "ModelStatusRow",
    "clear_model_status",
    "epoch_from_iso",
    "get_attempt_log",
    "iso_from_epoch",
    "migrate",
    "open_database",
    "read_model_status",
    "read_only_uri",
    "utc_now_iso",
]

"""Rows the database could not take, kept in a JSON-lines file beside it until a process can write them.

`<database>.unwritten.jsonl` holds one row per line: `{"attempt": [...]}` in AttemptRow's column order, or
`{"model_status": {...}}`. The attempt log spills there what it cannot write at exit, what goes beyond its
in-memory bound while the database refuses rows, and everything while the file is damaged. Appends take an
exclusive lock on the file, so several processes may spill at once. The first process whose writer opens the
database healthy imports the file: it claims it under the same lock by renaming it, writes its rows in one
transaction (skipping attempts already in the table, so a second import of the same rows adds nothing), then
deletes it.

The response cache's entries and hits are dropped knowingly, never spilled: a lost entry is one more provider call
for its request, a lost hit a little of its entry's eviction weight; neither is worth a line here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from app.store.database import write_batch
from app.store.rows import AttemptRow, ModelStatusRow

if TYPE_CHECKING:
    from app.store.backend import Opened, RowWriter

try:
    import fcntl
except ImportError:  # not POSIX: appends of one write() each, without the lock
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger("taskrouter.store")

_CLAIMED = ".importing-"


def spill_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".unwritten.jsonl")


def spill(db_path: Path, items: Iterable[object]) -> int:
    """Append the rows among `items`; returns how many. Raises OSError when the file cannot be written."""
    lines = []
    for item in items:
        if isinstance(item, AttemptRow):
            lines.append(json.dumps({"attempt": list(item)}, ensure_ascii=False))
        elif isinstance(item, ModelStatusRow):
            lines.append(json.dumps({"model_status": asdict(item)}, ensure_ascii=False))
    if not lines:
        return 0
    data = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    path = spill_path(db_path)
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                current = False
            if current:  # not renamed away by an import while this waited for the lock
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
                return len(lines)
        finally:
            os.close(fd)  # releases the lock


def import_spilled(db: Opened | RowWriter, db_path: Path) -> tuple[int, int]:
    """Write every spilled row into the database; returns (attempts written, lines that were not rows)."""
    written = unreadable = 0
    for claimed in _claim(db_path):
        rows, bad = _read(claimed)
        written += write_batch(db, rows, skip_known=True)
        unreadable += bad
        claimed.unlink()
    return written, unreadable


def _claim(db_path: Path) -> list[Path]:
    """The spill file, renamed under its lock so no append can land in it after it is read, plus any file an
    earlier import claimed and did not finish (its process is gone)."""
    path = spill_path(db_path)
    claimed = [p for p in path.parent.glob(path.name + _CLAIMED + "*") if not _alive(p.name.rsplit("-", 1)[-1])]
    with contextlib.suppress(FileNotFoundError):
        fd = os.open(path, os.O_RDONLY)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            target = path.with_name(path.name + _CLAIMED + str(os.getpid()))
            os.rename(path, target)
            claimed.append(target)
        finally:
            os.close(fd)
    return claimed


def _alive(pid: str) -> bool:
    if not pid.isdigit():
        return False
    if int(pid) == os.getpid():
        return False  # this process's own unfinished claim: take it again
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _read(path: Path) -> tuple[list[object], int]:
    rows: list[object] = []
    bad = 0
    defaults = AttemptRow._field_defaults
    width = len(AttemptRow._fields)
    for line in path.read_bytes().decode("utf-8", "surrogatepass").splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
            if "attempt" in entry:
                values = list(entry["attempt"])[:width]
                # A file spilled by an older version has fewer columns: the rest take their defaults.
                values += [defaults[name] for name in AttemptRow._fields[len(values) :]]
                rows.append(AttemptRow._make(values))
            else:
                rows.append(ModelStatusRow(**entry["model_status"]))
        except (ValueError, TypeError, KeyError):
            bad += 1  # a line cut short by a crash mid-append
    if bad:
        logger.error("attempt log: %d lines of %s are not rows and were skipped", bad, path)
    return rows, bad

"""The deprecation calendar: which model shuts down when, and what to use instead.

The entries live in `calendar.toml` beside this module (model names stay out of .py files); a user file named
by DEPRECATIONS_FILE adds or replaces entries. `retirement_for` is on the request path, so it is a dict
lookup into an index rebuilt at most once per calendar day.
"""

from __future__ import annotations

import json
import os
import threading
import tomllib
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from app.errors import ConfigError

PACKAGE_CALENDAR: Path = Path(__file__).with_name("calendar.toml")

_ENTRY_KEYS = frozenset({"shutdown", "replacements", "replacement", "source", "tiers", "note", "cancelled"})
_TOP_KEYS = frozenset({"source", "models"})


@dataclass(frozen=True, slots=True)
class CalendarEntry:
    model: str
    shutdown: date
    replacements: tuple[str, ...]  # as named by Groq (or the user), in preference order
    source: str | None = None
    tiers: str | None = None  # the service tiers the shutdown applies to, when not all
    note: str | None = None
    origin: str = ""  # the file the entry was read from


@dataclass(frozen=True, slots=True)
class Retirement:
    model: str
    shutdown: date
    replacement: str | None  # followed to a model that is still live; None when Groq named none
    named: tuple[str, ...] = ()  # the replacements as the calendar names them, before following
    source: str | None = None
    tiers: str | None = None
    note: str | None = None

    def days_left(self, today: date) -> int:
        """Days until shutdown: 0 or less once it has happened."""
        return (self.shutdown - today).days

    def suggestion(self) -> str:
        return f"replacement: {self.replacement}" if self.replacement else "no replacement named"


class DeprecationCalendar:
    def __init__(self, entries: Mapping[str, CalendarEntry], sources: Iterable[str] = ()) -> None:
        self._entries = dict(entries)
        self.sources: tuple[str, ...] = tuple(sources)
        # (day, model -> Retirement for every entry shut down by that day): replaced whole, never mutated,
        # so readers on other threads always see a complete index.
        self._index: tuple[date, dict[str, Retirement]] | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, model: object) -> bool:
        return model in self._entries

    def entry(self, model: str) -> CalendarEntry | None:
        return self._entries.get(model)

    def entries(self) -> list[CalendarEntry]:
        """Every entry, most recent shutdown first."""
        return sorted(self._entries.values(), key=lambda e: (e.shutdown, e.model), reverse=True)

    def retirement_for(self, model: str, today: date) -> Retirement | None:
        """The retirement of `model` if its shutdown date is on or before `today`."""
        if model not in self._entries:
            return None
        index = self._index
        if index is None or index[0] != today:
            index = (
                today,
                {e.model: self._retirement(e, today) for e in self._entries.values() if e.shutdown <= today},
            )
            self._index = index
        return index[1].get(model)

    def scheduled(self, model: str, today: date) -> Retirement | None:
        """The model's retirement whether or not it has happened yet, its replacement resolved for the day
        the caller will need it (the shutdown date, or today once it has passed)."""
        entry = self._entries.get(model)
        return None if entry is None else self._retirement(entry, max(today, entry.shutdown))

    def upcoming(self, model: str, today: date, days: int) -> Retirement | None:
        """The retirement of `model` if it falls after `today` and within `days` days of it."""
        entry = self._entries.get(model)
        if entry is None or not today < entry.shutdown <= today + timedelta(days=days):
            return None
        return self._retirement(entry, entry.shutdown)

    def replacement_for(self, model: str, as_of: date) -> str | None:
        """Follow the replacements breadth-first (Groq's first choice wins at equal depth) to a model with no
        shutdown scheduled; failing that, to one still up on `as_of`. Cycle-safe."""
        entry = self._entries.get(model)
        if entry is None:
            return None
        seen = {model}
        still_up: str | None = None
        queue = deque(entry.replacements)
        while queue:
            candidate = queue.popleft()
            if candidate in seen:
                continue
            seen.add(candidate)
            next_entry = self._entries.get(candidate)
            if next_entry is None:
                return candidate
            if still_up is None and next_entry.shutdown > as_of:
                still_up = candidate
            queue.extend(next_entry.replacements)
        return still_up

    def _retirement(self, entry: CalendarEntry, as_of: date) -> Retirement:
        return Retirement(
            entry.model,
            entry.shutdown,
            self.replacement_for(entry.model, as_of),
            entry.replacements,
            entry.source,
            entry.tiers,
            entry.note,
        )


# -- loading -----------------------------------------------------------------------------------------------

_cache: dict[tuple[str, int, int] | None, DeprecationCalendar] = {}
_cache_lock = threading.Lock()


def load_calendar(extra_file: Path | None = None) -> DeprecationCalendar:
    """The package calendar, extended/overridden by `extra_file`. Cached per file version (path, mtime, size):
    every Router asks for it, and an edited file is picked up by the next one."""
    key = None if extra_file is None else _file_key(Path(extra_file))
    with _cache_lock:
        calendar = _cache.get(key)
        if calendar is None:
            calendar = _build(Path(extra_file) if extra_file is not None else None)
            if len(_cache) > 16:
                _cache.clear()
            _cache[key] = calendar
        return calendar


def _file_key(path: Path) -> tuple[str, int, int]:
    try:
        stat = os.stat(path)
    except OSError as exc:
        raise ConfigError(f"DEPRECATIONS_FILE={path}: cannot read it ({exc.strerror or exc})") from None
    return str(path.resolve()), stat.st_mtime_ns, stat.st_size


def _build(extra_file: Path | None) -> DeprecationCalendar:
    entries: dict[str, CalendarEntry] = {}
    files = [(PACKAGE_CALENDAR, f"package calendar {PACKAGE_CALENDAR}")]
    if extra_file is not None:
        files.append((extra_file, f"DEPRECATIONS_FILE={extra_file}"))
    for path, label in files:
        for model, entry in parse_entries(_read(path, label), label, str(path)):
            if entry is None:
                entries.pop(model, None)
            else:
                entries[model] = entry  # the later file wins, whole entry at a time
    return DeprecationCalendar(entries, [str(path) for path, _ in files])


def _read(path: Path, label: str) -> Any:
    try:
        with open(path, "rb") as fh:
            if path.suffix.lower() == ".json":
                return json.load(fh)
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{label}: cannot read it ({exc.strerror or exc})") from None
    except (ValueError, tomllib.TOMLDecodeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ConfigError(f"{label}: not valid {kind}: {exc}") from None


def parse_entries(data: Any, label: str, origin: str) -> list[tuple[str, CalendarEntry | None]]:
    """Validate a calendar document: (model, entry) pairs in file order; None stands for `cancelled = true`."""
    models = _models_table(data, label)
    source = _default_source(data, label)
    return [(model, _entry(model, table, label, origin, source)) for model, table in models.items()]


def _models_table(data: Any, label: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ConfigError(f"{label}: the top level must be a table with a `models` table")
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise ConfigError(
            f"{label}: unknown top-level key(s) {', '.join(unknown)}; "
            'expected `source` and [models."<model id>"] tables'
        )
    models = data.get("models", {})
    if not isinstance(models, dict):
        raise ConfigError(f'{label}: `models` must be a table of [models."<model id>"] entries')
    return models


def _default_source(data: dict[str, Any], label: str) -> str | None:
    source = data.get("source")
    if source is not None and not isinstance(source, str):
        raise ConfigError(f"{label}: `source` must be a string")
    return source


def _entry(model: str, table: Any, label: str, origin: str, default_source: str | None) -> CalendarEntry | None:
    where = f'{label}: entry models."{model}"'
    if not model.strip() or model != model.strip():
        raise ConfigError(f"{where}: the model id must be non-blank, without surrounding spaces")
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: must be a table with at least `shutdown`")
    unknown = sorted(set(table) - _ENTRY_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_ENTRY_KEYS))}")
    cancelled = table.get("cancelled", False)
    if not isinstance(cancelled, bool):
        raise ConfigError(f"{where}: `cancelled` must be true or false")
    if cancelled:
        return None
    texts = {}
    for key in ("source", "tiers", "note"):
        value = table.get(key)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{where}: `{key}` must be a string")
        texts[key] = value
    return CalendarEntry(
        model=model,
        shutdown=_shutdown(table, where),
        replacements=_replacements(model, table, where),
        source=texts["source"] or default_source,
        tiers=texts["tiers"],
        note=texts["note"],
        origin=origin,
    )


def _shutdown(table: dict[str, Any], where: str) -> date:
    if "shutdown" not in table:
        raise ConfigError(f"{where}: `shutdown` (a date, e.g. 2026-09-14) is missing")
    value = table["shutdown"]
    # TOML gives date objects; JSON gives strings. A datetime is a date subclass: refuse the ambiguity.
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            pass
    elif isinstance(value, date) and not isinstance(value, datetime):
        return value
    raise ConfigError(f"{where}: `shutdown` must be a date like 2026-09-14, got {value!r}")


def _replacements(model: str, table: dict[str, Any], where: str) -> tuple[str, ...]:
    if "replacement" in table and "replacements" in table:
        raise ConfigError(f"{where}: give either `replacement` or `replacements`, not both")
    value = table.get("replacements", table.get("replacement", []))
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names):
        raise ConfigError(f"{where}: `replacements` must be a list of model ids, got {value!r}")
    names = [n.strip() for n in names]
    if model in names:
        raise ConfigError(f"{where}: a model cannot be its own replacement")
    return tuple(dict.fromkeys(names))

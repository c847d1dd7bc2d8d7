"""Where a secret can hide after a failure: the texts of an exception and its whole chain (attached headers,
requests and responses included), of captured log records, and of a database. For tests/test_secrets.py."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import traceback
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.store import get_attempt_log


def texts_of(value: Any, depth: int = 0) -> Iterator[str]:
    """Every piece of text reachable from an attribute of an exception: strings, containers, dataclass records and
    the HTTP objects an SDK exception carries (headers, request, response). Other objects only by their repr: they
    are not followed, since the router's own objects hold the key legitimately."""
    if depth > 6 or value is None:
        return
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes | bytearray):
        yield bytes(value).decode("latin-1")
    elif isinstance(value, BaseException):
        yield from exception_texts(value)
    elif isinstance(value, httpx.Headers):
        yield from (f"{name}: {item}" for name, item in value.multi_items())
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from texts_of(key, depth + 1)
            yield from texts_of(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from texts_of(item, depth + 1)
    elif isinstance(value, httpx.Request | httpx.Response):
        yield repr(value)
        # Attributes rather than properties: a response's `request` and `content` raise when unset or unread.
        attributes = vars(value)
        for part in (value.headers, attributes.get("url"), attributes.get("_request"), attributes.get("_content")):
            yield from texts_of(part, depth + 1)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        yield repr(value)
        for field in dataclasses.fields(value):
            yield from texts_of(getattr(value, field.name), depth + 1)
    else:
        yield repr(value)


def exception_texts(exc: BaseException) -> Iterator[str]:
    """The exception and every one in its chain: str, repr, args and __dict__ values, and the whole traceback."""
    yield "".join(traceback.format_exception(exc))
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield str(current)
        yield repr(current)
        for value in (*current.args, *vars(current).values()):
            if isinstance(value, BaseException):
                pending.append(value)
            else:
                yield from texts_of(value)
        pending += [current.__cause__, current.__context__]


def chain_of(exc: BaseException) -> list[BaseException]:
    found: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def log_texts(caplog: pytest.LogCaptureFixture) -> Iterator[str]:
    formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    for record in caplog.records:
        yield record.getMessage()
        yield formatter.format(record)
        if record.exc_info and record.exc_info[1] is not None:
            yield from exception_texts(record.exc_info[1])
    yield caplog.text


def database_texts(db_path: Path) -> Iterator[str]:
    """Every column of every row of every table, and the raw bytes of every file of the database."""
    assert get_attempt_log(db_path).flush(timeout=30), "attempt log did not flush"
    conn = sqlite3.connect(db_path)
    try:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                yield " | ".join(map(str, row))
    finally:
        conn.close()
    for path in sorted(db_path.parent.glob(db_path.name + "*")):  # the file, its WAL, rows spilled at exit
        yield path.read_bytes().decode("latin-1")


def sightings(secret: str, **places: Iterator[str] | list[str]) -> list[str]:
    """Where `secret` was seen: the place, and the text just before it."""
    found = []
    for place, texts in places.items():
        for text in texts:
            at = text.find(secret)
            if at >= 0:
                found.append(f"{place}: ...{text[max(0, at - 120) : at + len(secret)]}")
    return found

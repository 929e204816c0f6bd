"""Opaque cursors for keyset pagination: the sort key of the last row, base64url-encoded."""

import base64
import json
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, tuple_
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.errors import ValidationFailed

T = TypeVar("T")
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class PageRequest:
    """The page a client asks for: at most ``limit`` rows after ``cursor``."""

    limit: int = DEFAULT_LIMIT
    cursor: str | None = None  # the previous page's ``next_cursor``; None: the first


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None


def encode_cursor(key: Sequence[Any]) -> str:
    raw = json.dumps(list(key), separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> list[Any] | None:
    """The values of a cursor: a non-empty list of strings and 64-bit integers, as
    :func:`encode_cursor` writes them. Anything else (floats, booleans, nulls, nested
    lists, JSON too deep to read) was not issued here: 422 ``cursor``."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise _invalid_cursor() from None
    if not isinstance(key, list) or not key or not all(type(v) is str or _is_int64(v) for v in key):
        raise _invalid_cursor()
    return key


def read_cursor(cursor: str, readers: Sequence[Callable[[Any], Any]]) -> list[Any]:
    """The values of ``cursor``, one for each of ``readers`` (each checks its value's
    type and range and returns it as its column holds it): 422 ``cursor`` if one does
    not fit, or if there are more or fewer."""
    key = decode_cursor(cursor) or []
    if len(key) != len(readers):
        raise _invalid_cursor()
    return [read(value) for read, value in zip(readers, key, strict=True)]


# An aware time whose UTC is a datetime too (0001-01-01T00:00+08:00 is not).
_EARLIEST, _LATEST = datetime(1, 1, 2, tzinfo=UTC), datetime(9999, 12, 30, tzinfo=UTC)
_INT64 = range(-(2**63), 2**63)
# What no code, name or identifier of this service holds, and no database stores: a NUL
# (PostgreSQL refuses it) or half of a surrogate pair (not UTF-8).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _is_int64(value: Any) -> bool:
    return type(value) is int and value in _INT64


def cursor_time(value: Any) -> datetime:
    """A time in a cursor: an ISO string with an offset, as ``isoformat`` writes one."""
    if type(value) is not str:
        raise _invalid_cursor()
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise _invalid_cursor() from None
    if at.tzinfo is None or not _EARLIEST <= at <= _LATEST:
        raise _invalid_cursor()
    return at


def cursor_uuid(value: Any) -> uuid.UUID:
    """A row's id in a cursor: a UUID string."""
    if type(value) is not str:
        raise _invalid_cursor()
    try:
        return uuid.UUID(value)
    except ValueError:
        raise _invalid_cursor() from None


def cursor_int(value: Any, *, within: range = _INT64) -> int:
    """A whole number in a cursor (never a float or a boolean), ``within`` its column's
    range (a 64-bit integer unless the column says less)."""
    if type(value) is not int or value not in within:
        raise _invalid_cursor()
    return value


def cursor_text(value: Any) -> str:
    """A code or name in a cursor: a string a database can hold."""
    if type(value) is not str or _UNSTORABLE.search(value):
        raise _invalid_cursor()
    return value


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "the cursor is not one this service issued",
        errors=[{"field": "cursor", "message": "invalid cursor"}],
    )


def page_of(rows: list[T], *, limit: int, key: Any) -> Page[T]:
    """``rows`` fetched with ``limit + 1``: the extra row only says that more exist."""
    if len(rows) > limit:
        rows = rows[:limit]
        return Page(rows, encode_cursor(key(rows[-1])))
    return Page(rows, None)


def keyset_page(
    session: Session,
    query: Select[T],
    *,
    key: InstrumentedAttribute[Any],
    page: PageRequest,
) -> Page[T]:
    """The ``page`` of ``query`` ordered by the unique column ``key``."""
    limit = page.limit
    if page.cursor is not None:
        # [the key's value]: a code or name (a number only for a numeric key).
        read = cursor_int if key.type.python_type is int else cursor_text
        (after,) = read_cursor(page.cursor, [read])
        query = query.where(key > after)
    rows = list(session.scalars(query.order_by(key).limit(limit + 1)))
    return page_of(rows, limit=limit, key=lambda row: [getattr(row, key.key)])


def newest_first_page(
    session: Session,
    query: Select[T],
    *,
    at: InstrumentedAttribute[datetime],
    id: InstrumentedAttribute[uuid.UUID],
    page: PageRequest,
) -> Page[T]:
    """The ``page`` of ``query``, newest ``at`` first (ties broken by ``id``)."""
    limit = page.limit
    if page.cursor is not None:
        # Opaque, but it comes back from the client: anything but the [aware ISO time,
        # UUID] this issues is a 422, never a 500.
        time, row_id = read_cursor(page.cursor, [cursor_time, cursor_uuid])
        # A row value, not (at < t OR at = t AND id < i): both databases walk the
        # (at, id) index from the cursor on, where SQLite would gather every older row
        # through two indexes and sort them for one page.
        query = query.where(tuple_(at, id) < tuple_(time, row_id))
    rows = list(session.scalars(query.order_by(at.desc(), id.desc()).limit(limit + 1)))
    return page_of(
        rows,
        limit=limit,
        key=lambda row: [getattr(row, at.key).isoformat(), str(getattr(row, id.key))],
    )

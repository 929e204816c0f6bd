"""Opaque cursors for keyset pagination: the sort key of the last row, base64url-encoded."""

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
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
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if (
            not isinstance(key, list)
            or not key
            or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in key)
        ):
            raise ValueError
        return key
    except (ValueError, UnicodeDecodeError):
        raise _invalid_cursor() from None


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
    after, limit = decode_cursor(page.cursor), page.limit
    if after is not None:
        if not isinstance(after[0], key.type.python_type):
            raise _invalid_cursor()
        query = query.where(key > after[0])
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
    after, limit = decode_cursor(page.cursor), page.limit
    if after is not None:
        # Opaque, but it comes back from the client: anything but the [aware ISO time,
        # UUID] this issues is a 422, never a 500.
        try:
            if len(after) != 2 or not all(isinstance(v, str) for v in after):
                raise ValueError
            time, row_id = datetime.fromisoformat(after[0]), uuid.UUID(after[1])
            if time.tzinfo is None:
                raise ValueError
        except ValueError:
            raise _invalid_cursor() from None
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

"""Column types shared by every table: instants in UTC, WGS-84 points."""

from datetime import UTC, datetime
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import (
    DateTime,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

from app.geo import SRID


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on PostgreSQL (timestamptz) and SQLite (text) alike."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def wkt_point(lon: float, lat: float) -> WKTElement:
    """A WGS-84 point as a bind value of a geometry column."""
    return WKTElement(f"POINT({lon!r} {lat!r})", srid=SRID)

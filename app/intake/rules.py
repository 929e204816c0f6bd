"""What a report must be to be taken, and what it becomes: checked, converted, routed."""

import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from app.areas import Route
from app.errors import (
    ObservedAtOutOfRange,
    UnknownCategory,
)
from app.geo import CoordSys, bbox_around, to_wgs84
from app.tickets import CategoryRules, Reference, WorkingCalendar

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_REPORT_AGE = timedelta(days=7)
RATE_WINDOW = timedelta(hours=1)
# Reports within a category's radius of each other share at least one locked cell: each
# locks every cell its search box touches.
LOCK_CELL_DEG = 0.01
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


@dataclass(frozen=True)
class ReportInput:
    category: str
    lat: float
    lon: float
    coord_sys: CoordSys
    accuracy_m: float | None
    description: str | None
    address_hint: str | None
    observed_at: datetime | None
    media_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class Received:
    """What a report was answered: its status, the body, and whether it was a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool


def new_ticket_ref() -> str:
    """12 random Crockford base32 characters (60 bits), in groups of four."""
    bits = int.from_bytes(secrets.token_bytes(8), "big") >> 4
    chars = "".join(_REF_ALPHABET[(bits >> shift) & 31] for shift in range(55, -1, -5))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


# --- checking and routing, where the request arrives ----------------------------------


@dataclass(frozen=True)
class Prepared:
    """A report checked and routed, ready to be stored."""

    category: CategoryRules
    observed_at: datetime
    lon: float  # WGS-84
    lat: float
    route: Route
    calendar: WorkingCalendar


def prepare(known: Reference, data: ReportInput, *, now: datetime, snap_m: float) -> Prepared:
    """Everything that needs no more than the reference data: the category, the time
    window, the point in WGS-84 and its areas."""
    category = known.categories.get(data.category)
    if category is None or not category.active:
        raise UnknownCategory(
            f"no active category {data.category!r}",
            errors=[{"field": "category", "message": "unknown category"}],
        )
    observed_at = _check_observed_at(data.observed_at, now)
    lon, lat = to_wgs84(data.lon, data.lat, data.coord_sys)
    route = known.areas.route(lon=lon, lat=lat, snap_m=snap_m)
    return Prepared(category, observed_at, lon, lat, route, known.calendar)


def _check_observed_at(observed_at: datetime | None, now: datetime) -> datetime:
    if observed_at is None:
        return now
    if observed_at > now + MAX_CLOCK_SKEW or observed_at < now - MAX_REPORT_AGE:
        raise ObservedAtOutOfRange(
            "observed_at may be at most 5 minutes ahead and 7 days behind the server's clock",
            errors=[{"field": "observed_at", "message": "out of range"}],
        )
    return observed_at


def dedup_lock_names(
    category: CategoryRules, *, lon: float, lat: float
) -> list[tuple[object, ...]]:
    """The locks of every grid cell that the dedup search box around (lon, lat) touches."""
    if category.dedup_radius_m <= 0:
        return []
    min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, category.dedup_radius_m)
    columns = range(math.floor(min_lon / LOCK_CELL_DEG), math.floor(max_lon / LOCK_CELL_DEG) + 1)
    rows = range(math.floor(min_lat / LOCK_CELL_DEG), math.floor(max_lat / LOCK_CELL_DEG) + 1)
    return [("dedup", category.id, x, y) for x in columns for y in rows]

"""What a platform's riders contributed: per rider, and summed by day, category or street.

All time, a rider's numbers are its ``rider_totals`` row (kept in step by
``app.services.contributions``), and the rider list is one index walk. Within a window
``[from, to)`` they are counted from the base tables through their (platform, time)
indexes: reports received in the window (and how their tickets stand now), verifications
made in it, and ledger lines written in it.
"""

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, case, func, literal, or_, select, union_all
from sqlalchemy.orm import Session

from app.db import epoch_bucket
from app.errors import ValidationFailed
from app.models import (
    Area,
    Category,
    Platform,
    PointsEntry,
    Report,
    Rider,
    RiderTotals,
    Ticket,
    Verification,
)
from app.services.contributions import REPORT_COUNTERS, counts_in_sql
from app.services.pagination import Page, decode_cursor, encode_cursor

COUNTERS = (*REPORT_COUNTERS, "verifications", "points")
SORTABLE = (*COUNTERS, "rider_id")
BUCKET_S = 900  # a quarter of an hour: every time zone's days are made of them


@dataclass(frozen=True)
class Window:
    start: datetime | None = None
    end: datetime | None = None

    @property
    def all_time(self) -> bool:
        return self.start is None and self.end is None

    def of(self, column: Any) -> list[ColumnElement[bool]]:
        return ([column >= self.start] if self.start else []) + \
            ([column < self.end] if self.end else [])


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, errors=[{"field": field, "message": message}])


def check_window(window: Window) -> None:
    if window.start and window.end and window.start >= window.end:
        raise _invalid("to", "must be after from")


def totals(session: Session, rider_id: uuid.UUID) -> dict[str, int]:
    row = session.get_one(RiderTotals, rider_id)
    return {name: getattr(row, name) for name in COUNTERS}


# --- the parts every windowed count is a sum of ------------------------------------------

def _zeros(*names: str) -> list[Any]:
    return [literal(0).label(n) for n in names]


def _parts(platform_id: uuid.UUID, window: Window, key: str,
           rider_id: uuid.UUID | None = None) -> Any:
    """One row per (``key``, source) with every counter: reports, verifications and
    ledger lines of the platform's riders in ``window``, as a UNION ALL subquery."""
    report_cols = [func.count().label("reports"),
                   *(func.coalesce(func.sum(case((counts_in_sql(name), 1), else_=0)), 0)
                     .label(name) for name in REPORT_COUNTERS if name != "reports")]
    keys = {
        "rider": (Report.rider_id, Verification.rider_id, PointsEntry.rider_id),
        "category": (Report.category_id, Ticket.category_id, PointsEntry.category_id),
        "street": (Report.street_id, Ticket.street_id, PointsEntry.street_id),
        "bucket": (epoch_bucket(Report.received_at, BUCKET_S),
                   epoch_bucket(Verification.created_at, BUCKET_S),
                   epoch_bucket(PointsEntry.created_at, BUCKET_S)),
    }
    report_key, verification_key, line_key = keys[key]
    reports = select(report_key.label("key"), *report_cols, *_zeros("verifications", "points")) \
        .where(Report.platform_id == platform_id, *window.of(Report.received_at))
    verifications = select(verification_key.label("key"),
                           *_zeros(*REPORT_COUNTERS), func.count().label("verifications"),
                           *_zeros("points")).select_from(Verification) \
        .join(Rider, Rider.id == Verification.rider_id) \
        .where(Rider.platform_id == platform_id, *window.of(Verification.created_at))
    if key in ("category", "street"):
        verifications = verifications.join(Ticket, Ticket.id == Verification.ticket_id)
    lines = select(line_key.label("key"), *_zeros(*REPORT_COUNTERS, "verifications"),
                   func.sum(PointsEntry.points).label("points")) \
        .where(PointsEntry.platform_id == platform_id, *window.of(PointsEntry.created_at))
    if rider_id is not None:
        reports = reports.where(Report.rider_id == rider_id)
        verifications = verifications.where(Verification.rider_id == rider_id)
        lines = lines.where(PointsEntry.rider_id == rider_id)
    return union_all(reports.group_by(report_key), verifications.group_by(verification_key),
                     lines.group_by(line_key)).subquery()


def _summed(parts: Any) -> Select[Any]:
    return select(parts.c.key, *(func.sum(parts.c[n]).label(n) for n in COUNTERS)) \
        .group_by(parts.c.key)


def _category_codes(session: Session) -> dict[int, str]:
    return {i: code for i, code in session.execute(select(Category.id, Category.code))}


def _as_counts(row: Any) -> dict[str, int]:
    return {n: int(getattr(row, n) or 0) for n in COUNTERS}


# --- the rider list ----------------------------------------------------------------------

def parse_sort(sort: str) -> tuple[str, bool]:
    descending = sort.startswith("-")
    name = sort.removeprefix("-")
    if name not in SORTABLE:
        raise _invalid("sort", f"one of {', '.join(SORTABLE)}, optionally with a leading -")
    return name, descending


def rider_page(session: Session, *, platform: Platform, window: Window, sort: str,
               limit: int, cursor: str | None) -> Page[dict[str, Any]]:
    """This platform's riders with their numbers, in ``sort`` order (ties by our id)."""
    name, descending = parse_sort(sort)
    check_window(window)
    if window.all_time:
        source = select(RiderTotals.rider_id.label("key"),
                        *(getattr(RiderTotals, n).label(n) for n in COUNTERS)) \
            .where(RiderTotals.platform_id == platform.id).subquery()
    else:
        source = _summed(_parts(platform.id, window, "rider")).subquery()
    value = Rider.external_id if name == "rider_id" else source.c[name]
    query = select(Rider.id, Rider.external_id, Rider.display_name, source) \
        .join(source, source.c.key == Rider.id).where(Rider.platform_id == platform.id)
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(_after(value, Rider.id, after, descending))
    order = (value.desc(), Rider.id.desc()) if descending else (value.asc(), Rider.id.asc())
    rows = session.execute(query.order_by(*order).limit(limit + 1)).all()
    items = [{"rider_id": r.external_id, "display_name": r.display_name, **_as_counts(r)}
             for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([last.external_id if name == "rider_id"
                                     else int(getattr(last, name) or 0), str(last.id)])
    return Page(items, next_cursor)


def _after(value: Any, id_column: Any, after: list[Any], descending: bool) -> Any:
    if len(after) != 2:
        raise _invalid("cursor", "invalid cursor")
    try:
        last_value, last_id = after[0], uuid.UUID(str(after[1]))
    except ValueError:
        raise _invalid("cursor", "invalid cursor") from None
    if descending:
        return or_(value < last_value, and_(value == last_value, id_column < last_id))
    return or_(value > last_value, and_(value == last_value, id_column > last_id))


def rider_detail(session: Session, *, platform: Platform, rider: Rider,
                 window: Window) -> dict[str, Any]:
    """One rider's numbers, and the same by category."""
    check_window(window)
    if window.all_time:
        counts = totals(session, rider.id)
    else:
        row = session.execute(_summed(_parts(platform.id, window, "rider", rider.id))).first()
        counts = _as_counts(row) if row else dict.fromkeys(COUNTERS, 0)
    codes = _category_codes(session)
    by_category = {codes[row.key]: _as_counts(row) for row in session.execute(
        _summed(_parts(platform.id, window, "category", rider.id)))}
    return {"rider_id": rider.external_id, "display_name": rider.display_name, **counts,
            "by_category": by_category}


# --- the summary -------------------------------------------------------------------------

class GroupBy(StrEnum):
    DAY = "day"
    CATEGORY = "category"
    STREET = "street"


def summary(session: Session, *, platform: Platform, window: Window, group_by: GroupBy,
            tz: ZoneInfo) -> list[dict[str, Any]]:
    """This platform's riders' numbers in ``window``, one row per day (in ``tz``),
    category or street, in that order; empty groups are left out."""
    check_window(window)
    key = "bucket" if group_by is GroupBy.DAY else group_by.value
    rows = session.execute(_summed(_parts(platform.id, window, key))).all()
    groups: defaultdict[Any, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTERS, 0))
    if group_by is GroupBy.DAY:
        for row in rows:
            day = datetime.fromtimestamp(int(row.key) * BUCKET_S, UTC).astimezone(tz).date()
            for name, n in _as_counts(row).items():
                groups[day][name] += n
        return [{"day": day.isoformat(), **groups[day]} for day in sorted(groups)]
    if group_by is GroupBy.CATEGORY:
        codes = _category_codes(session)
        return sorted(({"category": codes[row.key], **_as_counts(row)} for row in rows),
                      key=lambda r: r["category"])
    names = {a.id: (a.code, a.name) for a in session.execute(
        select(Area.id, Area.code, Area.name)
        .where(Area.id.in_([r.key for r in rows if r.key is not None])))}
    return sorted(({"street": names[row.key][0] if row.key is not None else None,
                    "street_name": names[row.key][1] if row.key is not None else None,
                    **_as_counts(row)} for row in rows),
                  key=lambda r: r["street"] or "")


def summary_window(start: datetime | None, end: datetime | None, now: datetime) -> Window:
    """The summary's window: as given, else the last 30 days up to now."""
    end = end or now
    return Window(start or end - timedelta(days=30), end)


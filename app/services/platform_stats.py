"""What a platform's riders contributed: per rider, and summed by day, category or street.

All time, a rider's numbers are its ``rider_totals`` row (kept in step by
``app.services.contributions``), and the rider list is one index walk. Within a window
``[from, to)`` they are counted from the base tables through their (platform, time)
indexes: reports received in the window (and how their tickets stand now), verifications
made in it, and ledger lines written in it.
"""

import uuid
from collections import Counter, defaultdict
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
    PlatformActivity,
    PointsEntry,
    Report,
    Rider,
    RiderTotals,
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


MAX_SUMMARY_DAYS = 400


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
    ledger lines of the platform's riders (or of one rider) in ``window``, as a UNION ALL
    subquery. Each source is read through its (platform or rider, time) index."""
    report_cols = [func.count().label("reports"),
                   *(func.coalesce(func.sum(case((counts_in_sql(name), 1), else_=0)), 0)
                     .label(name) for name in REPORT_COUNTERS if name != "reports")]
    keys = {
        "rider": (Report.rider_id, Verification.rider_id, PointsEntry.rider_id),
        "category": (Report.category_id, Verification.category_id, PointsEntry.category_id),
        "street": (Report.street_id, Verification.street_id, PointsEntry.street_id),
        "bucket": (epoch_bucket(Report.received_at, BUCKET_S),
                   epoch_bucket(Verification.created_at, BUCKET_S),
                   epoch_bucket(PointsEntry.created_at, BUCKET_S)),
    }
    report_key, verification_key, line_key = keys[key]

    def whose(model: Any) -> ColumnElement[bool]:
        return model.platform_id == platform_id if rider_id is None \
            else model.rider_id == rider_id

    reports = select(report_key.label("key"), *report_cols, *_zeros("verifications", "points")) \
        .where(whose(Report), *window.of(Report.received_at))
    verifications = select(verification_key.label("key"),
                           *_zeros(*REPORT_COUNTERS), func.count().label("verifications"),
                           *_zeros("points")).select_from(Verification) \
        .where(whose(Verification), *window.of(Verification.created_at))
    lines = select(line_key.label("key"), *_zeros(*REPORT_COUNTERS, "verifications"),
                   func.sum(PointsEntry.points).label("points")) \
        .where(whose(PointsEntry), *window.of(PointsEntry.created_at))
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
        # A cursor carries the sort it was made for: another sort's would mean nothing.
        if len(after) != 3 or after[0] != sort or \
                not isinstance(after[1], str if name == "rider_id" else int):
            raise _invalid("cursor", "the cursor belongs to another sort or query")
        query = query.where(_after(value, source.c.key, after[1:], descending))
    # Ties by the totals' own key, so that the (platform, points, rider) index is the order.
    order = (value.desc(), source.c.key.desc()) if descending \
        else (value.asc(), source.c.key.asc())
    rows = session.execute(query.order_by(*order).limit(limit + 1)).all()
    items = [{"rider_id": r.external_id, "display_name": r.display_name, **_as_counts(r)}
             for r in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor([sort, last.external_id if name == "rider_id"
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
    category or street, in that order; empty groups are left out.

    The whole hours of the window are read from ``platform_activity``; the minutes at
    either end (and windows in a time zone whose days do not start on an hour) from the
    base tables, 15-minute slices at a time."""
    check_window(window)
    assert window.start is not None and window.end is not None
    if window.end - window.start > timedelta(days=MAX_SUMMARY_DAYS):
        raise _invalid("from", f"a summary covers at most {MAX_SUMMARY_DAYS} days")
    groups: defaultdict[Any, Counter[str]] = defaultdict(Counter)

    def add(key: Any, row: Any) -> None:
        groups[key].update(_as_counts(row))

    first_hour = -(-int(window.start.timestamp()) // 3600)
    last_hour = int(window.end.timestamp()) // 3600
    if group_by is GroupBy.DAY and not _days_start_on_hours(tz, window):
        first_hour = last_hour  # no whole hours: everything from the base tables
    raw = [window]
    if last_hour > first_hour:
        raw = [Window(window.start, _at_hour(first_hour)), Window(_at_hour(last_hour),
                                                                  window.end)]
        hourly = PlatformActivity.hour if group_by is GroupBy.DAY else \
            PlatformActivity.category_id if group_by is GroupBy.CATEGORY else \
            PlatformActivity.street_key
        for row in session.execute(
                select(hourly.label("key"), *(func.sum(getattr(PlatformActivity, n)).label(n)
                                              for n in COUNTERS))
                .where(PlatformActivity.platform_id == platform.id,
                       PlatformActivity.hour >= first_hour, PlatformActivity.hour < last_hour)
                .group_by(hourly)):
            add(_at_hour(row.key) if group_by is GroupBy.DAY else row.key or None, row)
    for part in raw:
        if part.start is not None and part.end is not None and part.start < part.end:
            key = "bucket" if group_by is GroupBy.DAY else group_by.value
            for row in session.execute(_summed(_parts(platform.id, part, key))):
                add(datetime.fromtimestamp(int(row.key) * BUCKET_S, UTC)
                    if group_by is GroupBy.DAY else row.key, row)
    return _summary_rows(session, groups, group_by, tz)


def _at_hour(hour: int) -> datetime:
    return datetime.fromtimestamp(hour * 3600, UTC)


def _days_start_on_hours(tz: ZoneInfo, window: Window) -> bool:
    assert window.start is not None and window.end is not None
    day = window.start
    while day <= window.end + timedelta(days=1):
        offset = tz.utcoffset(day)
        if offset is None or offset.total_seconds() % 3600:
            return False
        day += timedelta(days=1)
    return True


def _summary_rows(session: Session, groups: dict[Any, Counter[str]], group_by: GroupBy,
                  tz: ZoneInfo) -> list[dict[str, Any]]:
    if group_by is GroupBy.DAY:
        days: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for at, counts in groups.items():
            days[at.astimezone(tz).date().isoformat()].update(counts)
        return [{"day": day, **_full(days[day])} for day in sorted(days)]
    if group_by is GroupBy.CATEGORY:
        codes = _category_codes(session)
        return sorted(({"category": codes[key], **_full(c)} for key, c in groups.items()),
                      key=lambda r: r["category"])
    streets = [key for key in groups if key is not None]
    names = {a.id: (a.code, a.name) for a in session.execute(
        select(Area.id, Area.code, Area.name).where(Area.id.in_(streets)))} if streets else {}
    return sorted(({"street": names[key][0] if key else None,
                    "street_name": names[key][1] if key else None, **_full(c)}
                   for key, c in groups.items()), key=lambda r: r["street"] or "")


def _full(counts: Counter[str]) -> dict[str, int]:
    return {name: counts[name] for name in COUNTERS}


def summary_window(start: datetime | None, end: datetime | None, now: datetime) -> Window:
    """The summary's window: as given, else the last 30 days up to now."""
    end = end or now
    return Window(start or end - timedelta(days=30), end)


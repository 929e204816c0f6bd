"""What a platform's riders contributed: per rider, and summed by day, category or street.

All time, a rider's numbers are its ``rider_totals`` row (kept in step by
``app.riders.points``), and the rider list is one index walk. Within a window
``[from, to)``, the rider list sums the riders' whole days (``rider_daily_activity``) and
the whole hours of the days the window cuts (``rider_activity``), and the summary the
platform's whole hours (``platform_activity``), all kept in step the same way; the
minutes at either end, and one rider's numbers, are counted from the base tables through
their (platform or rider, time) indexes: reports received in the window (and how their
tickets stand now), verifications made in it, and ledger lines written in it.
"""

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session

from app.categories import category_codes
from app.db import epoch_bucket, one_large_aggregate
from app.errors import ValidationFailed
from app.models import (
    DAY,
    EPOCH,
    HOUR,
    Area,
    Contribution,
    Platform,
    PlatformActivity,
    PointsEntry,
    Report,
    Rider,
    RiderActivity,
    RiderDailyActivity,
    RiderTotals,
    Verification,
)
from app.pagination import (
    Page,
    PageRequest,
    cursor_int,
    cursor_text,
    cursor_uuid,
    encode_cursor,
    read_cursor,
)
from app.riders.points import REPORT_COUNTERS, counts_in_sql

COUNTERS = Contribution.COUNTERS  # the report counters first, as the parts select them
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
        return _between(column, low=self.start, high=self.end)

    @property
    def key(self) -> str:
        """The window, as a cursor made in it remembers it."""
        return "/".join(at.isoformat() if at else "" for at in (self.start, self.end))


def _between(column: Any, *, low: Any, high: Any) -> list[ColumnElement[bool]]:
    """``low <= column < high``; an end that is None is open."""
    return ([column >= low] if low is not None else []) + (
        [column < high] if high is not None else []
    )


MAX_SUMMARY_DAYS = 400


EARLIEST, LATEST = EPOCH, datetime(9999, 1, 1, tzinfo=UTC)


def check_window(window: Window) -> None:
    for field, at in (("from", window.start), ("to", window.end)):
        if at is not None and not EARLIEST <= at < LATEST:
            raise ValidationFailed.of_field(
                field, f"must be from {EARLIEST.year} to {LATEST.year - 1}"
            )
    if window.start and window.end and window.start >= window.end:
        raise ValidationFailed.of_field("to", "must be after from")


def totals(session: Session, rider_id: uuid.UUID) -> dict[str, int]:
    row = session.get_one(RiderTotals, rider_id)
    return {name: getattr(row, name) for name in COUNTERS}


# --- the parts every windowed count is a sum of ------------------------------------------


def _zeros(*names: str) -> list[Any]:
    return [literal(0).label(n) for n in names]


def _int(value: Any) -> Any:
    """A part's count or sum as a plain integer, like the hourly tables' columns: their
    sums then add up machine integers (on PostgreSQL, a sum of bigints is a numeric)."""
    return cast(value, Integer)


def _parts(
    platform_id: uuid.UUID, window: Window, *, key: str, rider_id: uuid.UUID | None = None
) -> Any:
    """:func:`_part_selects` as one UNION ALL subquery."""
    return union_all(*_part_selects(platform_id, window, key=key, rider_id=rider_id)).subquery()


def _part_selects(
    platform_id: uuid.UUID, window: Window, *, key: str, rider_id: uuid.UUID | None = None
) -> list[Select[Any]]:
    """One row per (``key``, source) with every counter, in the order of ``COUNTERS``:
    reports, verifications and ledger lines of the platform's riders (or of one rider)
    in ``window``. Each source is read through its (platform or rider, time) index."""
    report_cols = [
        _int(func.count()).label("reports"),
        *(
            _int(func.coalesce(func.sum(case((counts_in_sql(name), 1), else_=0)), 0)).label(name)
            for name in REPORT_COUNTERS
            if name != "reports"
        ),
    ]
    keys = {
        "rider": (Report.rider_id, Verification.rider_id, PointsEntry.rider_id),
        "category": (Report.category_id, Verification.category_id, PointsEntry.category_id),
        "street": (Report.street_id, Verification.street_id, PointsEntry.street_id),
        "bucket": (
            epoch_bucket(Report.received_at, BUCKET_S),
            epoch_bucket(Verification.created_at, BUCKET_S),
            epoch_bucket(PointsEntry.created_at, BUCKET_S),
        ),
    }
    report_key, verification_key, line_key = keys[key]

    def whose(model: Any) -> ColumnElement[bool]:
        return model.platform_id == platform_id if rider_id is None else model.rider_id == rider_id

    reports = select(
        report_key.label("key"), *report_cols, *_zeros("verifications", "points")
    ).where(whose(Report), *window.of(Report.received_at))
    verifications = (
        select(
            verification_key.label("key"),
            *_zeros(*REPORT_COUNTERS),
            _int(func.count()).label("verifications"),
            *_zeros("points"),
        )
        .select_from(Verification)
        .where(whose(Verification), *window.of(Verification.created_at))
    )
    lines = select(
        line_key.label("key"),
        *_zeros(*REPORT_COUNTERS, "verifications"),
        _int(func.sum(PointsEntry.points)).label("points"),
    ).where(whose(PointsEntry), *window.of(PointsEntry.created_at))
    return [
        reports.group_by(report_key),
        verifications.group_by(verification_key),
        lines.group_by(line_key),
    ]


def _summed(parts: Any) -> Select[Any]:
    return select(parts.c.key, *(func.sum(parts.c[n]).label(n) for n in COUNTERS)).group_by(
        parts.c.key
    )


def _as_counts(row: Any) -> dict[str, int]:
    return {n: int(getattr(row, n) or 0) for n in COUNTERS}


# --- whole days, whole hours and the minutes around them ----------------------------------


@dataclass(frozen=True)
class Span:
    """The whole days or hours ``[first, last)`` of a window (numbered as by
    :func:`day_of` or :func:`hour_of`); None: open."""

    first: int | None
    last: int | None

    def of(self, column: Any) -> list[ColumnElement[bool]]:
        return _between(column, low=self.first, high=self.last)


def split(window: Window, unit: timedelta) -> tuple[Span | None, list[Window]]:
    """The whole ``unit``s (days or hours since 1970) of ``window``, None if it holds
    none, and the parts of it before the first and after the last."""

    def start(n: int) -> datetime:
        return EPOCH + n * unit

    first = last = None
    if window.start is not None:
        first = (window.start - EPOCH) // unit
        if start(first) < window.start:
            first += 1  # the unit it starts in is not whole
    if window.end is not None:
        last = (window.end - EPOCH) // unit
    if first is not None and last is not None and first >= last:
        return None, [window]
    rest = []
    if first is not None and window.start is not None and window.start < start(first):
        rest.append(Window(window.start, start(first)))
    if last is not None and window.end is not None and start(last) < window.end:
        rest.append(Window(start(last), window.end))
    return Span(first, last), rest


def split_days(window: Window) -> tuple[Span | None, list[Span], list[Window]]:
    """The whole days of ``window``; the whole hours of the rest; the minutes left."""
    days, rest = split(window, DAY)
    hours, minutes = [], []
    for part in rest:
        span, left = split(part, HOUR)
        hours += [span] if span is not None else []
        minutes += left
    return days, hours, minutes


def _windowed_riders(platform_id: uuid.UUID, window: Window) -> Any:
    """Each rider's numbers in ``window``: its whole days' rows, the rows of its hours in
    the days the window cuts, and the minutes at either end counted from the base
    tables."""
    days, hours, minutes = split_days(window)
    selects = [
        select_ for part in minutes for select_ in _part_selects(platform_id, part, key="rider")
    ]
    for model, column, spans in (
        (RiderActivity, RiderActivity.hour, hours),
        (RiderDailyActivity, RiderDailyActivity.day, [] if days is None else [days]),
    ):
        selects += [
            select(
                model.rider_id.label("key"), *(getattr(model, n).label(n) for n in COUNTERS)
            ).where(model.platform_id == platform_id, *span.of(column))
            for span in spans
        ]
    return _summed(union_all(*selects).subquery())


# --- the rider list ----------------------------------------------------------------------


def parse_sort(sort: str) -> tuple[str, bool]:
    descending = sort.startswith("-")
    name = sort.removeprefix("-")
    if name not in SORTABLE:
        raise ValidationFailed.of_field(
            "sort", f"one of {', '.join(SORTABLE)}, optionally with a leading -"
        )
    return name, descending


def rider_page(
    session: Session,
    *,
    platform: Platform,
    window: Window,
    sort: str,
    page: PageRequest,
) -> Page[dict[str, Any]]:
    """This platform's riders with their numbers, in ``sort`` order (ties by our id)."""
    limit, cursor = page.limit, page.cursor
    name, descending = parse_sort(sort)
    check_window(window)
    if window.all_time:
        source = (
            select(
                RiderTotals.rider_id.label("key"),
                *(getattr(RiderTotals, n).label(n) for n in COUNTERS),
            )
            .where(RiderTotals.platform_id == platform.id)
            .subquery()
        )
    else:
        one_large_aggregate(session)
        source = _windowed_riders(platform.id, window).subquery()
    after = None
    if cursor is not None:
        # [sort, window, the last row's value (a rider id, or a count), our rider id], each
        # read as its column holds it.
        value: Callable[[Any], Any] = cursor_text if name == "rider_id" else cursor_int
        after = read_cursor(cursor, [cursor_text, cursor_text, value, cursor_uuid])
        # A cursor carries the sort and window it was made for: another's would mean nothing.
        if after[:2] != [sort, window.key]:
            raise ValidationFailed.of_field(
                "cursor", "the cursor belongs to another sort or window"
            )

    def in_order(query: Select[Any], value: Any, key: Any) -> Select[Any]:
        # Ties by the totals' own key, so that the (platform, points, rider) index is the
        # order.
        return query.order_by(
            *((value.desc(), key.desc()) if descending else (value.asc(), key.asc()))
        )

    def page_of(query: Select[Any], value: Any, key: Any) -> Select[Any]:
        if after is not None:
            query = query.where(_after(value, key, after=after[2:], descending=descending))
        return in_order(query, value, key).limit(limit + 1)

    if name == "rider_id":
        query = page_of(
            select(Rider.id, Rider.external_id, Rider.display_name, source)
            .join(source, source.c.key == Rider.id)
            .where(Rider.platform_id == platform.id),
            Rider.external_id,
            source.c.key,
        )
    else:
        # The page first, then its riders: only the page's rows meet the riders table.
        ranked = page_of(select(source), source.c[name], source.c.key).subquery()
        query = in_order(
            select(Rider.id, Rider.external_id, Rider.display_name, ranked).join(
                ranked, ranked.c.key == Rider.id
            ),
            ranked.c[name],
            ranked.c.key,
        )
    rows = session.execute(query).all()
    items = [
        {"rider_id": r.external_id, "display_name": r.display_name, **_as_counts(r)}
        for r in rows[:limit]
    ]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(
            [
                sort,
                window.key,
                last.external_id if name == "rider_id" else int(getattr(last, name) or 0),
                str(last.id),
            ]
        )
    return Page(items, next_cursor)


def _after(value: Any, id_column: Any, *, after: list[Any], descending: bool) -> Any:
    last_value, last_id = after  # read and checked by rider_page
    if descending:
        return or_(value < last_value, and_(value == last_value, id_column < last_id))
    return or_(value > last_value, and_(value == last_value, id_column > last_id))


def rider_detail(
    session: Session, *, platform: Platform, rider: Rider, window: Window
) -> dict[str, Any]:
    """One rider's numbers, and the same by category."""
    check_window(window)
    if window.all_time:
        counts = totals(session, rider.id)
    else:
        row = session.execute(
            _summed(_parts(platform.id, window, key="rider", rider_id=rider.id))
        ).first()
        counts = _as_counts(row) if row else dict.fromkeys(COUNTERS, 0)
    codes = category_codes(session)
    by_category = {
        codes[row.key]: _as_counts(row)
        for row in session.execute(
            _summed(_parts(platform.id, window, key="category", rider_id=rider.id))
        )
    }
    return {
        "rider_id": rider.external_id,
        "display_name": rider.display_name,
        **counts,
        "by_category": by_category,
    }


# --- the summary -------------------------------------------------------------------------


class GroupBy(StrEnum):
    DAY = "day"
    CATEGORY = "category"
    STREET = "street"


def summary(
    session: Session, *, platform: Platform, window: Window, group_by: GroupBy, tz: ZoneInfo
) -> list[dict[str, Any]]:
    """This platform's riders' numbers in ``window``, one row per day (in ``tz``),
    category or street, in that order; empty groups are left out.

    The whole hours of the window are read from ``platform_activity``; the minutes at
    either end (and windows in a time zone whose days do not start on an hour) from the
    base tables, 15-minute slices at a time."""
    check_window(window)
    assert window.start is not None and window.end is not None
    if window.end - window.start > timedelta(days=MAX_SUMMARY_DAYS):
        raise ValidationFailed.of_field("from", f"a summary covers at most {MAX_SUMMARY_DAYS} days")
    groups: defaultdict[Any, Counter[str]] = defaultdict(Counter)

    def add(key: Any, row: Any) -> None:
        groups[key].update(_as_counts(row))

    hours, raw = split(window, HOUR)
    if group_by is GroupBy.DAY and not _days_start_on_hours(tz, window):
        hours, raw = None, [window]  # no whole hours: everything from the base tables
    if hours is not None:
        hourly = (
            PlatformActivity.hour
            if group_by is GroupBy.DAY
            else PlatformActivity.category_id
            if group_by is GroupBy.CATEGORY
            else PlatformActivity.street_key
        )
        for row in session.execute(
            select(
                hourly.label("key"),
                *(func.sum(getattr(PlatformActivity, n)).label(n) for n in COUNTERS),
            )
            .where(PlatformActivity.platform_id == platform.id, *hours.of(PlatformActivity.hour))
            .group_by(hourly)
        ):
            add(EPOCH + row.key * HOUR if group_by is GroupBy.DAY else row.key or None, row)
    for part in raw:
        key = "bucket" if group_by is GroupBy.DAY else group_by.value
        for row in session.execute(_summed(_parts(platform.id, part, key=key))):
            add(
                EPOCH + int(row.key) * timedelta(seconds=BUCKET_S)
                if group_by is GroupBy.DAY
                else row.key,
                row,
            )
    return _summary_rows(session, groups, group_by=group_by, tz=tz)


def _days_start_on_hours(tz: ZoneInfo, window: Window) -> bool:
    assert window.start is not None and window.end is not None
    day = window.start
    while day <= window.end + timedelta(days=1):
        offset = tz.utcoffset(day)
        if offset is None or offset.total_seconds() % 3600:
            return False
        day += timedelta(days=1)
    return True


def _summary_rows(
    session: Session, groups: dict[Any, Counter[str]], *, group_by: GroupBy, tz: ZoneInfo
) -> list[dict[str, Any]]:
    if group_by is GroupBy.DAY:
        days: defaultdict[str, Counter[str]] = defaultdict(Counter)
        for at, counts in groups.items():
            days[at.astimezone(tz).date().isoformat()].update(counts)
        return [{"day": day, **_full(days[day])} for day in sorted(days)]
    if group_by is GroupBy.CATEGORY:
        codes = category_codes(session)
        return sorted(
            ({"category": codes[key], **_full(c)} for key, c in groups.items()),
            key=lambda r: r["category"],
        )
    streets = [key for key in groups if key is not None]
    names = (
        {
            a.id: (a.code, a.name)
            for a in session.execute(
                select(Area.id, Area.code, Area.name).where(Area.id.in_(streets))
            )
        }
        if streets
        else {}
    )
    return sorted(
        (
            {
                "street": names[key][0] if key else None,
                "street_name": names[key][1] if key else None,
                **_full(c),
            }
            for key, c in groups.items()
        ),
        key=lambda r: r["street"] or "",
    )


def _full(counts: Counter[str]) -> dict[str, int]:
    return {name: counts[name] for name in COUNTERS}


def summary_window(asked: Window, now: datetime) -> Window:
    """The summary's window: as asked, else the last 30 days up to now."""
    end = asked.end or now
    return Window(asked.start or end - timedelta(days=30), end)

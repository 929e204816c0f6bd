"""The working calendar's years: loaded for the SLA clock, seeded from the chinesecalendar
package, edited by admins (GET/PUT /v1/admin/calendar/{year})."""

import logging
from dataclasses import dataclass
from datetime import date, datetime, time
from importlib.metadata import version
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_writes
from app.errors import NotFound, ValidationFailed
from app.models import WorkingCalendarYear
from app.tickets.working_time import (
    DEFAULT_END,
    DEFAULT_START,
    DEFAULT_TZ,
    WorkingCalendar,
    WorkingYear,
    missing_years,
    seed_year,
)

logger = logging.getLogger("sentinel.calendar")
FIRST_YEAR, LAST_YEAR = 2000, 2100


def _hhmm(value: time) -> str:
    return value.strftime("%H:%M")


def as_year(row: WorkingCalendarYear) -> WorkingYear:
    return WorkingYear(
        year=row.year,
        holidays=frozenset(date.fromisoformat(d) for d in row.holidays),
        workdays=frozenset(date.fromisoformat(d) for d in row.workdays),
        start=time.fromisoformat(row.office_start),
        end=time.fromisoformat(row.office_end),
        tz=row.tz,
    )


def load_calendar(session: Session) -> WorkingCalendar:
    return WorkingCalendar(
        {row.year: as_year(row) for row in session.scalars(select(WorkingCalendarYear))}
    )


def get_year(session: Session, year: int) -> WorkingCalendarYear:
    row = session.get(WorkingCalendarYear, year)
    if row is None:
        raise NotFound(f"no working calendar for {year}: PUT one")
    return row


@dataclass(frozen=True)
class YearInput:
    holidays: list[date]
    workdays: list[date]
    start: time = DEFAULT_START
    end: time = DEFAULT_END
    tz: str = DEFAULT_TZ


def set_year(session: Session, year: int, *, data: YearInput, source: str) -> WorkingCalendarYear:
    """Replace the year's calendar; every rule of a year checked here, in one place."""
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise ValidationFailed.of_field("year", f"a year from {FIRST_YEAR} to {LAST_YEAR}")
    for name, days in (("holidays", data.holidays), ("workdays", data.workdays)):
        if stray := sorted({d.isoformat() for d in days if d.year != year}):
            raise ValidationFailed.of_field(name, f"dates outside {year}: {', '.join(stray)}")
    if both := sorted(set(data.holidays) & set(data.workdays)):
        raise ValidationFailed.of_field(
            "workdays",
            f"both a holiday and a working day: {', '.join(d.isoformat() for d in both)}",
        )
    if data.end <= data.start:
        raise ValidationFailed.of_field("office_hours", "the office closes after it opens")
    try:
        ZoneInfo(data.tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed.of_field("tz", f"{data.tz} is not an IANA time zone") from None
    begin_writes(session)
    row = session.get(WorkingCalendarYear, year) or WorkingCalendarYear(year=year)
    row.holidays = sorted(d.isoformat() for d in set(data.holidays))
    row.workdays = sorted(d.isoformat() for d in set(data.workdays))
    row.office_start, row.office_end = _hhmm(data.start), _hhmm(data.end)
    row.tz = data.tz
    row.source = source
    session.add(row)
    session.flush()
    return row


def seed_calendar(session: Session, today: date) -> list[int]:
    """Add this year and the next from the chinesecalendar package where the calendar
    lacks them and the package knows them; returns the years added."""
    held = set(session.scalars(select(WorkingCalendarYear.year)))
    added = []
    for year in (today.year, today.year + 1):
        if year in held or (known := seed_year(year)) is None:
            continue
        set_year(
            session,
            year,
            data=YearInput(sorted(known.holidays), sorted(known.workdays)),
            source=f"chinesecalendar {version('chinesecalendar')}",
        )
        added.append(year)
    return added


def calendar_warnings(session: Session, now: datetime) -> list[str]:
    """What the operator must do about the calendar, as of ``now``: a year it should hold
    and does not (its holidays would count as working days)."""
    today = now.astimezone(ZoneInfo(DEFAULT_TZ)).date()
    return [
        f"the working calendar has no {year}: PUT /v1/admin/calendar/{year} once the State "
        "Council has published its holidays (or upgrade chinesecalendar); until then it "
        "counts Monday to Friday as working days"
        for year in missing_years(load_calendar(session), today)
    ]

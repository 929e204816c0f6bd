"""Working time on China's calendar: the clock of SLAs counted in working hours.

12345 hotlines and grid systems set their time limits in working days and working hours
(first contact within one working day, handling within five), on a calendar of public
holidays and of weekends made working days to bridge them (调休), which the State Council
announces each year. A day is a working day if the year's calendar names it one
(``workdays``), or if it is Monday to Friday and not a holiday; on a working day the clock
runs in office hours (09:00–17:30 Asia/Shanghai unless the year says otherwise).

A year missing from the calendar is counted Monday to Friday in the default office hours,
and said so in ``/readyz`` and the log (:func:`missing_years`), since its holidays would
then count as working days.
"""

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

logger = logging.getLogger("sentinel.calendar")

DEFAULT_TZ = "Asia/Shanghai"
DEFAULT_START, DEFAULT_END = time(9, 0), time(17, 30)
# No SLA is longer than this: the walk over days stops here whatever the calendar says.
MAX_DAYS = 3 * 366


class SlaClock(StrEnum):
    HOURS = "hours"  # wall-clock hours, day and night
    WORKING_HOURS = "working_hours"  # office hours of working days


@dataclass(frozen=True)
class WorkingYear:
    """One year of the calendar, as an admin (or the seed) set it."""

    year: int
    holidays: frozenset[date] = frozenset()
    workdays: frozenset[date] = frozenset()
    start: time = DEFAULT_START
    end: time = DEFAULT_END
    tz: str = DEFAULT_TZ

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays


@dataclass(frozen=True)
class WorkingCalendar:
    """Every year held, and the rule for years not held."""

    years: Mapping[int, WorkingYear] = field(default_factory=dict)

    def year(self, year: int) -> WorkingYear:
        return self.years.get(year) or WorkingYear(year)

    def _windows(self, since: datetime) -> Iterable[tuple[datetime, datetime]]:
        """The office-hours windows from ``since`` on, in order, as aware instants."""
        zone = ZoneInfo(self.year(since.year).tz)
        day = since.astimezone(zone).date()
        for _ in range(MAX_DAYS):
            year = self.year(day.year)
            if year.is_working_day(day):
                zone = ZoneInfo(year.tz)
                opens = datetime.combine(day, year.start, zone)
                closes = datetime.combine(day, year.end, zone)
                if closes > since:
                    yield max(opens, since), closes
            day += timedelta(days=1)

    def add(self, since: datetime, hours: float) -> datetime:
        """The instant ``hours`` working hours after ``since``. A deadline that falls on
        the close of a day is that close (not the next morning's opening)."""
        left = timedelta(hours=hours)
        if left <= timedelta(0):
            return since
        for opens, closes in self._windows(since):
            if closes - opens >= left:
                return opens + left
            left -= closes - opens
        return since + timedelta(days=MAX_DAYS)

    def opening(self, at: datetime) -> datetime:
        """``at`` if it falls in office hours, else when the office next opens."""
        for opens, _closes in self._windows(at):
            return opens
        return at

    def between(self, start: datetime, end: datetime) -> float:
        """Working hours from ``start`` to ``end`` (0 if ``end`` is not later)."""
        if end <= start:
            return 0.0
        total = timedelta(0)
        for opens, closes in self._windows(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total.total_seconds() / 3600


def due(
    clock: SlaClock | str, calendar: WorkingCalendar, *, since: datetime, hours: float
) -> datetime:
    """When something started at ``since`` with ``hours`` on ``clock`` is due: the one rule
    for respond-by and resolve-by times."""
    if clock == SlaClock.WORKING_HOURS:
        return calendar.add(since, hours)
    return since + timedelta(hours=hours)


def elapsed(
    clock: SlaClock | str, calendar: WorkingCalendar, *, start: datetime, end: datetime
) -> float:
    """Hours on ``clock`` from ``start`` to ``end``."""
    if clock == SlaClock.WORKING_HOURS:
        return calendar.between(start, end)
    return max((end - start).total_seconds() / 3600, 0.0)


def seed_year(year: int) -> WorkingYear | None:
    """The year as the chinesecalendar package knows it (it ships each year's holidays
    and adjusted working days once the State Council has announced them), or None."""
    import chinese_calendar
    from chinese_calendar import constants

    try:
        chinese_calendar.is_workday(date(year, 6, 1))
    except NotImplementedError:
        return None
    return WorkingYear(
        year=year,
        holidays=frozenset(d for d in constants.holidays if d.year == year),
        workdays=frozenset(d for d in constants.workdays if d.year == year),
    )


def missing_years(calendar: WorkingCalendar, today: date) -> list[int]:
    """The years the calendar should hold by ``today`` and does not: this year, and from
    1 December the next."""
    wanted = [today.year] + ([today.year + 1] if (today.month, today.day) >= (12, 1) else [])
    return [year for year in wanted if year not in calendar.years]

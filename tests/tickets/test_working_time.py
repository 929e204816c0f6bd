"""The working clock at the calendar's edges (app.tickets.working_time), on China's 2026
calendar as chinesecalendar ships it: the eve of a holiday, an adjusted working Saturday,
a report after office hours, and a year boundary with and without the next year's
calendar."""

import random
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.tickets.working_time import (
    SlaClock,
    WorkingCalendar,
    WorkingYear,
    due,
    elapsed,
    missing_years,
    seed_year,
)

CST = ZoneInfo("Asia/Shanghai")


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CST)


@pytest.fixture(scope="module")
def calendar() -> WorkingCalendar:
    year = seed_year(2026)
    assert year is not None
    return WorkingCalendar({2026: year})


# 2026: National Day 1–7 October; Saturday 10 October is worked (调休).
EDGES = [
    # the eve of National Day: 1.5 h left on 30 September, 6.5 h on Thursday 8 October
    (at(2026, 9, 30, 16, 0), 8, at(2026, 10, 8, 15, 30)),
    # a Friday evening before the worked Saturday: on to Saturday morning
    (at(2026, 10, 9, 17, 0), 2, at(2026, 10, 10, 10, 30)),
    # after office hours on a Tuesday: the next morning
    (at(2026, 11, 17, 20, 0), 1, at(2026, 11, 18, 10, 0)),
    # before opening: from the opening
    (at(2026, 11, 17, 6, 0), 3, at(2026, 11, 17, 12, 0)),
    # a deadline at closing time is that closing, not the next opening
    (at(2026, 11, 17, 9, 0), 8.5, at(2026, 11, 17, 17, 30)),
    # a weekend report: Monday
    (at(2026, 11, 21, 11, 0), 2, at(2026, 11, 23, 11, 0)),
    # five working days from a Monday morning: the next Monday morning
    (at(2026, 11, 16, 9, 0), 5 * 8.5, at(2026, 11, 20, 17, 30)),
]


@pytest.mark.parametrize(("since", "hours", "expected"), EDGES)
def test_due_times_at_the_calendars_edges(
    calendar: WorkingCalendar, since: datetime, hours: float, expected: datetime
) -> None:
    assert due(SlaClock.WORKING_HOURS, calendar, since=since, hours=hours) == expected
    assert elapsed(SlaClock.WORKING_HOURS, calendar, start=since, end=expected) == pytest.approx(
        hours
    )
    # Wall-clock hours are what they always were.
    assert due(SlaClock.HOURS, calendar, since=since, hours=hours) == since + timedelta(hours=hours)


def test_the_mid_autumn_holiday_and_its_worked_sunday(calendar: WorkingCalendar) -> None:
    # 25–27 September are off; Sunday 20 September is worked.
    assert due("working_hours", calendar, since=at(2026, 9, 24, 17, 0), hours=1) == at(
        2026, 9, 28, 9, 30
    )
    assert due("working_hours", calendar, since=at(2026, 9, 19, 12, 0), hours=1) == at(
        2026, 9, 20, 10, 0
    )


def test_a_year_boundary_with_and_without_the_next_years_calendar(
    calendar: WorkingCalendar,
) -> None:
    eve = at(2026, 12, 31, 17, 0)
    # Without 2027: Friday 1 January counts as a working day (and the operator is told).
    assert due("working_hours", calendar, since=eve, hours=2) == at(2027, 1, 1, 10, 30)
    assert missing_years(calendar, date(2026, 12, 1)) == [2027]
    assert missing_years(calendar, date(2026, 11, 30)) == []
    # With 2027's New Year holiday (1–3 January), on to Monday 4 January.
    new_year = frozenset({date(2027, 1, 1), date(2027, 1, 2), date(2027, 1, 3)})
    both = WorkingCalendar({**calendar.years, 2027: WorkingYear(2027, holidays=new_year)})
    assert due("working_hours", both, since=eve, hours=2) == at(2027, 1, 4, 10, 30)
    assert elapsed("working_hours", both, start=eve, end=at(2027, 1, 4, 10, 30)) == pytest.approx(2)
    assert missing_years(both, date(2026, 12, 1)) == []


def test_a_years_own_office_hours() -> None:
    summer = WorkingYear(2026, start=time(8, 30), end=time(12, 0))
    short = WorkingCalendar({2026: summer})
    assert due("working_hours", short, since=at(2026, 11, 17, 11, 0), hours=2) == at(
        2026, 11, 18, 9, 30
    )


def test_elapsed_undoes_due_for_any_start_and_length(calendar: WorkingCalendar) -> None:
    rng = random.Random(7)
    for _ in range(300):
        since = at(2026, 1, 1) + timedelta(minutes=rng.randrange(0, 364 * 24 * 60))
        hours = rng.choice([0.5, 1, 4, 8, 8.5, 24, 40, 120])
        end = due("working_hours", calendar, since=since, hours=hours)
        assert end >= since
        assert elapsed("working_hours", calendar, start=since, end=end) == pytest.approx(hours)
        assert calendar.year(end.year).is_working_day(end.astimezone(CST).date())


def test_the_seed_is_chinas_calendar_and_knows_what_it_does_not_know() -> None:
    year = seed_year(2026)
    assert year is not None
    assert date(2026, 10, 1) in year.holidays and date(2026, 10, 10) in year.workdays
    assert not year.is_working_day(date(2026, 10, 5))
    assert year.is_working_day(date(2026, 10, 10))  # a Saturday, worked
    assert seed_year(2099) is None

"""KPIs: each ticket's working hours to its first acceptance and to its resolution,
counted once when they happen, and how often it was reopened; filled in here for tickets
before, on the working calendar as it stands and from their events.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01
"""

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime, time

import sqlalchemy as sa
from alembic import op

from app.tickets.working_time import WorkingCalendar, WorkingYear, seed_year

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _calendar(connection: sa.Connection) -> WorkingCalendar:
    rows = connection.execute(
        sa.text(
            "SELECT year, holidays, workdays, office_start, office_end, tz FROM working_calendars"
        )
    )
    years = {}
    for year, holidays, workdays, start, end, tz in rows:
        holidays, workdays = (
            json.loads(v) if isinstance(v, str) else v for v in (holidays, workdays)
        )
        years[year] = WorkingYear(
            year,
            frozenset(date.fromisoformat(d) for d in holidays),
            frozenset(date.fromisoformat(d) for d in workdays),
            time.fromisoformat(start),
            time.fromisoformat(end),
            tz,
        )
    return WorkingCalendar(years)


def _dates(value: str | list[str]) -> frozenset[date]:
    """A JSON list of ISO dates, as the driver gives it (text on SQLite)."""
    return frozenset(
        date.fromisoformat(d) for d in (json.loads(value) if isinstance(value, str) else value)
    )


def _with_years(calendar: WorkingCalendar, years: set[int]) -> WorkingCalendar:
    """The calendar with the years the tickets span that it lacks, from chinesecalendar
    (so that their holidays do not count as working time); the calendar table itself is
    filled by ``sentinel db upgrade`` and the worker."""
    missing = {
        year: known
        for year in years | {y + 1 for y in years}
        if year not in calendar.years and (known := seed_year(year)) is not None
    }
    return WorkingCalendar({**calendar.years, **missing}) if missing else calendar


def _hours(
    calendar: WorkingCalendar, start: datetime | str, end: datetime | str | None
) -> float | None:
    if end is None:
        return None
    return round(calendar.between(_aware(start), _aware(end)), 4)


def _aware(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def upgrade() -> None:
    op.add_column("tickets", sa.Column("response_working_h", sa.Float()))
    op.add_column("tickets", sa.Column("resolution_working_h", sa.Float()))
    op.add_column(
        "tickets", sa.Column("reopen_count", sa.Integer(), nullable=False, server_default="0")
    )
    op.execute(
        "UPDATE tickets SET reopen_count = (SELECT count(*) FROM ticket_events e "
        "WHERE e.ticket_id = tickets.id AND e.to_status = 'accepted' "
        "AND e.from_status IN ('resolved', 'closed'))"
    )
    connection = op.get_bind()
    calendar = _calendar(connection)
    update = sa.text(
        "UPDATE tickets SET response_working_h = :a, resolution_working_h = :r WHERE id = :id"
    )
    select = sa.text(
        "SELECT id, created_at, accepted_at, resolved_at FROM tickets "
        "WHERE (accepted_at IS NOT NULL OR resolved_at IS NOT NULL) AND id > :after "
        "ORDER BY id LIMIT 1000"
    )
    after: object = ""
    if connection.dialect.name == "postgresql":
        after = "00000000-0000-0000-0000-000000000000"
    while batch := connection.execute(select, {"after": after}).all():
        calendar = _with_years(calendar, {_aware(row[1]).year for row in batch})
        connection.execute(
            update,
            [
                {
                    "id": ticket_id,
                    "a": _hours(calendar, created, accepted),
                    "r": _hours(calendar, created, resolved),
                }
                for ticket_id, created, accepted, resolved in batch
            ],
        )
        after = batch[-1][0]


def downgrade() -> None:
    op.drop_column("tickets", "reopen_count")
    op.drop_column("tickets", "resolution_working_h")
    op.drop_column("tickets", "response_working_h")

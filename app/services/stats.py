"""The street office's numbers: what came in, what is open or late, how fast it moved.

Everything is counted by the database in a few passes over the window's tickets (found
through the scope's ``created_at`` index); only a handful of grouped rows come back.
"""

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import SQLCoreOperations

from app.db import epoch_bucket, median_hours
from app.models import OPEN_STATUSES, Area, Staff, Ticket, TicketStatus
from app.services.categories import category_codes
from app.services.scope import ticket_scope_filter

RESOLVED = (TicketStatus.RESOLVED, TicketStatus.CLOSED)
HOUR_S = 3600


def office_stats(
    session: Session,
    *,
    staff: Staff,
    created_from: datetime | None,
    created_to: datetime | None,
    now: datetime,
    street_id: int | None = None,
) -> dict[str, Any]:
    """The numbers of ``staff``'s tickets created in [``created_from``, ``created_to``),
    of one street of its scope if ``street_id`` says so."""
    window = _window(staff, created_from, created_to)
    if street_id is not None:
        window.append(Ticket.street_id == street_id)

    resolved = Ticket.status.in_(RESOLVED)
    by_status: Counter[str] = Counter()
    by_category: Counter[int] = Counter()
    by_community: Counter[int | None] = Counter()
    late = resolved_count = resolved_in_time = 0
    for status, category_id, community_id, n, n_late, n_resolved, n_in_time in session.execute(
        select(
            Ticket.status,
            Ticket.category_id,
            Ticket.community_id,
            func.count(),
            _count(Ticket.is_overdue(now)),
            _count(resolved),
            _count(and_(resolved, Ticket.resolved_at <= Ticket.resolve_by)),
        )
        .where(*window)
        .group_by(Ticket.status, Ticket.category_id, Ticket.community_id)
    ):
        by_status[str(status)] += n
        by_category[category_id] += n
        by_community[community_id] += n
        late += n_late
        resolved_count += n_resolved
        resolved_in_time += n_in_time

    codes = category_codes(session)
    community_codes = _codes(session, Area.id, Area.code, by_community)
    return {
        "total": by_status.total(),
        "by_status": dict(by_status),
        "by_category": {codes[i]: n for i, n in by_category.items()},
        "by_community": {community_codes.get(i, "unrouted"): n for i, n in by_community.items()},
        "open": sum(by_status[s] for s in OPEN_STATUSES),
        "overdue": late,
        "median_hours_to_accept": median_hours(
            session,
            Ticket.created_at,
            Ticket.accepted_at,
            [*window, Ticket.accepted_at.is_not(None)],
        ),
        "median_hours_to_resolve": median_hours(
            session,
            Ticket.created_at,
            Ticket.resolved_at,
            [*window, resolved, Ticket.resolved_at.is_not(None)],
        ),
        "resolved_within_sla": round(resolved_in_time / resolved_count, 3)
        if resolved_count
        else None,
    }


def _window(
    staff: Staff, created_from: datetime | None, created_to: datetime | None
) -> list[ColumnElement[bool]]:
    window = [ticket_scope_filter(staff)]
    if created_from is not None:
        window.append(Ticket.created_at >= created_from)
    if created_to is not None:
        window.append(Ticket.created_at < created_to)
    return window


def daily_trend(
    session: Session,
    *,
    staff: Staff,
    created_from: datetime,
    created_to: datetime,
    tz: ZoneInfo,
) -> list[tuple[date, int, int]]:
    """(day in ``tz``, tickets opened, tickets of the window resolved) for every day of
    the window: counted by the hour in the database, the hours added up into days here
    (a day in any time zone is whole hours of UTC)."""
    window = _window(staff, created_from, created_to)
    opened: Counter[date] = Counter()
    resolved: Counter[date] = Counter()

    def day_of(hour: int) -> date:
        return datetime.fromtimestamp(hour * HOUR_S, tz).date()

    for counter, column in ((opened, Ticket.created_at), (resolved, Ticket.resolved_at)):
        hour = epoch_bucket(column, HOUR_S)
        for n_hour, n in session.execute(
            select(hour, func.count()).where(*window, column.is_not(None)).group_by(hour)
        ):
            counter[day_of(n_hour)] += n
    first, last = (
        created_from.astimezone(tz).date(),
        (created_to - timedelta(microseconds=1)).astimezone(tz).date(),
    )
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [(day, opened[day], resolved[day]) for day in days]


def _count(condition: ColumnElement[bool] | SQLCoreOperations[bool]) -> ColumnElement[int]:
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _codes(session: Session, key: Any, code: Any, ids: Counter[Any]) -> dict[Any, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {i: c for i, c in session.execute(select(key, code).where(key.in_(wanted)))}

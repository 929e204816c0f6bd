"""The street office's numbers: what came in, what is open or late, how fast it moved.

Everything is counted by the database in a few passes over the window's tickets (found
through the scope's ``created_at`` index); only a handful of grouped rows come back.
"""

from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import SQLCoreOperations

from app.areas import streets_of
from app.categories import category_codes
from app.db import Medians, epoch_bucket, hours_between, medians, medians_by
from app.errors import Forbidden, ValidationFailed
from app.models import (
    CLOCKED_STATUSES,
    OPEN_STATUSES,
    Area,
    Staff,
    StaffRole,
    Ticket,
    TicketStatus,
)
from app.staff import ticket_scope_filter

HOUR_S = 3600
# Signed for (签收) in time: within this long of the ticket's opening (of the dispatch,
# for a unit).
ACKNOWLEDGE_WITHIN = timedelta(hours=1)


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
    window = _window(staff, created_from, created_to=created_to)
    if street_id is not None:
        window.append(Ticket.street_id == street_id)

    resolved = Ticket.is_resolved
    by_status: Counter[str] = Counter()
    by_category: Counter[int] = Counter()
    by_community: Counter[int | None] = Counter()
    for status, category_id, community_id, n in session.execute(
        select(Ticket.status, Ticket.category_id, Ticket.community_id, func.count())
        .where(*window)
        .group_by(Ticket.status, Ticket.category_id, Ticket.community_id)
    ):
        by_status[str(status)] += n
        by_category[category_id] += n
        by_community[community_id] += n
    # The KPIs' counts in one row: added up by the database, not over the thousands of
    # groups above.
    conditions = kpi_conditions(now, session=session)
    kpi: Counter[str] = Counter(
        dict(
            zip(
                conditions,
                session.execute(
                    select(*(_count(condition) for condition in conditions.values())).where(*window)
                ).one(),
                strict=True,
            )
        )
    )

    codes = category_codes(session)
    community_codes = _codes(session, Area.id, code=Area.code, ids=by_community)
    return {
        "total": by_status.total(),
        "by_status": dict(by_status),
        "by_category": {codes[i]: n for i, n in by_category.items()},
        "by_community": {community_codes.get(i, "unrouted"): n for i, n in by_community.items()},
        "open": sum(by_status[s] for s in OPEN_STATUSES),  # shelved ones included
        "overdue": kpi["overdue"],  # never a shelved one
        "shelved_count": kpi["shelved"],
        "escalated_count": kpi["escalated"],
        "extended_count": kpi["extended"],
        "resolved_within_sla": _share(kpi["resolved_in_time"], kpi["resolved"]),
        "on_time_without_extension_rate": _share(kpi["resolved_in_original_time"], kpi["resolved"]),
        **kpis(kpi),
        **medians(
            session,
            {
                "median_hours_to_accept": (
                    hours_between(session, start=Ticket.created_at, end=Ticket.accepted_at),
                    [],
                ),
                "median_hours_to_resolve": (
                    hours_between(session, start=Ticket.created_at, end=Ticket.resolved_at),
                    [resolved],
                ),
                **_working_medians(session),
            },
            where=window,
        ),
    }


STREET_FIGURES = (
    "total",
    "open",
    "overdue",
    "closure_rate",
    "on_time_response_rate",
    "on_time_resolution_rate",
    "reopen_rate",
    "median_working_hours_to_respond",
    "median_working_hours_to_resolve",
    "median_minutes_to_acknowledge",
    "acknowledged_within_1h_rate",
)


def street_table(
    session: Session,
    *,
    staff: Staff,
    created_from: datetime | None,
    created_to: datetime | None,
    now: datetime,
    sort: str = "-total",
) -> list[dict[str, Any]]:
    """The district's streets, a row each with their figures, ranked by ``sort`` (a
    figure, ``-`` first for the highest first; ties and streets without the figure last,
    by code)."""
    if staff.role != StaffRole.DISTRICT:
        raise Forbidden("the table of streets is the district's")
    name = sort.removeprefix("-")
    if name not in STREET_FIGURES:
        raise ValidationFailed.of_field(
            "sort", f"one of {', '.join(STREET_FIGURES)}, '-' first for descending"
        )
    window = _window(staff, created_from, created_to=created_to)
    assert staff.area_id is not None
    streets = streets_of(session, staff.area_id)
    counted: dict[int, Counter[str]] = {street.id: Counter() for street in streets}
    conditions = kpi_conditions(now, session=session)
    for street_id, n, *figures in session.execute(
        select(
            Ticket.street_id,
            func.count(),
            *(_count(condition) for condition in conditions.values()),
        )
        .where(*window, Ticket.street_id.is_not(None))
        .group_by(Ticket.street_id)
    ):
        if street_id in counted:
            counted[street_id].update({"total": n, **dict(zip(conditions, figures, strict=True))})
    paces = medians_by(
        session, _working_medians(session), key=Ticket.street_id, keys=list(counted), where=window
    )
    rows: list[dict[str, Any]] = []
    for street in streets:
        counts: Counter[str] = counted[street.id]
        rows.append(
            {
                "street": street.code,
                "street_name": street.name,
                "total": counts["total"],
                "open": counts["open"],
                "overdue": counts["overdue"],
                **kpis(counts),
                **paces[street.id],
            }
        )
    descending = sort.startswith("-")
    rows.sort(key=lambda r: r["street"])
    rows.sort(key=lambda r: (r[name] is None, -(r[name] or 0) if descending else (r[name] or 0)))
    return rows


def _working_medians(session: Session) -> Medians:
    """The medians of the office's pace, in working hours and minutes."""
    return {
        "median_working_hours_to_respond": (Ticket.response_working_h, []),
        "median_working_hours_to_resolve": (Ticket.resolution_working_h, [Ticket.is_resolved]),
        "median_minutes_to_acknowledge": (minutes_to_acknowledge(session), []),
    }


def kpi_conditions(
    now: datetime, *, session: Session
) -> dict[str, ColumnElement[bool] | SQLCoreOperations[bool]]:
    """What each KPI counts, ticket by ticket (docs/api.md, "KPIs: the rules as built");
    ``session`` says which database the SQL is for."""
    resolved = Ticket.is_resolved
    # On the clock: open and not shelved (a shelved ticket is never late).
    clocked = Ticket.status.in_(CLOCKED_STATUSES)
    return {
        "open": Ticket.is_open,
        "overdue": Ticket.is_overdue(now),
        "shelved": Ticket.status == TicketStatus.SHELVED,
        # Escalated (提级督办) and not yet taken back by the district.
        "escalated": Ticket.escalated,
        "resolved": resolved,
        # By the deadline it has, moved by an approved extension if there was one.
        "resolved_in_time": and_(resolved, Ticket.resolved_at <= Ticket.resolve_by),
        # Extended: the district approved more time at least once.
        "extended": Ticket.original_resolve_by.is_not(None),
        # By the deadline it had before any extension.
        "resolved_in_original_time": and_(
            resolved,
            Ticket.resolved_at <= func.coalesce(Ticket.original_resolve_by, Ticket.resolve_by),
        ),
        # Closure: of the tickets that are the office's to fix (not rejected or merged).
        "to_close": Ticket.status.not_in((TicketStatus.REJECTED, TicketStatus.DUPLICATE)),
        # Response: every ticket answered, or due to be and not yet.
        "answer_due": or_(
            Ticket.accepted_at.is_not(None),
            and_(Ticket.status == TicketStatus.NEW, Ticket.respond_by < now),
        ),
        "answered_in_time": Ticket.accepted_at <= Ticket.respond_by,
        # Resolution: every ticket resolved, or on the clock past its resolve-by time.
        "fix_due": or_(resolved, and_(clocked, Ticket.resolve_by < now)),
        # Rework: of the tickets ever resolved, those reopened at least once.
        "ever_resolved": or_(resolved, Ticket.reopen_count > 0),
        "reopened": Ticket.reopen_count > 0,
        # Acknowledgement (签收): every ticket the office signed for, or left unsigned for
        # longer than the hour it had (younger ones may still be in time).
        "acknowledgement_due": or_(
            Ticket.office_acknowledged_at.is_not(None),
            Ticket.created_at < now - ACKNOWLEDGE_WITHIN,
        ),
        "acknowledged_in_time": within(
            session, start=Ticket.created_at, end=Ticket.office_acknowledged_at
        ),
    }


def minutes_to_acknowledge(session: Session) -> ColumnElement[Any]:
    """Minutes from a ticket's opening to the office's first acknowledgement, as SQL."""
    return hours_between(session, start=Ticket.created_at, end=Ticket.office_acknowledged_at) * 60


def within(
    session: Session,
    *,
    start: InstrumentedAttribute[Any],
    end: InstrumentedAttribute[Any],
    limit: timedelta = ACKNOWLEDGE_WITHIN,
) -> ColumnElement[bool]:
    """``end`` no later than ``limit`` after ``start``, as SQL; to the millisecond, which
    absorbs the microseconds SQLite's day fractions are off by."""
    ms = round(limit.total_seconds() * 1000)
    return func.round(hours_between(session, start=start, end=end) * (HOUR_S * 1000)) <= ms


def kpis(counts: Counter[str]) -> dict[str, float | None]:
    """The rates from the counts of :func:`kpi_conditions` (None where nothing counts)."""
    return {
        "closure_rate": _share(counts["resolved"], counts["to_close"]),
        "on_time_response_rate": _share(counts["answered_in_time"], counts["answer_due"]),
        "on_time_resolution_rate": _share(counts["resolved_in_time"], counts["fix_due"]),
        "reopen_rate": _share(counts["reopened"], counts["ever_resolved"]),
        "acknowledged_within_1h_rate": _share(
            counts["acknowledged_in_time"], counts["acknowledgement_due"]
        ),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


def _window(
    staff: Staff, created_from: datetime | None, *, created_to: datetime | None
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
    window = _window(staff, created_from, created_to=created_to)
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


def _codes(session: Session, key: Any, *, code: Any, ids: Counter[Any]) -> dict[Any, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    return {i: c for i, c in session.execute(select(key, code).where(key.in_(wanted)))}

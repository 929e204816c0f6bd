"""The office's queue: tickets in scope, filtered, sorted, keyset-paginated.

A page is found by the sort key of the last row it ended on, never by an offset, so
pages stay stable while reports keep arriving.
"""

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.db import within_bbox
from app.errors import NotFound, ValidationFailed
from app.models import Category, Priority, Report, Staff, Ticket, TicketStatus, Unit
from app.pagination import (
    Page,
    PageRequest,
    cursor_int,
    cursor_time,
    cursor_uuid,
    encode_cursor,
    read_cursor,
)
from app.staff import area_in_scope, ticket_scope_filter
from app.text import like_pattern


class QueueSort(StrEnum):
    NEWEST = "-created_at"
    OLDEST = "created_at"
    PRIORITY = "priority"
    DUE = "due_at"


@dataclass(frozen=True)
class QueueFilter:
    statuses: Sequence[TicketStatus] = ()
    category: str | None = None
    street: str | None = None
    community: str | None = None
    overdue: bool | None = None
    bbox: tuple[float, float, float, float] | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    unrouted: bool | None = None  # True: only tickets in no street (the district's queue)
    text: str | None = None  # in the ref or in a report's description
    unit: str | None = None  # dispatched to (or last held by) this unit
    escalated: bool | None = None
    dissatisfied: bool | None = None  # a reporter rated the fix 2 or lower
    # Waiting on the office's word: a unit's work to check, or an extension to decide.
    needs_review: bool | None = None


def _area_id(session: Session, staff: Staff, *, code: str, field: str) -> int:
    """An area of the caller's scope; one outside it is as unknown as a missing one."""
    try:
        return area_in_scope(session, staff, code=code).id
    except NotFound:
        raise ValidationFailed.of_field(field, f"no area {code} in your scope") from None


def filtered(
    session: Session, *, staff: Staff, where: QueueFilter, now: datetime
) -> Select[Ticket]:
    query = select(Ticket).where(ticket_scope_filter(staff))
    if where.statuses:
        query = query.where(Ticket.status.in_(where.statuses))
    if where.category is not None:
        category_id = session.scalar(select(Category.id).where(Category.code == where.category))
        if category_id is None:
            raise ValidationFailed.of_field("category", f"no category {where.category}")
        query = query.where(Ticket.category_id == category_id)
    if where.street is not None:
        query = query.where(
            Ticket.street_id == _area_id(session, staff, code=where.street, field="street")
        )
    if where.community is not None:
        query = query.where(
            Ticket.community_id == _area_id(session, staff, code=where.community, field="community")
        )
    if where.overdue is not None:
        late = Ticket.is_overdue(now)
        query = query.where(late if where.overdue else ~late)
    if where.bbox is not None:
        query = query.where(within_bbox(Ticket.location, *where.bbox))
    if where.created_from is not None:
        query = query.where(Ticket.created_at >= where.created_from)
    if where.created_to is not None:
        query = query.where(Ticket.created_at < where.created_to)
    if where.unrouted is not None:
        query = query.where(
            Ticket.street_id.is_(None) if where.unrouted else Ticket.street_id.isnot(None)
        )
    if where.unit is not None:
        unit_id = session.scalar(select(Unit.id).where(Unit.code == where.unit))
        if unit_id is None:
            raise ValidationFailed.of_field("unit", f"no unit {where.unit}")
        query = query.where(Ticket.unit_id == unit_id)
    if where.escalated is not None:
        query = query.where(Ticket.escalated.is_(where.escalated))
    if where.dissatisfied is not None:
        query = query.where(Ticket.dissatisfied.is_(where.dissatisfied))
    if where.needs_review is not None:
        waiting = or_(
            Ticket.status == TicketStatus.AWAITING_CHECK,
            func.coalesce(Ticket.extension_status, "") == "pending",
        )
        query = query.where(waiting if where.needs_review else ~waiting)
    if where.text:
        pattern = like_pattern(where.text.strip())
        described = (
            select(Report.id)
            .where(Report.ticket_id == Ticket.id, Report.description.like(pattern, escape="\\"))
            .exists()
        )
        query = query.where(or_(Ticket.ref.like(pattern, escape="\\"), described))
    return query


def status_counts(
    session: Session, *, staff: Staff, where: QueueFilter, now: datetime
) -> dict[TicketStatus, int]:
    """How many tickets of the filter (whatever statuses it asks for) are in each status."""
    query = filtered(session, staff=staff, where=replace(where, statuses=()), now=now)
    counted = query.with_only_columns(Ticket.status, func.count()).group_by(Ticket.status)
    return {TicketStatus(status): n for status, n in session.execute(counted)}


def _sort_columns(sort: QueueSort) -> list[tuple[Any, bool]]:
    """(column, descending) pairs, the ticket id last to make the order total."""
    orders: dict[QueueSort, list[tuple[Any, bool]]] = {
        QueueSort.NEWEST: [(Ticket.created_at, True), (Ticket.id, True)],
        QueueSort.OLDEST: [(Ticket.created_at, False), (Ticket.id, False)],
        QueueSort.PRIORITY: [
            (Ticket.priority, False),
            (Ticket.created_at, False),
            (Ticket.id, False),
        ],
        QueueSort.DUE: [(Ticket.due_at, False), (Ticket.id, False)],
    }
    return orders[sort]


def _key_of(ticket: Ticket, sort: QueueSort) -> list[Any]:
    by_sort: dict[QueueSort, list[Any]] = {
        QueueSort.NEWEST: [ticket.created_at],
        QueueSort.OLDEST: [ticket.created_at],
        QueueSort.PRIORITY: [ticket.priority, ticket.created_at],
        QueueSort.DUE: [ticket.due_at],
    }
    values = by_sort[sort]
    return [v.isoformat() if isinstance(v, datetime) else v for v in values] + [str(ticket.id)]


# How each sort column's value is read back from a cursor: by the type the column holds.
_CURSOR_VALUES: dict[str, Callable[[Any], Any]] = {
    "created_at": cursor_time,
    "due_at": cursor_time,
    "priority": lambda value: cursor_int(value, within=range(min(Priority), max(Priority) + 1)),
    "id": cursor_uuid,
}


def _after(columns: list[tuple[Any, bool]], cursor: str) -> ColumnElement[bool]:
    """Rows strictly after ``cursor`` in the order of ``columns``; a cursor of another
    shape, or with a value its column cannot hold, is a 422 ``cursor``."""
    values = read_cursor(cursor, [_CURSOR_VALUES[column.key] for column, _ in columns])
    clauses = []
    for i, (column, descending) in enumerate(columns):
        beyond = column < values[i] if descending else column > values[i]
        clauses.append(
            and_(*(c == v for (c, _), v in zip(columns[:i], values[:i], strict=False)), beyond)
        )
    return or_(*clauses)


def page_query(
    session: Session,
    *,
    staff: Staff,
    where: QueueFilter,
    sort: QueueSort,
    limit: int | None,
    cursor: str | None,
    now: datetime,
) -> Select[Ticket]:
    """One page and the first row of the next, in order (every row without a limit).
    Bad filters are refused here, before anything is sent."""
    columns = _sort_columns(sort)
    query = filtered(session, staff=staff, where=where, now=now)
    if cursor is not None:
        query = query.where(_after(columns, cursor))
    query = query.order_by(*(c.desc() if d else c.asc() for c, d in columns))
    return query if limit is None else query.limit(limit + 1)


def queue_page(
    session: Session,
    *,
    staff: Staff,
    where: QueueFilter,
    sort: QueueSort,
    page: PageRequest,
    now: datetime,
) -> Page[Ticket]:
    limit = page.limit
    rows = list(
        session.scalars(
            page_query(
                session,
                staff=staff,
                where=where,
                sort=sort,
                limit=limit,
                cursor=page.cursor,
                now=now,
            )
        )
    )
    if len(rows) > limit:
        return Page(rows[:limit], encode_cursor(_key_of(rows[limit - 1], sort)))
    return Page(rows, None)


def stream(session: Session, query: Select[Ticket]) -> Iterator[Ticket]:
    """The rows of ``query``, a thousand at a time (for the CSV export)."""
    yield from session.scalars(query.execution_options(yield_per=1000))

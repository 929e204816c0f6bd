"""The office's queue: tickets in scope, filtered, sorted, keyset-paginated.

A page is found by the sort key of the last row it ended on, never by an offset, so
pages stay stable while reports keep arriving.
"""

import threading
import time
import uuid
import weakref
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import Session

from app.db import DATABASE, Database, lat_of, lon_of, within_bbox
from app.errors import NotFound, ValidationFailed
from app.geo import bbox_around, metres_between
from app.models import (
    OPEN_STATUSES,
    Category,
    Priority,
    Report,
    Staff,
    Ticket,
    TicketStatus,
    Unit,
)
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


# A status holding thousands of a scope's tickets — a busy district's two years of closed
# ones, which only grow, but a backlog too — is counted once a minute by each process and
# shown as counted, one ticket more or less among thousands being nothing a clerk reads:
# the district's queue at the city bench counted 250,000 tickets on every page (112 of
# its 180 ms). A status with fewer is counted on every page, through the scope's index
# on the status, so a clerk sees each ticket of a short list come and go at once.
KEEP_COUNTS_FROM = 5_000
KEEP_COUNTS_FOR_S = 60.0
KEPT_COUNTS = 1_000  # (scope, filter) pairs whose counts a process keeps per database

# Per database: (scope, filter) → (when counted, in monotonic seconds; the large counts).
_Kept = dict[Hashable, tuple[float, dict[TicketStatus, int]]]
_kept_counts: "weakref.WeakKeyDictionary[Database, _Kept]" = weakref.WeakKeyDictionary()
_kept_lock = threading.Lock()


def status_counts(
    session: Session, *, staff: Staff, where: QueueFilter, now: datetime
) -> dict[TicketStatus, int]:
    """How many tickets of the filter (whatever statuses it asks for) are in each status:
    those with ``KEEP_COUNTS_FROM`` or more as counted within ``KEEP_COUNTS_FOR_S``, the
    others now."""
    unfiltered = replace(where, statuses=())
    query = filtered(session, staff=staff, where=unfiltered, now=now)
    counted = query.with_only_columns(Ticket.status, func.count()).group_by(Ticket.status)
    database = session.info.get(DATABASE)
    key = (staff.role, staff.area_id, staff.unit_id, unfiltered)
    kept = _kept(database, key)
    if kept:
        counted = counted.where(Ticket.status.in_([s for s in TicketStatus if s not in kept]))
    counts = {TicketStatus(status): n for status, n in session.execute(counted)}
    if kept:
        return counts | kept
    large = {status: n for status, n in counts.items() if n >= KEEP_COUNTS_FROM}
    if large and database is not None:
        with _kept_lock:
            held = _kept_counts.setdefault(database, {})
            held.pop(key, None)
            held[key] = (time.monotonic(), large)
            while len(held) > KEPT_COUNTS:
                del held[next(iter(held))]  # the longest kept
    return counts


def _kept(database: Database | None, key: Hashable) -> dict[TicketStatus, int]:
    """The large counts kept for ``key``, if they are young enough (else none)."""
    if database is None:
        return {}
    with _kept_lock:
        held = _kept_counts.get(database, {}).get(key)
    if held is None or held[0] + KEEP_COUNTS_FOR_S <= time.monotonic():
        return {}
    return held[1]


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


@dataclass(frozen=True)
class MapPoint:
    """A ticket as the queue's map draws it: where (WGS-84), what, and whether late."""

    id: uuid.UUID
    ref: str
    status: TicketStatus
    category_id: int
    overdue: bool
    lon: float
    lat: float


def map_points(
    session: Session,
    *,
    staff: Staff,
    where: QueueFilter,
    sort: QueueSort,
    limit: int,
    now: datetime,
) -> list[MapPoint]:
    """The queue's first ``limit`` tickets (and the first of the next page, as
    :func:`page_query`) as points: a few columns and the place as two numbers each, not
    a district's 5,000 tickets made objects with their geometries parsed (200 ms)."""
    query = page_query(
        session, staff=staff, where=where, sort=sort, limit=limit, cursor=None, now=now
    ).with_only_columns(
        Ticket.id,
        Ticket.ref,
        Ticket.status,
        Ticket.category_id,
        Ticket.is_overdue(now),
        lon_of(Ticket.location),
        lat_of(Ticket.location),
    )
    return [
        MapPoint(id_, ref, TicketStatus(status), category_id, bool(late), lon, lat)
        for id_, ref, status, category_id, late, lon, lat in session.execute(query)
    ]


@dataclass(frozen=True)
class Nearby:
    """An open ticket near another of its category: one that ticket may be merged into,
    with its place (WGS-84) and how far it is."""

    id: uuid.UUID
    ref: str
    status: TicketStatus
    lon: float
    lat: float
    distance_m: float


def merge_candidates(
    session: Session, ticket: Ticket, *, staff: Staff, within_m: float, now: datetime
) -> list[Nearby]:
    """The other open tickets of ``ticket``'s category within ``within_m`` metres of it
    that ``staff`` may see, nearest first: of the 50 newest in the box around it (itself
    among them, if open). Their places are read as two numbers each, not as geometries
    to parse."""
    here = to_shape(ticket.location)
    where = QueueFilter(statuses=sorted(OPEN_STATUSES), bbox=bbox_around(here.x, here.y, within_m))
    newest = page_query(
        session, staff=staff, where=where, sort=QueueSort.NEWEST, limit=49, cursor=None, now=now
    )
    query = newest.where(Ticket.category_id == ticket.category_id).with_only_columns(
        Ticket.id, Ticket.ref, Ticket.status, lon_of(Ticket.location), lat_of(Ticket.location)
    )
    found = [
        Nearby(id_, ref, TicketStatus(status), lon, lat, metres_between(here.x, here.y, lon, lat))
        for id_, ref, status, lon, lat in session.execute(query)
        if id_ != ticket.id
    ]
    return sorted((n for n in found if n.distance_m <= within_m), key=lambda n: n.distance_m)

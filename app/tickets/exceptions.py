"""The case's exceptions every office lives with: more time (延期, asked for, then
approved by the district — the deadline moves only then), a problem that cannot be fixed
now (挂账, with a date to look at it again), the wrong category, the wrong place."""

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import wkt_point
from app.errors import (
    ExtensionPending,
    NoExtensionPending,
    OutsideServiceArea,
    ValidationFailed,
)
from app.models import (
    Area,
    AreaLevel,
    Category,
    Dispatch,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketStatus,
)
from app.tickets import reference
from app.tickets.action_input import ActionInput
from app.tickets.deadlines import deadline_moved
from app.tickets.dispatching import current_dispatch, let_go
from app.tickets.working_time import DEFAULT_TZ, due

A = TicketAction
EXCEPTION_ACTIONS = frozenset(
    {
        A.REQUEST_EXTENSION,
        A.APPROVE_EXTENSION,
        A.DENY_EXTENSION,
        A.SHELVE,
        A.UNSHELVE,
        A.RECATEGORISE,
        A.RELOCATE,
    }
)
# The longest extension one request may ask for, in the category's hours.
LONGEST_EXTENSION_H = 24 * 90
PENDING, APPROVED, DENIED = "pending", "approved", "denied"


def act(
    session: Session, ticket: Ticket, *, data: ActionInput, now: datetime, settings: Settings
) -> dict[str, object]:
    """What an exception action does besides the status change; its event's data."""
    match data.action:
        case A.REQUEST_EXTENSION:
            if ticket.extension_status == PENDING:
                raise ExtensionPending("an extension is waiting for the district already")
            if data.hours is None or not 0 < data.hours <= LONGEST_EXTENSION_H:
                raise ValidationFailed.of_field(
                    "hours", f"more than 0 and at most {LONGEST_EXTENSION_H} hours"
                )
            if not (data.reason or "").strip():
                raise ValidationFailed.of_field("reason", "why more time is needed")
            ticket.extension_hours, ticket.extension_status = data.hours, PENDING
            ticket.extension_reason = data.reason
            return {"hours": data.hours, "reason": data.reason}
        case A.APPROVE_EXTENSION | A.DENY_EXTENSION:
            if ticket.extension_status != PENDING or ticket.extension_hours is None:
                raise NoExtensionPending("no extension is waiting for a decision")
            if data.action is A.DENY_EXTENSION:
                ticket.extension_status = DENIED
                return {"hours": ticket.extension_hours}
            ticket.extension_status = APPROVED
            return _extend(session, ticket, hours=ticket.extension_hours)
        case A.SHELVE:
            if not (data.reason or "").strip():
                raise ValidationFailed.of_field("reason", "why it cannot be fixed now")
            if data.review_on is None or data.review_on <= local_date(now):
                raise ValidationFailed.of_field("review_on", "a date after today")
            ticket.review_on = data.review_on
            let_go(session, ticket, now=now)
            ticket.unit_id = None
            return {"review_on": data.review_on.isoformat(), "reason": data.reason}
        case A.UNSHELVE:
            ticket.review_on = None
        case A.RECATEGORISE:
            return _recategorise(session, ticket, code=data.category, now=now)
        case A.RELOCATE:
            return _relocate(session, ticket, data=data, settings=settings)
    return {}


def _extend(session: Session, ticket: Ticket, *, hours: float) -> dict[str, object]:
    """Move the current deadline (the answer's while new, else the fix's) by ``hours``
    on the category's clock, and the unit's with it."""
    rules = _rules(session, ticket)
    calendar = reference.current_reference(session).calendar
    if ticket.status == TicketStatus.NEW:
        ticket.respond_by = due(rules.sla_clock, calendar, since=ticket.respond_by, hours=hours)
        moved = ticket.respond_by
    else:
        if ticket.original_resolve_by is None:
            ticket.original_resolve_by = ticket.resolve_by
        ticket.resolve_by = due(rules.sla_clock, calendar, since=ticket.resolve_by, hours=hours)
        moved = ticket.resolve_by
    deadline_moved(ticket)
    held: Dispatch | None = current_dispatch(session, ticket)
    if held is not None and held.done_at is None:  # never late work made on time after
        held.due_at = ticket.resolve_by
    return {"hours": hours, "due": moved.isoformat()}


def resume_clock(session: Session, ticket: Ticket, *, now: datetime) -> None:
    """A ticket back from the shelf (挂账) has its clock paused while it was shelved: its
    fix's deadline (and the one before any extension) moves by the time it spent there,
    so that it is not late, nor escalated, the moment it comes back."""
    shelved_at = session.scalar(
        select(TicketEvent.created_at)
        .where(TicketEvent.ticket_id == ticket.id, TicketEvent.type == A.SHELVE)
        .order_by(TicketEvent.created_at.desc())
        .limit(1)
    )
    if shelved_at is None or shelved_at >= now:
        return
    paused = now - shelved_at
    ticket.resolve_by = ticket.resolve_by + paused
    if ticket.original_resolve_by is not None:
        ticket.original_resolve_by = ticket.original_resolve_by + paused


def _rules(session: Session, ticket: Ticket) -> reference.CategoryRules:
    code = session.scalar(select(Category.code).where(Category.id == ticket.category_id))
    return reference.current_reference(session).categories[str(code)]


def _recategorise(
    session: Session, ticket: Ticket, *, code: str | None, now: datetime
) -> dict[str, object]:
    """Another category, its deadlines counted from the ticket's creation (an extension
    approved before no longer moves them). The forwarding worker looks at the ticket
    again (``recategorised_at``): it goes where the new category's tickets go, and no
    longer where the old one's do unless it was sent there already."""
    category = session.scalar(select(Category).where(Category.code == (code or "")))
    if category is None or not category.active:
        raise ValidationFailed.of_field("category", "the code of an active category")
    if category.id == ticket.category_id:
        raise ValidationFailed.of_field("category", "the ticket is in that category already")
    before = session.scalar(select(Category.code).where(Category.id == ticket.category_id))
    calendar = reference.current_reference(session).calendar
    ticket.category_id = category.id
    ticket.respond_by = due(
        category.sla_clock, calendar, since=ticket.created_at, hours=category.respond_within_h
    )
    ticket.resolve_by = due(
        category.sla_clock, calendar, since=ticket.created_at, hours=category.resolve_within_h
    )
    ticket.original_resolve_by = None
    ticket.recategorised_at = now
    deadline_moved(ticket)
    return {"from": before, "to": category.code}


def _relocate(
    session: Session, ticket: Ticket, *, data: ActionInput, settings: Settings
) -> dict[str, object]:
    """The spot moved where it really is; in another street of the district, the ticket
    goes to that street's office (new again there)."""
    if data.lat is None or data.lon is None:
        raise ValidationFailed.of_field("lat", "lat and lon of the spot")
    try:
        route = reference.current_reference(session).areas.route(
            lon=data.lon, lat=data.lat, snap_m=settings.routing_snap_m
        )
    except OutsideServiceArea:
        route = None
    if route is None or route.district.id != ticket.district_id:
        raise ValidationFailed.of_field("lat", "the spot is not in this ticket's district")
    ticket.location = wkt_point(data.lon, data.lat)  # type: ignore[assignment]
    moved: dict[str, object] = {"lat": round(data.lat, 6), "lon": round(data.lon, 6)}
    street_id = route.street.id if route.street is not None else None
    ticket.community_id = route.community.id if route.community is not None else None
    if street_id != ticket.street_id and street_id is not None:
        street = session.get_one(Area, street_id)
        assert street.level == AreaLevel.STREET
        moved["from_street"], moved["to_street"] = ticket.street_id, street_id
        ticket.street_id = street_id
    return moved


def local_date(now: datetime) -> date:
    """The day it is in the city (review dates are the city's days)."""
    return now.astimezone(ZoneInfo(DEFAULT_TZ)).date()


def due_for_review(session: Session, *, now: datetime, limit: int) -> list[Ticket]:
    """Shelved tickets whose review date has come (for the worker)."""
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.status == TicketStatus.SHELVED, Ticket.review_on <= local_date(now))
            .order_by(Ticket.review_on)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )

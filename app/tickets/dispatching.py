"""A ticket in the hands of a responsible unit (处置单位): 派遣 → 签收 → 处置 → 反馈 → 核查.

The office dispatches it to a unit that serves its street and category; the unit's crew
signs for it, starts, and reports the work done (with an after-photo where the category
asks for one); the office checks it — passed, the ticket is resolved; failed, it goes back
to the same unit (返工). The unit may hand back a ticket that is not its own (回退). Each
dispatch is a row (``Dispatch``) that follows the unit's part, for its work list and its
figures; the ticket's status changes go through the workflow's one ``change``.
"""

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import units
from app.errors import AlreadyAcknowledged, ValidationFailed
from app.models import (
    WITH_UNIT_STATUSES,
    Category,
    Dispatch,
    Staff,
    StaffRole,
    Ticket,
    TicketAction,
)
from app.tickets import reference
from app.tickets.action_input import ActionInput

A = TicketAction
DISPATCH_ACTIONS = frozenset(
    {A.DISPATCH, A.ACKNOWLEDGE, A.START, A.REPORT_DONE, A.CHECK_PASS, A.CHECK_FAIL, A.RETURN}
)
RETURN_REASONS = frozenset({"not_ours", "wrong_place", "cannot_handle", "other"})
WORK_LIMIT = 200  # a unit's tickets on its work list at most


def work_list(session: Session, crew: Staff, *, limit: int = WORK_LIMIT) -> list[Ticket]:
    """The tickets ``crew``'s unit holds now (dispatched, in progress, or reported done
    and waiting for the office's check), the nearest deadline first."""
    return list(
        session.scalars(
            select(Ticket)
            .where(Ticket.unit_id == crew.unit_id, Ticket.status.in_(WITH_UNIT_STATUSES))
            .order_by(Ticket.due_at, Ticket.id)
            .limit(limit)
        )
    )


def handled_by_unit(session: Session, crew: Staff, *, limit: int = 50) -> list[Ticket]:
    """The tickets ``crew``'s unit held and holds no more (passed, handed back, taken
    back by the office), the latest dispatched first."""
    handled: dict[object, Ticket] = {}
    for ticket in session.scalars(
        select(Ticket)
        .join(Dispatch, Dispatch.ticket_id == Ticket.id)
        .where(Dispatch.unit_id == crew.unit_id, Dispatch.ended_at.is_not(None))
        .order_by(Dispatch.dispatched_at.desc())
        .limit(limit * 2)
    ):
        held = ticket.unit_id == crew.unit_id and ticket.status in WITH_UNIT_STATUSES
        if not held:
            handled.setdefault(ticket.id, ticket)
    return list(handled.values())[:limit]


def current_dispatch(session: Session, ticket: Ticket) -> Dispatch | None:
    """The dispatch of the unit that holds the ticket now (or holds it for the office's
    check), if any."""
    return session.scalar(
        select(Dispatch)
        .where(Dispatch.ticket_id == ticket.id, Dispatch.ended_at.is_(None))
        .order_by(Dispatch.dispatched_at.desc())
        .limit(1)
    )


def let_go(session: Session, ticket: Ticket, *, now: datetime) -> None:
    """The unit that held the ticket holds it no more (the office resolved it itself,
    shelved it, or sent it elsewhere)."""
    held = current_dispatch(session, ticket)
    if held is not None:
        held.ended_at = now
    ticket.acknowledged_at = None


def act(
    session: Session, ticket: Ticket, *, staff: Staff, data: ActionInput, now: datetime
) -> dict[str, object]:
    """What a dispatch action does besides the status change; returns its event's data."""
    held = current_dispatch(session, ticket)
    match data.action:
        case A.DISPATCH:
            unit = units.unit_to_dispatch(session, ticket, code=data.unit)
            if held is not None and held.unit_id == unit.id:
                raise ValidationFailed.of_field("unit", f"the ticket is with {unit.code} already")
            let_go(session, ticket, now=now)
            if ticket.extension_status == "pending":  # the new unit asks for itself
                ticket.extension_status = ticket.extension_hours = None
                ticket.extension_reason = None
            session.add(
                Dispatch(
                    ticket_id=ticket.id,
                    unit_id=unit.id,
                    dispatched_at=now,
                    due_at=ticket.resolve_by,
                    done_count=0,
                    check_fail_count=0,
                )
            )
            ticket.unit_id = unit.id
            return {"unit": unit.code}
        case A.ACKNOWLEDGE:
            if ticket.acknowledged_at is not None:
                raise AlreadyAcknowledged("the ticket was signed for already")
            ticket.acknowledged_at = now
            if staff.role == StaffRole.CREW and held is not None:
                # The dispatch keeps the crew's first: signing again after a failed
                # check is not how long the unit took to take it up.
                held.acknowledged_at = held.acknowledged_at or now
        case A.START:
            if held is not None and staff.role == StaffRole.CREW:
                held.started_at = held.started_at or now
        case A.REPORT_DONE:
            category = session.get_one(Category, ticket.category_id)
            if category.after_photo_required and not data.media_ids:
                raise ValidationFailed.of_field(
                    "media_ids", "this category needs a photo of the work done"
                )
            if held is not None:
                held.done_at = now
                held.done_count += 1
                calendar = reference.current_reference(session).calendar
                held.done_working_h = round(calendar.between(held.dispatched_at, now), 4)
        case A.CHECK_PASS:
            if held is not None:
                held.passed_at = held.ended_at = now
        case A.CHECK_FAIL:
            if held is not None:
                held.check_fail_count += 1
            # Back with the same unit, which signs for it again.
            ticket.acknowledged_at = None
        case A.RETURN:
            if data.reason not in RETURN_REASONS:
                raise ValidationFailed.of_field(
                    "reason", f"one of {', '.join(sorted(RETURN_REASONS))}"
                )
            if held is not None:
                held.returned_at = held.ended_at = now
                held.return_reason, held.return_note = data.reason, data.note
            ticket.unit_id, ticket.acknowledged_at = None, None
            return {"reason": data.reason}
    return {}

"""What a reporter thinks of the fix (满意度): once per rider and ticket, 1 to 5, within
``SENTINEL_FEEDBACK_DAYS`` of the resolution. The rating is an event of the ticket, by
the rider, its comment the event's note — kept, exported and erased as every word a
rider writes in a ticket's events is (``app.privacy``). A rating of 2 or lower marks the
ticket dissatisfied and escalates it (提级督办), and the district's channels that asked
hear of it (``feedback.negative``)."""

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import begin_writes
from app.errors import FeedbackClosed, NotFound
from app.models import (
    RESOLVED_STATUSES,
    ActorKind,
    Report,
    Rider,
    Ticket,
    TicketEvent,
    TicketEventType,
)
from app.tickets.workflow import change, escalate

DISSATISFIED_AT = 2  # a rating this low or lower


@dataclass(frozen=True)
class FeedbackInput:
    rating: int
    comment: str | None = None


def give_feedback(
    session: Session,
    rider: Rider,
    *,
    report_id: uuid.UUID,
    data: FeedbackInput,
    now: datetime,
    settings: Settings,
) -> TicketEvent:
    """The rider's rating of its report's ticket: 404 if the report is not the rider's;
    409 ``feedback_closed`` unless the ticket is resolved or closed, rated by the rider
    before, or resolved more than the allowed days ago."""
    report = session.get(Report, report_id)
    if report is None or report.rider_id != rider.id or report.ticket_id is None:
        raise NotFound("no such report")
    begin_writes(session)
    ticket = session.scalar(select(Ticket).where(Ticket.id == report.ticket_id).with_for_update())
    assert ticket is not None
    if ticket.status not in RESOLVED_STATUSES or ticket.resolved_at is None:
        raise FeedbackClosed(f"the ticket is {ticket.status}: a fix is rated once it is resolved")
    if now > ticket.resolved_at + timedelta(days=settings.feedback_days):
        raise FeedbackClosed(f"a fix is rated within {settings.feedback_days:g} days")
    rated_before = session.scalar(
        select(TicketEvent.id).where(
            TicketEvent.ticket_id == ticket.id,
            TicketEvent.type == TicketEventType.RATED,
            TicketEvent.actor_kind == ActorKind.RIDER,
            TicketEvent.actor_id == rider.id,
        )
    )
    if rated_before is not None:
        raise FeedbackClosed("you have rated this fix already")
    event = change(
        session,
        ticket,
        to=None,
        type=TicketEventType.RATED,
        actor_kind=ActorKind.RIDER,
        actor_id=rider.id,
        now=now,
        note=(data.comment or "").strip() or None,
        data={"rating": data.rating, "report_id": str(report.id)},
        counts_as_version=False,
        notes_status=False,
    )
    if data.rating <= DISSATISFIED_AT:
        ticket.dissatisfied = True
        escalate(session, ticket, why="rated", now=now)
    session.flush()
    return event

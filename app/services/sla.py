"""The clock's side of triage: breached deadlines recorded once, resolutions closed.

Run by the worker. Each sweep claims its tickets with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so any number of workers can sweep at once without doing anything twice; on
SQLite, write transactions already run one at a time. ``now`` is passed in, so tests
move time instead of waiting for it.
"""

import uuid
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_writes
from app.models import OPEN_STATUSES, Ticket, TicketEvent, TicketStatus
from app.services.workflow import on_status_change

BATCH = 500


def record_breaches(session: Session, now: datetime) -> int:
    """One ``sla_breached`` event per missed deadline (answer, then fix)."""
    begin_writes(session)
    recorded = 0
    for deadline, due, mark, statuses in (
            ("respond_by", Ticket.respond_by, Ticket.respond_breached_at,
             (TicketStatus.NEW,)),
            ("resolve_by", Ticket.resolve_by, Ticket.resolve_breached_at,
             tuple(OPEN_STATUSES))):
        tickets = session.scalars(
            select(Ticket).where(Ticket.status.in_(statuses), due < now, mark.is_(None))
            .order_by(due).limit(BATCH).with_for_update(skip_locked=True)).all()
        for ticket in tickets:
            setattr(ticket, mark.key, now)
            session.add(TicketEvent(ticket_id=ticket.id, type="sla_breached",
                                    actor_kind="system", created_at=now,
                                    data={"deadline": deadline,
                                          "due": getattr(ticket, due.key).isoformat()}))
        recorded += len(tickets)
    session.flush()
    return recorded


def close_resolved(session: Session, now: datetime, after: timedelta) -> int:
    """Resolved tickets nobody disputed (a ``fixed: false`` verification reopens them)
    close themselves ``after`` their resolution."""
    begin_writes(session)
    tickets = session.scalars(
        select(Ticket).where(Ticket.status == TicketStatus.RESOLVED,
                             Ticket.resolved_at <= now - after)
        .order_by(Ticket.resolved_at).limit(BATCH).with_for_update(skip_locked=True)).all()
    for ticket in tickets:
        previous = ticket.transition_to(TicketStatus.CLOSED)
        ticket.updated_at = now
        ticket.version += 1
        event = TicketEvent(id=uuid.uuid4(), ticket_id=ticket.id, type="auto_closed",
                            actor_kind="system", from_status=previous,
                            to_status=TicketStatus.CLOSED, created_at=now)
        session.add(event)
        on_status_change(session, ticket, previous, event, now)
    session.flush()
    return len(tickets)

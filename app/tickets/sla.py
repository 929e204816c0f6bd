"""The clock's side of triage: breached deadlines recorded once, resolutions closed.

Run by the worker. Each sweep claims its tickets with ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so any number of workers can sweep at once without doing anything twice; on
SQLite, write transactions already run one at a time. ``now`` is passed in, so tests
move time instead of waiting for it.
"""

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import begin_writes, claim_due
from app.models import (
    CLOCKED_STATUSES,
    ActorKind,
    Ticket,
    TicketAction,
    TicketEventType,
    TicketStatus,
)
from app.tickets.exceptions import due_for_review
from app.tickets.workflow import change, escalate

BATCH = 500


def record_breaches(session: Session, now: datetime) -> int:
    """One ``sla_breached`` event per missed deadline (answer, then fix)."""
    begin_writes(session)
    recorded = 0
    for deadline, due, mark, statuses in (
        ("respond_by", Ticket.respond_by, Ticket.respond_breached_at, (TicketStatus.NEW,)),
        ("resolve_by", Ticket.resolve_by, Ticket.resolve_breached_at, tuple(CLOCKED_STATUSES)),
    ):
        tickets = session.scalars(
            select(Ticket)
            .where(Ticket.status.in_(statuses), due < now, mark.is_(None))
            .order_by(due)
            .limit(BATCH)
            .with_for_update(skip_locked=True)
        ).all()
        for ticket in tickets:
            setattr(ticket, mark.key, now)
            change(
                session,
                ticket,
                to=None,
                type=TicketEventType.SLA_BREACHED,
                actor_kind=ActorKind.SYSTEM,
                now=now,
                data={"deadline": deadline, "due": getattr(ticket, due.key).isoformat()},
                counts_as_version=False,
                notes_status=False,
            )
        recorded += len(tickets)
    session.flush()
    return recorded


def record_warnings(session: Session, now: datetime) -> int:
    """One ``sla_warning`` event when three quarters of the time to a ticket's current
    deadline have gone (its mark, ``app.tickets.deadlines``), unless it is late already
    (the breach says it then)."""
    tickets = claim_due(
        session,
        Ticket,
        Ticket.warned_at.is_(None),
        Ticket.warn_at <= now,
        order_by=Ticket.warn_at,
        limit=BATCH,
    )
    warned = 0
    for ticket in tickets:
        ticket.warned_at = now
        if ticket.status not in CLOCKED_STATUSES or ticket.due_at <= now:
            continue
        change(
            session,
            ticket,
            to=None,
            type=TicketEventType.SLA_WARNING,
            actor_kind=ActorKind.SYSTEM,
            now=now,
            data={"due": ticket.due_at.isoformat()},
            counts_as_version=False,
            notes_status=False,
        )
        warned += 1
    session.flush()
    return warned


def escalate_late(session: Session, now: datetime) -> int:
    """Escalates (提级督办) the tickets late by more than their share of time allows
    (their mark, ``app.tickets.deadlines``), once each — read under the write lock, so a
    deadline moved meanwhile (an extension approved) is the one judged."""
    tickets = claim_due(
        session,
        Ticket,
        Ticket.escalated_at.is_(None),
        Ticket.escalate_at <= now,
        order_by=Ticket.escalate_at,
        limit=BATCH,
    )
    escalated = 0
    for ticket in tickets:
        ticket.escalated_at = now
        late = ticket.status in CLOCKED_STATUSES and ticket.due_at < now
        if late and escalate(session, ticket, why="late", now=now):
            escalated += 1
    session.flush()
    return escalated


def close_resolved(session: Session, now: datetime, *, after: timedelta) -> int:
    """Resolved tickets nobody disputed (a ``fixed: false`` verification reopens them)
    close themselves ``after`` their resolution."""
    begin_writes(session)
    tickets = session.scalars(
        select(Ticket)
        .where(Ticket.status == TicketStatus.RESOLVED, Ticket.resolved_at <= now - after)
        .order_by(Ticket.resolved_at)
        .limit(BATCH)
        .with_for_update(skip_locked=True)
    ).all()
    for ticket in tickets:
        change(
            session,
            ticket,
            to=TicketStatus.CLOSED,
            type=TicketEventType.AUTO_CLOSED,
            actor_kind=ActorKind.SYSTEM,
            now=now,
        )
    session.flush()
    return len(tickets)


def unshelve_due(session: Session, now: datetime) -> int:
    """Shelved tickets whose review date has come are back in the office's queue."""
    begin_writes(session)
    tickets = due_for_review(session, now=now, limit=BATCH)
    for ticket in tickets:
        ticket.review_on = None
        change(
            session,
            ticket,
            to=TicketStatus.ACCEPTED,
            type=TicketAction.UNSHELVE,
            actor_kind=ActorKind.SYSTEM,
            now=now,
            note="review date reached",
        )
    session.flush()
    return len(tickets)

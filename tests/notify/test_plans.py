"""The worker's reads for the channels walk their indexes, whatever the size of the
tables: the events to tell (a partial index of their own), the tickets whose deadline
marks are to be worked out, warned or escalated, and the notifications due."""

import uuid
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Notification, Ticket, utcnow
from app.notify.outbox import events_since
from tests.helpers import plan_of_query


def test_the_events_to_tell_come_from_their_own_index(session: Session, database: Database) -> None:
    now = utcnow()
    plan = plan_of_query(session, database, events_since(now, uuid.UUID(int=0), settled=now))
    assert "ix_ticket_events_notifying" in plan, plan
    assert "Seq Scan" not in plan and "SCAN ticket_events" not in plan, plan


def test_the_deadline_sweeps_and_the_claim_walk_their_indexes(
    session: Session, database: Database
) -> None:
    now = utcnow()
    for query, index in (
        (
            select(Ticket).where(Ticket.warn_at.is_(None)).order_by(Ticket.created_at).limit(500),
            "ix_tickets_marks_unset",
        ),
        (
            select(Ticket)
            .where(Ticket.warned_at.is_(None), Ticket.warn_at <= now)
            .order_by(Ticket.warn_at)
            .limit(500),
            "ix_tickets_warn_at",
        ),
        (
            select(Ticket)
            .where(Ticket.escalated_at.is_(None), Ticket.escalate_at <= now)
            .order_by(Ticket.escalate_at)
            .limit(500),
            "ix_tickets_escalate_at",
        ),
        (
            select(Notification)
            .where(
                Notification.state == "pending", Notification.next_attempt_at <= now + timedelta(0)
            )
            .order_by(Notification.next_attempt_at)
            .limit(500),
            "ix_notifications_state_next_attempt_at",
        ),
    ):
        plan = plan_of_query(session, database, query)
        assert index in plan, plan

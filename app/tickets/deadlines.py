"""The marks the worker keeps on a ticket's current deadline (the answer while it is
new, the fix after): when three quarters of its time are gone (``warn_at``: the warning,
红黄绿's yellow), and when it is late by ``SENTINEL_ESCALATE_AFTER`` of its time
(``escalate_at``: 提级督办) — both counted on the category's clock, so in working time
for a category on working hours. The worker works them out for a ticket whose marks are
unset (:func:`mark_deadlines`); whatever moves the deadline unsets them
(:func:`deadline_moved`), so they always belong to the deadline of now."""

from datetime import datetime

from sqlalchemy.orm import Session

from app.db import claim_due
from app.models import CLOCKED_STATUSES, Ticket
from app.tickets import reference
from app.tickets.working_time import due, elapsed

WARN_AT = 0.75  # of the time to the deadline
BATCH = 500


def deadline_moved(ticket: Ticket) -> None:
    """The ticket's deadline is another now: its marks are worked out again (and a
    warning given for the old one does not stand for the new one). An escalation stays
    until the district takes it back."""
    ticket.warn_at = ticket.warned_at = ticket.escalate_at = None
    if not ticket.escalated:
        ticket.escalated_at = None


def mark_deadlines(session: Session, now: datetime, *, escalate_after: float) -> int:
    """Works out the marks of tickets that have none (new ones, and those whose deadline
    moved); a ticket off the clock (shelved, ended) is marked as warned and escalated,
    so that neither comes. Returns how many."""
    # Claimed under the write lock (and the rows' locks on PostgreSQL): read before it, a
    # ticket accepted meanwhile would get the marks of the deadline it no longer has.
    pending = claim_due(
        session, Ticket, Ticket.warn_at.is_(None), order_by=Ticket.created_at, limit=BATCH
    )
    if not pending:
        return 0
    ref = reference.current_reference(session)
    clocks = {rules.id: rules.sla_clock for rules in ref.categories.values()}
    for ticket in pending:
        deadline = ticket.due_at  # as the database keeps it, from the status
        if ticket.status not in CLOCKED_STATUSES:
            ticket.warn_at = ticket.escalate_at = deadline
            ticket.warned_at = ticket.warned_at or now
            ticket.escalated_at = ticket.escalated_at or now
            continue
        clock = clocks.get(ticket.category_id, "hours")
        allowance = elapsed(clock, ref.calendar, start=ticket.created_at, end=deadline)
        ticket.warn_at = due(
            clock, ref.calendar, since=ticket.created_at, hours=WARN_AT * allowance
        )
        ticket.escalate_at = due(
            clock, ref.calendar, since=deadline, hours=escalate_after * allowance
        )
    session.flush()
    return len(pending)

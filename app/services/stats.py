"""The street office's numbers: what came in, what is open or late, how fast it moved."""

import statistics
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.models import OPEN_STATUSES, Area, Category, Staff, Ticket, TicketStatus
from app.services.queue import overdue
from app.services.scope import ticket_scope_filter

RESOLVED = (TicketStatus.RESOLVED, TicketStatus.CLOSED)


def _hours(pairs: Sequence[tuple[datetime, datetime]]) -> float | None:
    durations = [(end - start).total_seconds() / 3600 for start, end in pairs]
    return round(statistics.median(durations), 2) if durations else None


def office_stats(session: Session, *, staff: Staff, created_from: datetime | None,
                 created_to: datetime | None, now: datetime) -> dict[str, Any]:
    window = [ticket_scope_filter(staff)]
    if created_from is not None:
        window.append(Ticket.created_at >= created_from)
    if created_to is not None:
        window.append(Ticket.created_at < created_to)

    def counts(column: Any) -> dict[str, int]:
        return {str(key): int(n) for key, n in session.execute(
            select(column, func.count()).select_from(Ticket).where(*window).group_by(column))}

    by_category = {code: n for code, n in session.execute(
        select(Category.code, func.count()).join(Ticket, Ticket.category_id == Category.id)
        .where(*window).group_by(Category.code))}
    by_community = {code or "unrouted": n for code, n in session.execute(
        select(Area.code, func.count()).select_from(Ticket)
        .outerjoin(Area, Area.id == Ticket.community_id).where(*window).group_by(Area.code))}
    accepted = [(created, at) for created, at in session.execute(
        select(Ticket.created_at, Ticket.accepted_at)
        .where(*window, Ticket.accepted_at.is_not(None))) if at is not None]
    resolved = session.execute(select(Ticket.created_at, Ticket.resolved_at, Ticket.resolve_by)
                               .where(*window, Ticket.status.in_(RESOLVED))).all()
    total = sum(counts(Ticket.status).values())
    return {
        "total": total,
        "by_status": counts(Ticket.status),
        "by_category": by_category,
        "by_community": by_community,
        "open": session.scalar(select(func.count()).select_from(Ticket)
                               .where(*window, Ticket.status.in_(OPEN_STATUSES))) or 0,
        "overdue": session.scalar(select(func.count()).select_from(Ticket)
                                  .where(*window, overdue(now))) or 0,
        "median_hours_to_accept": _hours(accepted),
        "median_hours_to_resolve": _hours([(c, r) for c, r, _ in resolved if r is not None]),
        "resolved_within_sla": round(sum(1 for _, r, due in resolved if r and r <= due)
                                     / len(resolved), 3) if resolved else None,
    }

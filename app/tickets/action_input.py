"""What a member of staff asks of a ticket: an action and what it needs."""

import uuid
from dataclasses import dataclass
from datetime import date

from app.models import TicketAction


@dataclass(frozen=True)
class ActionInput:
    action: TicketAction
    note: str | None = None
    reason: str | None = None
    assignee: str | None = None
    to_street: str | None = None
    into_ticket: uuid.UUID | None = None
    priority: int | None = None
    public_summary: str | None = None
    report_id: uuid.UUID | None = None
    unit: str | None = None
    media_ids: tuple[uuid.UUID, ...] = ()
    hours: float | None = None
    review_on: date | None = None
    category: str | None = None
    lat: float | None = None  # WGS-84
    lon: float | None = None

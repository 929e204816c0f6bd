import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UtcDateTime, UuidPk


class Forward(Base):
    """Where a category's tickets (of one street, or of every street) are sent: a city
    department's own Open311 server, with the key, jurisdiction and service code it
    knows them by. ``trigger`` is ``accepted`` (when the office accepts a ticket) or
    ``created`` (as soon as it is opened)."""

    __tablename__ = "open311_forwards"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"), index=True)
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    name: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(2048))  # …/open311/v2, without a format
    api_key: Mapped[str] = mapped_column(String(256))
    jurisdiction_id: Mapped[str | None] = mapped_column(String(64))
    service_code: Mapped[str] = mapped_column(String(64))
    trigger: Mapped[str] = mapped_column(String(16), default="accepted")
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The worker's sweep has looked at the tickets opened (or accepted) before this.
    scanned_until: Mapped[datetime] = mapped_column(UtcDateTime)


class ForwardedTicket(UuidPk, Base):
    """A ticket sent (or to be sent) to an external Open311 server, and what became of it
    there. ``state``: ``pending`` (to be posted), ``posted`` (polled for its status),
    ``closed`` (closed there; no more polling) or ``failed`` (given up)."""

    __tablename__ = "forwarded_tickets"
    __table_args__ = (
        # The worker's claims: rows of a state whose time has come.
        Index("ix_forwarded_tickets_state_next_attempt_at", "state", "next_attempt_at"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), unique=True)
    forward_id: Mapped[int] = mapped_column(ForeignKey("open311_forwards.id"))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    external_id: Mapped[str | None] = mapped_column(String(200))
    external_status: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    posted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ForwardAttempt(UuidPk, Base):
    """One call to the external server for a forwarded ticket (``post`` or ``poll``):
    what it answered, or why it could not. Polls are logged when something changed or
    went wrong."""

    __tablename__ = "forward_attempts"

    forwarded_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("forwarded_tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(8))
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    external_status: Mapped[str | None] = mapped_column(String(16))
    duration_ms: Mapped[int]

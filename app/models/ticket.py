import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import (
    JSON,
    ColumnElement,
    Computed,
    ForeignKey,
    Index,
    String,
    Text,
    UniqueConstraint,
    and_,
    text,
)
from sqlalchemy.ext.hybrid import hybrid_method
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import checked_per_row
from app.models.base import Base, Timestamps, UtcDateTime, UuidPk, str_enum, utcnow


class TicketStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


OPEN_STATUSES = frozenset({TicketStatus.NEW, TicketStatus.ACCEPTED, TicketStatus.IN_PROGRESS})
ENDED_UNPURGED = "purged_at IS NULL AND status IN ('closed', 'rejected', 'duplicate')"


class Ticket(UuidPk, Timestamps, Base):
    """One problem at one place, however many riders reported it."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_category_id_status_created_at", "category_id", "status", "created_at"),
        # The office queue: a street's (or a district's) tickets, newest first, keyset.
        Index("ix_tickets_street_id_created_at_id", "street_id", "created_at", "id"),
        Index("ix_tickets_district_id_created_at_id", "district_id", "created_at", "id"),
        # Its status filter and its other sorts, each served by an index in both scopes.
        *(
            Index(f"ix_tickets_{scope}_{'_'.join(columns)}", scope, *columns)
            for scope in ("street_id", "district_id")
            for columns in (
                ("status", "created_at", "id"),
                ("priority", "created_at", "id"),
                ("due_at", "id"),
            )
        ),
        # Open311's open data, newest first, and the forwarding worker's sweeps: what
        # was opened, or accepted, since it last looked.
        Index("ix_tickets_created_at_id", "created_at", "id"),
        Index(
            "ix_tickets_accepted_at",
            "accepted_at",
            postgresql_where=text("accepted_at IS NOT NULL"),
            sqlite_where=text("accepted_at IS NOT NULL"),
        ),
        # The retention purge's candidates: ended tickets not purged yet (without
        # updated_at, which every report joining a ticket changes).
        Index(
            "ix_tickets_ended_unpurged",
            "status",
            "closed_at",
            postgresql_where=text(ENDED_UNPURGED),
            sqlite_where=text(ENDED_UNPURGED),
        ),
    )

    # Short and unambiguous (Crockford base32), for reading out on the phone.
    ref: Mapped[str] = mapped_column(String(16), unique=True)
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    status: Mapped[TicketStatus] = mapped_column(str_enum(TicketStatus), default=TicketStatus.NEW)
    priority: Mapped[int]
    location: Mapped[WKBElement] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=True, nullable=False)
    )
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    report_count: Mapped[int] = mapped_column(default=1)
    respond_by: Mapped[datetime] = mapped_column(UtcDateTime)
    resolve_by: Mapped[datetime] = mapped_column(UtcDateTime)
    # The deadline that matters now, kept by the database (the one place of this rule):
    # the answer while the ticket is new, the fix after. Overdue = open and past it.
    due_at: Mapped[datetime] = mapped_column(
        UtcDateTime, Computed("CASE WHEN status = 'new' THEN respond_by ELSE resolve_by END")
    )
    version: Mapped[int] = mapped_column(default=1)
    assignee: Mapped[str | None] = mapped_column(String(200))
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    duplicate_of_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tickets.id"))
    # Milestones, for the SLA and the office's statistics.
    accepted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the worker recorded the breach of each deadline: once each, whatever happens.
    respond_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    resolve_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When its reports lost what the retention period no longer allows (app.services.
    # privacy); cleared when the ticket reopens, so that later reports are purged too.
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Working hours from opening to the first acceptance, and to the (last) resolution,
    # on the working calendar of the time: the KPIs' medians, counted once.
    response_working_h: Mapped[float | None]
    resolution_working_h: Mapped[float | None]
    # How many times it was reopened after a resolution (rework).
    reopen_count: Mapped[int] = mapped_column(default=0)

    def _is_overdue(self, now: datetime) -> bool:
        return TicketStatus(self.status) in OPEN_STATUSES and self.due_at < now

    @classmethod
    def _is_overdue_in_sql(cls, now: datetime) -> ColumnElement[bool]:
        # Checked on each row an index walks, never searched by range: a queue's page
        # finds its newest overdue tickets among the newest tickets, where a range search
        # would fetch the scope's whole backlog and sort it for one page.
        return and_(cls.status.in_(OPEN_STATUSES), checked_per_row(cls.due_at) < now)

    # Open and past ``due_at``, the deadline that matters now: the answer while the ticket
    # is new, the fix after. (A category answers no later than it fixes —
    # ``ck_categories_resolve_after_respond`` — so a new ticket past its fix deadline is
    # past its answer deadline too.) ``ticket.is_overdue(now)`` in Python,
    # ``Ticket.is_overdue(now)`` in queries: the filter, the counts.
    is_overdue = hybrid_method(_is_overdue, _is_overdue_in_sql)


class TicketEvent(UuidPk, Base):
    """Something that happened to a ticket. Appended, never edited or deleted."""

    __tablename__ = "ticket_events"

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    actor_kind: Mapped[str] = mapped_column(String(16))  # rider, staff or system
    actor_id: Mapped[uuid.UUID | None]
    from_status: Mapped[TicketStatus | None] = mapped_column(str_enum(TicketStatus))
    to_status: Mapped[TicketStatus | None] = mapped_column(str_enum(TicketStatus))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship(lazy="raise")


class Verification(UuidPk, Base):
    """A rider passing a resolved ticket says whether it is really fixed."""

    __tablename__ = "verifications"
    __table_args__ = (
        UniqueConstraint("ticket_id", "rider_id"),
        Index("ix_verifications_platform_id_created_at", "platform_id", "created_at"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"))
    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"), index=True)
    # The rider's platform, copied so that a platform's numbers are one index range.
    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"))
    # The ticket's, as they were: for the platform's summary by category and street.
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    fixed: Mapped[bool]
    location: Mapped[WKBElement] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False, nullable=False)
    )
    distance_m: Mapped[float]
    note: Mapped[str | None] = mapped_column(Text)
    media_ids: Mapped[list[str] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

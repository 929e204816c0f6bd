import uuid
from datetime import date, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

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
from sqlalchemy.ext.hybrid import hybrid_method, hybrid_property
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import checked_per_row
from app.models.base import Base, Timestamps, UtcDateTime, UuidPk, str_enum, utcnow

if TYPE_CHECKING:
    from app.models.unit import Unit


class TicketStatus(StrEnum):
    NEW = "new"
    ACCEPTED = "accepted"
    IN_PROGRESS = "in_progress"
    DISPATCHED = "dispatched"  # 已派遣: a unit is to fix it
    AWAITING_CHECK = "awaiting_check"  # 待核查: the unit says it is done; the office checks
    SHELVED = "shelved"  # 挂账: cannot be fixed now; looked at again on a set date
    RESOLVED = "resolved"
    CLOSED = "closed"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


# What an office does to a ticket (the workflow's ``ACTIONS`` says from which status each
# may start and where it leads); recorded as its event's type. (No docstring: the OpenAPI
# schema of the actions a clerk may take would carry it.)
class TicketAction(StrEnum):
    ACCEPT = "accept"
    REJECT = "reject"
    ASSIGN = "assign"
    START = "start"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    TRANSFER = "transfer"
    MERGE = "merge"
    COMMENT = "comment"
    SET_PRIORITY = "set_priority"
    SET_PUBLIC_SUMMARY = "set_public_summary"
    HIDE_REPORT = "hide_report"
    UNHIDE_REPORT = "unhide_report"
    DISPATCH = "dispatch"
    ACKNOWLEDGE = "acknowledge"
    REPORT_DONE = "report_done"
    CHECK_PASS = "check_pass"
    CHECK_FAIL = "check_fail"
    RETURN = "return"
    REQUEST_EXTENSION = "request_extension"
    APPROVE_EXTENSION = "approve_extension"
    DENY_EXTENSION = "deny_extension"
    SHELVE = "shelve"
    UNSHELVE = "unshelve"
    RECATEGORISE = "recategorise"
    RELOCATE = "relocate"
    DEESCALATE = "deescalate"


class TicketEventType(StrEnum):
    """What else happens to a ticket: what riders, the clock and other tickets do. An
    event's type (``TicketEvent.type``) is one of these or a ``TicketAction``."""

    CREATED = "created"  # the first report opened it
    REPORT_JOINED = "report_joined"  # another report confirmed it
    MERGED_IN = "merged_in"  # another ticket was merged into this one
    VERIFIED = "verified"  # a rider passing by saw it fixed
    REOPENED = "reopened"  # a rider passing by saw it not fixed
    SLA_WARNING = "sla_warning"  # three quarters of the time to the deadline gone
    SLA_BREACHED = "sla_breached"
    ESCALATED = "escalated"  # 提级督办: late too long, reopened twice, or rated badly
    RATED = "rated"  # a reporter rated the fix (data: rating; note: the comment)
    AUTO_CLOSED = "auto_closed"
    PHOTO_PUBLISHED = "photo_published"  # staff published a blurred copy of a photo
    PHOTO_UNPUBLISHED = "photo_unpublished"


class ActorKind(StrEnum):
    """Who did it: a rider, a member of staff, or the service itself (its clock, a
    department's Open311 server)."""

    RIDER = "rider"
    STAFF = "staff"
    SYSTEM = "system"


# The sets of statuses, each written once; Python asks ``status in OPEN_STATUSES``, SQL
# ``Ticket.is_open`` (and ``is_resolved``, ``has_ended``).
# Not fixed yet: waiting for the office, a unit, the office's check, or (shelved) a date
# to be looked at again. Reports of the same problem join it.
OPEN_STATUSES = frozenset(
    {
        TicketStatus.NEW,
        TicketStatus.ACCEPTED,
        TicketStatus.IN_PROGRESS,
        TicketStatus.DISPATCHED,
        TicketStatus.AWAITING_CHECK,
        TicketStatus.SHELVED,
    }
)
# Open and on the clock: a shelved ticket is never overdue.
CLOCKED_STATUSES = OPEN_STATUSES - {TicketStatus.SHELVED}
# In a unit's hands: what its crew sees and acts on.
WITH_UNIT_STATUSES = frozenset(
    {TicketStatus.DISPATCHED, TicketStatus.IN_PROGRESS, TicketStatus.AWAITING_CHECK}
)
# The problem was fixed: resolved, and closed once the fix stood.
RESOLVED_STATUSES = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})
# Nothing more happens to it: closed, rejected, or merged into another (duplicate).
ENDED_STATUSES = frozenset({TicketStatus.CLOSED, TicketStatus.REJECTED, TicketStatus.DUPLICATE})
# What the public may see of: accepted by an office and not turned down or merged away
# (never while new — a transferred ticket is new again in its new street).
PUBLIC_STATUSES = frozenset(
    {
        TicketStatus.ACCEPTED,
        TicketStatus.IN_PROGRESS,
        TicketStatus.DISPATCHED,
        TicketStatus.AWAITING_CHECK,
        TicketStatus.SHELVED,
        TicketStatus.RESOLVED,
        TicketStatus.CLOSED,
    }
)
ENDED_UNPURGED = "purged_at IS NULL AND status IN ({})".format(
    ", ".join(f"'{s}'" for s in TicketStatus if s in ENDED_STATUSES)
)


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
        # A unit's work list: its tickets by deadline.
        Index("ix_tickets_unit_id_due_at", "unit_id", "due_at"),
        # The worker's look at shelved tickets due for review.
        Index(
            "ix_tickets_review_on",
            "review_on",
            postgresql_where=text("review_on IS NOT NULL"),
            sqlite_where=text("review_on IS NOT NULL"),
        ),
        # The forwarding worker's look at the tickets recategorised since its last sweep.
        Index(
            "ix_tickets_recategorised_at",
            "recategorised_at",
            postgresql_where=text("recategorised_at IS NOT NULL"),
            sqlite_where=text("recategorised_at IS NOT NULL"),
        ),
        Index(
            "ix_tickets_accepted_at",
            "accepted_at",
            postgresql_where=text("accepted_at IS NOT NULL"),
            sqlite_where=text("accepted_at IS NOT NULL"),
        ),
        # The worker's deadline marks: tickets whose marks are to be worked out, those
        # whose warning is to come, and those whose escalation is to come.
        Index(
            "ix_tickets_marks_unset",
            "created_at",
            postgresql_where=text("warn_at IS NULL"),
            sqlite_where=text("warn_at IS NULL"),
        ),
        Index(
            "ix_tickets_warn_at",
            "warn_at",
            postgresql_where=text("warned_at IS NULL"),
            sqlite_where=text("warned_at IS NULL"),
        ),
        Index(
            "ix_tickets_escalate_at",
            "escalate_at",
            postgresql_where=text("escalated_at IS NULL"),
            sqlite_where=text("escalated_at IS NULL"),
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
    # When its reports lost what the retention period no longer allows (app.privacy);
    # cleared when the ticket reopens, so that later reports are purged too.
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Working hours from opening to the first acceptance, and to the (last) resolution,
    # on the working calendar of the time: the KPIs' medians, counted once.
    response_working_h: Mapped[float | None]
    resolution_working_h: Mapped[float | None]
    # How many times it was reopened after a resolution (rework).
    reopen_count: Mapped[int] = mapped_column(default=0)
    # The office's words for the public, shown instead of the first report's.
    public_summary: Mapped[str | None] = mapped_column(Text)
    # How many of its reports the office hid from the public; and when it hid the last
    # one shown, which hides the ticket until the office shows a report again (a report
    # joining later does not: nobody has looked at it).
    hidden_report_count: Mapped[int] = mapped_column(default=0, server_default="0")
    hidden_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The unit it is dispatched to now (or last was, while it waits for the office's
    # check), and when whoever it waits on signed for it (签收).
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When the office first signed for it (an officer's or the district's first
    # ``acknowledge`` or ``accept``): set once, never cleared, for the figures of 签收.
    office_acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # An extension of the current deadline: asked for, then approved (the deadline
    # moved) or denied.
    extension_hours: Mapped[float | None]
    extension_reason: Mapped[str | None] = mapped_column(Text)
    extension_status: Mapped[str | None] = mapped_column(String(16))
    # The fix's deadline before the first approved extension moved it (None: never
    # moved): the KPI of fixes on time without more time.
    original_resolve_by: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # When an office last corrected its category: the forwarding worker looks again at
    # the tickets recategorised since its last sweep.
    recategorised_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # A shelved ticket's date to be looked at again (挂账).
    review_on: Mapped[date | None]
    escalated: Mapped[bool] = mapped_column(default=False, server_default="0")
    # A reporter rated the fix 2 or lower (不满意): the office looks at it again.
    dissatisfied: Mapped[bool] = mapped_column(default=False, server_default="0")
    # The current deadline's marks, worked out by the worker (``app.notify``) once the
    # deadline is set and cleared whenever it moves: three quarters of its time gone
    # (the warning), and late by the share of its time that escalates it; when each was
    # acted on.
    warn_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalate_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    unit: Mapped["Unit | None"] = relationship(lazy="select")

    @hybrid_property
    def is_open(self) -> bool:
        return TicketStatus(self.status) in OPEN_STATUSES

    @is_open.inplace.expression
    @classmethod
    def _is_open_in_sql(cls) -> ColumnElement[bool]:
        return cls.status.in_(OPEN_STATUSES)

    @hybrid_property
    def is_resolved(self) -> bool:
        return TicketStatus(self.status) in RESOLVED_STATUSES

    @is_resolved.inplace.expression
    @classmethod
    def _is_resolved_in_sql(cls) -> ColumnElement[bool]:
        return cls.status.in_(RESOLVED_STATUSES)

    @hybrid_property
    def has_ended(self) -> bool:
        return TicketStatus(self.status) in ENDED_STATUSES

    @has_ended.inplace.expression
    @classmethod
    def _has_ended_in_sql(cls) -> ColumnElement[bool]:
        return cls.status.in_(ENDED_STATUSES)

    @hybrid_property
    def is_public(self) -> bool:
        """The public rule: accepted, not turned down or merged away, and not hidden (every
        report hidden). Everything public (Open311's reads, the public pages) asks this."""
        return TicketStatus(self.status) in PUBLIC_STATUSES and self.hidden_at is None

    @is_public.inplace.expression
    @classmethod
    def _is_public_in_sql(cls) -> ColumnElement[bool]:
        return and_(cls.status.in_(PUBLIC_STATUSES), cls.hidden_at.is_(None))

    def _is_overdue(self, now: datetime) -> bool:
        return TicketStatus(self.status) in CLOCKED_STATUSES and self.due_at < now

    @classmethod
    def _is_overdue_in_sql(cls, now: datetime) -> ColumnElement[bool]:
        # Checked on each row an index walks, never searched by range: a queue's page
        # finds its newest overdue tickets among the newest tickets, where a range search
        # would fetch the scope's whole backlog and sort it for one page.
        return and_(cls.status.in_(CLOCKED_STATUSES), checked_per_row(cls.due_at) < now)

    # Open and past ``due_at``, the deadline that matters now: the answer while the ticket
    # is new, the fix after. (A category answers no later than it fixes —
    # ``ck_categories_resolve_after_respond`` — so a new ticket past its fix deadline is
    # past its answer deadline too.) ``ticket.is_overdue(now)`` in Python,
    # ``Ticket.is_overdue(now)`` in queries: the filter, the counts.
    is_overdue = hybrid_method(_is_overdue, _is_overdue_in_sql)


# The events somebody is told of (``app.notify``), which the worker reads in the order
# they happened from an index of their own.
NOTIFYING_EVENTS = (
    "created",
    "dispatch",
    "sla_warning",
    "sla_breached",
    "escalated",
    "reopen",
    "reopened",
    "request_extension",
    "rated",
    "transfer",
    "relocate",
)
NOTIFYING_SQL = "type IN ({})".format(", ".join(f"'{t}'" for t in NOTIFYING_EVENTS))


class TicketEvent(UuidPk, Base):
    """Something that happened to a ticket. Appended, never edited or deleted."""

    __tablename__ = "ticket_events"
    __table_args__ = (
        Index(
            "ix_ticket_events_notifying",
            "created_at",
            "id",
            postgresql_where=text(NOTIFYING_SQL),
            sqlite_where=text(NOTIFYING_SQL),
        ),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))  # a TicketAction or a TicketEventType
    actor_kind: Mapped[str] = mapped_column(String(16))  # an ActorKind
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

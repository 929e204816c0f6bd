"""The statements of a batch: the look-ups of its reports and the writes of what they become."""

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    and_,
    bindparam,
    exists,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.orm import aliased

from app import platforms
from app.db import (
    BatchConnection,
    Rows,
    advisory_locks,
    advisory_try_lock,
    first,
    insert_rows,
    lat_of,
    lon_of,
    point,
    unindexed,
    within_bbox,
)
from app.geo import metres_between
from app.intake.rules import Prepared
from app.models import (
    OPEN_STATUSES,
    IdempotencyRecord,
    Media,
    OutboxEvent,
    Platform,
    Report,
    ReportMedia,
    Rider,
    Ticket,
    TicketEvent,
    Webhook,
)
from app.riders import (
    ACTIVITY_TABLES,
    LEDGER_LINE,
    TOTAL_POINTS,
    TOTALS_CHANGE,
    activity_change,
    add_ledger_line,
    add_to_activity,
    add_to_totals,
)
from app.tickets import REFERENCE_TOKENS

# --- the statements -----------------------------------------------------------------


_OPEN = [literal(status.value) for status in sorted(OPEN_STATUSES)]
_WHEN = Report.received_at.type

# A report's look-up: who sends it, with which key, and where it may merge.
LOOK_UP: dict[str, Any] = {
    "rider_id": Rider.id.type,
    "key": IdempotencyRecord.key.type,
    "counted_since": _WHEN,
    "category_id": Integer(),
    "lon": Float(),
    "lat": Float(),
    "radius_m": Float(),
    "opened_since": _WHEN,
    "min_lon": Float(),
    "min_lat": Float(),
    "max_lon": Float(),
    "max_lat": Float(),
}


def look_up(p: Rows) -> Any:
    """One report's reads, in one row per open ticket of its category in reach (one row
    if there is none): its rider and platform (none if unknown), the first response to its
    key, its rider's reports of the last hour, whether its platform takes webhooks, and
    the ticket — where it is, when it was opened, whether the rider reported it. Each is
    read for the row, by its index (a nested read per row, whatever the planner thinks a
    batch's size is: ``LIMIT 1`` keeps PostgreSQL from turning the reads by key into
    joins of whole tables). Which ticket is nearest is decided in Python (one distance
    rule, :func:`metres_between`, where SpatiaLite's ellipsoid distance costs more than
    all of the statement's reads)."""
    reports = aliased(Report)
    rider = p.each(
        first(
            select(
                Rider.platform_id,
                and_(Platform.active, Rider.erased_at.is_(None)).label("active"),
                Rider.external_id,
            )
            .join(Platform, Platform.id == Rider.platform_id)
            .where(Rider.id == p.rider_id)
        ),
        "rider",
    )
    kept = p.each(
        first(
            select(
                IdempotencyRecord.request_hash,
                IdempotencyRecord.response_status,
                IdempotencyRecord.response_body,
            ).where(IdempotencyRecord.rider_id == p.rider_id, IdempotencyRecord.key == p.key)
        ),
        "kept",
    )
    reported = first(
        select(literal(1))
        .select_from(reports)
        .where(reports.ticket_id == Ticket.id, reports.rider_id == p.rider_id)
        .correlate(Ticket, p.source)
    ).scalar_subquery()
    in_reach = p.each(
        select(
            Ticket.id,
            Ticket.ref,
            lon_of(Ticket.location).label("lon"),
            lat_of(Ticket.location).label("lat"),
            Ticket.created_at,
            reported.label("reported"),
        )
        # The spatial index is the selective filter: a few tickets near the point, where
        # the category's b-tree would match every open ticket of the category.
        .where(
            unindexed(Ticket.category_id) == p.category_id,
            Ticket.status.in_(_OPEN),
            Ticket.created_at >= p.opened_since,
            within_bbox(Ticket.location, p.min_lon, p.min_lat, p.max_lon, p.max_lat),
        ),
        "in_reach",
    )
    # The window holds at most the limit's reports (the rest were refused), unless the
    # limit was lowered within the hour.
    recent = (
        select(func.count())
        .select_from(reports)
        .where(reports.rider_id == p.rider_id, reports.received_at > p.counted_since)
        .correlate(p.source)
        .scalar_subquery()
    )
    takes_webhooks = exists().where(Webhook.platform_id == rider.c.platform_id)
    return (
        select(
            p.ordinal,
            rider.c.platform_id,
            rider.c.active,
            rider.c.external_id,
            kept.c.request_hash,
            kept.c.response_status,
            kept.c.response_body,
            recent,
            takes_webhooks,
            in_reach.c.id,
            in_reach.c.ref,
            in_reach.c.lon,
            in_reach.c.lat,
            in_reach.c.created_at,
            in_reach.c.reported.is_not(None),
        )
        .select_from(p.source)
        .outerjoin(rider, true())
        .outerjoin(kept, true())
        .outerjoin(in_reach, true())
        .order_by(p.ordinal)
    )


PHOTO = {
    "rider_id": Media.rider_id.type,
    "media_id": Media.id.type,
    "uploaded_after": Media.created_at.type,
}


def owned_photo(p: Rows) -> Any:
    """A photo of a report, if its rider uploaded it, recently enough to use it."""
    return (
        select(p.ordinal, Media.id)
        .select_from(p.source)
        .outerjoin(
            Media,
            (Media.id == p.media_id)
            & (Media.rider_id == p.rider_id)
            & (Media.created_at >= p.uploaded_after),
        )
        .order_by(p.ordinal)
    )


def _columns(model: Any, *names: str) -> dict[str, Any]:
    return {name: model.__table__.c[name].type for name in names}


def _every_column(model: Any) -> dict[str, Any]:
    return {column.name: column.type for column in model.__table__.c}


_POINT = {"lon": Float(), "lat": Float()}
NEW_TICKET = {
    **_columns(
        Ticket,
        "id",
        "ref",
        "category_id",
        "status",
        "priority",
        "district_id",
        "street_id",
        "community_id",
        "report_count",
        "version",
        "created_at",
        "updated_at",
        "respond_by",
        "resolve_by",
    ),
    **_POINT,
}
TICKET_JOINED = {"ticket_id": Ticket.id.type, "joined": Integer(), "now": Ticket.updated_at.type}
NEW_REPORT = {
    **_columns(
        Report,
        "id",
        "rider_id",
        "platform_id",
        "ticket_id",
        "category_id",
        "outcome",
        "counted_as",
        "input_lat",
        "input_lon",
        "input_coord_sys",
        "accuracy_m",
        "description",
        "address_hint",
        "district_id",
        "street_id",
        "community_id",
        "observed_at",
        "received_at",
    ),
    **_POINT,
}
MEDIA_LINK = _columns(ReportMedia, "report_id", "media_id", "position")
NEW_EVENT = _every_column(TicketEvent)
KEPT_RESPONSE = _every_column(IdempotencyRecord)
NEW_OUTBOX_EVENT = _columns(
    OutboxEvent,
    *platforms.new_event(
        platform_id=uuid.UUID(int=0),
        type=platforms.EventType.POINTS_AWARDED,
        data={},
        now=datetime.min,
    ),
)
KEY_FREE = {"key": BigInteger()}


def _with_point(table: Any, types: dict[str, Any]) -> Callable[[Rows], Any]:
    columns = [name for name in types if name not in _POINT]

    def build(rows: Rows) -> Any:
        return insert_rows(table, rows, [*columns, "location"], location=point(rows.lon, rows.lat))

    return build


def join_tickets(rows: Rows) -> Any:
    """Count ``joined`` more reports on an open ticket; what it is now. Staff do not take
    the cell locks: if the ticket was resolved or merged since the look-up, its status is
    checked again here (and the batch begun again). An office may have accepted it
    meanwhile: the reports' standing, and their points, follow from what it returns."""
    return (
        update(Ticket)
        .where(Ticket.id == rows.ticket_id, Ticket.status.in_(_OPEN))
        .values(report_count=Ticket.report_count + rows.joined, updated_at=rows.now)
        .returning(
            rows.ordinal, Ticket.report_count, Ticket.status, Ticket.accepted_at, Ticket.street_id
        )
    )


class IntakeStatements:
    """The statements of a batch, compiled once for the writer's connection."""

    def __init__(self, connection: BatchConnection) -> None:
        p, each = connection.prepare, connection.prepare_rows
        self.tokens = p(REFERENCE_TOKENS)
        self.lock = p(select(advisory_locks(bindparam("keys"))))
        self.try_lock = each(
            lambda r: (
                select(r.ordinal, advisory_try_lock(r.key))
                .select_from(r.source)
                .order_by(r.ordinal)
            ),
            KEY_FREE,
        )
        self.look_up = each(look_up, LOOK_UP)
        self.owned_photo = each(owned_photo, PHOTO)
        self.open_ticket = each(_with_point(Ticket.__table__, NEW_TICKET), NEW_TICKET)
        self.join_tickets = each(join_tickets, TICKET_JOINED)
        self.add_report = each(_with_point(Report.__table__, NEW_REPORT), NEW_REPORT)
        self.link_media = each(
            lambda r: insert_rows(ReportMedia.__table__, r, list(MEDIA_LINK)), MEDIA_LINK
        )
        self.add_event = each(
            lambda r: insert_rows(TicketEvent.__table__, r, list(NEW_EVENT)), NEW_EVENT
        )
        self.add_line = each(add_ledger_line, LEDGER_LINE)
        self.remember = each(
            lambda r: insert_rows(IdempotencyRecord.__table__, r, list(KEPT_RESPONSE)),
            KEPT_RESPONSE,
        )
        self.add_to_totals = each(add_to_totals, TOTALS_CHANGE)
        self.add_to_activity = {
            model: each(add_to_activity(model, connection.dialect), activity_change(model))
            for model in ACTIVITY_TABLES
        }
        self.add_outbox_event = each(
            lambda r: insert_rows(OutboxEvent.__table__, r, list(NEW_OUTBOX_EVENT)),
            NEW_OUTBOX_EVENT,
        )
        self.total_points = p(TOTAL_POINTS)
        self.hour_of_reports = p(
            select(Report.received_at)
            .where(
                Report.rider_id == bindparam("rider_id", type_=Report.rider_id.type),
                Report.received_at > bindparam("counted_since", type_=_WHEN),
            )
            .order_by(Report.received_at)
        )


@dataclass(frozen=True)
class InReach:
    """An open ticket of a report's category in its search box."""

    id: uuid.UUID
    ref: str
    lon: float
    lat: float
    created_at: datetime
    reported: bool  # by the report's rider, already


@dataclass(frozen=True)
class Look:
    """What the look-up found for one report (see :func:`look_up`)."""

    platform_id: uuid.UUID
    platform_active: bool
    rider_external_id: str
    request_hash: str | None
    response_status: int | None
    response_body: dict[str, Any] | None
    recent: int
    takes_webhooks: bool
    in_reach: tuple[InReach, ...]

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]]) -> "Look | None":
        """From the look-up's rows for one report: None if its rider is unknown."""
        if not rows or rows[0][0] is None:
            return None
        tickets = tuple(InReach(*row[8:]) for row in rows if row[8] is not None)
        (
            platform_id,
            active,
            external_id,
            request_hash,
            response_status,
            response_body,
            recent,
            takes_webhooks,
        ) = rows[0][:8]
        return cls(
            platform_id,
            bool(active),
            external_id,
            request_hash,
            response_status,
            response_body,
            recent,
            bool(takes_webhooks),
            tickets,
        )

    def nearest(self, prepared: Prepared) -> tuple[float, InReach] | None:
        """The ticket this report merges into: the nearest within its category's radius,
        the oldest of equally near ones."""
        radius = prepared.category.dedup_radius_m
        found = [
            (metres_between(prepared.lon, prepared.lat, t.lon, t.lat), t.created_at, t)
            for t in self.in_reach
        ]
        near = [(metres, created, t) for metres, created, t in found if metres <= radius]
        if radius <= 0 or not near:
            return None
        metres, _, ticket = min(near, key=lambda item: (item[0], item[1]))
        return metres, ticket

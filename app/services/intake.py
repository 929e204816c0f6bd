"""A rider's report becomes part of a ticket: validated, converted, routed, merged or opened.

Everything for one report happens in the caller's transaction: the report, its photos'
links, the ticket it opens or joins and the ticket's event are stored together or not
at all.

Two riders reporting the same thing at the same instant must produce one ticket. On
PostgreSQL, the search for a ticket to join and the insert of a new one run under an
advisory lock per (category, grid cell) for every cell the search box touches, taken in
a fixed order: reports far apart never wait for each other, reports close together are
serialised, and the second one then sees the ticket the first committed (READ
COMMITTED takes a new snapshot per statement). A serializable retry would also be sound,
but would turn every such race into an aborted transaction and a second attempt. On
SQLite, write transactions begin IMMEDIATE and so already run one at a time.
"""

import math
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from geoalchemy2 import WKTElement
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, load_only
from sqlalchemy.orm.attributes import set_committed_value

from app.config import Settings
from app.db import bbox_around, distance_m, lock, point, unindexed, within_bbox
from app.errors import ObservedAtOutOfRange, RateLimited, UnknownCategory, UnknownMedia
from app.models import (
    OPEN_STATUSES,
    Category,
    Media,
    Report,
    ReportMedia,
    ReportOutcome,
    Rider,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from app.services.contributions import settle_new_report
from app.services.coords import CoordSys, to_wgs84
from app.services.routing import Route, route_point

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_REPORT_AGE = timedelta(days=7)
RATE_WINDOW = timedelta(hours=1)
# Reports within a category's radius of each other share at least one locked cell: each
# locks every cell its search box touches.
LOCK_CELL_DEG = 0.01
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U


@dataclass(frozen=True)
class ReportInput:
    category: str
    lat: float
    lon: float
    coord_sys: CoordSys
    accuracy_m: float | None
    description: str | None
    address_hint: str | None
    observed_at: datetime | None
    media_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class SubmittedReport:
    report: Report
    ticket: Ticket
    route: Route
    lon: float  # WGS-84
    lat: float


def wkt_point(lon: float, lat: float) -> WKTElement:
    return WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)


def new_ticket_ref() -> str:
    chars = "".join(secrets.choice(_REF_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


@dataclass(frozen=True)
class PreparedReport:
    """A report checked and routed, ready to be stored."""

    data: ReportInput
    category: Category
    observed_at: datetime
    lon: float  # WGS-84
    lat: float
    route: Route


def prepare_report(session: Session, *, rider: Rider, data: ReportInput, settings: Settings,
                   now: datetime) -> PreparedReport:
    """Everything that only reads: the category, the time window, the point and its
    street, the rider's photos. On SQLite this runs before the write lock is taken."""
    category = session.scalar(select(Category).where(Category.code == data.category,
                                                     Category.active.is_(True)))
    if category is None:
        raise UnknownCategory(f"no active category {data.category!r}",
                              errors=[{"field": "category", "message": "unknown category"}])
    observed_at = _check_observed_at(data.observed_at, now)
    lon, lat = to_wgs84(data.lon, data.lat, data.coord_sys)
    route = route_point(session, lon=lon, lat=lat, snap_m=settings.routing_snap_m)
    check_media_owner(session, rider, data.media_ids)
    return PreparedReport(data, category, observed_at, lon, lat, route)


def store_report(session: Session, *, rider: Rider, prepared: PreparedReport,
                 settings: Settings, now: datetime) -> SubmittedReport:
    """The writes, in a transaction that :func:`begin_writes` has opened for writing:
    the rate limit, then merge-or-open, then the report, its photos and the event."""
    data, category, route = prepared.data, prepared.category, prepared.route
    # Every lock this report needs, in one round trip: its rider's (for the rate limit)
    # and its category's cells (for merge-or-open).
    lock(session, ("rate", rider.id), *dedup_lock_names(category, prepared.lon, prepared.lat))
    _enforce_rate_limit(session, rider, settings, now)
    ticket, outcome = merge_or_open_ticket(session, category=category, lon=prepared.lon,
                                           lat=prepared.lat, route=route, now=now)
    report = Report(id=uuid.uuid4(), rider_id=rider.id, platform_id=rider.platform_id,
                    ticket=ticket,
                    category_id=category.id, outcome=outcome,
                    location=wkt_point(prepared.lon, prepared.lat),
                    input_lat=data.lat, input_lon=data.lon, input_coord_sys=data.coord_sys,
                    accuracy_m=data.accuracy_m, description=data.description,
                    address_hint=data.address_hint, district_id=route.district.id,
                    street_id=route.street.id if route.street else None,
                    community_id=route.community.id if route.community else None,
                    observed_at=prepared.observed_at, received_at=now)
    report.media_links = [ReportMedia(media_id=media_id, position=position)
                          for position, media_id in enumerate(data.media_ids)]
    session.add(report)
    event = TicketEvent(
        id=uuid.uuid4(), ticket=ticket, actor_kind="rider", actor_id=rider.id, created_at=now,
        type="created" if outcome is ReportOutcome.NEW_TICKET else "report_joined",
        to_status=TicketStatus.NEW if outcome is ReportOutcome.NEW_TICKET else None,
        data={"report_id": str(report.id)})
    session.add(event)
    settle_new_report(session, report, ticket, category, event, now)
    return SubmittedReport(report, ticket, route, prepared.lon, prepared.lat)


def _check_observed_at(observed_at: datetime | None, now: datetime) -> datetime:
    if observed_at is None:
        return now
    if observed_at > now + MAX_CLOCK_SKEW or observed_at < now - MAX_REPORT_AGE:
        raise ObservedAtOutOfRange(
            "observed_at may be at most 5 minutes ahead and 7 days behind the server's clock",
            errors=[{"field": "observed_at", "message": "out of range"}])
    return observed_at


def check_media_owner(session: Session, rider: Rider,
                      media_ids: tuple[uuid.UUID, ...]) -> None:
    if not media_ids:
        return
    owned = set(session.scalars(select(Media.id).where(Media.id.in_(media_ids),
                                                       Media.rider_id == rider.id)))
    missing = [str(m) for m in media_ids if m not in owned]
    if missing:
        raise UnknownMedia(f"photos not uploaded by this rider: {', '.join(missing)}",
                           errors=[{"field": "media_ids", "message": f"unknown: {m}"}
                                   for m in missing])


def _enforce_rate_limit(session: Session, rider: Rider, settings: Settings,
                        now: datetime) -> None:
    in_window = (Report.rider_id == rider.id, Report.received_at > now - RATE_WINDOW)
    count = session.scalar(select(func.count()).where(*in_window)) or 0
    limit = settings.rider_reports_per_hour
    if count >= limit:
        # One more report fits once enough of this hour's have aged out of the window:
        # the (count - limit + 1)-th oldest (the oldest, unless the limit was lowered).
        frees_up = session.scalar(select(Report.received_at).where(*in_window)
                                  .order_by(Report.received_at).offset(count - limit).limit(1))
        retry_after = max(1, math.ceil(((frees_up or now) + RATE_WINDOW - now).total_seconds()))
        raise RateLimited(f"at most {limit} reports an hour",
                          headers={"Retry-After": str(retry_after)}, retry_after=retry_after)


def dedup_lock_names(category: Category, lon: float,
                     lat: float) -> list[tuple[object, ...]]:
    """The locks of every grid cell that the dedup search box around (lon, lat) touches."""
    if category.dedup_radius_m <= 0:
        return []
    min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, category.dedup_radius_m)
    columns = range(math.floor(min_lon / LOCK_CELL_DEG), math.floor(max_lon / LOCK_CELL_DEG) + 1)
    rows = range(math.floor(min_lat / LOCK_CELL_DEG), math.floor(max_lat / LOCK_CELL_DEG) + 1)
    return [("dedup", category.id, x, y) for x in columns for y in rows]


def merge_or_open_ticket(session: Session, *, category: Category, lon: float, lat: float,
                         route: Route, now: datetime) -> tuple[Ticket, ReportOutcome]:
    """Join the nearest open ticket of this category in reach, or open a new one.

    The caller holds the locks of :func:`dedup_lock_names`.
    """
    here = point(lon, lat)
    if category.dedup_radius_m > 0:
        box = bbox_around(lon, lat, category.dedup_radius_m)
        distance = distance_m(Ticket.location, here)
        # The spatial index is the selective filter: a few tickets near the point, where
        # the category's b-tree would match every open ticket of the category.
        nearest = session.scalars(
            # What the receipt shows, not the geometry: this runs for every report.
            select(Ticket).options(load_only(Ticket.id, Ticket.ref, Ticket.status,
                                             Ticket.report_count, Ticket.accepted_at,
                                             Ticket.category_id, Ticket.street_id))
            .where(unindexed(Ticket.category_id) == category.id,
                   Ticket.status.in_(OPEN_STATUSES),
                   Ticket.created_at >= now - timedelta(hours=category.dedup_window_h),
                   within_bbox(Ticket.location, *box), distance <= category.dedup_radius_m)
            .order_by(distance, Ticket.created_at).limit(1)).first()
        if nearest is not None:
            # Staff do not take the cell locks: if the ticket was resolved or merged since
            # the search, PostgreSQL re-checks the status here and the report opens anew.
            # What it returns is the ticket as it stands now (an office may have accepted
            # it meanwhile): the report's standing, and its points, follow from that.
            joined = session.execute(
                update(Ticket).where(Ticket.id == nearest.id, Ticket.status.in_(OPEN_STATUSES))
                .values(report_count=Ticket.report_count + 1, updated_at=now)
                .returning(Ticket.report_count, Ticket.status, Ticket.accepted_at)).first()
            if joined is not None:
                for name, value in zip(("report_count", "status", "accepted_at"), joined,
                                       strict=True):
                    set_committed_value(nearest, name, value)
                return nearest, ReportOutcome.JOINED_TICKET
    ticket = Ticket(id=uuid.uuid4(), ref=new_ticket_ref(), category_id=category.id,
                    status=TicketStatus.NEW, priority=category.priority,
                    location=wkt_point(lon, lat),
                    district_id=route.district.id,
                    street_id=route.street.id if route.street else None,
                    community_id=route.community.id if route.community else None,
                    report_count=1, version=1, created_at=now, updated_at=now,
                    respond_by=now + timedelta(hours=category.respond_within_h),
                    resolve_by=now + timedelta(hours=category.resolve_within_h))
    session.add(ticket)
    return ticket, ReportOutcome.NEW_TICKET

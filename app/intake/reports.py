"""The rider's side of reports: receive one (idempotently), list them, look around."""

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from geoalchemy2.shape import to_shape
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.categories import category_codes
from app.db import distance_m, point, within_bbox
from app.errors import AppError, NotFound, UnknownCategory
from app.geo import CoordSys, bbox_around, from_wgs84, to_wgs84
from app.intake import idempotency
from app.intake.rules import Received, ReportInput
from app.intake.writer import IntakeWriter
from app.models import (
    Area,
    Category,
    Report,
    ReportMedia,
    Rider,
    Ticket,
    TicketEvent,
    TicketStatus,
)
from app.pagination import Page, PageRequest, newest_first_page


@dataclass(frozen=True)
class ReportSubmission:
    """A report as the API received it: its input, its key, and the fingerprint of its
    body (what a retry of the key must repeat)."""

    data: ReportInput
    key: str | None
    fingerprint: str


async def receive_report(
    writer: IntakeWriter, *, rider_id: uuid.UUID, submission: ReportSubmission, now: datetime
) -> Received:
    """Submit a report, or get the response to an earlier request with the same key."""
    if submission.key is not None:
        idempotency.check_key(submission.key)
    return await writer.submit(
        rider_id=rider_id,
        data=submission.data,
        key=submission.key,
        fingerprint=submission.fingerprint,
        now=now,
    )


async def receive_batch(
    writer: IntakeWriter,
    *,
    rider_id: uuid.UUID,
    items: Sequence[ReportSubmission | AppError],
    clock: Callable[[], datetime],
) -> list[Received | AppError]:
    """An offline queue, item by item, each exactly as a single ``POST /v1/reports``, in
    order: one bad item (refused as it was read, or by intake) never holds up or undoes
    the others."""
    outcomes: list[Received | AppError | None] = list(
        item if isinstance(item, AppError) else None for item in items
    )
    accepted: list[tuple[int, ReportSubmission]] = []
    for position, item in enumerate(items):
        if isinstance(item, AppError):
            continue
        if item.key is not None:
            try:
                idempotency.check_key(item.key)
            except AppError as refused:
                outcomes[position] = refused
                continue
        accepted.append((position, item))
    answers = writer.submit_all(
        rider_id=rider_id,
        reports=[(item.data, item.key, item.fingerprint, clock()) for _, item in accepted],
    )
    for (position, _), answer in zip(accepted, answers, strict=True):
        try:
            outcomes[position] = await answer
        except AppError as refused:
            outcomes[position] = refused
    return [outcome for outcome in outcomes if outcome is not None]


def _lon_lat(geometry: Any) -> tuple[float, float]:
    shape = to_shape(geometry)
    return shape.x, shape.y


@dataclass(frozen=True)
class ReportView:
    """A rider's report with what the rider sees of it: its category's code, its areas,
    its photos, and its ticket with that ticket's public timeline (status changes)."""

    report: Report
    ticket: Ticket
    categories: Mapping[int, str]
    areas: Mapping[int, Any]  # rows with .code and .name
    media_ids: list[str]
    timeline: list[tuple[TicketStatus, datetime]]


def list_reports(session: Session, *, rider: Rider, page: PageRequest) -> Page[ReportView]:
    """The rider's reports, newest first."""
    own = select(Report).where(Report.rider_id == rider.id)
    reports = newest_first_page(session, own, at=Report.received_at, id=Report.id, page=page)
    return Page(_report_views(session, reports.items), reports.next_cursor)


def get_report(session: Session, *, rider: Rider, report_id: uuid.UUID) -> ReportView:
    report = session.get(Report, report_id)
    if report is None or report.rider_id != rider.id:
        raise NotFound("no such report")
    return _report_views(session, [report])[0]


def _report_views(session: Session, reports: list[Report]) -> list[ReportView]:
    """``reports`` with their tickets, areas, photos and public timelines, in a fixed
    number of queries whatever the page size."""
    if not reports:
        return []
    ticket_ids = {r.ticket_id for r in reports}
    tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))}
    categories = category_codes(session)
    area_ids = {i for r in reports for i in (r.district_id, r.street_id, r.community_id) if i}
    areas = {
        a.id: a
        for a in session.execute(select(Area.id, Area.code, Area.name).where(Area.id.in_(area_ids)))
    }
    media: dict[uuid.UUID, list[str]] = {}
    for report_id, media_id in session.execute(
        select(ReportMedia.report_id, ReportMedia.media_id)
        .where(ReportMedia.report_id.in_([r.id for r in reports]))
        .order_by(ReportMedia.position)
    ):
        media.setdefault(report_id, []).append(str(media_id))
    timelines: dict[uuid.UUID, list[tuple[TicketStatus, datetime]]] = {}
    for ticket_id, status, at in session.execute(
        select(TicketEvent.ticket_id, TicketEvent.to_status, TicketEvent.created_at)
        # Status changes only: comments, assignments and their notes stay internal.
        .where(
            TicketEvent.ticket_id.in_(ticket_ids),
            TicketEvent.to_status.is_not(None),
            or_(
                TicketEvent.from_status.is_(None), TicketEvent.from_status != TicketEvent.to_status
            ),
        )
        .order_by(TicketEvent.created_at)
    ):
        if status is not None:  # (the query's filter: for the type checker)
            timelines.setdefault(ticket_id, []).append((TicketStatus(status), at))
    return [
        ReportView(
            r,
            tickets[r.ticket_id],
            categories,
            areas,
            media.get(r.id, []),
            timelines.get(r.ticket_id, []),
        )
        for r in reports
    ]


@dataclass(frozen=True)
class TicketNearby:
    ticket: Ticket
    category: str
    lon: float  # in the caller's coordinate system
    lat: float
    distance_m: float


def nearby_tickets(
    session: Session,
    *,
    lat: float,
    lon: float,
    coord_sys: CoordSys,
    radius_m: float,
    category: str | None,
    limit: int,
) -> list[TicketNearby]:
    """Open tickets within ``radius_m``, nearest first: "has somebody reported this?"."""
    if (
        category is not None
        and session.scalar(select(Category.id).where(Category.code == category)) is None
    ):
        raise UnknownCategory(
            f"no category {category!r}",
            errors=[{"field": "category", "message": "unknown category"}],
        )
    w_lon, w_lat = to_wgs84(lon, lat, coord_sys)
    distance = distance_m(Ticket.location, point(w_lon, w_lat)).label("distance")
    query = (
        select(Ticket, Category.code, distance)
        .join(Category, Category.id == Ticket.category_id)
        .where(
            Ticket.is_open,
            within_bbox(Ticket.location, *bbox_around(w_lon, w_lat, radius_m)),
            distance_m(Ticket.location, point(w_lon, w_lat)) <= radius_m,
        )
        .order_by(distance, Ticket.id)
        .limit(limit)
    )
    if category is not None:
        query = query.where(Category.code == category)
    found = []
    for ticket, code, metres in session.execute(query):
        t_lon, t_lat = from_wgs84(*_lon_lat(ticket.location), coord_sys)
        found.append(TicketNearby(ticket, code, t_lon, t_lat, round(metres, 1)))
    return found

"""The rider's side of reports: receive one (idempotently), list them, look around."""

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from geoalchemy2.shape import to_shape
from pydantic import ValidationError
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.db import bbox_around, distance_m, point, within_bbox
from app.errors import AppError, NotFound, UnknownCategory, validation_problem
from app.models import (
    OPEN_STATUSES,
    Area,
    Category,
    Report,
    ReportMedia,
    Rider,
    Ticket,
    TicketEvent,
)
from app.schemas.reports import (
    AreaRefRead,
    BatchReportCreate,
    BatchResult,
    NearbyTicket,
    ReportCreate,
    ReportRead,
    ReportReceipt,
    ReportTicket,
    RoutedArea,
    TimelineEntry,
)
from app.services import idempotency
from app.services.coords import CoordSys, from_wgs84, to_wgs84
from app.services.intake import IntakeWriter, Received, ReportInput
from app.services.pagination import Page, newest_first_page

# The report's own fields only: a batch item's idempotency_key is not part of its body.
_REPORT_FIELDS = set(ReportCreate.model_fields)


def _fingerprint(body: ReportCreate) -> str:
    payload = body.model_dump(mode="json", include=_REPORT_FIELDS)
    if body.observed_at is not None:  # one instant, whatever offset the phone wrote it in
        payload["observed_at"] = body.observed_at.astimezone(UTC).isoformat()
    return idempotency.request_hash(payload)


async def receive_report(writer: IntakeWriter, *, rider_id: uuid.UUID, body: ReportCreate,
                         idempotency_key: str | None, now: datetime) -> Received:
    """Submit a report, or get the response to an earlier request with the same key."""
    if idempotency_key is not None:
        idempotency.check_key(idempotency_key)
    return await writer.submit(rider_id=rider_id, data=_input(body), key=idempotency_key,
                               fingerprint=_fingerprint(body), now=now)


async def receive_batch(writer: IntakeWriter, *, rider_id: uuid.UUID,
                        items: list[dict[str, Any]],
                        clock: Callable[[], datetime]) -> list[BatchResult]:
    """An offline queue, item by item, each exactly as a single ``POST /v1/reports``, in
    order: one bad item never holds up or undoes the others."""
    results: list[BatchResult | None] = [None] * len(items)
    accepted: list[tuple[int, str | None, BatchReportCreate]] = []
    for position, raw in enumerate(items):
        key = raw.get("idempotency_key")
        key = key if isinstance(key, str) else None
        try:
            item = BatchReportCreate.model_validate(raw)
            if item.idempotency_key is not None:
                idempotency.check_key(item.idempotency_key)
        except ValidationError as exc:
            results[position] = BatchResult(idempotency_key=key, status=422,
                                            problem=validation_problem(exc.errors()))
        except AppError as exc:
            results[position] = _refused(key, exc)
        else:
            accepted.append((position, key, item))
    answers = writer.submit_all(rider_id=rider_id, reports=[
        (_input(item), item.idempotency_key, _fingerprint(item), clock())
        for _, _, item in accepted])
    for (position, key, _), answer in zip(accepted, answers, strict=True):
        try:
            received = await answer
        except AppError as exc:
            results[position] = _refused(key, exc)
        else:
            results[position] = BatchResult(idempotency_key=key, status=received.status,
                                            replayed=received.replayed,
                                            report=ReportReceipt.model_validate(received.body))
    return [result for result in results if result is not None]


def _refused(key: str | None, error: AppError) -> BatchResult:
    return BatchResult(idempotency_key=key, status=error.status, problem=error.to_problem())


def _input(body: ReportCreate) -> ReportInput:
    return ReportInput(category=body.category, lat=body.lat, lon=body.lon,
                       coord_sys=body.coord_sys, accuracy_m=body.accuracy_m,
                       description=body.description, address_hint=body.address_hint,
                       observed_at=body.observed_at, media_ids=tuple(dict.fromkeys(body.media_ids)))


def _lon_lat(geometry: Any) -> tuple[float, float]:
    shape = to_shape(geometry)
    return shape.x, shape.y


def list_reports(session: Session, *, rider: Rider, limit: int,
                 cursor: str | None) -> Page[ReportRead]:
    """The rider's reports, newest first."""
    page = newest_first_page(session, select(Report).where(Report.rider_id == rider.id),
                             at=Report.received_at, id=Report.id, limit=limit, cursor=cursor)
    return Page(_report_reads(session, page.items), page.next_cursor)


def get_report(session: Session, *, rider: Rider, report_id: uuid.UUID) -> ReportRead:
    report = session.get(Report, report_id)
    if report is None or report.rider_id != rider.id:
        raise NotFound("no such report")
    return _report_reads(session, [report])[0]


def _report_reads(session: Session, reports: list[Report]) -> list[ReportRead]:
    """Reads of ``reports`` with their tickets, areas, photos and public timelines,
    in a fixed number of queries whatever the page size."""
    if not reports:
        return []
    ticket_ids = {r.ticket_id for r in reports}
    tickets = {t.id: t for t in session.scalars(select(Ticket).where(Ticket.id.in_(ticket_ids)))}
    categories: dict[int, str] = dict(session.execute(select(Category.id, Category.code)).all())
    area_ids = {i for r in reports for i in (r.district_id, r.street_id, r.community_id) if i}
    areas = {a.id: a for a in session.execute(select(Area.id, Area.code, Area.name)
                                              .where(Area.id.in_(area_ids)))}
    media: dict[uuid.UUID, list[str]] = {}
    for report_id, media_id in session.execute(
            select(ReportMedia.report_id, ReportMedia.media_id)
            .where(ReportMedia.report_id.in_([r.id for r in reports]))
            .order_by(ReportMedia.position)):
        media.setdefault(report_id, []).append(str(media_id))
    timelines: dict[uuid.UUID, list[TimelineEntry]] = {}
    for ticket_id, status, at in session.execute(
            select(TicketEvent.ticket_id, TicketEvent.to_status, TicketEvent.created_at)
            # Status changes only: comments, assignments and their notes stay internal.
            .where(TicketEvent.ticket_id.in_(ticket_ids), TicketEvent.to_status.is_not(None),
                   or_(TicketEvent.from_status.is_(None),
                       TicketEvent.from_status != TicketEvent.to_status))
            .order_by(TicketEvent.created_at)):
        timelines.setdefault(ticket_id, []).append(TimelineEntry(status=status, at=at))

    def ref(area_id: int | None) -> AreaRefRead | None:
        area = areas.get(area_id) if area_id else None
        return AreaRefRead(code=area.code, name=area.name) if area else None

    reads = []
    for r in reports:
        ticket = tickets[r.ticket_id]
        lon, lat = _lon_lat(r.location)
        reads.append(ReportRead(
            id=str(r.id), category=categories[r.category_id], outcome=r.outcome, lat=lat,
            lon=lon, accuracy_m=r.accuracy_m, description=r.description,
            address_hint=r.address_hint, media_ids=media.get(r.id, []),
            area=RoutedArea(district=ref(r.district_id), street=ref(r.street_id),  # type: ignore[arg-type]
                            community=ref(r.community_id)),
            received_at=r.received_at, observed_at=r.observed_at,
            ticket=ReportTicket(id=str(ticket.id), ref=ticket.ref, status=ticket.status,
                                report_count=ticket.report_count,
                                category=categories[ticket.category_id],
                                timeline=timelines.get(ticket.id, []))))
    return reads


def nearby_tickets(session: Session, *, lat: float, lon: float, coord_sys: CoordSys,
                   radius_m: float, category: str | None, limit: int) -> list[NearbyTicket]:
    """Open tickets within ``radius_m``, nearest first: "has somebody reported this?"."""
    if category is not None and session.scalar(
            select(Category.id).where(Category.code == category)) is None:
        raise UnknownCategory(f"no category {category!r}",
                              errors=[{"field": "category", "message": "unknown category"}])
    w_lon, w_lat = to_wgs84(lon, lat, coord_sys)
    distance = distance_m(Ticket.location, point(w_lon, w_lat)).label("distance")
    query = (select(Ticket, Category.code, distance)
             .join(Category, Category.id == Ticket.category_id)
             .where(Ticket.status.in_(OPEN_STATUSES),
                    within_bbox(Ticket.location, *bbox_around(w_lon, w_lat, radius_m)),
                    distance_m(Ticket.location, point(w_lon, w_lat)) <= radius_m)
             .order_by(distance, Ticket.id).limit(limit))
    if category is not None:
        query = query.where(Category.code == category)
    found = []
    for ticket, code, metres in session.execute(query):
        t_lon, t_lat = from_wgs84(*_lon_lat(ticket.location), coord_sys)
        found.append(NearbyTicket(id=str(ticket.id), ref=ticket.ref, category=code,
                                  status=ticket.status, report_count=ticket.report_count,
                                  lat=t_lat, lon=t_lon, distance_m=round(metres, 1),
                                  created_at=ticket.created_at))
    return found

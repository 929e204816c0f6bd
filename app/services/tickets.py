"""Tickets as street-office staff see them."""

import uuid
from collections.abc import Sequence
from datetime import datetime

from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import NotFound
from app.models import (
    Area,
    Category,
    Platform,
    Report,
    ReportMedia,
    Rider,
    Staff,
    Ticket,
    TicketEvent,
)
from app.schemas.office import (
    QueueTicket,
    RiderRef,
    TicketDetail,
    TicketEventRead,
    TicketReport,
)
from app.schemas.reports import AreaRefRead, RoutedArea
from app.services.scope import ticket_scope_filter
from app.services.workflow import allowed_actions


def ticket_in_scope(session: Session, staff: Staff, ticket_id: uuid.UUID) -> Ticket:
    ticket = session.scalar(select(Ticket).where(Ticket.id == ticket_id,
                                                 ticket_scope_filter(staff)))
    if ticket is None:
        raise NotFound("no such ticket in your scope")
    return ticket


def ticket_detail(session: Session, ticket: Ticket, now: datetime) -> TicketDetail:
    area_ids = [i for i in (ticket.district_id, ticket.street_id, ticket.community_id) if i]
    areas = {a.id: AreaRefRead(code=a.code, name=a.name) for a in session.execute(
        select(Area.id, Area.code, Area.name).where(Area.id.in_(area_ids)))}
    reports = session.execute(
        select(Report, Platform.code, Rider.pseudonym)
        .join(Rider, Rider.id == Report.rider_id).join(Platform, Platform.id == Rider.platform_id)
        .where(Report.ticket_id == ticket.id).order_by(Report.received_at)).all()
    media: dict[uuid.UUID, list[str]] = {}
    for report_id, media_id in session.execute(
            select(ReportMedia.report_id, ReportMedia.media_id)
            .where(ReportMedia.report_id.in_([r.id for r, _, _ in reports]))
            .order_by(ReportMedia.position)):
        media.setdefault(report_id, []).append(str(media_id))
    events = session.execute(
        select(TicketEvent, Staff.username).outerjoin(Staff, Staff.id == TicketEvent.actor_id)
        .where(TicketEvent.ticket_id == ticket.id).order_by(TicketEvent.created_at)).all()
    duplicate_of = session.scalar(select(Ticket.ref).where(Ticket.id == ticket.duplicate_of_id)) \
        if ticket.duplicate_of_id else None
    point = to_shape(ticket.location)

    def report_read(report: Report, platform: str, pseudonym: str) -> TicketReport:
        where = to_shape(report.location)
        return TicketReport(id=str(report.id), rider=RiderRef(platform=platform,
                                                              pseudonym=pseudonym),
                            lat=where.y, lon=where.x, description=report.description,
                            address_hint=report.address_hint,
                            media_ids=media.get(report.id, []),
                            observed_at=report.observed_at, received_at=report.received_at)

    return TicketDetail(
        id=str(ticket.id), ref=ticket.ref, status=ticket.status,
        category=session.scalar(select(Category.code)
                                .where(Category.id == ticket.category_id)) or "",
        priority=ticket.priority, lat=point.y, lon=point.x,
        area=RoutedArea(district=areas[ticket.district_id],
                        street=areas.get(ticket.street_id) if ticket.street_id else None,
                        community=areas.get(ticket.community_id)
                        if ticket.community_id else None),
        report_count=ticket.report_count, assignee=ticket.assignee,
        reject_reason=ticket.reject_reason, duplicate_of=duplicate_of,
        respond_by=ticket.respond_by, resolve_by=ticket.resolve_by,
        overdue=ticket.is_overdue(now), version=ticket.version,
        allowed_actions=allowed_actions(ticket.status), created_at=ticket.created_at,
        updated_at=ticket.updated_at, accepted_at=ticket.accepted_at,
        resolved_at=ticket.resolved_at, closed_at=ticket.closed_at,
        reports=[report_read(*row) for row in reports],
        events=[TicketEventRead(id=str(e.id), type=e.type,
                                actor=username or e.actor_kind, from_status=e.from_status,
                                to_status=e.to_status, note=e.note, at=e.created_at)
                for e, username in events])


def ticket_summaries(session: Session, tickets: Sequence[Ticket],
                     now: datetime) -> list[QueueTicket]:
    """Queue rows for ``tickets``, with their category and area codes in two queries."""
    categories = {c.id: c.code for c in session.execute(select(Category.id, Category.code))}
    area_ids = {i for t in tickets for i in (t.street_id, t.community_id) if i}
    codes = {a.id: a.code for a in session.execute(
        select(Area.id, Area.code).where(Area.id.in_(area_ids)))} if area_ids else {}
    summaries = []
    for t in tickets:
        point = to_shape(t.location)
        summaries.append(QueueTicket(
            id=str(t.id), ref=t.ref, status=t.status, category=categories[t.category_id],
            priority=t.priority, lat=point.y, lon=point.x,
            street=codes.get(t.street_id) if t.street_id else None,
            community=codes.get(t.community_id) if t.community_id else None,
            report_count=t.report_count, assignee=t.assignee, created_at=t.created_at,
            respond_by=t.respond_by, resolve_by=t.resolve_by, overdue=t.is_overdue(now)))
    return summaries

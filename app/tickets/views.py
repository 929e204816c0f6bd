"""Tickets as street-office staff see them."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import among
from app.errors import NotFound
from app.masking import mask_personal_details
from app.media import AFTER_WORK, WORK_UNDONE, photos_of_events
from app.models import (
    ActorKind,
    Area,
    Category,
    Platform,
    PublicPhoto,
    Report,
    ReportMedia,
    Rider,
    Staff,
    StaffPhoto,
    Ticket,
    TicketEvent,
)
from app.staff import ticket_scope_filter


def ticket_in_scope(session: Session, staff: Staff, *, ticket_id: uuid.UUID) -> Ticket:
    ticket = session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, ticket_scope_filter(staff))
    )
    if ticket is None:
        raise NotFound("no such ticket in your scope")
    return ticket


@dataclass(frozen=True)
class NamedArea:
    code: str
    name: str
    name_en: str | None = None


@dataclass(frozen=True)
class ReportOnTicket:
    report: Report
    platform: str  # the rider's platform's code
    pseudonym: str
    media_ids: list[str]
    public_media_ids: list[str]  # of those, the ones whose blurred copy is published
    # The rider's words as the viewer reads them (a unit's crew: personal details masked).
    description: str | None = None
    address_hint: str | None = None


@dataclass(frozen=True)
class EventOnTicket:
    event: TicketEvent
    actor: str  # "rider", "system", or the staff member's username
    photos: list[StaffPhoto] = field(default_factory=list)  # those staff showed with it
    note: str | None = None  # as the viewer reads it (a rider's, masked for a crew)


@dataclass(frozen=True)
class TicketView:
    """A ticket with what staff see of it: its category's code, its areas, the ticket
    it duplicates, its reports and its events."""

    ticket: Ticket
    category: str
    areas: Mapping[int, NamedArea]
    duplicate_of: str | None
    reports: list[ReportOnTicket]
    events: list[EventOnTicket]

    @property
    def work_photos(self) -> list[StaffPhoto]:
        """The photos of the work as it stands: those shown with the unit's report, the
        check or the resolution since the work was last found wanting (a failed check, a
        reopening) — the "after" the office sets beside the reports' "before"."""
        shown: list[StaffPhoto] = []
        for e in self.events:
            if e.event.type in WORK_UNDONE:
                shown = []
            elif e.event.type in AFTER_WORK:
                shown += e.photos
        return shown


@dataclass(frozen=True)
class QueueRow:
    """A ticket as a row of the queue: with its category's, street's and community's
    codes."""

    ticket: Ticket
    category: str
    street: str | None
    community: str | None
    category_name: str = ""  # in Chinese, as the office names them
    street_name: str | None = None
    community_name: str | None = None
    standard: Mapping[str, str] | None = None  # the category's national classification


def ticket_view(session: Session, ticket: Ticket, *, for_crew: bool = False) -> TicketView:
    """The ticket as staff see it; ``for_crew``, as a unit's crew does: the riders' words
    (their reports' descriptions and address hints, their notes in events) with personal
    details masked — a crew never learns who reported it, nor how to reach them."""

    def said(text: str | None) -> str | None:
        return mask_personal_details(text) if for_crew else text

    area_ids = [i for i in (ticket.district_id, ticket.street_id, ticket.community_id) if i]
    areas = {
        a.id: NamedArea(a.code, a.name, a.name_en)
        for a in session.execute(
            select(Area.id, Area.code, Area.name, Area.name_en).where(Area.id.in_(area_ids))
        )
    }
    reports = session.execute(
        select(Report, Platform.code, Rider.pseudonym)
        .join(Rider, Rider.id == Report.rider_id)
        .join(Platform, Platform.id == Rider.platform_id)
        .where(Report.ticket_id == ticket.id)
        .order_by(Report.received_at)
    ).all()
    # Each report's photos, and which of them have a published copy: one query.
    media: dict[uuid.UUID, list[str]] = {}
    published: set[str] = set()
    for report_id, media_id, public_id in session.execute(
        select(ReportMedia.report_id, ReportMedia.media_id, PublicPhoto.media_id)
        .join(Report, Report.id == ReportMedia.report_id)
        .outerjoin(PublicPhoto, PublicPhoto.media_id == ReportMedia.media_id)
        .where(Report.ticket_id == ticket.id)
        .order_by(ReportMedia.position)
    ):
        media.setdefault(report_id, []).append(str(media_id))
        if public_id is not None:
            published.add(str(media_id))
    events = session.execute(
        select(TicketEvent, Staff.username)
        .outerjoin(Staff, Staff.id == TicketEvent.actor_id)
        .where(TicketEvent.ticket_id == ticket.id)
        .order_by(TicketEvent.created_at)
    ).all()
    photos = photos_of_events(session, [event.id for event, _ in events])
    duplicate_of = (
        session.scalar(select(Ticket.ref).where(Ticket.id == ticket.duplicate_of_id))
        if ticket.duplicate_of_id
        else None
    )
    return TicketView(
        ticket=ticket,
        category=session.scalar(select(Category.code).where(Category.id == ticket.category_id))
        or "",
        areas=areas,
        duplicate_of=duplicate_of,
        reports=[
            ReportOnTicket(
                report,
                platform,
                pseudonym,
                media.get(report.id, []),
                [m for m in media.get(report.id, []) if m in published],
                description=said(report.description),
                address_hint=said(report.address_hint),
            )
            for report, platform, pseudonym in reports
        ],
        events=[
            EventOnTicket(
                event,
                username or event.actor_kind,
                photos.get(event.id, []),
                note=said(event.note) if event.actor_kind == ActorKind.RIDER else event.note,
            )
            for event, username in events
        ],
    )


@dataclass(frozen=True)
class FirstSight:
    """What a ticket's reports first said of where it is and of what it is, and showed."""

    address: str | None
    photo_id: uuid.UUID | None
    words: str | None = None


def first_sights(session: Session, tickets: Sequence[Ticket]) -> dict[uuid.UUID, FirstSight]:
    """For each of ``tickets``, its earliest address hint, words and photo, in one query."""
    found: dict[uuid.UUID, FirstSight] = {}
    for ticket_id, address, words, photo_id in session.execute(
        select(Report.ticket_id, Report.address_hint, Report.description, ReportMedia.media_id)
        .outerjoin(ReportMedia, ReportMedia.report_id == Report.id)
        .where(Report.ticket_id.in_([t.id for t in tickets]))
        .order_by(Report.received_at, ReportMedia.position)
    ):
        seen = found.get(ticket_id, FirstSight(None, None))
        found[ticket_id] = FirstSight(
            seen.address or address, seen.photo_id or photo_id, seen.words or words
        )
    return found


def queue_rows(session: Session, tickets: Sequence[Ticket]) -> list[QueueRow]:
    """Queue rows for ``tickets``, with their category's and areas' codes and names in
    two queries."""
    categories = {
        c.id: c
        for c in session.execute(
            select(Category.id, Category.code, Category.name_zh, Category.standard)
        )
    }
    area_ids = {i for t in tickets for i in (t.street_id, t.community_id) if i}
    areas = (
        {
            a.id: NamedArea(a.code, a.name)
            for a in session.execute(
                select(Area.id, Area.code, Area.name).where(
                    among(Area.id, area_ids, session=session)
                )
            )
        }
        if area_ids
        else {}
    )

    def named(area_id: int | None) -> tuple[str | None, str | None]:
        area = areas.get(area_id) if area_id else None
        return (area.code, area.name) if area else (None, None)

    def row(t: Ticket) -> QueueRow:
        category = categories[t.category_id]
        (street, street_name), (community, community_name) = (
            named(t.street_id),
            named(t.community_id),
        )
        return QueueRow(
            t,
            category.code,
            street,
            community,
            category_name=category.name_zh,
            street_name=street_name,
            community_name=community_name,
            standard=category.standard,
        )

    return [row(t) for t in tickets]

"""What the public sees of tickets: the one rule, and the public's words, photos and
figures built on it.

The rule (``Ticket.is_public``): accepted by an office, not turned down or merged away,
and not every report hidden. Its words: the office's ``public_summary``, else the first
shown report's words with personal details masked; its photos: only the copies staff
published, of reports not hidden. Open311's reads and the public pages all come here.
"""

import logging
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from threading import Lock, Thread
from types import MappingProxyType
from typing import Any

import shapely
from geoalchemy2 import WKBElement
from geoalchemy2.shape import to_shape
from sqlalchemy import Select, case, func, select
from sqlalchemy.orm import Session, undefer

from app.db import DATABASE, Database, among, hours_between, median_by, within_bbox
from app.errors import NotFound, ValidationFailed
from app.masking import mask_personal_details
from app.models import (
    RESOLVED_STATUSES,
    Area,
    AreaLevel,
    Category,
    PublicPhoto,
    Report,
    ReportMedia,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketStatus,
)
from app.pagination import Page, PageRequest, newest_first_page

# The public pages show the last 90 days.
WINDOW = timedelta(days=90)
MAX_MAP_POINTS = 1000
# The events whose note the office means for the public: what was done about it, and why
# it was taken up again.
PUBLIC_NOTES = (TicketAction.RESOLVE, TicketAction.REOPEN)


# A public point is rounded to about ten metres: where the problem is, not exactly where
# a rider stood when they reported it.
PUBLIC_DECIMALS = 4


def public_point(ticket: Ticket) -> tuple[float, float]:
    """The ticket's place as the public gets it: (lon, lat), WGS-84, rounded."""
    return public_points([ticket])[0]


def public_place(lon: float, lat: float) -> tuple[float, float]:
    """A point read as numbers, as the public gets it: (lon, lat), rounded."""
    return round(lon, PUBLIC_DECIMALS), round(lat, PUBLIC_DECIMALS)


def public_points(tickets: Sequence[Ticket]) -> list[tuple[float, float]]:
    """:func:`public_point` of each of ``tickets``, their geometries read in one call (a
    page of a thousand, one at a time, spends more on each call than on its point)."""
    if not tickets:
        return []
    places = shapely.get_coordinates(shapely.from_wkb([_wkb(t.location) for t in tickets])).round(
        PUBLIC_DECIMALS
    )
    return [(float(lon), float(lat)) for lon, lat in places]


def _wkb(location: Any) -> bytes | str:
    """A point as (E)WKB, bytes or hex, as it came from the database; one this session
    has just written is still the WKT it was given."""
    if isinstance(location, WKBElement):
        data = location.data
        return bytes(data) if isinstance(data, memoryview) else data
    return to_shape(location).wkb


@dataclass(frozen=True)
class PublicReply:
    """A word of the office to the public: how it fixed the problem, why it took it up
    again."""

    at: datetime
    status: str
    note: str


@dataclass(frozen=True)
class PublishedPhotoRef:
    """A published copy as a page links it: its photo's id and the copy's version (a
    new copy is a new URL, so that a cache never shows a withdrawn or replaced one)."""

    media_id: uuid.UUID
    version: str


def copy_version(copy: PublicPhoto) -> str:
    return copy.sha256[:16]


@dataclass(frozen=True)
class PublicWords:
    """What the public reads and sees of one ticket beyond its status and place."""

    description: str | None
    address: str | None
    photos: tuple[PublishedPhotoRef, ...]  # the published copies, in report order
    note: str | None  # the office's public word on the status it is in now
    replies: tuple[PublicReply, ...] = ()  # all of them, oldest first


def public_words(session: Session, tickets: Sequence[Ticket]) -> dict[uuid.UUID, PublicWords]:
    """The public words of ``tickets`` (public ones: the caller filtered by the rule), in
    three queries whatever their number."""
    ids = [t.id for t in tickets]
    if not ids:
        return {}
    of_these = among(Report.ticket_id, ids, session=session)
    # The words of each ticket's first shown report that has some (the place's words with
    # them), else of its first shown report: ranked in the database, one row a ticket.
    wordless = case((func.coalesce(Report.description, "") == "", 1), else_=0)
    ranked = (
        select(
            Report.ticket_id,
            Report.description,
            Report.address_hint,
            func.row_number()
            .over(
                partition_by=Report.ticket_id,
                order_by=(wordless, Report.received_at, Report.id),
            )
            .label("rank"),
        )
        .where(of_these, Report.hidden_at.is_(None))
        .subquery()
    )
    first: dict[uuid.UUID, tuple[str | None, str | None]] = {
        ticket_id: (description or None, address)
        for ticket_id, description, address in session.execute(
            select(ranked.c.ticket_id, ranked.c.description, ranked.c.address_hint).where(
                ranked.c.rank == 1
            )
        )
    }
    photos: dict[uuid.UUID, list[PublishedPhotoRef]] = {}
    for ticket_id, media_id, sha256 in session.execute(
        select(Report.ticket_id, PublicPhoto.media_id, PublicPhoto.sha256)
        .join(ReportMedia, ReportMedia.media_id == PublicPhoto.media_id)
        .join(Report, Report.id == ReportMedia.report_id)
        .where(of_these, Report.hidden_at.is_(None))
        .order_by(Report.received_at, ReportMedia.position)
    ):
        listed = photos.setdefault(ticket_id, [])
        if media_id not in [p.media_id for p in listed]:
            listed.append(PublishedPhotoRef(media_id, sha256[:16]))
    statuses = {t.id: t.status for t in tickets}
    notes: dict[uuid.UUID, str | None] = {}
    replies: dict[uuid.UUID, list[PublicReply]] = {}
    for ticket_id, to_status, note, at in session.execute(
        select(
            TicketEvent.ticket_id, TicketEvent.to_status, TicketEvent.note, TicketEvent.created_at
        )
        .where(among(TicketEvent.ticket_id, ids, session=session))
        .where(TicketEvent.type.in_(PUBLIC_NOTES))
        .order_by(TicketEvent.created_at)
    ):
        if note:
            masked = mask_personal_details(note) or ""
            replies.setdefault(ticket_id, []).append(PublicReply(at, str(to_status), masked))
        # The latest word on the status the ticket is in now: a resolution note no
        # longer speaks once a rider has reopened the ticket.
        if to_status == statuses[ticket_id]:
            notes[ticket_id] = note
        else:
            notes.pop(ticket_id, None)
    return {
        t.id: PublicWords(
            description=t.public_summary or mask_personal_details(first.get(t.id, (None, None))[0]),
            # An office that wrote the public's words chose the place's words too.
            address=None
            if t.public_summary
            else mask_personal_details(first.get(t.id, (None, None))[1]),
            photos=tuple(photos.get(t.id, ())),
            note=mask_personal_details(notes.get(t.id)),
            replies=tuple(replies.get(t.id, ())),
        )
        for t in tickets
    }


def public_ticket_by_ref(session: Session, ref: str) -> Ticket:
    """A public ticket by its short reference; the same 404 whether it is missing or not
    public."""
    ticket = session.scalar(select(Ticket).where(Ticket.ref == ref.upper(), Ticket.is_public))
    if ticket is None:
        raise NotFound("no such public ticket")
    return ticket


def public_photo(
    session: Session, media_id: uuid.UUID, *, version: str | None = None
) -> PublicPhoto:
    """The published copy of a photo, while it shows a report not hidden on a public
    ticket (and is the ``version`` asked for, if one is); the same 404 otherwise."""
    found = session.scalar(
        select(PublicPhoto)
        .join(ReportMedia, ReportMedia.media_id == PublicPhoto.media_id)
        .join(Report, Report.id == ReportMedia.report_id)
        .join(Ticket, Ticket.id == Report.ticket_id)
        .where(PublicPhoto.media_id == media_id, Report.hidden_at.is_(None), Ticket.is_public)
        .limit(1)
    )
    if found is None or (version is not None and copy_version(found) != version):
        raise NotFound("no such photo")
    return found


# -- the public list and map


# How the public pages group statuses: taken up, being fixed, fixed.
PUBLIC_STATUS_GROUPS: Mapping[str, frozenset[TicketStatus]] = MappingProxyType(
    {
        "accepted": frozenset({TicketStatus.ACCEPTED, TicketStatus.SHELVED}),
        "in_progress": frozenset(
            {TicketStatus.IN_PROGRESS, TicketStatus.DISPATCHED, TicketStatus.AWAITING_CHECK}
        ),
        "fixed": frozenset(RESOLVED_STATUSES),
    }
)


@dataclass(frozen=True)
class PublicQuery:
    category: str | None = None
    status: str | None = None  # a key of PUBLIC_STATUS_GROUPS
    street: str | None = None  # a street's code


def _public_tickets(session: Session, query: PublicQuery, *, now: datetime) -> Select[Ticket]:
    statement = select(Ticket).where(Ticket.is_public, Ticket.created_at >= now - WINDOW)
    if query.status is not None:
        if query.status not in PUBLIC_STATUS_GROUPS:
            raise ValidationFailed.of_field("status", f"one of {', '.join(PUBLIC_STATUS_GROUPS)}")
        statement = statement.where(Ticket.status.in_(PUBLIC_STATUS_GROUPS[query.status]))
    if query.category is not None:
        category_id = session.scalar(select(Category.id).where(Category.code == query.category))
        if category_id is None:
            raise ValidationFailed.of_field("category", "no such category")
        statement = statement.where(Ticket.category_id == category_id)
    if query.street is not None:
        street_id = session.scalar(
            select(Area.id).where(Area.code == query.street, Area.level == AreaLevel.STREET)
        )
        if street_id is None:
            raise ValidationFailed.of_field("street", "no such street")
        statement = statement.where(Ticket.street_id == street_id)
    return statement


def list_public_tickets(
    session: Session, query: PublicQuery, *, page: PageRequest, now: datetime
) -> Page[Ticket]:
    """Public tickets of the last 90 days, newest first."""
    return newest_first_page(
        session,
        _public_tickets(session, query, now=now),
        at=Ticket.created_at,
        id=Ticket.id,
        page=page,
    )


def public_map(
    session: Session,
    query: PublicQuery,
    *,
    bbox: tuple[float, float, float, float] | None,
    now: datetime,
) -> list[Ticket]:
    """The newest public tickets of the last 90 days (at most ``MAX_MAP_POINTS``), within
    ``bbox`` if given: the map's points."""
    statement = _public_tickets(session, query, now=now)
    if bbox is not None:
        statement = statement.where(within_bbox(Ticket.location, *bbox))
    return list(
        session.scalars(
            statement.order_by(Ticket.created_at.desc(), Ticket.id.desc()).limit(MAX_MAP_POINTS)
        )
    )


# -- per street: what residents ask of their street office


@dataclass(frozen=True)
class StreetFigures:
    code: str
    name: str
    reported: int  # public tickets opened in the window
    fixed: int  # of those, resolved or closed
    median_days_to_fix: float | None


# Per database: when the figures were counted (monotonic seconds), and the figures.
_held: dict[str, tuple[float, list[StreetFigures]]] = {}
_counting: set[str] = set()
_held_lock = Lock()
log = logging.getLogger(__name__)


def street_figures(
    session: Session, *, now: datetime, max_age_s: float = 0.0
) -> list[StreetFigures]:
    """Per street, over the public tickets of the last 90 days: how many were reported,
    how many fixed, and the median days from report to fix.

    Counting a district's window takes the database a second or more at a million
    tickets, so a process keeps the figures: within ``max_age_s`` seconds it answers them
    as they are; older, it still answers them at once while one thread counts them anew
    for the next readers (stale while revalidating). Only the first reader after a start
    waits for a count; ``max_age_s`` 0 counts on every call."""
    if max_age_s <= 0:
        return _count_streets(session, now=now)
    key = str(session.get_bind().engine.url)
    with _held_lock:
        held = _held.get(key)
        stale = held is not None and held[0] + max_age_s <= time.monotonic()
        recount = stale and key not in _counting
        if recount:
            _counting.add(key)
    if held is None:
        figures = _count_streets(session, now=now)
        with _held_lock:
            _held[key] = (time.monotonic(), figures)
        return figures
    if recount:
        database = session.info[DATABASE]
        Thread(
            target=_recount, args=(database, key), kwargs={"now": now}, daemon=True, name="figures"
        ).start()
    return held[1]


def _recount(database: Database, key: str, *, now: datetime) -> None:
    try:
        with database.session() as session:
            figures = _count_streets(session, now=now)
        with _held_lock:
            _held[key] = (time.monotonic(), figures)
    except Exception:  # the old figures stay; the next reader tries again
        log.exception("the public figures could not be counted")
    finally:
        with _held_lock:
            _counting.discard(key)


def streets(session: Session, *, boundaries: bool = False) -> list[Area]:
    """Every street, by code: the public pages' filter, figures and (``boundaries``: loaded
    with the streets, in one query) outlines."""
    query = select(Area).where(Area.level == AreaLevel.STREET).order_by(Area.code)
    if boundaries:
        query = query.options(undefer(Area.boundary))
    return list(session.scalars(query))


def _count_streets(session: Session, *, now: datetime) -> list[StreetFigures]:
    streets = session.execute(
        select(Area.id, Area.code, Area.name)
        .where(Area.level == AreaLevel.STREET)
        .order_by(Area.code)
    ).all()
    where = [Ticket.is_public, Ticket.created_at >= now - WINDOW]
    counts = {
        street_id: (reported, fixed or 0)
        for street_id, reported, fixed in session.execute(
            select(
                Ticket.street_id,
                func.count(),
                func.count().filter(Ticket.is_resolved),
            )
            .where(*where, Ticket.street_id.in_([s.id for s in streets]))
            .group_by(Ticket.street_id)
        )
    }
    days = hours_between(session, start=Ticket.created_at, end=Ticket.resolved_at) / 24
    medians = median_by(
        session,
        days,
        Ticket.street_id,
        [s.id for s in streets],
        [*where, Ticket.is_resolved],
    )
    return [
        StreetFigures(
            code=s.code,
            name=s.name,
            reported=counts.get(s.id, (0, 0))[0],
            fixed=int(counts.get(s.id, (0, 0))[1]),
            median_days_to_fix=_one_decimal(medians.get(s.id)),
        )
        for s in streets
    ]


def _one_decimal(value: float | None) -> float | None:
    return None if value is None else round(value, 1)

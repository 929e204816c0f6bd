"""Riders' personal information under PIPL: kept no longer than needed, shown on request,
erased on request (docs/privacy.md).

A report's point is a trace of where its rider works (PIPL art. 28: sensitive). Once a
ticket has ended and the retention period has passed (art. 19), its reports and
verifications lose their photos, their free text and their exact points; what the public
record and the statistics need (category, street and community, the ticket's own point,
times, counts, points) stays, so that every statistic is the same before and after.
"""

import uuid
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, exists, func, select, update
from sqlalchemy.orm import Session

from app.db import Database, begin_writes, lat_of, lon_of
from app.models import Media, Report, ReportMedia, Ticket, TicketStatus, Verification
from app.services.coords import CoordSys
from app.services.intake import wkt_point
from app.services.media import delete_media
from app.services.media_store import MediaStore

ENDED = (TicketStatus.CLOSED, TicketStatus.REJECTED, TicketStatus.DUPLICATE)
# Points are kept to a grid of 0.001°: about 110 m north–south and 95 m east–west in
# Shanghai, enough for a street's and a community's numbers, not for a rider's round.
GRID_DEGREES = 0.001
BATCH = 200
# Core tables: one UPDATE statement run for many rows, each with its own point.
REPORTS = cast(Table, Report.__table__)
VERIFICATIONS = cast(Table, Verification.__table__)


def coarsened(lon: float, lat: float) -> tuple[float, float]:
    """The centre of the grid cell holding (lon, lat)."""
    return (
        round((lon // GRID_DEGREES + 0.5) * GRID_DEGREES, 6),
        round((lat // GRID_DEGREES + 0.5) * GRID_DEGREES, 6),
    )


def ended_before(cutoff: datetime) -> ColumnElement[bool]:
    """Tickets that ended before ``cutoff`` and have not been purged: closed (by its
    closing time), rejected or merged (by their last change)."""
    return (
        Ticket.purged_at.is_(None)
        & Ticket.status.in_(ENDED)
        & (func.coalesce(Ticket.closed_at, Ticket.updated_at) < cutoff)
    )


@dataclass
class Purged:
    """What a purge removed (or, on a dry run, would remove)."""

    tickets: int = 0
    reports: int = 0
    verifications: int = 0
    photos: int = 0
    unused_photos: int = 0

    def add(self, other: "Purged") -> None:
        for name in ("tickets", "reports", "verifications", "photos", "unused_photos"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def purge(
    database: Database, store: MediaStore, *, now: datetime, days: int, dry_run: bool = False
) -> Purged:
    """Purge every ticket that ended more than ``days`` ago, a batch per transaction, and
    the photos uploaded that long ago that no report or verification uses."""
    cutoff = now - timedelta(days=days)
    total = Purged()
    if dry_run:
        with database.session() as session:
            return _count(session, cutoff)
    while True:
        with database.transaction() as session:
            begin_writes(session)
            ids = list(
                session.scalars(
                    select(Ticket.id)
                    .where(ended_before(cutoff))
                    .order_by(Ticket.updated_at, Ticket.id)
                    .limit(BATCH)
                )
            )
            if not ids:
                break
            total.add(_purge_tickets(session, store, ids, now))
    with database.transaction() as session:
        begin_writes(session)
        unused = _unused_media(session, cutoff)
        total.unused_photos = delete_media(session, store, unused)
    return total


def _count(session: Session, cutoff: datetime) -> Purged:
    tickets = select(Ticket.id).where(ended_before(cutoff)).scalar_subquery()
    reports = select(Report.id).where(Report.ticket_id.in_(tickets))
    return Purged(
        tickets=session.scalar(select(func.count()).where(ended_before(cutoff))) or 0,
        reports=session.scalar(select(func.count()).select_from(reports.subquery())) or 0,
        verifications=session.scalar(
            select(func.count()).where(Verification.ticket_id.in_(tickets))
        )
        or 0,
        photos=session.scalar(
            select(func.count(func.distinct(ReportMedia.media_id))).where(
                ReportMedia.report_id.in_(reports.scalar_subquery())
            )
        )
        or 0,
        unused_photos=len(_unused_media(session, cutoff)),
    )


def _purge_tickets(
    session: Session, store: MediaStore, ticket_ids: list[uuid.UUID], now: datetime
) -> Purged:
    reports = session.execute(
        select(Report.id, lon_of(Report.location), lat_of(Report.location)).where(
            Report.ticket_id.in_(ticket_ids)
        )
    ).all()
    if reports:
        table = REPORTS.c
        session.connection().execute(
            update(REPORTS)
            .where(table.id == bindparam("b_id"))
            .values(
                description=None,
                address_hint=None,
                accuracy_m=None,
                location=bindparam("b_location", type_=table.location.type),
                input_lon=bindparam("b_lon"),
                input_lat=bindparam("b_lat"),
                input_coord_sys=CoordSys.WGS84,
            ),
            list(_coarse_rows(reports)),
        )
    verifications = session.execute(
        select(
            Verification.id,
            lon_of(Verification.location),
            lat_of(Verification.location),
            Verification.media_ids,
        ).where(Verification.ticket_id.in_(ticket_ids))
    ).all()
    if verifications:
        table = VERIFICATIONS.c
        session.connection().execute(
            update(VERIFICATIONS)
            .where(table.id == bindparam("b_id"))
            .values(
                note=None,
                media_ids=None,
                location=bindparam("b_location", type_=table.location.type),
            ),
            [
                {"b_id": row["b_id"], "b_location": row["b_location"]}
                for row in _coarse_rows(v[:3] for v in verifications)
            ],
        )
    photos = set(
        session.scalars(
            select(ReportMedia.media_id).where(ReportMedia.report_id.in_([r[0] for r in reports]))
        )
    ) | {uuid.UUID(m) for v in verifications for m in (v.media_ids or ())}
    removed = delete_media(session, store, photos - _used_elsewhere(session, photos, ticket_ids))
    # The purge is not a change of the ticket: its version and updated_at stay.
    session.execute(
        update(Ticket)
        .where(Ticket.id.in_(ticket_ids))
        .values(purged_at=now, updated_at=Ticket.updated_at)
        .execution_options(synchronize_session=False)
    )
    return Purged(len(ticket_ids), len(reports), len(verifications), removed)


def _coarse_rows(rows: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for row_id, lon, lat in rows:
        c_lon, c_lat = coarsened(lon, lat)
        yield {
            "b_id": row_id,
            "b_location": wkt_point(c_lon, c_lat),
            "b_lon": c_lon,
            "b_lat": c_lat,
        }


def _used_elsewhere(
    session: Session, photos: set[uuid.UUID], ticket_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Of ``photos``, those a report or verification of another ticket uses too."""
    if not photos:
        return set()
    used = set(
        session.scalars(
            select(ReportMedia.media_id)
            .join(Report, Report.id == ReportMedia.report_id)
            .where(ReportMedia.media_id.in_(photos), Report.ticket_id.not_in(ticket_ids))
        )
    )
    return used | _in_verifications(session, photos, exclude_tickets=ticket_ids)


def _in_verifications(
    session: Session, photos: set[uuid.UUID], exclude_tickets: Collection[uuid.UUID] = ()
) -> set[uuid.UUID]:
    """Of ``photos``, those a verification names (its photos are named in a JSON list, by
    their uploader's verifications only)."""
    riders = select(Media.rider_id).where(Media.id.in_(photos)).distinct().scalar_subquery()
    named = {
        uuid.UUID(m)
        for media_ids in session.scalars(
            select(Verification.media_ids).where(
                Verification.rider_id.in_(riders),
                Verification.media_ids.is_not(None),
                Verification.ticket_id.not_in(exclude_tickets),
            )
        )
        for m in media_ids or ()
    }
    return named & photos


def _unused_media(session: Session, cutoff: datetime) -> set[uuid.UUID]:
    """Photos uploaded before ``cutoff`` that no report uses and no verification names."""
    candidates = set(
        session.scalars(
            select(Media.id).where(
                Media.created_at < cutoff,
                ~exists().where(ReportMedia.media_id == Media.id),
            )
        )
    )
    return candidates - _in_verifications(session, candidates)

"""Riders' personal information under PIPL: kept no longer than needed, shown on request,
erased on request (docs/privacy.md).

A report's point is a trace of where its rider works (PIPL art. 28: sensitive). Once a
ticket has ended and the retention period has passed (art. 19), its reports and
verifications lose their photos, their free text and their exact points; what the public
record and the statistics need (category, street and community, the ticket's own point,
times, counts, points) stays, so that every statistic is the same before and after.
"""

import json
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import orjson
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    Text,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy import cast as sa_cast
from sqlalchemy.orm import InstrumentedAttribute, Session

from app.categories import category_codes
from app.config import Settings
from app.db import (
    DATABASE,
    Database,
    after_commit,
    begin_writes,
    forget_freed_pages,
    lat_of,
    lon_of,
    wkt_point,
)
from app.geo import CoordSys
from app.media import (
    UNUSED_GRACE,
    MediaStore,
    delete_media,
    delete_staff_photos,
    usable_since,
)
from app.models import (
    ActorKind,
    AlertSighting,
    IdempotencyRecord,
    JobMark,
    Media,
    OutboxEvent,
    PhotoUpload,
    PointsEntry,
    Report,
    ReportMedia,
    Rider,
    RiderTotals,
    SightingMedia,
    StaffPhoto,
    Ticket,
    TicketEvent,
    TicketEventType,
    Verification,
    event_photos,
    utcnow,
)
from app.riders import COUNTERS, TOMBSTONE_PREFIX

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
        & Ticket.has_ended
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
            total.add(_purge_tickets(session, store, ticket_ids=ids, now=now))
    with database.transaction() as session:
        begin_writes(session)
        unused = _unused_media(session, cutoff)
        total.unused_photos = delete_media(session, store, media_ids=unused)
    if total.tickets or total.unused_photos:
        # What was cleared must not stay readable in the database's files either.
        forget_freed_pages(database)
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
    session: Session, store: MediaStore, *, ticket_ids: list[uuid.UUID], now: datetime
) -> Purged:
    reports = session.execute(
        select(Report.id, lon_of(Report.location), lat_of(Report.location)).where(
            Report.ticket_id.in_(ticket_ids)
        )
    ).all()
    _clear_reports(session, reports)
    verifications = session.execute(
        select(
            Verification.id,
            lon_of(Verification.location),
            lat_of(Verification.location),
            Verification.media_ids,
        ).where(Verification.ticket_id.in_(ticket_ids))
    ).all()
    _clear_verifications(session, [v[:3] for v in verifications])
    photos = set(
        session.scalars(
            select(ReportMedia.media_id).where(ReportMedia.report_id.in_([r[0] for r in reports]))
        )
    ) | {uuid.UUID(m) for v in verifications for m in (v.media_ids or ())}
    kept = _used_elsewhere(session, photos, ticket_ids=ticket_ids)
    removed = delete_media(session, store, media_ids=photos - kept)
    if kept and reports:
        # A photo that stays for another ticket leaves the purged reports all the same.
        session.execute(
            delete(ReportMedia).where(
                ReportMedia.report_id.in_([r[0] for r in reports]), ReportMedia.media_id.in_(kept)
            )
        )
    _clear_rider_notes(session, ticket_ids)
    # The purge is not a change of the ticket: its version and updated_at stay.
    session.execute(
        update(Ticket)
        .where(Ticket.id.in_(ticket_ids))
        .values(purged_at=now, updated_at=Ticket.updated_at)
        .execution_options(synchronize_session=False)
    )
    return Purged(len(ticket_ids), len(reports), len(verifications), removed)


def _clear_rider_notes(
    session: Session, ticket_ids: Collection[uuid.UUID], *, rider_id: uuid.UUID | None = None
) -> None:
    """Clear what riders wrote in the events of ``ticket_ids`` (a verification's note is
    kept in its event too): all riders', or ``rider_id``'s."""
    if not ticket_ids:
        return
    session.execute(
        update(TicketEvent)
        .where(
            TicketEvent.ticket_id.in_(ticket_ids),
            TicketEvent.actor_kind == ActorKind.RIDER,
            TicketEvent.note.is_not(None),
            *((TicketEvent.actor_id == rider_id,) if rider_id is not None else ()),
        )
        .values(note=None)
        .execution_options(synchronize_session=False)
    )


def _clear_reports(session: Session, reports: Sequence[Any]) -> None:
    """Reports (id, lon, lat) without their words, their accuracy or their exact point;
    the coordinates as sent become the coarse point."""
    _coarsen(
        session,
        REPORTS,
        rows=reports,
        description=None,
        address_hint=None,
        accuracy_m=None,
        input_lon=bindparam("b_lon"),
        input_lat=bindparam("b_lat"),
        input_coord_sys=CoordSys.WGS84,
    )


def _clear_verifications(session: Session, verifications: Sequence[Any]) -> None:
    """Verifications (id, lon, lat) without their note, their photos or exact point."""
    _coarsen(session, VERIFICATIONS, rows=verifications, note=None, media_ids=None)


def _coarsen(session: Session, table: Table, *, rows: Sequence[Any], **values: Any) -> None:
    """Set ``values`` on rows (id, lon, lat) of ``table``, each at its coarse point: one
    statement for all of them."""
    if not rows:
        return
    location = bindparam("b_location", type_=table.c.location.type)
    session.connection().execute(
        update(table).where(table.c.id == bindparam("b_id")).values(location=location, **values),
        list(_coarse_rows(rows)),
    )


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
    session: Session, photos: set[uuid.UUID], *, ticket_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Of ``photos``, those a report or verification of another ticket, or a sighting,
    uses too (a sighting's photos go with its alert's retention)."""
    if not photos:
        return set()
    used = set(
        session.scalars(
            select(ReportMedia.media_id)
            .join(Report, Report.id == ReportMedia.report_id)
            .join(Ticket, Ticket.id == Report.ticket_id)
            .where(
                ReportMedia.media_id.in_(photos),
                Report.ticket_id.not_in(ticket_ids),
                Ticket.purged_at.is_(None),
            )
        )
    )
    used |= set(
        session.scalars(select(SightingMedia.media_id).where(SightingMedia.media_id.in_(photos)))
    )
    return used | _in_verifications(session, photos, exclude_tickets=ticket_ids)


def _in_verifications(
    session: Session, photos: set[uuid.UUID], *, exclude_tickets: Collection[uuid.UUID] = ()
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


@dataclass(frozen=True)
class _Uploads:
    """Photos of one kind the sweep looks at, from its own mark: which of them something
    uses, and how those nobody used go."""

    mark: str
    model: type[Media] | type[StaffPhoto]
    used: Callable[[Session, set[uuid.UUID]], set[uuid.UUID]]
    delete: Callable[[Session, MediaStore, set[uuid.UUID]], int]


def _riders_photos_used(session: Session, photos: set[uuid.UUID]) -> set[uuid.UUID]:
    """Of riders' ``photos``, those a report, a sighting or a verification names."""
    return (
        set(session.scalars(select(ReportMedia.media_id).where(ReportMedia.media_id.in_(photos))))
        | set(
            session.scalars(
                select(SightingMedia.media_id).where(SightingMedia.media_id.in_(photos))
            )
        )
        | _in_verifications(session, photos)
    )


def _staff_photos_shown(session: Session, photos: set[uuid.UUID]) -> set[uuid.UUID]:
    """Of staff ``photos``, those an action on a ticket shows."""
    return set(
        session.scalars(select(event_photos.c.photo_id).where(event_photos.c.photo_id.in_(photos)))
    )


RIDERS_UPLOADS = _Uploads(
    "unused_photos",
    Media,
    _riders_photos_used,
    lambda session, store, ids: delete_media(session, store, media_ids=ids),
)
STAFF_UPLOADS = _Uploads(
    "unused_staff_photos",
    StaffPhoto,
    _staff_photos_shown,
    lambda session, store, ids: delete_staff_photos(session, store, photo_ids=ids),
)


def sweep_unused_photos(
    database: Database, store: MediaStore, *, now: datetime, settings: Settings
) -> int:
    """Remove the photos nobody used while they could be used (``usable_since``): riders'
    that no report, sighting or verification names, and staff's that no action on a
    ticket shows. Each run goes on from where the last stopped (a mark of the last photo
    of each kind looked at), a batch per transaction, so a run costs what was uploaded
    since, never a look at every photo. Returns how many went."""
    cutoff = usable_since(now, settings) - UNUSED_GRACE
    return sum(
        _sweep_unused(database, store, uploads=uploads, cutoff=cutoff)
        for uploads in (RIDERS_UPLOADS, STAFF_UPLOADS)
    )


def _sweep_unused(
    database: Database, store: MediaStore, *, uploads: _Uploads, cutoff: datetime
) -> int:
    model = uploads.model
    removed = 0
    while True:
        with database.transaction(write=False) as session:
            mark = session.get(JobMark, uploads.mark)
            if mark is not None and not session.scalar(
                select(model.id).where(_after(model, mark), model.created_at < cutoff).limit(1)
            ):
                return removed  # nothing to look at: no write lock taken
            begin_writes(session)
            mark = JobMark.held(session, uploads.mark)
            looked_at = session.execute(
                select(model.id, model.created_at)
                .where(_after(model, mark), model.created_at < cutoff)
                .order_by(model.created_at, model.id)
                .limit(BATCH)
                # A photo uploaded again meanwhile (its time moved on) is not taken, and
                # the photos looked at are not taken by a report until this commits.
                .with_for_update()
            ).all()
            if not looked_at:
                return removed
            photos = {row.id for row in looked_at}
            removed += uploads.delete(session, store, photos - uploads.used(session, photos))
            mark.at, mark.after_id = looked_at[-1].created_at, looked_at[-1].id
        if len(looked_at) < BATCH:
            return removed


def _after(model: type[Media] | type[StaffPhoto], mark: JobMark) -> ColumnElement[bool]:
    """The photos after ``mark``, in the order of their upload."""
    return tuple_(model.created_at, model.id) > tuple_(mark.at, mark.after_id)


def _unused_media(session: Session, cutoff: datetime) -> set[uuid.UUID]:
    """Photos uploaded before ``cutoff`` that no report uses and no verification names."""
    candidates = set(
        session.scalars(
            select(Media.id).where(
                Media.created_at < cutoff,
                ~exists().where(ReportMedia.media_id == Media.id),
                ~exists().where(SightingMedia.media_id == Media.id),
            )
        )
    )
    return candidates - _in_verifications(session, candidates)


# --- access (PIPL art. 45) ------------------------------------------------------------


def _photo(media: Media) -> dict[str, Any]:
    return {
        "id": str(media.id),
        "url": f"/v1/media/{media.id}",
        "thumbnail_url": f"/v1/media/{media.id}/thumbnail",
        "content_type": media.content_type,
        "width": media.width,
        "height": media.height,
        "bytes": media.bytes,
        "uploaded_at": iso(media.created_at),
    }


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment is not None else None


def export_rider(database: Database, rider_id: uuid.UUID) -> Iterator[bytes]:
    """Everything held about one rider, as one JSON document written piece by piece (a
    rider of years has tens of thousands of reports): who they are, their totals, every
    report with its point, words and photos, every verification, photo and ledger line.
    Photos are links, to be fetched with the same credentials and the same checks."""
    with database.session() as session:
        rider = session.get(Rider, rider_id)
        assert rider is not None
        codes = category_codes(session)
        totals = session.get(RiderTotals, rider.id)
        head = {
            "exported_at": iso(utcnow()),
            "rider": {
                "rider_id": rider.external_id,
                "platform": rider.platform.code,
                "display_name": rider.display_name,
                "pseudonym": rider.pseudonym,
                "first_seen_at": iso(rider.created_at),
                "last_token_at": iso(rider.last_token_at),
            },
            "totals": {name: getattr(totals, name, 0) for name in COUNTERS},
        }
        yield orjson.dumps(head)[:-1]
        yield b',"reports":'
        yield from _array(_reports(session, rider.id, codes=codes))
        yield b',"verifications":'
        yield from _array(_verifications(session, rider.id))
        yield b',"sightings":'
        yield from _array(_sightings(session, rider.id))
        yield b',"ratings":'
        yield from _array(_ratings(session, rider.id))
        yield b',"photos":'
        yield from _array(
            _photo(m)
            for m in session.scalars(
                select(Media).where(Media.rider_id == rider.id).order_by(Media.created_at)
            )
        )
        yield b',"points_ledger":'
        yield from _array(_ledger(session, rider.id))
        yield b"}"


def _array(items: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """A JSON array, an item at a time (in chunks of about 64 KiB)."""
    chunk = bytearray(b"[")
    first = True
    for item in items:
        if not first:
            chunk += b","
        first = False
        chunk += orjson.dumps(item)
        if len(chunk) >= 65536:
            yield bytes(chunk)
            chunk.clear()
    chunk += b"]"
    yield bytes(chunk)


def _photo_links(
    session: Session, links: Select[uuid.UUID, uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """The links to the photos of each row that ``links`` (its id, a media id) names, in
    the order it gives them."""
    photos: dict[uuid.UUID, list[str]] = {}
    for owner_id, media_id in session.execute(links):
        photos.setdefault(owner_id, []).append(f"/v1/media/{media_id}")
    return photos


def _on_tickets(
    session: Session,
    model: type[Report] | type[Verification],
    *,
    rider_id: uuid.UUID,
    ticket_columns: tuple[InstrumentedAttribute[Any], ...] = (),
    order: tuple[InstrumentedAttribute[Any], ...],
) -> Iterable[Any]:
    """The rider's rows of ``model`` in ``order``, each with its ticket's ref (and
    ``ticket_columns``) and its point as lon and lat."""
    return session.execute(
        select(
            model,
            Ticket.ref,
            *ticket_columns,
            lon_of(model.location).label("lon"),
            lat_of(model.location).label("lat"),
        )
        .join(Ticket, Ticket.id == model.ticket_id)
        .where(model.rider_id == rider_id)
        .order_by(*order)
        .execution_options(yield_per=500)
    )


def _reports(
    session: Session, rider_id: uuid.UUID, *, codes: dict[int, str]
) -> Iterator[dict[str, Any]]:
    photos = _photo_links(
        session,
        select(ReportMedia.report_id, ReportMedia.media_id)
        .join(Report, Report.id == ReportMedia.report_id)
        .where(Report.rider_id == rider_id)
        .order_by(ReportMedia.report_id, ReportMedia.position),
    )
    rows = _on_tickets(
        session,
        Report,
        rider_id=rider_id,
        ticket_columns=(Ticket.status,),
        order=(Report.received_at, Report.id),
    )
    for report, ref, status, lon, lat in rows:
        yield {
            "id": str(report.id),
            "ticket_ref": ref,
            "ticket_status": status,
            "category": codes.get(report.category_id),
            "outcome": report.outcome,
            "lat": lat,
            "lon": lon,
            "coord_sys": "wgs84",
            "as_sent": {
                "lat": report.input_lat,
                "lon": report.input_lon,
                "coord_sys": report.input_coord_sys,
                "accuracy_m": report.accuracy_m,
            },
            "description": report.description,
            "address_hint": report.address_hint,
            "observed_at": iso(report.observed_at),
            "received_at": iso(report.received_at),
            "photos": photos.get(report.id, []),
        }


def _verifications(session: Session, rider_id: uuid.UUID) -> Iterator[dict[str, Any]]:
    rows = _on_tickets(
        session, Verification, rider_id=rider_id, order=(Verification.created_at, Verification.id)
    )
    for verification, ref, lon, lat in rows:
        yield {
            "id": str(verification.id),
            "ticket_ref": ref,
            "fixed": verification.fixed,
            "lat": lat,
            "lon": lon,
            "coord_sys": "wgs84",
            "distance_m": verification.distance_m,
            "note": verification.note,
            "photos": [f"/v1/media/{m}" for m in verification.media_ids or ()],
            "created_at": iso(verification.created_at),
        }


def _ratings(session: Session, rider_id: uuid.UUID) -> Iterator[dict[str, Any]]:
    """The rider's ratings of fixes: events of the tickets of its reports (by their
    index), the rider's own."""
    rows = session.execute(
        select(TicketEvent, Ticket.ref)
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(
            TicketEvent.ticket_id.in_(select(Report.ticket_id).where(Report.rider_id == rider_id)),
            TicketEvent.type == TicketEventType.RATED,
            TicketEvent.actor_kind == ActorKind.RIDER,
            TicketEvent.actor_id == rider_id,
        )
        .order_by(TicketEvent.created_at)
    )
    for event, ref in rows:
        yield {
            "ticket_ref": ref,
            "rating": (event.data or {}).get("rating"),
            "comment": event.note,
            "created_at": iso(event.created_at),
        }


def _sightings(session: Session, rider_id: uuid.UUID) -> Iterator[dict[str, Any]]:
    photos = _photo_links(
        session,
        select(SightingMedia.sighting_id, SightingMedia.media_id)
        .join(AlertSighting, AlertSighting.id == SightingMedia.sighting_id)
        .where(AlertSighting.rider_id == rider_id)
        .order_by(SightingMedia.position),
    )
    for sighting in session.scalars(
        select(AlertSighting)
        .where(AlertSighting.rider_id == rider_id)
        .order_by(AlertSighting.created_at, AlertSighting.id)
    ):
        yield {
            "id": str(sighting.id),
            "alert_id": str(sighting.alert_id),
            "lat": sighting.lat,
            "lon": sighting.lon,
            "note": sighting.note,
            "photos": photos.get(sighting.id, []),
            "created_at": iso(sighting.created_at),
        }


def _ledger(session: Session, rider_id: uuid.UUID) -> Iterator[dict[str, Any]]:
    rows = session.execute(
        select(PointsEntry, Ticket.ref)
        .join(Ticket, Ticket.id == PointsEntry.ticket_id)
        .where(PointsEntry.rider_id == rider_id)
        .order_by(PointsEntry.created_at, PointsEntry.id)
        .execution_options(yield_per=1000)
    )
    for line, ref in rows:
        yield {
            "reason": line.reason,
            "points": line.points,
            "ticket_ref": ref,
            "report_id": str(line.report_id) if line.report_id else None,
            "verification_id": str(line.verification_id) if line.verification_id else None,
            "at": iso(line.created_at),
        }


# --- erasure (PIPL art. 47) -----------------------------------------------------------

TOMBSTONE_PSEUDONYM = "已注销"


def erase_rider(session: Session, store: MediaStore, *, rider: Rider, now: datetime) -> None:
    """Erase a rider at their request, at once and for good.

    Their tokens stop working (an erased rider authenticates as nobody); their platform
    id and name are replaced by a tombstone, so that nothing held links to the person;
    their photos go (rows now, blobs after the commit), their reports' and verifications'
    words go and their points are kept to the grid; the responses kept for their retries
    go; events waiting for or sent to the platform name the tombstone. What they earned
    stays only in the sums (the platform's hourly numbers, the tickets' counts), so the
    platform's totals and every office statistic stay what they were. Once committed,
    nothing of what was erased stays readable in the database's files either."""
    begin_writes(session)
    database: Database = session.info[DATABASE]
    # Readers that hold the log back make it a warning in the log, not a failed erasure.
    after_commit(session, lambda: forget_freed_pages(database))
    external = rider.external_id
    tombstone = f"{TOMBSTONE_PREFIX}{uuid.uuid4().hex}"
    delete_media(
        session,
        store,
        media_ids=set(session.scalars(select(Media.id).where(Media.rider_id == rider.id))),
    )
    reports = session.execute(
        select(Report.id, lon_of(Report.location), lat_of(Report.location)).where(
            Report.rider_id == rider.id
        )
    ).all()
    _clear_reports(session, reports)
    verifications = session.execute(
        select(Verification.id, lon_of(Verification.location), lat_of(Verification.location)).where(
            Verification.rider_id == rider.id
        )
    ).all()
    _clear_verifications(session, verifications)
    tickets = set(session.scalars(select(Report.ticket_id).where(Report.rider_id == rider.id)))
    tickets |= set(
        session.scalars(select(Verification.ticket_id).where(Verification.rider_id == rider.id))
    )
    _clear_rider_notes(session, tickets, rider_id=rider.id)
    for sighting in session.scalars(
        select(AlertSighting).where(AlertSighting.rider_id == rider.id)
    ):
        sighting.note = None
        sighting.lon, sighting.lat = coarsened(sighting.lon, sighting.lat)
    session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.rider_id == rider.id))
    session.execute(delete(PhotoUpload).where(PhotoUpload.rider_id == rider.id))
    for event in session.scalars(
        select(OutboxEvent).where(
            OutboxEvent.platform_id == rider.platform_id,
            or_(
                # As stored: JSON text, which may escape non-ASCII characters and quotes.
                sa_cast(OutboxEvent.data, Text).contains(external, autoescape=True),
                sa_cast(OutboxEvent.data, Text).contains(
                    json.dumps(external)[1:-1], autoescape=True
                ),
            ),
        )
    ):
        event.data = _replaced(event.data, old=external, new=tombstone)
    session.flush()
    rider.external_id = tombstone
    rider.display_name = None
    rider.pseudonym = TOMBSTONE_PSEUDONYM
    rider.erased_at = now


def _replaced(value: Any, *, old: str, new: str) -> Any:
    """``value`` (JSON) with every string equal to ``old`` made ``new``."""
    if isinstance(value, dict):
        return {k: _replaced(v, old=old, new=new) for k, v in value.items()}
    if isinstance(value, list):
        return [_replaced(v, old=old, new=new) for v in value]
    return new if value == old else value

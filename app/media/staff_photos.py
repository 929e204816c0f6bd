"""Photos staff show with an action on a ticket (the spot after the work, say): who may
see them, the events that show them, the riders who see the work done, and the sweep of
those nobody showed."""

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import delete, exists, insert, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import begin_writes
from app.errors import NotFound
from app.media.service import not_uploaded_by, release_blobs, staff_uploads, usable_photos
from app.media.store import MediaStore
from app.models import (
    RESOLVED_STATUSES,
    Report,
    Rider,
    Staff,
    StaffPhoto,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketEventType,
    event_photos,
)
from app.staff import ticket_scope_filter

# The events whose photos show the work done, as the reporter sees it once the ticket
# is resolved: the unit's report, the office's check, an officer's own resolution.
AFTER_WORK = frozenset({TicketAction.REPORT_DONE, TicketAction.CHECK_PASS, TicketAction.RESOLVE})
# The events that say the work shown before was not the fix: photos of work before them
# are not shown as the ticket's after-photos.
WORK_UNDONE = frozenset({TicketAction.CHECK_FAIL, TicketAction.REOPEN, TicketEventType.REOPENED})


def staff_photo_for(session: Session, staff: Staff, *, photo_id: uuid.UUID) -> StaffPhoto:
    """A staff photo ``staff`` may see: its own upload, or one an event of a ticket in
    its scope shows; else the same 404 whether it is missing or not theirs."""
    shown_in_scope = exists().where(
        event_photos.c.photo_id == StaffPhoto.id,
        TicketEvent.id == event_photos.c.event_id,
        Ticket.id == TicketEvent.ticket_id,
        ticket_scope_filter(staff),
    )
    photo = session.scalar(
        select(StaffPhoto).where(
            StaffPhoto.id == photo_id, (StaffPhoto.uploaded_by == staff.id) | shown_in_scope
        )
    )
    if photo is None:
        raise NotFound("no such photo")
    return photo


def attach_photos(
    session: Session,
    *,
    event: TicketEvent,
    staff: Staff,
    media_ids: Sequence[uuid.UUID],
    now: datetime,
    settings: Settings,
) -> list[StaffPhoto]:
    """Show ``media_ids`` (each once, in their order) with ``event``: every one a photo
    ``staff`` uploaded recently enough to be used (``usable_since``), else 422
    ``unknown_media`` naming ``media_ids`` and nothing is attached."""
    ids = list(dict.fromkeys(media_ids))
    owned = usable_photos(
        session, staff_uploads(staff.id), media_ids=ids, now=now, settings=settings
    )
    if missing := [i for i in ids if i not in owned]:
        raise not_uploaded_by(missing, who="this account")
    if not ids:
        return []
    begin_writes(session)
    session.flush()  # the event's row (and its id) first
    session.execute(
        insert(event_photos),
        [{"event_id": event.id, "photo_id": i, "position": n} for n, i in enumerate(ids)],
    )
    return [owned[i] for i in ids]


def photos_of_events(
    session: Session, event_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[StaffPhoto]]:
    """The photos each of ``event_ids`` shows, in their order (events showing none are
    left out)."""
    if not event_ids:
        return {}
    shown: dict[uuid.UUID, list[StaffPhoto]] = {}
    for event_id, photo in session.execute(
        select(event_photos.c.event_id, StaffPhoto)
        .join(StaffPhoto, StaffPhoto.id == event_photos.c.photo_id)
        .where(event_photos.c.event_id.in_(event_ids))
        .order_by(event_photos.c.event_id, event_photos.c.position)
    ):
        shown.setdefault(event_id, []).append(photo)
    return shown


def after_photos(
    session: Session, tickets: Collection[Ticket]
) -> dict[uuid.UUID, list[StaffPhoto]]:
    """The photos of the work done on each of ``tickets`` that is resolved or closed,
    as its reporters see them: those shown with the unit's report, the office's check or
    the resolution since the work was last found wanting (a failed check, a reopening).
    Tickets not resolved, or with none, are left out."""
    resolved = [t.id for t in tickets if t.status in RESOLVED_STATUSES]
    if not resolved:
        return {}
    work: dict[uuid.UUID, list[uuid.UUID]] = {}
    for event_id, ticket_id, kind in session.execute(
        select(TicketEvent.id, TicketEvent.ticket_id, TicketEvent.type)
        .where(TicketEvent.ticket_id.in_(resolved), TicketEvent.type.in_(AFTER_WORK | WORK_UNDONE))
        .order_by(TicketEvent.created_at)
    ):
        if kind in WORK_UNDONE:
            work.pop(ticket_id, None)
        else:
            work.setdefault(ticket_id, []).append(event_id)
    shown = photos_of_events(session, [e for events in work.values() for e in events])
    after = {
        ticket_id: [p for e in events for p in shown.get(e, [])]
        for ticket_id, events in work.items()
    }
    return {ticket_id: photos for ticket_id, photos in after.items() if photos}


def after_photo_for_rider(
    session: Session, rider: Rider, *, report_id: uuid.UUID, photo_id: uuid.UUID
) -> StaffPhoto:
    """One of the after-photos the rider's report shows (:func:`after_photos`); else the
    same 404 whether the report, the photo or the resolution is missing."""
    ticket = session.scalar(
        select(Ticket)
        .join(Report, Report.ticket_id == Ticket.id)
        .where(Report.id == report_id, Report.rider_id == rider.id)
    )
    shown = after_photos(session, [ticket]).get(ticket.id, []) if ticket is not None else []
    photo = next((p for p in shown if p.id == photo_id), None)
    if photo is None:
        raise NotFound("no such photo")
    return photo


def delete_staff_photos(
    session: Session, store: MediaStore, *, photo_ids: Collection[uuid.UUID]
) -> int:
    """Remove staff photos no event shows: their rows now, their blobs once the
    transaction commits (unless another photo row names the same bytes)."""
    if not photo_ids:
        return 0
    gone = list(session.scalars(select(StaffPhoto).where(StaffPhoto.id.in_(photo_ids))))
    session.execute(delete(StaffPhoto).where(StaffPhoto.id.in_(photo_ids)))
    release_blobs(session, store, photos=gone)
    return len(gone)

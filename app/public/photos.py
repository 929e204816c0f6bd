"""Photos made fit for the public: boxes suggested where faces and plates are, adjusted
by staff, and a blurred copy published; the original stays staff-only.

A rider's photo of a badly parked e-bike shows whoever walks past and the plates of the
cars beside it. Nothing of a photo is public until a member of staff of the street that
holds its ticket looked at it, drew (or accepted) the boxes, and published the copy;
each publication and withdrawal is an event on the ticket.
"""

import io
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from PIL import Image
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import media
from app.db import begin_writes
from app.errors import NotFound, ValidationFailed
from app.media import Box, MediaStore, Suggestion
from app.models import (
    ActorKind,
    Media,
    PublicPhoto,
    Report,
    ReportMedia,
    Staff,
    Ticket,
    TicketEventType,
)
from app.staff import ticket_scope_filter
from app.tickets import change

# A photo is a street scene, not a crowd: more boxes than this is a mistake of a client.
MAX_BOXES = 100


@dataclass(frozen=True)
class PhotoOnTicket:
    media: Media
    ticket: Ticket


def photo_on_ticket(session: Session, staff: Staff, *, media_id: uuid.UUID) -> PhotoOnTicket:
    """A photo of a report on a ticket in ``staff``'s scope, with that ticket; the same
    404 whether it is missing or not theirs (a sighting's photo is not a ticket's)."""
    found = session.execute(
        select(Media, Ticket)
        .join(ReportMedia, ReportMedia.media_id == Media.id)
        .join(Report, Report.id == ReportMedia.report_id)
        .join(Ticket, Ticket.id == Report.ticket_id)
        .where(Media.id == media_id, ticket_scope_filter(staff))
        .limit(1)
    ).first()
    if found is None:
        raise NotFound("no such photo on a ticket in your scope")
    return PhotoOnTicket(*found)


def published_copy(session: Session, media_id: uuid.UUID) -> PublicPhoto | None:
    """The copy of a photo published now, if any (for staff: whatever the public rule)."""
    return session.get(PublicPhoto, media_id)


def photos_of(session: Session, ticket: Ticket) -> list[uuid.UUID]:
    """The photos of the ticket's reports, in report order."""
    return list(
        session.scalars(
            select(ReportMedia.media_id)
            .join(Report, Report.id == ReportMedia.report_id)
            .where(Report.ticket_id == ticket.id)
            .order_by(Report.received_at, ReportMedia.position)
        )
    )


def _original(store: MediaStore, photo: Media) -> Image.Image:
    blob, _ = media.open_photo(store, photo, thumbnail=False)
    data = blob.path.read_bytes() if blob.path is not None else b"".join(blob.chunks or ())
    image = Image.open(io.BytesIO(data))
    image.load()
    return image.convert("RGB")


def suggest(
    session: Session, staff: Staff, *, media_id: uuid.UUID, store: MediaStore
) -> list[Suggestion]:
    """Where the faces and plates of a photo seem to be, best first, in its pixels."""
    found = photo_on_ticket(session, staff, media_id=media_id)
    return media.suggest_boxes(_original(store, found.media))


def _checked(boxes: Sequence[Box], *, width: int, height: int) -> list[Box]:
    if len(boxes) > MAX_BOXES:
        raise ValidationFailed.of_field("boxes", f"at most {MAX_BOXES} boxes")
    for i, box in enumerate(boxes):
        if box.w <= 0 or box.h <= 0 or box.x < 0 or box.y < 0:
            raise ValidationFailed.of_field(
                f"boxes[{i}]", "x and y at least 0, w and h more than 0"
            )
        if box.x + box.w > width or box.y + box.h > height:
            raise ValidationFailed.of_field(
                f"boxes[{i}]", f"outside the photo ({width}×{height} pixels)"
            )
    return list(boxes)


def publish(
    session: Session,
    staff: Staff,
    *,
    media_id: uuid.UUID,
    boxes: Sequence[Box],
    store: MediaStore,
    now: datetime,
) -> PublicPhoto:
    """Publish a copy of the photo with ``boxes`` blurred beyond recovery (none: the
    photo as it is, which staff judged shows nobody), replacing an earlier copy; an
    event on its ticket. Public once the ticket is (``app.public.views``)."""
    found = photo_on_ticket(session, staff, media_id=media_id)
    original = found.media
    checked = _checked(boxes, width=original.width, height=original.height)
    # Two clerks publishing the same photo at once take turns (_withdraw's lock), the
    # second replacing the first's copy.
    blurred = media.blur_boxes(_original(store, original), checked)
    buffer = io.BytesIO()
    blurred.save(buffer, "JPEG", quality=85)
    # Encoded, stripped and stored like an upload (and removed again on a rollback).
    stored = media.store_image(session, store, data=buffer.getvalue())
    _withdraw(session, found, store=store)
    copy = PublicPhoto(
        media_id=original.id,
        boxes=[{"x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in checked],
        published_by=staff.id,
        sha256=stored.sha256,
        thumbnail_sha256=stored.thumbnail_sha256,
        content_type=stored.image.content_type,
        width=stored.image.width,
        height=stored.image.height,
        bytes=len(stored.image.content),
        created_at=now,
    )
    session.add(copy)
    _record(
        session,
        staff,
        ticket=found.ticket,
        type=TicketEventType.PHOTO_PUBLISHED,
        data={"media_id": str(original.id), "boxes": len(checked)},
        now=now,
    )
    session.flush()
    return copy


def unpublish(
    session: Session, staff: Staff, *, media_id: uuid.UUID, store: MediaStore, now: datetime
) -> None:
    """Withdraw the published copy of a photo; an event on its ticket."""
    found = photo_on_ticket(session, staff, media_id=media_id)
    if not _withdraw(session, found, store=store):
        raise NotFound("the photo has no published copy")
    _record(
        session,
        staff,
        ticket=found.ticket,
        type=TicketEventType.PHOTO_UNPUBLISHED,
        data={"media_id": str(found.media.id)},
        now=now,
    )
    session.flush()


def _withdraw(session: Session, found: PhotoOnTicket, *, store: MediaStore) -> bool:
    """Under the ticket's row lock (taken first, as every change of a ticket takes it),
    drop the photo's published copy, its files once the transaction commits; whether
    there was one."""
    begin_writes(session)
    session.refresh(found.ticket, with_for_update=True)
    copy = session.get(PublicPhoto, found.media.id, populate_existing=True)
    if copy is None:
        return False
    media.release_blobs(session, store, photos=[copy])
    session.delete(copy)
    session.flush()
    return True


def _record(
    session: Session,
    staff: Staff,
    *,
    ticket: Ticket,
    type: TicketEventType,
    data: dict[str, object],
    now: datetime,
) -> None:
    change(
        session,
        ticket,
        to=None,
        type=type,
        actor_kind=ActorKind.STAFF,
        actor_id=staff.id,
        data=data,
        now=now,
    )

"""Photos riders and staff upload: judged by their bytes, re-encoded without metadata,
stored by content.

Nothing a rider or a member of staff uploads is stored as sent. Pillow opens it only if
its bytes say JPEG, PNG or WebP; the pixel count is checked from the header before
anything is decoded (a decompression bomb is an error, not a warning); the EXIF
orientation is applied; and the pixels alone are encoded again, so EXIF (with its GPS
position), XMP, IPTC and ICC data never reach the disk.
"""

import hashlib
import io
import math
import uuid
import warnings
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Generic, TypeVar

from anyio import to_thread
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import ColumnElement, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import DATABASE, Database, after_commit, begin_writes, lock, on_rollback
from app.errors import (
    ImageTooManyPixels,
    InvalidImage,
    NotFound,
    Unauthenticated,
    UnknownMedia,
    UnsupportedMediaType,
    UploadsLimited,
)
from app.media.decoding import decode, decode_blocking
from app.media.store import Blob, MediaStore, blob_key
from app.models import (
    Alert,
    AlertPhoto,
    AlertSighting,
    Media,
    PhotoUpload,
    Platform,
    PublicPhoto,
    Report,
    ReportMedia,
    Rider,
    SightingMedia,
    Staff,
    StaffPhoto,
    StaffRole,
    StoredImage,
    Ticket,
)
from app.staff import ticket_scope_filter

MAX_PIXELS = 40_000_000
THUMBNAIL_SIZE = (320, 320)
# Pillow format → how it is stored again.
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}
EXTENSIONS = dict(FORMATS.values())
CONTENT_TYPES = {extension: content_type for content_type, extension in FORMATS.values()}


@dataclass(frozen=True)
class ProcessedImage:
    content: bytes
    content_type: str
    extension: str
    width: int
    height: int
    thumbnail: bytes


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        # Without optimize: its second pass for Huffman tables costs 3.7 times the
        # encoding (14 ms against 4 for a 1280-pixel photo) to save 3% of the bytes.
        image.convert("RGB").save(buffer, "JPEG", quality=85)
    elif fmt == "PNG":
        image.save(buffer, "PNG", optimize=True)
    else:
        image.save(buffer, "WEBP", quality=85)
    return buffer.getvalue()


def process_image(data: bytes) -> ProcessedImage:
    """``data`` decoded and encoded again, on the process's decoding threads (a member of
    staff's photo, the demo's: a thread that may wait for its turn)."""
    return decode_blocking(reencode, data)


def reencode(data: bytes) -> ProcessedImage:
    """The pixels of ``data`` alone, upright, encoded again, with a thumbnail; or the
    4xx that says why not."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=list(FORMATS))
            if image.width * image.height > MAX_PIXELS:
                raise ImageTooManyPixels(
                    f"{image.width}×{image.height} pixels; at most "
                    f"{MAX_PIXELS // 1_000_000} megapixels are accepted"
                )
            image.load()
    except UnidentifiedImageError:
        raise UnsupportedMediaType("the file is not a JPEG, PNG or WebP image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooManyPixels("the image has too many pixels to be a photo") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"the image cannot be decoded: {exc}") from None
    # A JPEG carrying a Multi-Picture index (phones' HDR gain maps, depth maps) opens as
    # "MPO": it is a JPEG, and its first picture, the photo, is what is kept.
    fmt = "JPEG" if image.format == "MPO" else image.format or "JPEG"
    content_type, extension = FORMATS[fmt]
    try:
        upright = ImageOps.exif_transpose(image)
    except Exception:  # a corrupt EXIF block must not cost the rider the photo
        upright = image
    if upright.mode == "I" or upright.mode.startswith("I;16"):
        # 16-bit greyscale: scale to 8 bits; convert() would clip every value over 255
        # to white.
        upright = upright.convert("I").point(lambda v: v * (1 / 256)).convert("L")
    if upright.mode not in ("RGB", "RGBA", "L", "LA"):
        upright = upright.convert("RGBA" if "A" in upright.getbands() else "RGB")
    # A fresh image holds the pixels and nothing else: no EXIF, XMP, ICC or text chunks.
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    thumbnail = clean.convert("RGB")
    thumbnail.thumbnail(THUMBNAIL_SIZE)
    return ProcessedImage(
        _encode(clean, fmt),
        content_type,
        extension,
        clean.width,
        clean.height,
        _encode(thumbnail, "JPEG"),
    )


def write_blob(session: Session, store: MediaStore, *, content: bytes, extension: str) -> str:
    """Store ``content`` under its SHA-256, durably, before the transaction can commit.

    Once the API says 201 the photo survives a crash. A blob this transaction created is
    removed again if the transaction rolls back; one left by a crash between the write
    and the commit is removed by :func:`sweep_orphans`.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    key = blob_key(sha256, extension)
    # Written even when it is there already: the write is its time of use, which keeps a
    # delete of the same bytes (another photo's, or an orphan's) away for an hour.
    store.put(key, content, CONTENT_TYPES[extension])
    database = session.info[DATABASE]

    def remove_unless_used() -> None:
        # Another transaction may have stored the same bytes meanwhile, found the blob
        # here, and committed: then the blob is theirs too and stays.
        with database.session() as check:
            if blobs_in_use(check, {sha256}):
                return
        store.delete(key)

    on_rollback(session, remove_unless_used)
    return sha256


@dataclass(frozen=True)
class StoredUpload:
    """An upload judged, re-encoded and stored, with its thumbnail: not yet a row."""

    image: ProcessedImage
    sha256: str
    thumbnail_sha256: str


def store_image(session: Session, store: MediaStore, *, data: bytes) -> StoredUpload:
    """Decode and re-encode ``data``, and store it and its thumbnail (before the write
    transaction, whose rollback removes them again)."""
    return store_processed(session, store, image=process_image(data))


def store_processed(session: Session, store: MediaStore, *, image: ProcessedImage) -> StoredUpload:
    """Store a re-encoded image and its thumbnail (removed again on a rollback)."""
    return StoredUpload(
        image,
        write_blob(session, store, content=image.content, extension=image.extension),
        write_blob(session, store, content=image.thumbnail, extension="jpg"),
    )


# A rider's photo or a member of staff's: stored alike, in tables of their own.
P = TypeVar("P", Media, StaffPhoto)


@dataclass(frozen=True)
class Uploader(Generic[P]):
    """Who uploads a photo, and so where it is kept: a rider's in ``media`` (the rider,
    whose token was checked without the database, is checked as active here, and the
    upload counted against the rider's share), a member of staff's in ``staff_photos``."""

    model: type[P]
    owner: str  # the column of ``model`` naming the uploader
    id: uuid.UUID
    stamps: tuple[str, ...]  # the times an upload (or the same bytes again) sets
    counted: bool

    def owns(self) -> ColumnElement[bool]:
        owner: ColumnElement[uuid.UUID] = getattr(self.model, self.owner)
        return owner == self.id

    def stamped(self, now: datetime) -> dict[str, datetime]:
        return dict.fromkeys(self.stamps, now)


def rider_uploads(rider_id: uuid.UUID) -> Uploader[Media]:
    return Uploader(Media, "rider_id", rider_id, ("created_at", "updated_at"), counted=True)


def staff_uploads(staff_id: uuid.UUID) -> Uploader[StaffPhoto]:
    return Uploader(StaffPhoto, "uploaded_by", staff_id, ("created_at",), counted=False)


@dataclass(frozen=True)
class StoredMedia(Generic[P]):
    media: P
    created: bool


async def receive_photo(
    database: Database,
    store: MediaStore,
    *,
    settings: Settings,
    rider_id: uuid.UUID,
    data: bytes,
    now: datetime,
) -> StoredMedia[Media]:
    """A rider's upload: the same bytes again are the photo stored before; else, within
    the rider's share (so many an hour and a day, a few at once), decoded on the
    decoding threads and stored. No thread and no database connection is held while the
    photo waits for its turn or is decoded."""
    return await _receive(
        database, store, settings=settings, uploader=rider_uploads(rider_id), data=data, now=now
    )


async def receive_staff_photo(
    database: Database,
    store: MediaStore,
    *,
    settings: Settings,
    staff_id: uuid.UUID,
    data: bytes,
    now: datetime,
) -> StoredMedia[StaffPhoto]:
    """A member of staff's upload (the spot after the work, say), as a rider's: the same
    bytes again are the photo stored before; else decoded, a few of the uploader's at
    once, and stored."""
    return await _receive(
        database, store, settings=settings, uploader=staff_uploads(staff_id), data=data, now=now
    )


async def _receive(
    database: Database,
    store: MediaStore,
    *,
    settings: Settings,
    uploader: Uploader[P],
    data: bytes,
    now: datetime,
) -> StoredMedia[P]:
    upload_sha256 = hashlib.sha256(data).hexdigest()
    existing = await to_thread.run_sync(
        partial(
            _before_decoding,
            database,
            settings,
            uploader=uploader,
            upload_sha256=upload_sha256,
            now=now,
        )
    )
    if existing is not None:
        return StoredMedia(existing, created=False)
    image = await decode(reencode, data, uploader=uploader.id)

    def keep() -> StoredMedia[P]:
        # A read transaction until _add has written the files: no write lock is held
        # while they are written.
        with database.transaction(write=False) as session:
            return _add(
                session,
                store,
                uploader=uploader,
                upload_sha256=upload_sha256,
                image=image,
                now=now,
            )

    return await to_thread.run_sync(keep)


def _before_decoding(
    database: Database,
    settings: Settings,
    *,
    uploader: Uploader[P],
    upload_sha256: str,
    now: datetime,
) -> P | None:
    """The photo stored before from the same bytes, if any (renewed: usable again for as
    long as a new upload); else nothing, once a rider is known to be active and the
    upload is counted against the rider's share."""
    with database.transaction(write=False) as session:
        if uploader.counted:
            rider = session.get(Rider, uploader.id)
            if rider is None or not rider.is_active:
                raise Unauthenticated("the rider or its platform is no longer active")
        existing = _find(session, uploader, upload_sha256=upload_sha256)
        if existing is not None and existing.created_at >= usable_since(now, settings):
            return existing
        if existing is None and not uploader.counted:
            return None
        begin_writes(session)
        if existing is not None:
            # Unless the sweep of unused photos took it meanwhile (it locks what it
            # removes, and this waits for it): then the bytes are a new upload.
            renewed = session.execute(
                update(uploader.model)
                .where(uploader.model.id == existing.id)
                .values(uploader.stamped(now))
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            if renewed:
                session.refresh(existing)
                return existing
        if uploader.counted:
            count_upload(session, settings, rider_id=uploader.id, now=now)
        return None


def count_upload(
    session: Session, settings: Settings, *, rider_id: uuid.UUID, now: datetime
) -> None:
    """Count a photo sent to be decoded against the rider's share, whatever becomes of it;
    429, with when to try again, for a rider over the photos of an hour or a day."""
    lock(session, ("photo-uploads", rider_id))
    windows = [
        (now - timedelta(hours=1), settings.rider_photos_per_hour, "an hour"),
        (now - timedelta(days=1), settings.rider_photos_per_day, "a day"),
    ]
    hour, day = windows[0][0], windows[1][0]
    counts = session.execute(
        select(func.count(case((PhotoUpload.at > hour, 1))), func.count()).where(
            PhotoUpload.rider_id == rider_id, PhotoUpload.at > day
        )
    ).one()
    for (start, limit, said), count in zip(windows, counts, strict=True):
        if count >= limit:
            # One more may come when enough of the window's uploads have left it.
            leaving = session.scalar(
                select(PhotoUpload.at)
                .where(PhotoUpload.rider_id == rider_id, PhotoUpload.at > start)
                .order_by(PhotoUpload.at)
                .offset(count - limit)
                .limit(1)
            )
            wait = (leaving - start).total_seconds() if leaving else 60
            raise UploadsLimited(
                f"at most {limit} photos {said}; try again later",
                retry_after=max(1, math.ceil(wait)),
            )
    session.add(PhotoUpload(rider_id=rider_id, at=now))


def forget_uploads(database: Database, *, now: datetime) -> int:
    """The uploads counted more than a day ago: no share counts them any more."""
    with database.transaction(write=False) as session:
        old = PhotoUpload.at <= now - timedelta(days=1)
        if session.scalar(select(PhotoUpload.id).where(old).limit(1)) is None:
            return 0
        begin_writes(session)
        return int(session.execute(delete(PhotoUpload).where(old)).rowcount)  # type: ignore[attr-defined]


def store_media(
    session: Session, *, rider: Rider, data: bytes, store: MediaStore, now: datetime
) -> StoredMedia[Media]:
    """A rider's photo stored from a thread that may wait (the demo's riders)."""
    uploader = rider_uploads(rider.id)
    upload_sha256 = hashlib.sha256(data).hexdigest()
    existing = _find(session, uploader, upload_sha256=upload_sha256)
    if existing is not None:
        return StoredMedia(existing, created=False)
    return _add(
        session,
        store,
        uploader=uploader,
        upload_sha256=upload_sha256,
        image=process_image(data),
        now=now,
    )


def _add(
    session: Session,
    store: MediaStore,
    *,
    uploader: Uploader[P],
    upload_sha256: str,
    image: ProcessedImage,
    now: datetime,
) -> StoredMedia[P]:
    # The blobs are written (and fsynced) before the write transaction begins.
    stored = store_processed(session, store, image=image)
    begin_writes(session)
    existing = _find(session, uploader, upload_sha256=upload_sha256)
    if existing is not None:
        return StoredMedia(existing, created=False)
    photo = uploader.model(
        **{uploader.owner: uploader.id},
        **uploader.stamped(now),
        upload_sha256=upload_sha256,
        sha256=stored.sha256,
        thumbnail_sha256=stored.thumbnail_sha256,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        bytes=len(image.content),
    )
    try:
        with session.begin_nested():
            session.add(photo)
    except IntegrityError:
        # The same photo from the same uploader, stored a moment ago by a retry in flight.
        existing = _find(session, uploader, upload_sha256=upload_sha256)
        if existing is None:
            raise
        return StoredMedia(existing, created=False)
    return StoredMedia(photo, created=True)


def _find(session: Session, uploader: Uploader[P], *, upload_sha256: str) -> P | None:
    return session.scalar(
        select(uploader.model).where(uploader.owns(), uploader.model.upload_sha256 == upload_sha256)
    )


def _seen(media: Media | None) -> Media:
    """The photo a caller may see, or the same 404 whether it is missing or not theirs."""
    if media is None:
        raise NotFound("no such photo")
    return media


def media_for_rider(session: Session, rider: Rider, *, media_id: uuid.UUID) -> Media:
    media = session.get(Media, media_id)
    return _seen(media if media is not None and media.rider_id == rider.id else None)


def media_for_platform(session: Session, platform: Platform, *, media_id: uuid.UUID) -> Media:
    """A photo one of the platform's riders uploaded (for the rider's export)."""
    return _seen(
        session.scalar(
            select(Media)
            .join(Rider, Rider.id == Media.rider_id)
            .where(Media.id == media_id, Rider.platform_id == platform.id)
        )
    )


def media_for_staff(session: Session, staff: Staff, *, media_id: uuid.UUID) -> Media:
    """A photo of a report on a ticket in the staff member's scope, or of a sighting sent
    for an alert of the staff member's district (a unit's crew, with no area: only the
    photos of its unit's tickets)."""
    on_ticket = session.scalar(
        select(Media)
        .join(ReportMedia, ReportMedia.media_id == Media.id)
        .join(Report, Report.id == ReportMedia.report_id)
        .join(Ticket, Ticket.id == Report.ticket_id)
        .where(Media.id == media_id, ticket_scope_filter(staff))
        .limit(1)
    )
    if on_ticket is not None or staff.area is None:
        return _seen(on_ticket)
    district_id = staff.area.parent_id if staff.role == StaffRole.OFFICER else staff.area_id
    return _seen(
        session.scalar(
            select(Media)
            .join(SightingMedia, SightingMedia.media_id == Media.id)
            .join(AlertSighting, AlertSighting.id == SightingMedia.sighting_id)
            .join(Alert, Alert.id == AlertSighting.alert_id)
            .where(Media.id == media_id, Alert.district_id == district_id)
            .limit(1)
        )
    )


def media_keys(media: StoredImage) -> tuple[str, str]:
    """The keys of a photo's blob and of its thumbnail's."""
    return blob_key(media.sha256, EXTENSIONS[media.content_type]), blob_key(
        media.thumbnail_sha256, "jpg"
    )


def open_photo(store: MediaStore, media: StoredImage, *, thumbnail: bool) -> tuple[Blob, str]:
    """The stored blob of a photo (or its thumbnail) and its content type; the caller has
    checked that its caller may see it."""
    photo_key, thumbnail_key = media_keys(media)
    key, content_type = (
        (thumbnail_key, "image/jpeg") if thumbnail else (photo_key, media.content_type)
    )
    blob = store.open(key)
    if blob is None:
        raise NotFound("the photo's file is missing")
    return blob, content_type


def delete_media(session: Session, store: MediaStore, *, media_ids: Collection[uuid.UUID]) -> int:
    """Remove photos, with their published copies: their rows and links now, their blobs
    once the transaction commits and unless another photo row still names the same bytes.
    Returns how many went."""
    if not media_ids:
        return 0
    gone: list[StoredImage] = [
        *session.scalars(select(PublicPhoto).where(PublicPhoto.media_id.in_(media_ids))),
        *session.scalars(select(Media).where(Media.id.in_(media_ids))),
    ]
    count = sum(isinstance(row, Media) for row in gone)
    session.execute(delete(PublicPhoto).where(PublicPhoto.media_id.in_(media_ids)))
    session.execute(delete(ReportMedia).where(ReportMedia.media_id.in_(media_ids)))
    session.execute(delete(SightingMedia).where(SightingMedia.media_id.in_(media_ids)))
    session.execute(delete(Media).where(Media.id.in_(media_ids)))
    release_blobs(session, store, photos=gone)
    return count


def release_blobs(session: Session, store: MediaStore, *, photos: Collection[StoredImage]) -> None:
    """Once the transaction that dropped the rows of ``photos`` commits, delete their
    blobs (photo and thumbnail) that no photo row names any more."""
    keys = {key for photo in photos for key in media_keys(photo)}
    if not keys:
        return
    database = session.info[DATABASE]

    def remove_unused() -> None:
        with database.session() as check:
            kept = blobs_in_use(check, {digest_of(key) for key in keys})
        remove_if_idle(store, [key for key in keys if digest_of(key) not in kept])

    after_commit(session, remove_unused)


def remove_if_idle(store: MediaStore, keys: Collection[str]) -> None:
    """Delete ``keys``, each unless it was written within the store's grace period (the
    daily sweep of orphans takes it then)."""
    recent = datetime.now(UTC) - store.grace
    for key in keys:
        modified = store.modified(key)
        if modified is not None and modified < recent:
            store.delete(key)


def digest_of(key: str) -> str:
    """The SHA-256 a blob key names (``ab/cd/<sha256>.<ext>``)."""
    return key.rsplit("/", 1)[-1].split(".", 1)[0]


def blobs_in_use(session: Session, digests: set[str]) -> set[str]:
    """Of ``digests``, those a photo row names, as its photo or its thumbnail: a rider's
    photo, its published copy, one the district attached to an alert, or one staff
    uploaded (to show with an action on a ticket)."""
    named: set[str] = set()
    for table in (Media, PublicPhoto, AlertPhoto, StaffPhoto):
        named |= set(session.scalars(select(table.sha256).where(table.sha256.in_(digests))))
        named |= set(
            session.scalars(
                select(table.thumbnail_sha256).where(table.thumbnail_sha256.in_(digests))
            )
        )
    return named


def sweep_orphans(database: Database, store: MediaStore, *, older_than: datetime) -> int:
    """Remove blobs that no photo row names, written before ``older_than``: what a crash
    between a blob's write and its transaction's commit left behind (and temporary files
    of writes cut off). Younger blobs may belong to a transaction still running."""
    removed = 0
    batch: list[str] = []

    def flush() -> int:
        with database.session() as session:
            named = blobs_in_use(session, {digest_of(key) for key in batch})
        orphans = [key for key in batch if digest_of(key) not in named]
        for key in orphans:
            store.delete(key)
        batch.clear()
        return len(orphans)

    for stored in store.blobs():
        if stored.modified >= older_than:
            continue
        batch.append(stored.key)
        if len(batch) == 500:
            removed += flush()
    if batch:
        removed += flush()
    return removed


# A photo nobody used is swept this long after it stopped being usable: what names it
# in the last moment of its use has committed by then.
UNUSED_GRACE = timedelta(minutes=10)


def usable_since(now: datetime, settings: Settings) -> datetime:
    """Photos uploaded since then may be named by a report, a sighting or a verification;
    older ones nobody used are swept (``SENTINEL_UNUSED_PHOTO_HOURS``)."""
    return now - timedelta(hours=settings.unused_photo_hours)


def not_uploaded_by(missing: Collection[uuid.UUID], *, who: str) -> UnknownMedia:
    """The refusal of ``media_ids`` naming photos ``who`` did not upload (or uploaded too
    long ago to use)."""
    names = [str(m) for m in missing]
    return UnknownMedia(
        f"photos not uploaded by {who}, or uploaded too long ago to use (upload them "
        f"again): {', '.join(names)}",
        errors=[{"field": "media_ids", "message": f"unknown: {m}"} for m in names],
    )


def not_the_riders(missing: list[uuid.UUID]) -> UnknownMedia:
    """The refusal of a report or verification naming photos its rider did not upload
    (or uploaded too long ago to use)."""
    return not_uploaded_by(missing, who="this rider")


def usable_photos(
    session: Session,
    uploader: Uploader[P],
    *,
    media_ids: Collection[uuid.UUID],
    now: datetime,
    settings: Settings,
) -> dict[uuid.UUID, P]:
    """Those of ``media_ids`` that ``uploader`` uploaded recently enough to be used
    (:func:`usable_since`), by id."""
    if not media_ids:
        return {}
    model = uploader.model
    return {
        photo.id: photo
        for photo in session.scalars(
            select(model).where(
                model.id.in_(media_ids),
                uploader.owns(),
                model.created_at >= usable_since(now, settings),
            )
        )
    }


def check_media_owner(
    session: Session,
    rider: Rider,
    *,
    media_ids: tuple[uuid.UUID, ...],
    now: datetime,
    settings: Settings,
) -> None:
    """Every one of ``media_ids`` was uploaded by ``rider`` recently enough to be used
    (:func:`usable_since`), or :func:`not_the_riders`."""
    owned = usable_photos(
        session, rider_uploads(rider.id), media_ids=media_ids, now=now, settings=settings
    )
    if missing := [m for m in media_ids if m not in owned]:
        raise not_the_riders(missing)

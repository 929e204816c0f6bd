"""Riders' photos: judged by their bytes, re-encoded without metadata, stored by content.

Nothing a rider uploads is stored as sent. Pillow opens it only if its bytes say JPEG,
PNG or WebP; the pixel count is checked from the header before anything is decoded
(a decompression bomb is an error, not a warning); the EXIF orientation is applied; and
the pixels alone are encoded again, so EXIF (with its GPS position), XMP, IPTC and ICC
data never reach the disk.
"""

import errno
import hashlib
import io
import os
import tempfile
import threading
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.db import DATABASE, begin_writes, on_rollback
from app.errors import (
    ImageTooManyPixels,
    InvalidImage,
    NotFound,
    StorageFull,
    UnknownMedia,
    UnsupportedMediaType,
)
from app.models import Media, Report, ReportMedia, Rider, Staff, Ticket
from app.services.scope import ticket_scope_filter

MAX_PIXELS = 40_000_000
THUMBNAIL_SIZE = (320, 320)
_DECODING = threading.BoundedSemaphore(2)
# Pillow format → how it is stored again.
FORMATS = {
    "JPEG": ("image/jpeg", "jpg"),
    "PNG": ("image/png", "png"),
    "WEBP": ("image/webp", "webp"),
}


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
        image.convert("RGB").save(buffer, "JPEG", quality=85, optimize=True)
    elif fmt == "PNG":
        image.save(buffer, "PNG", optimize=True)
    else:
        image.save(buffer, "WEBP", quality=85)
    return buffer.getvalue()


def process_image(data: bytes) -> ProcessedImage:
    # A 40-megapixel photo takes some 500 MB while it is decoded, turned and re-encoded:
    # a few at a time, not one per threadpool thread.
    with _DECODING:
        return _process_image(data)


def _process_image(data: bytes) -> ProcessedImage:
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


def blob_path(media_dir: Path, sha256: str, extension: str) -> Path:
    return media_dir / sha256[:2] / sha256[2:4] / f"{sha256}.{extension}"


def _storage_error(error: OSError) -> Exception:
    """A full (or quota-bound) disk is the operator's to fix and the client's to retry
    later: a 507 problem. Any other failure to write stays what it is."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull("the photo store is full; try again later")
    return error


def write_blob(session: Session, media_dir: Path, content: bytes, extension: str) -> str:
    """Store ``content`` under its SHA-256, durably, before the transaction can commit.

    Written to a temporary file, fsynced, renamed into place and the directory fsynced:
    once the API says 201 the photo survives a crash. A file this transaction created is
    removed again if the transaction rolls back.
    """
    sha256 = hashlib.sha256(content).hexdigest()
    path = blob_path(media_dir, sha256, extension)
    if path.exists():
        return sha256
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
    except OSError as error:
        raise _storage_error(error) from error
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException as error:
        Path(temporary).unlink(missing_ok=True)
        if isinstance(error, OSError):
            raise _storage_error(error) from error
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
    database = session.info[DATABASE]

    def remove_unless_used() -> None:
        # Another transaction may have stored the same bytes meanwhile, found the file
        # here, and committed: then the file is theirs too and stays.
        with database.session() as check:
            if check.scalar(
                select(
                    exists().where((Media.sha256 == sha256) | (Media.thumbnail_sha256 == sha256))
                )
            ):
                return
        path.unlink(missing_ok=True)

    on_rollback(session, remove_unless_used)
    return sha256


@dataclass(frozen=True)
class StoredMedia:
    media: Media
    created: bool


def store_media(session: Session, *, rider: Rider, data: bytes, media_dir: Path) -> StoredMedia:
    upload_sha256 = hashlib.sha256(data).hexdigest()
    existing = _find(session, rider.id, upload_sha256)
    if existing is not None:
        return StoredMedia(existing, created=False)
    # Decoding, re-encoding and the fsyncs happen before the write transaction.
    image = process_image(data)
    sha256 = write_blob(session, media_dir, image.content, image.extension)
    thumbnail_sha256 = write_blob(session, media_dir, image.thumbnail, "jpg")
    begin_writes(session)
    existing = _find(session, rider.id, upload_sha256)
    if existing is not None:
        return StoredMedia(existing, created=False)
    media = Media(
        rider_id=rider.id,
        upload_sha256=upload_sha256,
        sha256=sha256,
        thumbnail_sha256=thumbnail_sha256,
        content_type=image.content_type,
        width=image.width,
        height=image.height,
        bytes=len(image.content),
    )
    try:
        with session.begin_nested():
            session.add(media)
    except IntegrityError:
        # The same photo from the same rider, stored a moment ago by a retry in flight.
        existing = _find(session, rider.id, upload_sha256)
        if existing is None:
            raise
        return StoredMedia(existing, created=False)
    return StoredMedia(media, created=True)


def _find(session: Session, rider_id: uuid.UUID, upload_sha256: str) -> Media | None:
    return session.scalar(
        select(Media).where(Media.rider_id == rider_id, Media.upload_sha256 == upload_sha256)
    )


def media_for_rider(session: Session, rider: Rider, media_id: uuid.UUID) -> Media:
    media = session.get(Media, media_id)
    if media is None or media.rider_id != rider.id:
        raise NotFound("no such photo")
    return media


def media_for_staff(session: Session, staff: Staff, media_id: uuid.UUID) -> Media:
    """A photo of a report on a ticket in the staff member's scope."""
    media = session.scalar(
        select(Media)
        .join(ReportMedia, ReportMedia.media_id == Media.id)
        .join(Report, Report.id == ReportMedia.report_id)
        .join(Ticket, Ticket.id == Report.ticket_id)
        .where(Media.id == media_id, ticket_scope_filter(staff))
        .limit(1)
    )
    if media is None:
        raise NotFound("no such photo")
    return media


# How a photo is sent: kept by the browser a day (a photo's bytes never change); like
# every answer, never to be sniffed into anything but an image (app.middleware).
PHOTO_HEADERS = {"Cache-Control": "private, max-age=86400"}


def media_file(media_dir: Path, media: Media, *, thumbnail: bool) -> tuple[Path, str]:
    """The stored file of a photo (or its thumbnail) and its content type."""
    if thumbnail:
        path, content_type = blob_path(media_dir, media.thumbnail_sha256, "jpg"), "image/jpeg"
    else:
        extension = next(ext for ct, ext in FORMATS.values() if ct == media.content_type)
        path, content_type = blob_path(media_dir, media.sha256, extension), media.content_type
    if not path.exists():
        raise NotFound("the photo's file is missing")
    return path, content_type


def not_the_riders(missing: list[uuid.UUID]) -> UnknownMedia:
    """The refusal of a report or verification naming photos its rider did not upload."""
    names = [str(m) for m in missing]
    return UnknownMedia(
        f"photos not uploaded by this rider: {', '.join(names)}",
        errors=[{"field": "media_ids", "message": f"unknown: {m}"} for m in names],
    )


def check_media_owner(session: Session, rider: Rider, media_ids: tuple[uuid.UUID, ...]) -> None:
    """Every one of ``media_ids`` was uploaded by ``rider``, or :func:`not_the_riders`."""
    if not media_ids:
        return
    owned = set(
        session.scalars(select(Media.id).where(Media.id.in_(media_ids), Media.rider_id == rider.id))
    )
    if missing := [m for m in media_ids if m not in owned]:
        raise not_the_riders(missing)

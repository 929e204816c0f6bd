import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, ForeignKey, Index, Integer, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UtcDateTime, UuidPk, utcnow


class StoredImage:
    """The columns of a photo as stored: re-encoded, stripped of metadata, and named by the
    SHA-256 of its bytes (content-addressed), with a thumbnail named likewise. Indexed:
    whether a blob is still named is asked before any blob is deleted."""

    sha256: Mapped[str] = mapped_column(String(64), index=True)
    thumbnail_sha256: Mapped[str] = mapped_column(String(64), index=True)
    content_type: Mapped[str] = mapped_column(String(32))
    width: Mapped[int]
    height: Mapped[int]
    bytes: Mapped[int]


class Media(UuidPk, StoredImage, Timestamps, Base):
    """A photo a rider uploaded, stored re-encoded and stripped of metadata."""

    __tablename__ = "media"
    __table_args__ = (
        UniqueConstraint("rider_id", "upload_sha256"),
        # The photos of an hour nobody used (the sweep, from where it stopped).
        Index("ix_media_created_at_id", "created_at", "id"),
    )

    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"))
    # Of the bytes as uploaded: the same photo sent twice (a retry) is one media.
    upload_sha256: Mapped[str] = mapped_column(String(64))


class PublicPhoto(StoredImage, Base):
    """The copy of a rider's photo that staff published: the boxes they drew (faces,
    plates) blurred beyond recovery. The original stays staff-only."""

    __tablename__ = "public_photos"

    media_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("media.id"), primary_key=True)
    boxes: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    published_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PhotoUpload(UuidPk, Base):
    """A photo a rider sent to be decoded, counted against the rider's share whatever
    became of it (stored, refused, given up on); kept a day."""

    __tablename__ = "photo_uploads"
    __table_args__ = (Index("ix_photo_uploads_rider_id_at", "rider_id", "at"),)

    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"))
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class StaffPhoto(UuidPk, StoredImage, Base):
    """A photo staff or a unit's crew uploaded (the spot after the work, say), stored like
    a rider's: re-encoded, stripped of metadata."""

    __tablename__ = "staff_photos"
    __table_args__ = (
        UniqueConstraint("uploaded_by", "upload_sha256"),
        # The photos of an hour no action showed (the sweep, from where it stopped).
        Index("ix_staff_photos_created_at_id", "created_at", "id"),
    )

    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"))
    upload_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


# The photos an action on a ticket showed (its event), in order.
event_photos = Table(
    "event_photos",
    Base.metadata,
    Column("event_id", ForeignKey("ticket_events.id"), primary_key=True),
    Column("photo_id", ForeignKey("staff_photos.id"), primary_key=True, index=True),
    Column("position", Integer, nullable=False),
)

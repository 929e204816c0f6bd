"""Area alerts: the district tells riders in an area, through their platforms (a missing
person, a hazard, a closure), and riders send sightings back."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import UtcDateTime
from app.models.base import Base, Timestamps, UuidPk, str_enum, utcnow
from app.models.media import StoredImage


class AlertEventType(StrEnum):
    """What happened to an alert (``AlertEvent.type``)."""

    PUBLISHED = "published"
    SIGHTING = "sighting"  # a rider saw what it asks about
    GROWN = "grown"  # its area grew on schedule
    CLOSED = "closed"
    PURGED = "purged"  # its sightings' personal information, after retention


class AlertKind(StrEnum):
    MISSING_PERSON = "missing_person"
    HAZARD = "hazard"
    CLOSURE = "closure"


class AlertOutcome(StrEnum):
    """How an alert ended: as the district says (found, resolved, cancelled), or by its
    own clock (expired)."""

    FOUND = "found"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


# What the district may say when it closes an alert (the clock says the rest).
CLOSING_OUTCOMES = (AlertOutcome.FOUND, AlertOutcome.RESOLVED, AlertOutcome.CANCELLED)


class AlertStatus(StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"


class Alert(UuidPk, Timestamps, Base):
    __tablename__ = "alerts"
    __table_args__ = (
        # Riders' look-up and the worker's sweeps: the active alerts, few at any time.
        Index("ix_alerts_status_expires_at", "status", "expires_at"),
        Index("ix_alerts_district_id_created_at", "district_id", "created_at"),
    )

    kind: Mapped[AlertKind] = mapped_column(str_enum(AlertKind, length=32))
    status: Mapped[AlertStatus] = mapped_column(str_enum(AlertStatus), default=AlertStatus.ACTIVE)
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text)
    # The district it was published in, and by whom.
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    published_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"))
    # Where: a community's or street's code, a drawn polygon, or a centre and radius
    # (which may grow on a schedule). ``area`` is the current GeoJSON geometry (WGS-84).
    area_code: Mapped[str | None] = mapped_column(String(32))
    center_lon: Mapped[float | None]
    center_lat: Mapped[float | None]
    radius_m: Mapped[float | None]
    growth: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    area: Mapped[dict[str, Any]] = mapped_column(JSON)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    outcome: Mapped[str | None] = mapped_column(String(32))
    close_note: Mapped[str | None] = mapped_column(Text)
    # When its sensitive parts (a missing person's photos, words and sightings) went.
    purged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class AlertPhoto(UuidPk, StoredImage, Base):
    """A photo the district attached to an alert (a missing person's), stored like riders'
    photos: re-encoded, stripped of metadata, by content."""

    __tablename__ = "alert_photos"

    alert_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("alerts.id"), index=True)
    uploaded_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("staff.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class AlertSighting(UuidPk, Base):
    __tablename__ = "alert_sightings"
    __table_args__ = (
        Index("ix_alert_sightings_alert_id_created_at", "alert_id", "created_at"),
        Index("ix_alert_sightings_rider_id_created_at", "rider_id", "created_at"),
    )

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"))
    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"))
    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"))
    lon: Mapped[float]
    lat: Mapped[float]
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class SightingMedia(Base):
    __tablename__ = "sighting_media"

    sighting_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("alert_sightings.id"), primary_key=True
    )
    media_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media.id"), primary_key=True, index=True
    )
    position: Mapped[int]


class AlertEvent(UuidPk, Base):
    """Every step of an alert's life, for the audit: published, grown, sighted, closed,
    purged."""

    __tablename__ = "alert_events"

    alert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("alerts.id"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    actor_kind: Mapped[str] = mapped_column(String(16))  # an ActorKind
    actor_id: Mapped[uuid.UUID | None]
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)

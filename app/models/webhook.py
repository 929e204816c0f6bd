import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UtcDateTime, UuidPk


class Webhook(Timestamps, Base):
    """Where a platform wants its events, and the secret they are signed with."""

    __tablename__ = "webhooks"

    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))


class OutboxEvent(UuidPk, Base):
    """An event for a platform, written in the transaction of the change that caused it
    and delivered afterwards by the worker. Its id is the event's id in every attempt."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        # The worker's claim: pending events whose time has come, oldest first.
        Index("ix_outbox_events_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_outbox_events_platform_id_created_at", "platform_id", "created_at"),
    )

    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"))
    type: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(16), default="pending")  # delivered, failed
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class WebhookDelivery(UuidPk, Base):
    """One attempt to deliver one event: what the receiver said, or why it could not."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_platform_id_attempted_at", "platform_id", "attempted_at"),
    )

    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("outbox_events.id"), index=True)
    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"))
    url: Mapped[str] = mapped_column(String(2048))
    attempt: Mapped[int]
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]

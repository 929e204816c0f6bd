"""Where a street office, a district or a unit is told what happens: its channels (a
WeCom, DingTalk or Feishu group's robot, a mailing list, a webhook), the messages
queued for them, and every attempt to send one."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps, UtcDateTime, UuidPk, str_enum


class ChannelKind(StrEnum):
    WECOM = "wecom"  # 企业微信 group robot
    DINGTALK = "dingtalk"  # 钉钉 custom robot
    FEISHU = "feishu"  # 飞书 custom bot
    EMAIL = "email"
    WEBHOOK = "webhook"  # a signed JSON POST, as the platforms' webhooks


class NotifyEvent(StrEnum):
    """What a channel may ask to be told."""

    TICKET_NEW = "ticket.new"
    TICKET_DISPATCHED = "ticket.dispatched"
    SLA_WARNING = "sla.warning"
    SLA_BREACHED = "sla.breached"
    TICKET_ESCALATED = "ticket.escalated"
    TICKET_REOPENED = "ticket.reopened"
    EXTENSION_REQUESTED = "extension.requested"
    FEEDBACK_NEGATIVE = "feedback.negative"
    ALERT_SIGHTING = "alert.sighting"
    SURGE_DETECTED = "surge.detected"
    DIGEST_DAILY = "digest.daily"
    DIGEST_WEEKLY = "digest.weekly"


class Channel(Timestamps, Base):
    """A place messages go to, owned by an area (a street or a district) or a unit."""

    __tablename__ = "channels"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[ChannelKind] = mapped_column(str_enum(ChannelKind))
    url: Mapped[str] = mapped_column(String(2048))  # a robot's URL, or mailto:a@b,c@d
    secret: Mapped[str | None] = mapped_column(String(256))
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    lang: Mapped[str] = mapped_column(String(2), default="zh")
    events: Mapped[list[str]] = mapped_column(JSON)
    categories: Mapped[list[str] | None] = mapped_column(JSON)  # codes; None: all
    min_priority: Mapped[int | None]  # 1 (high) .. 3: only tickets at least this urgent
    quiet_hours: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Since when every attempt failed (None: the last one went through), and why.
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The robots' throttle, as a bucket: messages it may still send at once, as of when.
    allowance: Mapped[float] = mapped_column(default=0.0)
    allowance_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class Notification(UuidPk, Base):
    """A message for a channel, written with what caused it and sent by the worker: at
    once, or (quiet hours) when the office opens; several due at once for a channel
    over its throttle go together as one."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_state_next_attempt_at", "state", "next_attempt_at"),
        Index("ix_notifications_channel_id_created_at", "channel_id", "created_at"),
    )

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    event: Mapped[str] = mapped_column(String(32))  # a NotifyEvent, or "test"
    ticket_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("tickets.id"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # pending, sent, failed (given up), or merged (sent as part of another's message)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    held: Mapped[bool] = mapped_column(default=False)  # waiting for office hours
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # When it was first tried: its day of retries counts from then.
    first_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime)


class ChannelDelivery(UuidPk, Base):
    """One attempt to send a channel a message (of one notification or several)."""

    __tablename__ = "channel_deliveries"
    __table_args__ = (
        Index("ix_channel_deliveries_channel_id_attempted_at", "channel_id", "attempted_at"),
    )

    channel_id: Mapped[int] = mapped_column(ForeignKey("channels.id"))
    attempted_at: Mapped[datetime] = mapped_column(UtcDateTime)
    events: Mapped[list[str]] = mapped_column(JSON)  # of the notifications it carried
    notifications: Mapped[int]
    status_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    duration_ms: Mapped[int]

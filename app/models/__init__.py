"""The tables, one file per aggregate, re-exported here."""

from app.models.alert import (
    CLOSING_OUTCOMES,
    Alert,
    AlertEvent,
    AlertEventType,
    AlertKind,
    AlertOutcome,
    AlertPhoto,
    AlertSighting,
    AlertStatus,
    SightingMedia,
)
from app.models.area import Area, AreaLevel
from app.models.base import Base, utcnow
from app.models.calendar import WorkingCalendarYear
from app.models.category import Category, Priority
from app.models.forwarding import Forward, ForwardAttempt, ForwardedTicket
from app.models.idempotency import IdempotencyRecord
from app.models.jobs import JobMark
from app.models.media import Media, PhotoUpload, PublicPhoto, StoredImage
from app.models.platform import Platform, Rider
from app.models.points import (
    DAY,
    EPOCH,
    HOUR,
    Contribution,
    PlatformActivity,
    PointsEntry,
    PointsReason,
    RiderActivity,
    RiderDailyActivity,
    RiderTotals,
    activity_key,
    day_of,
    hour_of,
)
from app.models.reference import ReferenceVersion
from app.models.report import Report, ReportMedia, ReportOutcome
from app.models.staff import Staff, StaffRole
from app.models.throttle import SignInThrottle
from app.models.ticket import (
    ENDED_STATUSES,
    OPEN_STATUSES,
    PUBLIC_STATUSES,
    RESOLVED_STATUSES,
    ActorKind,
    Ticket,
    TicketAction,
    TicketEvent,
    TicketEventType,
    TicketStatus,
    Verification,
)
from app.models.webhook import OutboxEvent, Webhook, WebhookDelivery

__all__ = [
    "CLOSING_OUTCOMES",
    "DAY",
    "ENDED_STATUSES",
    "EPOCH",
    "HOUR",
    "OPEN_STATUSES",
    "PUBLIC_STATUSES",
    "RESOLVED_STATUSES",
    "ActorKind",
    "Alert",
    "AlertEvent",
    "AlertEventType",
    "AlertKind",
    "AlertOutcome",
    "AlertPhoto",
    "AlertSighting",
    "AlertStatus",
    "Area",
    "AreaLevel",
    "Base",
    "Category",
    "Contribution",
    "Forward",
    "ForwardAttempt",
    "ForwardedTicket",
    "IdempotencyRecord",
    "JobMark",
    "Media",
    "OutboxEvent",
    "PhotoUpload",
    "Platform",
    "PlatformActivity",
    "PointsEntry",
    "PointsReason",
    "Priority",
    "PublicPhoto",
    "ReferenceVersion",
    "Report",
    "ReportMedia",
    "ReportOutcome",
    "Rider",
    "RiderActivity",
    "RiderDailyActivity",
    "RiderTotals",
    "SightingMedia",
    "SignInThrottle",
    "Staff",
    "StaffRole",
    "StoredImage",
    "Ticket",
    "TicketAction",
    "TicketEvent",
    "TicketEventType",
    "TicketStatus",
    "Verification",
    "Webhook",
    "WebhookDelivery",
    "WorkingCalendarYear",
    "activity_key",
    "day_of",
    "hour_of",
    "utcnow",
]

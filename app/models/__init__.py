"""The tables, one file per aggregate, re-exported here."""

from app.models.alert import (
    Alert,
    AlertEvent,
    AlertKind,
    AlertPhoto,
    AlertSighting,
    AlertStatus,
    SightingMedia,
)
from app.models.area import Area, AreaLevel
from app.models.base import Base, utcnow
from app.models.calendar import WorkingCalendarYear
from app.models.category import Category
from app.models.forwarding import Forward, ForwardAttempt, ForwardedTicket
from app.models.idempotency import IdempotencyRecord
from app.models.media import Media
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
    OPEN_STATUSES,
    Ticket,
    TicketEvent,
    TicketStatus,
    Verification,
)
from app.models.webhook import OutboxEvent, Webhook, WebhookDelivery

__all__ = [
    "DAY",
    "EPOCH",
    "HOUR",
    "OPEN_STATUSES",
    "Alert",
    "AlertEvent",
    "AlertKind",
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
    "Media",
    "OutboxEvent",
    "Platform",
    "PlatformActivity",
    "PointsEntry",
    "PointsReason",
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
    "Ticket",
    "TicketEvent",
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

"""Events for platforms, written in the transaction of the change that causes them.

Nothing is sent here: the worker delivers what the outbox holds (``app.platforms.webhooks``)
after the change has committed, so a slow or dead receiver never slows the API, and an
event exists if and only if its change does.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import OutboxEvent, Webhook


class EventType(StrEnum):
    REPORT_UPDATED = "report.updated"
    POINTS_AWARDED = "points.awarded"
    ALERT_PUBLISHED = "alert.published"
    ALERT_UPDATED = "alert.updated"
    ALERT_CLOSED = "alert.closed"


def new_event(
    *, platform_id: uuid.UUID, type: EventType, data: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """An ``outbox_events`` row for an event queued ``now``: due at once."""
    return {
        "id": uuid.uuid4(),
        "platform_id": platform_id,
        "type": type.value,
        "data": data,
        "created_at": now,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "delivered_at": None,
    }


def emit(
    session: Session,
    *,
    platform_id: uuid.UUID,
    type: EventType,
    data: dict[str, Any],
    now: datetime,
) -> OutboxEvent | None:
    """Queue one event for ``platform_id`` if it has a webhook; returns the event."""
    if (
        session.scalar(select(Webhook.platform_id).where(Webhook.platform_id == platform_id))
        is None
    ):
        return None
    event = OutboxEvent(**new_event(platform_id=platform_id, type=type, data=data, now=now))
    session.add(event)
    return event

"""The morning digest: at 08:30 (Asia/Shanghai) on each working day of the calendar,
every channel that asked for ``digest.daily`` gets its scope's day — the tickets opened
the day before, those due today, those overdue, by street. Once a day each (a mark per
channel); none on a holiday or a weekend that is not a working day."""

import uuid
from collections import Counter
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from app.db import Database, begin_writes
from app.models import (
    CLOCKED_STATUSES,
    Area,
    Channel,
    JobMark,
    Notification,
    NotifyEvent,
    Ticket,
)
from app.tickets import current_reference

TZ = ZoneInfo("Asia/Shanghai")
AT = time(8, 30)


def send_digests(database: Database, *, now: datetime) -> int:
    """Queues today's digest for each channel that wants one and has not had it; how
    many."""
    local = now.astimezone(TZ)
    today = local.date()
    starts = datetime.combine(today, AT, TZ)
    if local < starts:
        return 0
    with database.transaction(write=False) as session:
        if not current_reference(session).calendar.year(today.year).is_working_day(today):
            return 0
        wanting = [
            c
            for c in session.scalars(select(Channel).where(Channel.active))
            if NotifyEvent.DIGEST_DAILY.value in c.events
        ]
        due = [c for c in wanting if _last(session, c) < starts]
        if not due:
            return 0
        begin_writes(session)
        sent = 0
        for channel in due:
            mark = JobMark.held(session, _mark_name(channel))
            if mark.at >= starts:
                continue  # another worker did it a moment ago
            session.add(
                Notification(
                    id=uuid.uuid4(),
                    channel_id=channel.id,
                    event=NotifyEvent.DIGEST_DAILY.value,
                    ticket_id=None,
                    data=day_of(
                        session, channel, starts=datetime.combine(today, time(), TZ), now=now
                    ),
                    created_at=now,
                    state="pending",
                    held=False,
                    attempts=0,
                    next_attempt_at=now,
                )
            )
            mark.at = starts
            sent += 1
        return sent


def _mark_name(channel: Channel) -> str:
    return f"digest.daily:{channel.id}"


def _last(session: Session, channel: Channel) -> datetime:
    mark = session.get(JobMark, _mark_name(channel))
    return mark.at if mark is not None else datetime.min.replace(tzinfo=TZ)


def _scope(session: Session, channel: Channel) -> ColumnElement[bool]:
    if channel.unit_id is not None:
        return Ticket.unit_id == channel.unit_id
    return (Ticket.street_id == channel.area_id) | (Ticket.district_id == channel.area_id)


def day_of(
    session: Session, channel: Channel, *, starts: datetime, now: datetime
) -> dict[str, Any]:
    """The facts of a channel's digest for the day that ``starts``."""
    scope = _scope(session, channel)
    yesterday, tomorrow = starts - timedelta(days=1), starts + timedelta(days=1)
    clocked = Ticket.status.in_(CLOCKED_STATUSES)
    counts: dict[str, Counter[int | None]] = {}
    for name, condition in (
        ("new", (Ticket.created_at >= yesterday) & (Ticket.created_at < starts)),
        ("due_today", clocked & (Ticket.due_at >= starts) & (Ticket.due_at < tomorrow)),
        ("overdue", clocked & (Ticket.due_at < now)),
    ):
        counts[name] = Counter(
            {
                street_id: n
                for street_id, n in session.execute(
                    select(Ticket.street_id, func.count())
                    .where(scope, condition)
                    .group_by(Ticket.street_id)
                )
            }
        )
    street_ids = {i for c in counts.values() for i in c if i is not None}
    names = {
        a.id: a
        for a in session.scalars(select(Area).where(Area.id.in_(street_ids)).order_by(Area.code))
    }
    return {
        "day": starts.date().isoformat(),
        **{name: sum(c.values()) for name, c in counts.items()},
        "streets": [
            {
                "name": area.name,
                "name_en": area.name_en,
                **{name: c.get(area.id, 0) for name, c in counts.items()},
            }
            for area in names.values()
        ],
    }

"""The digests: at 08:30 (Asia/Shanghai) on each working day of the calendar, every
channel that asked for ``digest.daily`` gets its scope's day — the tickets opened the day
before, those due today, those overdue, by street; none on a holiday or a weekend that is
not a working day. On Monday at 09:00, ``digest.weekly``: the week before — opened,
resolved, and overdue now, by street. Once each (a mark per channel and digest)."""

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
WEEKLY_AT = time(9, 0)  # on Mondays


def send_digests(database: Database, *, now: datetime) -> int:
    """Queues today's digests for each channel that wants one and has not had it; how
    many."""
    local = now.astimezone(TZ)
    today = local.date()
    midnight = datetime.combine(today, time(), TZ)
    due: list[tuple[NotifyEvent, datetime]] = []
    with database.transaction(write=False) as session:
        calendar = current_reference(session).calendar
        daily_at = datetime.combine(today, AT, TZ)
        if local >= daily_at and calendar.year(today.year).is_working_day(today):
            due.append((NotifyEvent.DIGEST_DAILY, daily_at))
        if today.weekday() == 0 and local >= datetime.combine(today, WEEKLY_AT, TZ):
            due.append((NotifyEvent.DIGEST_WEEKLY, datetime.combine(today, WEEKLY_AT, TZ)))
        if not due:
            return 0
        channels = list(session.scalars(select(Channel).where(Channel.active)))
        wanted = [
            (channel, event, starts)
            for event, starts in due
            for channel in channels
            if event.value in channel.events and _last(session, channel, event=event) < starts
        ]
        if not wanted:
            return 0
        begin_writes(session)
        sent = 0
        for channel, event, starts in wanted:
            mark = JobMark.held(session, _mark_name(channel, event))
            if mark.at >= starts:
                continue  # another worker did it a moment ago
            last = mark.at if mark.at > EARLIEST else midnight - timedelta(days=1)
            facts = (
                day_of(session, channel, starts=midnight, since=last, now=now)
                if event == NotifyEvent.DIGEST_DAILY
                else week_of(session, channel, ends=midnight, now=now)
            )
            session.add(
                Notification(
                    id=uuid.uuid4(),
                    channel_id=channel.id,
                    event=event.value,
                    ticket_id=None,
                    data=facts,
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


def _mark_name(channel: Channel, event: NotifyEvent) -> str:
    return f"{event.value}:{channel.id}"


EARLIEST = datetime(1971, 1, 1, tzinfo=TZ)  # a mark not yet moved: no digest before


def _last(session: Session, channel: Channel, *, event: NotifyEvent) -> datetime:
    mark = session.get(JobMark, _mark_name(channel, event))
    return mark.at if mark is not None else EARLIEST


def _scope(session: Session, channel: Channel) -> ColumnElement[bool]:
    if channel.unit_id is not None:
        return Ticket.unit_id == channel.unit_id
    return (Ticket.street_id == channel.area_id) | (Ticket.district_id == channel.area_id)


def day_of(
    session: Session, channel: Channel, *, starts: datetime, since: datetime, now: datetime
) -> dict[str, Any]:
    """The facts of a channel's daily digest for the day that ``starts``: new are the
    tickets opened ``since`` its last digest (after a weekend or a holiday, all of it)."""
    scope = _scope(session, channel)
    tomorrow = starts + timedelta(days=1)
    clocked = Ticket.status.in_(CLOCKED_STATUSES)
    counts: dict[str, Counter[int | None]] = {}
    for name, condition in (
        ("new", (Ticket.created_at >= since) & (Ticket.created_at < now)),
        ("due_today", clocked & (Ticket.due_at >= starts) & (Ticket.due_at < tomorrow)),
        ("overdue", clocked & (Ticket.due_at < now)),
    ):
        counts[name] = _by_street(session, scope, condition=condition)
    return {"day": starts.date().isoformat(), **_summed(session, counts)}


def week_of(session: Session, channel: Channel, *, ends: datetime, now: datetime) -> dict[str, Any]:
    """The facts of a channel's weekly digest: the seven days before ``ends``."""
    scope = _scope(session, channel)
    starts = ends - timedelta(days=7)
    counts: dict[str, Counter[int | None]] = {}
    for name, condition in (
        ("new", (Ticket.created_at >= starts) & (Ticket.created_at < ends)),
        ("resolved", (Ticket.resolved_at >= starts) & (Ticket.resolved_at < ends)),
        ("overdue", Ticket.status.in_(CLOCKED_STATUSES) & (Ticket.due_at < now)),
    ):
        counts[name] = _by_street(session, scope, condition=condition)
    return {
        "first": starts.date().isoformat(),
        "last": (ends - timedelta(days=1)).date().isoformat(),
        **_summed(session, counts),
    }


def _by_street(
    session: Session, scope: ColumnElement[bool], *, condition: ColumnElement[bool]
) -> Counter[int | None]:
    return Counter(
        {
            street_id: n
            for street_id, n in session.execute(
                select(Ticket.street_id, func.count())
                .where(scope, condition)
                .group_by(Ticket.street_id)
            )
        }
    )


def _summed(session: Session, counts: dict[str, Counter[int | None]]) -> dict[str, Any]:
    """The totals of ``counts``, and a row per street that has any."""
    street_ids = {i for c in counts.values() for i in c if i is not None}
    streets = session.scalars(select(Area).where(Area.id.in_(street_ids)).order_by(Area.code))
    return {
        **{name: sum(c.values()) for name, c in counts.items()},
        "streets": [
            {
                "name": area.name,
                "name_en": area.name_en,
                **{name: c.get(area.id, 0) for name, c in counts.items()},
            }
            for area in streets
        ],
    }

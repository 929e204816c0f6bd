"""Who is told what: the worker reads the events somebody is told of (a new ticket, a
dispatch, a warning, a breach, an escalation, a reopening, an extension asked for), in
the order they happened, from where it stopped; each goes to the active channels of the
ticket's street, its district and the unit holding it that asked for that event (and its
category and priority), as a notification written in the same transaction that moves
the job's mark — so each event is told once, and none is skipped.

Events are read once they are ``SETTLE`` old: a transaction that wrote an event commits
within it (its writes wait at most 30 s for SQLite's writer; PostgreSQL's are shorter),
so no event appears behind the mark — on one machine's clock (the service's processes
must keep their clocks in step, as NTP does). Quiet hours: a channel that keeps them
gets, outside office hours, only what is urgent (a priority-1 ticket) at once; the rest
is held until the office opens."""

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, select, text, tuple_
from sqlalchemy.orm import Session

from app.db import Database, begin_writes
from app.masking import mask_personal_details
from app.models import (
    NOTIFYING_EVENTS,
    NOTIFYING_SQL,
    Alert,
    AlertSighting,
    AlertStatus,
    Area,
    Category,
    Channel,
    JobMark,
    Notification,
    NotifyEvent,
    Ticket,
    TicketEvent,
    Unit,
)
from app.tickets import FirstSight, current_reference, first_sights

MARK = "notify_events"
NOTIFYING = text(NOTIFYING_SQL)
SETTLE = timedelta(seconds=60)  # twice the longest wait for SQLite's writer lock
BATCH = 500
# The ticket events, as the channels name them.
EVENT_OF = {
    "created": NotifyEvent.TICKET_NEW,
    "dispatch": NotifyEvent.TICKET_DISPATCHED,
    "sla_warning": NotifyEvent.SLA_WARNING,
    "sla_breached": NotifyEvent.SLA_BREACHED,
    "escalated": NotifyEvent.TICKET_ESCALATED,
    "reopen": NotifyEvent.TICKET_REOPENED,
    "reopened": NotifyEvent.TICKET_REOPENED,
    "request_extension": NotifyEvent.EXTENSION_REQUESTED,
    "rated": NotifyEvent.FEEDBACK_NEGATIVE,  # told only when 2 or lower
    # New to the street it went to (a relocation, only when it changed the street).
    "transfer": NotifyEvent.TICKET_NEW,
    "relocate": NotifyEvent.TICKET_NEW,
}
NEGATIVE_RATING = 2
assert set(EVENT_OF) == set(NOTIFYING_EVENTS)
URGENT_PRIORITY = 1
SUMMARY_CHARS = 120


@dataclass(frozen=True)
class Happening:
    """An event to tell: which, about which ticket, with what it said."""

    event: NotifyEvent
    ticket: Ticket
    data: dict[str, Any]
    unit_id: int | None  # the unit it concerns (holding the ticket, or dispatched to)


def notify_events(database: Database, *, now: datetime) -> int:
    """One round: the events since the mark, as notifications. Returns how many."""
    written = 0
    while True:
        with database.transaction(write=False) as session:
            settled = now - SETTLE
            mark = session.get(JobMark, MARK)
            after = (
                tuple_(TicketEvent.created_at, TicketEvent.id) > tuple_(mark.at, mark.after_id)
                if mark is not None
                else TicketEvent.created_at > settled - SETTLE
            )
            if not session.scalar(
                select(TicketEvent.id)
                .where(NOTIFYING, after, TicketEvent.created_at <= settled)
                .limit(1)
            ):
                return written
            begin_writes(session)
            mark = JobMark.held(session, MARK, start=settled - SETTLE)
            events = session.scalars(events_since(mark.at, mark.after_id, settled=settled)).all()
            if not events:
                return written
            tickets = {
                t.id: t
                for t in session.scalars(
                    select(Ticket).where(Ticket.id.in_({e.ticket_id for e in events}))
                )
            }
            units: dict[str, int] = {
                code: unit_id
                for code, unit_id in session.execute(
                    select(Unit.code, Unit.id).where(Unit.code.in_(_unit_codes(events)))
                )
            }
            happenings = [
                Happening(
                    EVENT_OF[e.type],
                    tickets[e.ticket_id],
                    {**(e.data or {}), "note": e.note},
                    units.get((e.data or {}).get("unit", ""), tickets[e.ticket_id].unit_id),
                )
                for e in events
                if _tells(e)
            ]
            written += tell(session, happenings, now=now)
            mark.at, mark.after_id = events[-1].created_at, events[-1].id
        if len(events) < BATCH:
            return written


def events_since(at: datetime, after_id: uuid.UUID, *, settled: datetime) -> Select[TicketEvent]:
    """The next events to tell after the mark (``at``, ``after_id``), settled ones only,
    in order: from their own index (``ix_ticket_events_notifying``), whatever the size
    of the events table."""
    return (
        select(TicketEvent)
        .where(
            NOTIFYING,  # as the index's own predicate (literals), which both databases match
            tuple_(TicketEvent.created_at, TicketEvent.id) > tuple_(at, after_id),
            TicketEvent.created_at <= settled,
        )
        .order_by(TicketEvent.created_at, TicketEvent.id)
        .limit(BATCH)
    )


def _tells(event: TicketEvent) -> bool:
    """Whether the event is news: a rating only when it is bad, a relocation only when it
    moved the ticket to another street."""
    data = event.data or {}
    if event.type == "rated":
        return int(data.get("rating", 5)) <= NEGATIVE_RATING
    if event.type == "relocate":
        return data.get("to_street") is not None
    return True


def _unit_codes(events: Iterable[TicketEvent]) -> set[str]:
    return {str(e.data["unit"]) for e in events if e.data and e.data.get("unit")}


def _wants(channel: Channel, happening: Happening, *, category: str) -> bool:
    ticket = happening.ticket
    if happening.event.value not in channel.events:
        return False
    if channel.unit_id is not None:
        concerned = happening.unit_id == channel.unit_id
    else:
        concerned = channel.area_id in (ticket.street_id, ticket.district_id)
    if not concerned:
        return False
    if channel.categories is not None and category not in channel.categories:
        return False
    return channel.min_priority is None or ticket.priority <= channel.min_priority


def tell(session: Session, happenings: Sequence[Happening], *, now: datetime) -> int:
    """Notifications of ``happenings`` for the channels that want them; how many."""
    channels = list(session.scalars(select(Channel).where(Channel.active)))
    if not channels or not happenings:
        return 0
    tickets = list({h.ticket.id: h.ticket for h in happenings}.values())
    facts = TicketFacts.of(session, tickets)
    calendar = current_reference(session).calendar
    opening = calendar.opening(now)
    written = 0
    for happening in happenings:
        category = facts.category_code(happening.ticket)
        for channel in channels:
            if not _wants(channel, happening, category=category):
                continue
            urgent = happening.ticket.priority <= URGENT_PRIORITY
            held = channel.quiet_hours and not urgent and opening > now
            session.add(
                Notification(
                    id=uuid.uuid4(),
                    channel_id=channel.id,
                    event=happening.event.value,
                    ticket_id=happening.ticket.id,
                    data=facts.about(happening, for_unit=channel.unit_id is not None),
                    created_at=now,
                    state="pending",
                    held=held,
                    attempts=0,
                    next_attempt_at=opening if held else now,
                )
            )
            written += 1
    return written


@dataclass(frozen=True)
class TicketFacts:
    """What messages say of tickets, looked up once for a round: names of categories,
    areas and units, and each ticket's first address."""

    categories: dict[int, Category]
    areas: dict[int, Area]
    units: dict[int, Unit]
    sights: dict[uuid.UUID, FirstSight]

    @classmethod
    def of(cls, session: Session, tickets: Sequence[Ticket]) -> "TicketFacts":
        area_ids = {i for t in tickets for i in (t.street_id, t.community_id) if i}
        unit_ids = {t.unit_id for t in tickets if t.unit_id}
        return cls(
            categories={c.id: c for c in session.scalars(select(Category))},
            areas={a.id: a for a in session.scalars(select(Area).where(Area.id.in_(area_ids)))},
            units={u.id: u for u in session.scalars(select(Unit).where(Unit.id.in_(unit_ids)))},
            sights=first_sights(session, tickets),
        )

    def category_code(self, ticket: Ticket) -> str:
        return self.categories[ticket.category_id].code

    def about(self, happening: Happening, *, for_unit: bool) -> dict[str, Any]:
        ticket = happening.ticket
        category = self.categories[ticket.category_id]
        street = self.areas.get(ticket.street_id or 0)
        community = self.areas.get(ticket.community_id or 0)
        unit = self.units.get(happening.unit_id or 0)
        sight = self.sights.get(ticket.id, FirstSight(None, None))
        words = mask_personal_details(sight.words) or ""
        facts: dict[str, Any] = {
            "ticket_id": str(ticket.id),
            "ref": ticket.ref,
            "category": category.name_zh,
            "category_en": category.name_en,
            "street": street.name if street else None,
            "street_en": street.name_en if street else None,
            "community": community.name if community else None,
            "community_en": community.name_en if community else None,
            "address": mask_personal_details(sight.address),
            # What the problem is, in the first report's words with personal details
            # masked (the words say it; the rider is never named).
            "summary": words[:SUMMARY_CHARS] + ("…" if len(words) > SUMMARY_CHARS else ""),
            "priority": ticket.priority,
            "status": str(ticket.status),
            "due_at": ticket.due_at.isoformat() if ticket.due_at else None,
            "path": f"/console/{'work' if for_unit else 'tickets'}/{ticket.id}",
        }
        if unit is not None:
            facts["unit"] = unit.name
        if happening.event == NotifyEvent.EXTENSION_REQUESTED:
            facts["hours"] = happening.data.get("hours")
            facts["reason"] = happening.data.get("reason")
        if happening.event == NotifyEvent.TICKET_ESCALATED:
            facts["why"] = happening.data.get("why")
        if happening.event == NotifyEvent.FEEDBACK_NEGATIVE:
            facts["rating"] = happening.data.get("rating")
            said = mask_personal_details(happening.data.get("note")) or ""
            facts["comment"] = said[:SUMMARY_CHARS]
        return facts


SIGHTINGS_MARK = "notify_sightings"
# Sightings are told for the alerts that are active, or closed this recently (a sighting
# sent just before the close is still told).
RECENTLY_CLOSED = timedelta(hours=1)


def notify_sightings(database: Database, *, now: datetime) -> int:
    """One round: the riders' sightings for alerts since the mark, to the channels of the
    alert's district that want ``alert.sighting`` — at once, quiet hours or not (a
    sighting is worth something only now). Returns how many notifications."""
    settled = now - SETTLE
    with database.transaction(write=False) as session:
        alerts = {
            a.id: a
            for a in session.scalars(
                select(Alert).where(
                    (Alert.status == AlertStatus.ACTIVE)
                    | (Alert.closed_at >= settled - RECENTLY_CLOSED)
                )
            )
        }
        mark = session.get(JobMark, SIGHTINGS_MARK)
        after = (
            tuple_(AlertSighting.created_at, AlertSighting.id) > tuple_(mark.at, mark.after_id)
            if mark is not None
            else AlertSighting.created_at > settled - SETTLE
        )
        if not alerts or not session.scalar(
            select(AlertSighting.id)
            .where(AlertSighting.alert_id.in_(alerts), after, AlertSighting.created_at <= settled)
            .limit(1)
        ):
            return 0
        begin_writes(session)
        mark = JobMark.held(session, SIGHTINGS_MARK, start=settled - SETTLE)
        sightings = session.scalars(
            select(AlertSighting)
            .where(
                AlertSighting.alert_id.in_(alerts),
                tuple_(AlertSighting.created_at, AlertSighting.id) > tuple_(mark.at, mark.after_id),
                AlertSighting.created_at <= settled,
            )
            .order_by(AlertSighting.created_at, AlertSighting.id)
            .limit(BATCH)
        ).all()
        if not sightings:
            return 0
        channels = [
            c
            for c in session.scalars(
                select(Channel).where(Channel.active, Channel.area_id.is_not(None))
            )
            if NotifyEvent.ALERT_SIGHTING.value in c.events
        ]
        written = 0
        for sighting in sightings:
            alert = alerts[sighting.alert_id]
            for channel in channels:
                if channel.area_id != alert.district_id:
                    continue
                session.add(
                    Notification(
                        id=uuid.uuid4(),
                        channel_id=channel.id,
                        event=NotifyEvent.ALERT_SIGHTING.value,
                        ticket_id=None,
                        data={
                            "alert_id": str(alert.id),
                            "title": alert.title,
                            "kind": str(alert.kind),
                            "seen_at": sighting.created_at.isoformat(),
                            "lat": round(sighting.lat, 5),
                            "lon": round(sighting.lon, 5),
                            "path": f"/console/alerts/{alert.id}",
                        },
                        created_at=now,
                        state="pending",
                        held=False,
                        attempts=0,
                        next_attempt_at=now,
                    )
                )
                written += 1
        mark.at, mark.after_id = sightings[-1].created_at, sightings[-1].id
        return written

"""What riders' reports earn: the points ledger and the riders' totals.

A report's *standing* follows its ticket: pending, accepted (by an office, even if the
ticket was transferred since), resolved, or rejected. Its *role* is the opener of its
ticket or a confirmation (a merge turns an opener into a confirmation of the ticket it
was merged into). From role and standing follow what the rider is owed (API.md,
"Categories"): the opener of an accepted ticket ``points_open``, a confirmation of one
``points_confirm``, the opener of a resolved one ``points_resolve`` more; nothing for a
rejected ticket. A verification earns ``points_verify``.

:func:`settle` compares what each report of a ticket is owed with what the ledger holds
for it and appends the difference, in the transaction of the event that changed things:
an award, or a correcting line that takes one back. Lines are never changed. The riders'
totals (``rider_totals``) move in the same transaction by the same differences, and each
report remembers how the totals count it (``counted_as``), so any change — a status, a
merge, a reopening — is settled the same way, once.
"""

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.models import (
    Category,
    PlatformActivity,
    PlatformHour,
    PointsEntry,
    PointsReason,
    Report,
    ReportOutcome,
    Rider,
    RiderActivity,
    RiderDailyActivity,
    RiderDay,
    RiderHour,
    RiderTotals,
    Ticket,
    TicketEvent,
    TicketStatus,
    Verification,
    day_of,
    hour_of,
)
from app.services import outbox


class Standing(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    RESOLVED = "resolved"
    REJECTED = "rejected"


def standing(ticket: Ticket) -> Standing:
    status = TicketStatus(ticket.status)
    if status is TicketStatus.REJECTED:
        return Standing.REJECTED
    if status in (TicketStatus.RESOLVED, TicketStatus.CLOSED):
        return Standing.RESOLVED
    return Standing.ACCEPTED if ticket.accepted_at is not None else Standing.PENDING


# The counters of a rider's totals that depend on its reports, and which
# (role, standing) pairs each one counts.
REPORT_COUNTERS: dict[str, frozenset[tuple[ReportOutcome, Standing]]] = {
    "reports": frozenset((o, s) for o in ReportOutcome for s in Standing),
    "tickets_opened": frozenset((ReportOutcome.NEW_TICKET, s) for s in Standing),
    "joined": frozenset((ReportOutcome.JOINED_TICKET, s) for s in Standing),
    "accepted": frozenset((o, s) for o in ReportOutcome
                          for s in (Standing.ACCEPTED, Standing.RESOLVED)),
    "resolved": frozenset((o, Standing.RESOLVED) for o in ReportOutcome),
    "rejected": frozenset((o, Standing.REJECTED) for o in ReportOutcome),
}


def counted_as(outcome: ReportOutcome, standing: Standing) -> str:
    return f"{outcome.value}/{standing.value}"


def counts_in_sql(counter: str) -> ColumnElement[bool]:
    """The reports ``counter`` counts, as a condition on ``Report.counted_as``."""
    return Report.counted_as.in_(sorted(counted_as(o, s) for o, s in REPORT_COUNTERS[counter]))


def _counts(value: str | None) -> Counter[str]:
    if value is None:
        return Counter()
    outcome, stand = value.split("/")
    key = (ReportOutcome(outcome), Standing(stand))
    return Counter({name: 1 for name, pairs in REPORT_COUNTERS.items() if key in pairs})


def owed(category: Category, outcome: ReportOutcome, stand: Standing) -> dict[PointsReason, int]:
    """What a report in this role and standing is owed, by reason."""
    due: dict[PointsReason, int] = {}
    if stand in (Standing.ACCEPTED, Standing.RESOLVED):
        if outcome is ReportOutcome.NEW_TICKET:
            due[PointsReason.OPENED_ACCEPTED] = category.points_open
        else:
            due[PointsReason.CONFIRMED_ACCEPTED] = category.points_confirm
    if stand is Standing.RESOLVED and outcome is ReportOutcome.NEW_TICKET:
        due[PointsReason.OPENED_RESOLVED] = category.points_resolve
    return due


REPORT_REASONS = (PointsReason.OPENED_ACCEPTED, PointsReason.CONFIRMED_ACCEPTED,
                  PointsReason.OPENED_RESOLVED)


@dataclass(frozen=True)
class ReportState:
    id: uuid.UUID
    rider_id: uuid.UUID
    platform_id: uuid.UUID
    outcome: ReportOutcome
    counted_as: str | None
    received_at: datetime
    category_id: int
    street_id: int | None


class _Books:
    """The lines and counter changes of one settlement, written together. Every change
    to a rider's numbers goes through :meth:`count`, which moves the precomputed tables
    alike: the rider's totals, the platform's hour (by category and street), the rider's
    hour and the rider's day."""

    def __init__(self, session: Session, ticket: Ticket, event: TicketEvent,
                 now: datetime) -> None:
        self.session, self.ticket, self.event, self.now = session, ticket, event, now
        self.totals: defaultdict[uuid.UUID, Counter[str]] = defaultdict(Counter)
        self.platform_hours: defaultdict[PlatformHour, Counter[str]] = defaultdict(Counter)
        self.rider_hours: defaultdict[RiderHour, Counter[str]] = defaultdict(Counter)
        self.rider_days: defaultdict[RiderDay, Counter[str]] = defaultdict(Counter)
        self.lines: list[PointsEntry] = []

    def count(self, rider_id: uuid.UUID, platform_id: uuid.UUID, at: datetime,
              category_id: int, street_id: int | None, delta: Mapping[str, int]) -> None:
        """Add ``delta`` to the rider's numbers, as of ``at`` (the hour it counts in)."""
        hour = hour_of(at)
        self.totals[rider_id].update(delta)
        self.platform_hours[PlatformHour(platform_id, hour, category_id, street_id or 0)] \
            .update(delta)
        self.rider_hours[RiderHour(platform_id, hour, rider_id)].update(delta)
        self.rider_days[RiderDay(platform_id, day_of(at), rider_id)].update(delta)

    def append(self, rider_id: uuid.UUID, platform_id: uuid.UUID, reason: PointsReason,
               points: int, *, report_id: uuid.UUID | None = None,
               verification_id: uuid.UUID | None = None) -> None:
        if points == 0:
            return
        self.lines.append(PointsEntry(
            id=uuid.uuid4(), rider_id=rider_id, platform_id=platform_id, reason=reason,
            points=points, ticket_id=self.ticket.id, event_id=self.event.id,
            report_id=report_id, verification_id=verification_id,
            category_id=self.ticket.category_id, street_id=self.ticket.street_id,
            created_at=self.now))
        self.count(rider_id, platform_id, self.now, self.ticket.category_id,
                   self.ticket.street_id, {"points": points})

    def close(self) -> None:
        self.session.flush()  # the event and reports first: the lines refer to them
        self.session.add_all(self.lines)
        # In key order, table by table, so that two settlements never wait for each
        # other in a circle.
        for rider_id, delta in sorted(self.totals.items()):
            changes = {name: getattr(RiderTotals, name) + n for name, n in delta.items() if n}
            if changes:
                self.session.execute(update(RiderTotals)
                                     .where(RiderTotals.rider_id == rider_id).values(changes))
        _add_up(self.session, PlatformActivity, self.platform_hours)
        _add_up(self.session, RiderActivity, self.rider_hours)
        _add_up(self.session, RiderDailyActivity, self.rider_days)
        self._announce()

    def _announce(self) -> None:
        """``points.awarded`` for each line, to the platform of its rider."""
        if not self.lines:
            return
        riders = {r.id: r for r in self.session.execute(
            select(Rider.id, Rider.external_id, RiderTotals.points)
            .join(RiderTotals, RiderTotals.rider_id == Rider.id)
            .where(Rider.id.in_({line.rider_id for line in self.lines})))}
        # The totals are already updated: each line's total is the one before it plus it.
        running = {rider_id: r.points - self.totals[rider_id]["points"]
                   for rider_id, r in riders.items()}
        for line in self.lines:
            running[line.rider_id] += line.points
            outbox.emit(self.session, platform_id=line.platform_id,
                        type=outbox.EventType.POINTS_AWARDED, now=self.now, data={
                            "rider_id": riders[line.rider_id].external_id,
                            "report_id": str(line.report_id) if line.report_id else None,
                            "ticket_id": str(line.ticket_id), "reason": line.reason.value,
                            "points": line.points, "total_points": running[line.rider_id]})


def _add_up(session: Session,
            model: type[PlatformActivity] | type[RiderActivity] | type[RiderDailyActivity],
            changes: Mapping[Any, Counter[str]]) -> None:
    """Add each hour's (or day's) changes, keyed by the primary key of its row of
    ``model`` (a :class:`PlatformHour`, :class:`RiderHour` or :class:`RiderDay`), creating
    the rows that are their hour's first: one statement, rows in key order."""
    rows = [{**key._asdict(), **{name: delta[name] for name in model.COUNTERS}}
            for key, delta in sorted(changes.items()) if any(delta.values())]
    if not rows:
        return
    insert_ = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = insert_(model).values(rows)
    session.execute(statement.on_conflict_do_update(
        index_elements=[column.name for column in model.__mapper__.primary_key],
        set_={name: getattr(model, name) + statement.excluded[name]
              for name in model.COUNTERS}))


def _settle_report(books: _Books, category: Category, report: ReportState, stand: Standing,
                   held: dict[PointsReason, int], *, earns: bool) -> str | None:
    """Book what ``report`` is owed (nothing unless it ``earns``: its rider's first on the
    ticket) beyond what it holds; its new ``counted_as`` if that changed."""
    due = owed(category, report.outcome, stand) if earns else {}
    for reason in REPORT_REASONS:
        have = held.get(reason, 0)
        if reason in due and have == 0:
            books.append(report.rider_id, report.platform_id, reason, due[reason],
                         report_id=report.id)
        elif reason not in due and have != 0:
            books.append(report.rider_id, report.platform_id, reason, -have,
                         report_id=report.id)
    value = counted_as(report.outcome, stand)
    if value == report.counted_as:
        return None
    delta = _counts(value)
    delta.subtract(_counts(report.counted_as))
    books.count(report.rider_id, report.platform_id, report.received_at, report.category_id,
                report.street_id, delta)
    return value


def settle(session: Session, ticket: Ticket, event: TicketEvent, now: datetime,
           verified: tuple[Verification, Rider] | None = None) -> None:
    """Bring the ledger and the totals of every report on ``ticket`` in line with where
    the ticket stands now, naming ``event`` as the cause (and book ``verified``, the
    verification that caused it, if any). Call after any change; everything one event
    changes is written together, in one order, so two settlements never deadlock."""
    category = session.get_one(Category, ticket.category_id)
    reports = [ReportState(*row) for row in session.execute(
        select(Report.id, Report.rider_id, Report.platform_id, Report.outcome,
               Report.counted_as, Report.received_at, Report.category_id, Report.street_id)
        .where(Report.ticket_id == ticket.id).order_by(Report.received_at, Report.id))]
    held: defaultdict[uuid.UUID, dict[PointsReason, int]] = defaultdict(dict)
    if reports:
        for report_id, reason, points in session.execute(
                select(PointsEntry.report_id, PointsEntry.reason, func.sum(PointsEntry.points))
                .where(PointsEntry.report_id.in_([r.id for r in reports]))
                .group_by(PointsEntry.report_id, PointsEntry.reason)):
            if report_id is not None:
                held[report_id][PointsReason(reason)] = int(points)
    books = _Books(session, ticket, event, now)
    stand = standing(ticket)
    recount: defaultdict[str, list[uuid.UUID]] = defaultdict(list)
    earning: set[uuid.UUID] = set()  # riders whose first report on the ticket is settled
    for report in reports:
        first = report.rider_id not in earning
        earning.add(report.rider_id)
        value = _settle_report(books, category, report, stand, held[report.id], earns=first)
        if value is not None:
            recount[value].append(report.id)
    for value, ids in recount.items():
        session.execute(update(Report).where(Report.id.in_(ids)).values(counted_as=value))
    if verified is not None:
        _book_verification(books, category, *verified)
    books.close()


def settle_new_report(session: Session, report: Report, ticket: Ticket, category: Category,
                      event: TicketEvent, now: datetime) -> None:
    """A report just received: counted, and owed its confirmation points at once if it
    joined a ticket an office had already accepted — unless its rider has reported this
    ticket before (one award per rider and ticket)."""
    books = _Books(session, ticket, event, now)
    state = ReportState(report.id, report.rider_id, report.platform_id,
                        ReportOutcome(report.outcome), None, report.received_at,
                        report.category_id, report.street_id)
    stand = standing(ticket)
    earns = not owed(category, state.outcome, stand) or session.scalar(
        select(Report.id).where(Report.ticket_id == ticket.id, Report.id != report.id,
                                Report.rider_id == report.rider_id).limit(1)) is None
    report.counted_as = _settle_report(books, category, state, stand, {}, earns=earns)
    books.close()


def _book_verification(books: _Books, category: Category, verification: Verification,
                       rider: Rider) -> None:
    books.append(rider.id, rider.platform_id, PointsReason.VERIFIED, category.points_verify,
                 verification_id=verification.id)
    books.count(rider.id, rider.platform_id, verification.created_at,
                verification.category_id, verification.street_id, {"verifications": 1})


def announce_status(session: Session, ticket: Ticket, event: TicketEvent,
                    previous: TicketStatus, now: datetime,
                    reports: Iterable[uuid.UUID] | None = None) -> None:
    """``report.updated`` to the platform of every rider with a report on ``ticket``."""
    query = select(Report.id, Report.platform_id, Rider.external_id) \
        .join(Rider, Rider.id == Report.rider_id)
    query = query.where(Report.ticket_id == ticket.id) if reports is None \
        else query.where(Report.id.in_(list(reports)))
    for report_id, platform_id, rider_id in session.execute(query):
        data: dict[str, Any] = {
            "report_id": str(report_id), "rider_id": rider_id, "event": event.type,
            "ticket": {"id": str(ticket.id), "ref": ticket.ref,
                       "status": TicketStatus(ticket.status).value,
                       "previous_status": previous.value}}
        outbox.emit(session, platform_id=platform_id, type=outbox.EventType.REPORT_UPDATED,
                    data=data, now=now)

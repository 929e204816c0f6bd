"""What riders' reports earn: the points ledger and the riders' totals.

A report's *standing* follows its ticket: pending, accepted (by an office, even if the
ticket was transferred since), resolved, or rejected. Its *role* is the opener of its
ticket or a confirmation (a merge turns an opener into a confirmation of the ticket it
was merged into). From role and standing follow what the rider is owed (docs/api.md,
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

import functools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import ColumnElement, Integer, bindparam, func, select, update
from sqlalchemy.orm import Session

from app import platforms
from app.db import Rows, insert_rows, upsert_adding
from app.models import (
    RESOLVED_STATUSES,
    Category,
    Contribution,
    PlatformActivity,
    PointsEntry,
    PointsReason,
    Report,
    ReportOutcome,
    Rider,
    RiderActivity,
    RiderDailyActivity,
    RiderTotals,
    Ticket,
    TicketEvent,
    TicketStatus,
    Verification,
    activity_key,
    day_of,
    hour_of,
)


class Standing(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    RESOLVED = "resolved"
    REJECTED = "rejected"


def standing(status: str, accepted_at: datetime | None) -> Standing:
    """Where the reports of a ticket in ``status``, accepted at ``accepted_at``, stand."""
    status = TicketStatus(status)
    if status is TicketStatus.REJECTED:
        return Standing.REJECTED
    if status in RESOLVED_STATUSES:
        return Standing.RESOLVED
    return Standing.ACCEPTED if accepted_at is not None else Standing.PENDING


# The counters of a rider's totals that depend on its reports, and which
# (role, standing) pairs each one counts.
REPORT_COUNTERS: dict[str, frozenset[tuple[ReportOutcome, Standing]]] = {
    "reports": frozenset((o, s) for o in ReportOutcome for s in Standing),
    "tickets_opened": frozenset((ReportOutcome.NEW_TICKET, s) for s in Standing),
    "joined": frozenset((ReportOutcome.JOINED_TICKET, s) for s in Standing),
    "accepted": frozenset(
        (o, s) for o in ReportOutcome for s in (Standing.ACCEPTED, Standing.RESOLVED)
    ),
    "resolved": frozenset((o, Standing.RESOLVED) for o in ReportOutcome),
    "rejected": frozenset((o, Standing.REJECTED) for o in ReportOutcome),
}


def counted_as(outcome: ReportOutcome, standing: Standing) -> str:
    return f"{outcome.value}/{standing.value}"


def counts_in_sql(counter: str) -> ColumnElement[bool]:
    """The reports ``counter`` counts, as a condition on ``Report.counted_as``."""
    return Report.counted_as.in_(sorted(counted_as(o, s) for o, s in REPORT_COUNTERS[counter]))


@functools.cache
def _counts(value: str | None) -> Mapping[str, int]:
    """Which counters a report counted as ``value`` adds one to (never change the
    mapping: it is shared)."""
    if value is None:
        return {}
    outcome, stand = value.split("/")
    key = (ReportOutcome(outcome), Standing(stand))
    return {name: 1 for name, pairs in REPORT_COUNTERS.items() if key in pairs}


def _add(into: dict[str, int], delta: Mapping[str, int]) -> None:
    for name, n in delta.items():
        into[name] = into.get(name, 0) + n


class EarningRules(Protocol):
    """What a category's reports earn (a ``Category``, or the rules intake holds)."""

    @property
    def points_open(self) -> int: ...
    @property
    def points_confirm(self) -> int: ...
    @property
    def points_resolve(self) -> int: ...


def owed(
    category: EarningRules, outcome: ReportOutcome, *, stand: Standing
) -> dict[PointsReason, int]:
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


REPORT_REASONS = (
    PointsReason.OPENED_ACCEPTED,
    PointsReason.CONFIRMED_ACCEPTED,
    PointsReason.OPENED_RESOLVED,
)


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


@dataclass(frozen=True)
class Cause:
    """The event a settlement books its lines under: the ticket (its category and street
    as they are now, for the platform's summary), the event and its time."""

    ticket_id: uuid.UUID
    category_id: int
    street_id: int | None
    event_id: uuid.UUID
    now: datetime

    @classmethod
    def of(cls, ticket: Ticket, event: TicketEvent, now: datetime) -> "Cause":
        return cls(ticket.id, ticket.category_id, ticket.street_id, event.id, now)


@dataclass(frozen=True)
class LedgerLine:
    id: uuid.UUID
    rider_id: uuid.UUID
    platform_id: uuid.UUID
    reason: PointsReason
    points: int
    cause: Cause
    report_id: uuid.UUID | None
    verification_id: uuid.UUID | None

    def row(self) -> dict[str, Any]:
        """As a ``points_ledger`` row."""
        return {
            "id": self.id,
            "rider_id": self.rider_id,
            "platform_id": self.platform_id,
            "reason": self.reason,
            "points": self.points,
            "ticket_id": self.cause.ticket_id,
            "event_id": self.cause.event_id,
            "report_id": self.report_id,
            "verification_id": self.verification_id,
            "category_id": self.cause.category_id,
            "street_id": self.cause.street_id,
            "created_at": self.cause.now,
        }


# Every change to a rider's numbers moves these tables alike, each row by its key.
ACTIVITY_TABLES = (PlatformActivity, RiderActivity, RiderDailyActivity)

# The statements that write what :class:`Books` gathered, each written for one row (see
# ``app.db.Rows``): through a session, once per row; by the intake's batches, at once.
TOTALS_CHANGE: dict[str, Any] = {
    "key_rider_id": RiderTotals.rider_id.type,
    **{f"add_{name}": Integer() for name in Contribution.COUNTERS},
}
LEDGER_LINE: dict[str, Any] = {column.name: column.type for column in PointsEntry.__table__.columns}
TOTAL_POINTS = select(RiderTotals.points).where(RiderTotals.rider_id == bindparam("rider_id"))


def add_to_totals(rows: Rows) -> Any:
    """Add a rider's changes to its totals."""
    return (
        update(RiderTotals)
        .where(RiderTotals.rider_id == rows.key_rider_id)
        .values(
            {
                name: getattr(RiderTotals, name) + getattr(rows, f"add_{name}")
                for name in Contribution.COUNTERS
            }
        )
    )


def add_ledger_line(rows: Rows) -> Any:
    return insert_rows(PointsEntry.__table__, rows, list(LEDGER_LINE))


def activity_change(model: type[Contribution]) -> dict[str, Any]:
    """The parameters of one row's changes to ``model``: its key and every counter."""
    return {column.name: column.type for column in model.__table__.columns}  # type: ignore[attr-defined]


def add_to_activity(model: type[Contribution], dialect: Any) -> Callable[[Rows], Any]:
    """Add a row's changes (see :meth:`Books.activity_changes`) to its row of ``model``."""
    keys = [column.name for column in model.__mapper__.primary_key]  # type: ignore[attr-defined]

    def build(rows: Rows) -> Any:
        return upsert_adding(
            model.__table__,  # type: ignore[attr-defined]
            rows,
            keys=keys,
            counters=Contribution.COUNTERS,
            dialect=dialect,
        )

    return build


ADD_TO_TOTALS = add_to_totals(Rows(TOTALS_CHANGE))
ADD_LEDGER_LINE = add_ledger_line(Rows(LEDGER_LINE))


class Books:
    """The lines and counter changes of one or more settlements, gathered and then
    written together. Every change to a rider's numbers goes through :meth:`count`,
    which moves the precomputed tables alike: the rider's totals, the platform's hour
    (by category and street), the rider's hour and the rider's day."""

    def __init__(self) -> None:
        self.totals: defaultdict[uuid.UUID, dict[str, int]] = defaultdict(dict)
        self.activity: dict[type[Contribution], defaultdict[Any, dict[str, int]]] = {
            model: defaultdict(dict) for model in ACTIVITY_TABLES
        }
        self.lines: list[LedgerLine] = []

    def count(
        self,
        rider_id: uuid.UUID,
        platform_id: uuid.UUID,
        at: datetime,
        category_id: int,
        street_id: int | None,
        delta: Mapping[str, int],
    ) -> None:
        """Add ``delta`` to the rider's numbers, as of ``at`` (the hour it counts in)."""
        hour = hour_of(at)
        _add(self.totals[rider_id], delta)
        _add(
            self.activity[PlatformActivity][(platform_id, hour, category_id, street_id or 0)], delta
        )
        _add(self.activity[RiderActivity][(platform_id, hour, rider_id)], delta)
        _add(self.activity[RiderDailyActivity][(platform_id, day_of(at), rider_id)], delta)

    def append(
        self,
        cause: Cause,
        rider_id: uuid.UUID,
        platform_id: uuid.UUID,
        reason: PointsReason,
        points: int,
        *,
        report_id: uuid.UUID | None = None,
        verification_id: uuid.UUID | None = None,
    ) -> None:
        if points == 0:
            return
        self.lines.append(
            LedgerLine(
                uuid.uuid4(),
                rider_id,
                platform_id,
                reason,
                points,
                cause,
                report_id,
                verification_id,
            )
        )
        self.count(
            rider_id, platform_id, cause.now, cause.category_id, cause.street_id, {"points": points}
        )

    def totals_changes(self) -> list[dict[str, Any]]:
        """``ADD_TO_TOTALS`` parameters, one per rider that changed, in key order (so that
        two settlements never wait for each other in a circle)."""
        return [
            {
                "key_rider_id": rider_id,
                **{f"add_{name}": delta.get(name, 0) for name in Contribution.COUNTERS},
            }
            for rider_id, delta in sorted(self.totals.items())
            if any(delta.values())
        ]

    def activity_changes(self, model: type[Contribution]) -> list[dict[str, Any]]:
        """Rows of ``model`` (its key, as :func:`activity_key` names it, and its changes)
        for :func:`add_to_activity`, in key order."""
        rows = []
        names = activity_key(model)
        for key, delta in sorted(self.activity[model].items()):
            if any(delta.values()):
                row = dict(zip(names, key, strict=True))
                for name in Contribution.COUNTERS:
                    row[name] = delta.get(name, 0)
                rows.append(row)
        return rows

    def announcements(
        self,
        points_now: Mapping[uuid.UUID, int],
        external_ids: Mapping[uuid.UUID, str],
    ) -> list[tuple[LedgerLine, dict[str, Any]]]:
        """``points.awarded`` for each line: the line and the event's data, given each
        rider's points after the totals were moved."""
        # Each line's total is the one before it plus it.
        running = {
            rider_id: points_now[rider_id] - self.totals[rider_id].get("points", 0)
            for rider_id in {line.rider_id for line in self.lines}
        }
        announced = []
        for line in self.lines:
            running[line.rider_id] += line.points
            announced.append(
                (
                    line,
                    {
                        "rider_id": external_ids[line.rider_id],
                        "report_id": str(line.report_id) if line.report_id else None,
                        "ticket_id": str(line.cause.ticket_id),
                        "reason": line.reason.value,
                        "points": line.points,
                        "total_points": running[line.rider_id],
                    },
                )
            )
        return announced

    def write(self, session: Session) -> None:
        """Write everything gathered in ``session``'s transaction, table by table in one
        order, and announce the lines to the riders' platforms."""
        session.flush()  # the events and reports first: the lines refer to them
        # Plain statements, run many times each (not the ORM's bulk modes): the same
        # statements the intake's batches run.
        connection = session.connection()
        if self.lines:
            connection.execute(ADD_LEDGER_LINE, [line.row() for line in self.lines])
        if changes := self.totals_changes():
            connection.execute(ADD_TO_TOTALS, changes)
        for model in ACTIVITY_TABLES:
            if rows := self.activity_changes(model):
                connection.execute(
                    add_to_activity(model, connection.dialect)(Rows(activity_change(model))), rows
                )
        if not self.lines:
            return
        riders = session.execute(
            select(Rider.id, Rider.external_id, RiderTotals.points)
            .join(RiderTotals, RiderTotals.rider_id == Rider.id)
            .where(Rider.id.in_({line.rider_id for line in self.lines}))
        )
        points_now, external_ids = {}, {}
        for rider_id, external_id, points in riders:
            points_now[rider_id], external_ids[rider_id] = points, external_id
        for line, data in self.announcements(points_now, external_ids):
            platforms.emit(
                session,
                platform_id=line.platform_id,
                type=platforms.EventType.POINTS_AWARDED,
                now=line.cause.now,
                data=data,
            )


def settle_report(
    books: Books,
    cause: Cause,
    *,
    category: EarningRules,
    report: ReportState,
    stand: Standing,
    held: Mapping[PointsReason, int],
    earns: bool,
) -> str | None:
    """Book what ``report`` is owed (nothing unless it ``earns``: its rider's first on the
    ticket) beyond what it holds; its new ``counted_as`` if that changed."""
    due = owed(category, report.outcome, stand=stand) if earns else {}
    for reason in REPORT_REASONS:
        have = held.get(reason, 0)
        if reason in due and have == 0:
            books.append(
                cause, report.rider_id, report.platform_id, reason, due[reason], report_id=report.id
            )
        elif reason not in due and have != 0:
            books.append(
                cause, report.rider_id, report.platform_id, reason, -have, report_id=report.id
            )
    value = counted_as(report.outcome, stand)
    if value == report.counted_as:
        return None
    now, before = _counts(value), _counts(report.counted_as)
    delta = {name: now.get(name, 0) - before.get(name, 0) for name in {*now, *before}}
    books.count(
        report.rider_id,
        report.platform_id,
        report.received_at,
        report.category_id,
        report.street_id,
        delta,
    )
    return value


def settle(
    session: Session,
    ticket: Ticket,
    *,
    event: TicketEvent,
    now: datetime,
    verified: tuple[Verification, Rider] | None = None,
) -> None:
    """Bring the ledger and the totals of every report on ``ticket`` in line with where
    the ticket stands now, naming ``event`` as the cause (and book ``verified``, the
    verification that caused it, if any). Call after any change; everything one event
    changes is written together, in one order, so two settlements never deadlock."""
    category = session.get_one(Category, ticket.category_id)
    reports = [
        ReportState(*row)
        for row in session.execute(
            select(
                Report.id,
                Report.rider_id,
                Report.platform_id,
                Report.outcome,
                Report.counted_as,
                Report.received_at,
                Report.category_id,
                Report.street_id,
            )
            .where(Report.ticket_id == ticket.id)
            .order_by(Report.received_at, Report.id)
        )
    ]
    held: defaultdict[uuid.UUID, dict[PointsReason, int]] = defaultdict(dict)
    if reports:
        for report_id, reason, points in session.execute(
            select(PointsEntry.report_id, PointsEntry.reason, func.sum(PointsEntry.points))
            .where(PointsEntry.report_id.in_([r.id for r in reports]))
            .group_by(PointsEntry.report_id, PointsEntry.reason)
        ):
            if report_id is not None:
                held[report_id][PointsReason(reason)] = int(points)
    books, cause = Books(), Cause.of(ticket, event, now)
    stand = standing(ticket.status, ticket.accepted_at)
    recount: defaultdict[str, list[uuid.UUID]] = defaultdict(list)
    earning: set[uuid.UUID] = set()  # riders whose first report on the ticket is settled
    for report in reports:
        first = report.rider_id not in earning
        earning.add(report.rider_id)
        value = settle_report(
            books,
            cause,
            category=category,
            report=report,
            stand=stand,
            held=held[report.id],
            earns=first,
        )
        if value is not None:
            recount[value].append(report.id)
    for value, ids in recount.items():
        session.execute(update(Report).where(Report.id.in_(ids)).values(counted_as=value))
    if verified is not None:
        verification, rider = verified
        _book_verification(books, cause, category=category, verification=verification, rider=rider)
    books.write(session)


def _book_verification(
    books: Books, cause: Cause, *, category: Category, verification: Verification, rider: Rider
) -> None:
    books.append(
        cause,
        rider.id,
        rider.platform_id,
        PointsReason.VERIFIED,
        category.points_verify,
        verification_id=verification.id,
    )
    books.count(
        rider.id,
        rider.platform_id,
        verification.created_at,
        verification.category_id,
        verification.street_id,
        {"verifications": 1},
    )


def announce_status(
    session: Session,
    ticket: Ticket,
    *,
    event: TicketEvent,
    previous: TicketStatus,
    now: datetime,
    reports: Iterable[uuid.UUID] | None = None,
) -> None:
    """``report.updated`` to the platform of every rider with a report on ``ticket``."""
    query = select(Report.id, Report.platform_id, Rider.external_id).join(
        Rider, Rider.id == Report.rider_id
    )
    query = (
        query.where(Report.ticket_id == ticket.id)
        if reports is None
        else query.where(Report.id.in_(list(reports)))
    )
    for report_id, platform_id, rider_id in session.execute(query):
        data: dict[str, Any] = {
            "report_id": str(report_id),
            "rider_id": rider_id,
            "event": event.type,
            "ticket": {
                "id": str(ticket.id),
                "ref": ticket.ref,
                "status": TicketStatus(ticket.status).value,
                "previous_status": previous.value,
            },
        }
        platforms.emit(
            session,
            platform_id=platform_id,
            type=platforms.EventType.REPORT_UPDATED,
            data=data,
            now=now,
        )

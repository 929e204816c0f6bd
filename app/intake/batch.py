"""One batch of reports: looked up, decided in queue order, written in one transaction.

A storm or a burst water main makes thousands of riders report at once, on 4G links
that time out and retry. Every report needs the same reads — its rider, its key, its
rider's last hour, the nearest open ticket of its category — and the same writes — a
ticket opened or joined, the report, its event, the rider's numbers, the response kept
for retries. So each process stores reports through one :class:`IntakeWriter`: a task on
the event loop with a database connection of its own, which takes every report queued
while it was busy and stores them together, in one transaction (group commit), and
answers none of them before that commit. A batch, however many reports it holds:

1. reads the reference versions (areas and categories are held in memory; a stale copy
   is reloaded and the batch begun again), takes the locks of every report in key order
   (PostgreSQL: its rider's, and the category's grid cells its merge search touches;
   SQLite runs one write transaction at a time) and looks each report up — one
   statement each, all in one round trip;
2. decides each report in queue order: refused (its rider gone, its key reused or in
   flight, a photo not its rider's, the hourly limit), replayed (the first response to
   its key), merged into the nearest open ticket of its category in reach, or opening
   one — a report that could not see a ticket an earlier report of the batch opens near
   it is looked up again once that ticket is written;
3. writes the tickets (one round trip), then the reports, events, photo links, points,
   riders' numbers and kept responses, and commits (one more).

So a batch costs three round trips on PostgreSQL (and nothing waits on another batch's
locks but reports near each other or of one rider), and each report gets the answer it
would get alone, in queue order. Everything a report leaves is written in its batch's
transaction or not at all.
"""

import asyncio
import math
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from app import platforms, tickets
from app.areas import AreaRef
from app.config import Settings
from app.db import BatchConnection, Database, Step, lock_key
from app.errors import (
    AppError,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    RateLimited,
    Unauthenticated,
)
from app.geo import bbox_around
from app.intake.rules import (
    RATE_WINDOW,
    Prepared,
    Received,
    ReportInput,
    dedup_lock_names,
    new_ticket_ref,
    prepare,
)
from app.intake.statements import IntakeStatements, Look
from app.media import not_the_riders, usable_since
from app.models import (
    ActorKind,
    ReportOutcome,
    TicketEventType,
    TicketStatus,
)
from app.riders import (
    ACTIVITY_TABLES,
    Books,
    Cause,
    ReportState,
    owed,
    settle_report,
    standing,
)
from app.tickets import Reference, due

# --- what the writer hands a batch, and what it answers ---------------------------------


@dataclass(eq=False)
class Submission:
    """One report waiting for the writer, and the future its request awaits."""

    rider_id: uuid.UUID
    data: ReportInput
    key: str | None
    fingerprint: str
    now: datetime
    answer: "asyncio.Future[Received]"
    # Checked against this copy of the reference data; ``refusal`` is what checking found
    # wrong, told after the key's first response (a replay outranks it).
    checked_with: Reference | None = None
    prepared: Prepared | None = None
    refusal: AppError | None = None


@dataclass(frozen=True, slots=True)
class Receipt:
    """What a rider is told of a stored report (and told again on a retry of its key)."""

    report_id: uuid.UUID
    outcome: ReportOutcome
    ticket_id: uuid.UUID
    ticket_ref: str
    ticket_status: TicketStatus
    report_count: int
    district: AreaRef
    street: AreaRef | None
    community: AreaRef | None
    lat: float
    lon: float
    received_at: datetime
    observed_at: datetime


# A receipt as the response body the API sends, and keeps for the key's retries.
RenderReceipt = Callable[[Receipt], dict[str, Any]]


class BeginAgain(Exception):
    """The batch is to be rolled back and begun again (``reload``: with fresh reference
    data)."""

    def __init__(self, why: str, *, reload: bool = False) -> None:
        super().__init__(why)
        self.reload = reload


# --- one batch -------------------------------------------------------------------------


def check(submission: Submission, known: Reference, *, snap_m: float) -> None:
    """Check ``submission`` against ``known`` reference data: ``prepared`` if it may be
    stored, ``refusal`` if not (told after its key's first response: a replay outranks it)."""
    submission.checked_with, submission.prepared, submission.refusal = known, None, None
    try:
        submission.prepared = prepare(known, submission.data, now=submission.now, snap_m=snap_m)
    except AppError as refusal:
        submission.refusal = refusal


@dataclass
class _Choice:
    """Where a report is going: into ``ticket_id`` (joined) or a ticket it opens."""

    index: int
    submission: Submission
    prepared: Prepared
    look: Look
    outcome: ReportOutcome
    ticket_id: uuid.UUID
    ticket_ref: str
    reported: bool = False  # the ticket joined, by the report's rider already
    opened: dict[str, Any] | None = None  # the new ticket's row


@dataclass
class Batch:
    """One batch of reports, stored by :meth:`store` in the transaction begun on
    ``connection``."""

    database: Database
    settings: Settings
    render_receipt: RenderReceipt
    connection: BatchConnection
    statements: IntakeStatements
    submissions: list[Submission]
    answers: list[Received | AppError | None] = field(default_factory=list)
    books: Books = field(default_factory=Books)
    # What this batch has stored so far, for the reports after it.
    counted: defaultdict[uuid.UUID, list[datetime]] = field(
        default_factory=lambda: defaultdict(list)
    )
    reported: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)
    answered_keys: dict[tuple[uuid.UUID, str], tuple[str, Received]] = field(default_factory=dict)
    rows: defaultdict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    webhooks: dict[uuid.UUID, bool] = field(default_factory=dict)
    not_theirs: defaultdict[int, list[uuid.UUID]] = field(default_factory=lambda: defaultdict(list))
    external_ids: dict[uuid.UUID, str] = field(default_factory=dict)

    async def store(self) -> list[Received | AppError]:
        s = self.statements
        self.answers = [None] * len(self.submissions)
        known = tickets.held_reference(self.database)
        for submission in self.submissions:
            if submission.checked_with is None or submission.checked_with is not known:
                if known is None:
                    raise BeginAgain("no reference data yet", reload=True)
                check(submission, known, snap_m=self.settings.routing_snap_m)
        assert known is not None
        keys = sorted({lock_key(*name) for sub in self.submissions for name in _locks_of(sub)})
        keyed = [i for i, sub in enumerate(self.submissions) if sub.key is not None]
        photos = [
            (i, media_id)
            for i, sub in enumerate(self.submissions)
            for media_id in sub.data.media_ids
        ]
        tokens, _, held, owned, found = await self.connection.run(
            [
                Step(s.tokens),
                Step(s.lock, {"keys": keys}),
                Step(
                    s.try_lock,
                    rows=[
                        {
                            "key": lock_key(
                                "idempotency", self.submissions[i].rider_id, self.submissions[i].key
                            )
                        }
                        for i in keyed
                    ],
                ),
                Step(
                    s.owned_photo,
                    rows=[
                        {
                            "rider_id": self.submissions[i].rider_id,
                            "media_id": media_id,
                            "uploaded_after": usable_since(self.submissions[i].now, self.settings),
                        }
                        for i, media_id in photos
                    ],
                ),
                Step(s.look_up, rows=[self._look_values(sub) for sub in self.submissions]),
            ]
        )
        if tuple(tokens) != known.tokens:
            raise BeginAgain("the reference data changed", reload=True)
        free = {i: bool(rows[0][0]) for i, rows in zip(keyed, held, strict=True)}
        for (i, media_id), rows in zip(photos, owned, strict=True):
            if rows[0][0] is None:
                self.not_theirs[i].append(media_id)
        looks = {i: Look.of(rows) for i, rows in enumerate(found)}
        pending = list(range(len(self.submissions)))
        while pending:
            chosen, rest = await self._choose(pending, looks, free)
            await self._write_tickets(chosen)
            if rest:
                (fresh,) = await self.connection.run(
                    [Step(s.look_up, rows=[self._look_values(self.submissions[i]) for i in rest])]
                )
                looks.update({i: Look.of(rows) for i, rows in zip(rest, fresh, strict=True)})
            pending = rest
        await self._write_the_rest()
        answers = [answer for answer in self.answers if answer is not None]
        assert len(answers) == len(self.submissions), "every report is answered"
        return answers

    def _look_values(self, submission: Submission) -> dict[str, Any]:
        prepared = submission.prepared
        values: dict[str, Any] = {
            "rider_id": submission.rider_id,
            "key": submission.key,
            "counted_since": submission.now - RATE_WINDOW,
        }
        if prepared is not None and prepared.category.dedup_radius_m > 0:
            category = prepared.category
            box = bbox_around(prepared.lon, prepared.lat, category.dedup_radius_m)
            values.update(
                category_id=category.id,
                lon=prepared.lon,
                lat=prepared.lat,
                radius_m=float(category.dedup_radius_m),
                opened_since=submission.now - timedelta(hours=category.dedup_window_h),
                min_lon=box[0],
                min_lat=box[1],
                max_lon=box[2],
                max_lat=box[3],
            )
        else:  # nothing to merge with: a search that finds nothing
            values.update(
                category_id=None,
                lon=0.0,
                lat=0.0,
                radius_m=None,
                opened_since=submission.now,
                min_lon=None,
                min_lat=None,
                max_lon=None,
                max_lat=None,
            )
        return values

    async def _choose(
        self, pending: list[int], looks: dict[int, Look | None], free: dict[int, bool]
    ) -> tuple[list[_Choice], list[int]]:
        """Decide, in order, where each pending report goes, until one could not see a
        ticket opened by an earlier one of this round; returns the choices made and the
        reports left to look up again."""
        chosen: list[_Choice] = []
        opened: list[_Choice] = []
        for position, i in enumerate(pending):
            submission = self.submissions[i]
            prepared = submission.prepared
            if prepared is not None and any(_within_reach(prepared, c.prepared) for c in opened):
                return chosen, pending[position:]
            try:
                choice = await self._choice(i, submission, looks[i], free.get(i, True))
            except AppError as refusal:
                self.answers[i] = refusal
                continue
            if choice is None:  # answered already: a replay
                continue
            chosen.append(choice)
            if choice.outcome is ReportOutcome.NEW_TICKET:
                opened.append(choice)
        return chosen, []

    async def _choice(
        self, i: int, submission: Submission, look: Look | None, free: bool
    ) -> _Choice | None:
        if look is None or not look.platform_active:
            raise Unauthenticated("the rider or its platform is no longer active")
        self.webhooks[look.platform_id] = look.takes_webhooks
        self.external_ids[submission.rider_id] = look.rider_external_id
        if submission.key is not None:
            replay = self._replay(submission, look)
            if replay is not None:
                self.answers[i] = replay
                return None
            if not free:
                raise IdempotencyKeyInFlight()
        if submission.refusal is not None:
            raise submission.refusal
        prepared = submission.prepared
        assert prepared is not None
        if self.not_theirs[i]:
            raise not_the_riders(self.not_theirs[i])
        await self._enforce_rate_limit(submission, look)
        self.counted[submission.rider_id].append(submission.now)
        nearest = look.nearest(prepared)
        if nearest is not None:
            _, ticket = nearest
            return _Choice(
                i,
                submission,
                prepared,
                look,
                ReportOutcome.JOINED_TICKET,
                ticket.id,
                ticket.ref,
                reported=ticket.reported,
            )
        return self._open(i, submission, prepared, look)

    def _replay(self, submission: Submission, look: Look) -> Received | None:
        """The first response to this report's key, if there is one (or 422 if the key
        came with another body)."""
        assert submission.key is not None
        earlier = self.answered_keys.get((submission.rider_id, submission.key))
        if earlier is not None:
            fingerprint, received = earlier
            if fingerprint != submission.fingerprint:
                raise IdempotencyKeyReused("this Idempotency-Key came with a different body before")
            return Received(received.status, received.body, replayed=True)
        if look.request_hash is None:
            return None
        if look.request_hash != submission.fingerprint:
            raise IdempotencyKeyReused("this Idempotency-Key came with a different body before")
        assert look.response_status is not None and look.response_body is not None
        return Received(look.response_status, look.response_body, replayed=True)

    async def _enforce_rate_limit(self, submission: Submission, look: Look) -> None:
        counted_here = self.counted[submission.rider_id]
        count = look.recent + len(counted_here)
        limit = self.settings.rider_reports_per_hour
        if count < limit:
            return
        # One more report fits once enough of this hour's have aged out of the window:
        # the (count - limit + 1)-th oldest (the oldest, unless the limit was lowered).
        since = submission.now - RATE_WINDOW
        rows = (
            await self.connection.run(
                [
                    Step(
                        self.statements.hour_of_reports,
                        {"rider_id": submission.rider_id, "counted_since": since},
                    )
                ]
            )
        )[0]
        times = sorted([at for (at,) in rows] + [at for at in counted_here if at > since])
        count = len(times)
        frees_up = times[count - limit] if count > count - limit >= 0 else submission.now
        retry_after = max(1, math.ceil((frees_up + RATE_WINDOW - submission.now).total_seconds()))
        raise RateLimited(
            f"at most {limit} reports an hour",
            headers={"Retry-After": str(retry_after)},
            retry_after=retry_after,
        )

    def _open(self, i: int, submission: Submission, prepared: Prepared, look: Look) -> _Choice:
        category, route, now = prepared.category, prepared.route, submission.now
        ticket_id, ref = uuid.uuid4(), new_ticket_ref()
        row = {
            "id": ticket_id,
            "ref": ref,
            "category_id": category.id,
            "status": TicketStatus.NEW,
            "priority": category.priority,
            "lon": prepared.lon,
            "lat": prepared.lat,
            "district_id": route.district.id,
            "street_id": _id(route.street),
            "community_id": _id(route.community),
            "report_count": 1,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "respond_by": due(
                category.sla_clock, prepared.calendar, since=now, hours=category.respond_within_h
            ),
            "resolve_by": due(
                category.sla_clock, prepared.calendar, since=now, hours=category.resolve_within_h
            ),
        }
        return _Choice(
            i, submission, prepared, look, ReportOutcome.NEW_TICKET, ticket_id, ref, opened=row
        )

    async def _write_tickets(self, chosen: list[_Choice]) -> None:
        """Open and join the tickets of ``chosen`` (one round trip), then book each
        report, in order, as the ticket it went into stands after it."""
        s = self.statements
        joining: dict[uuid.UUID, list[_Choice]] = defaultdict(list)
        for choice in chosen:
            if choice.opened is None:
                joining[choice.ticket_id].append(choice)
        joins = list(joining.items())
        _, joined = await self.connection.run(
            [
                Step(s.open_ticket, rows=[c.opened for c in chosen if c.opened is not None]),
                Step(
                    s.join_tickets,
                    rows=[
                        {
                            "ticket_id": ticket_id,
                            "joined": len(choices),
                            "now": choices[-1].submission.now,
                        }
                        for ticket_id, choices in joins
                    ],
                ),
            ]
        )
        now_at: dict[int, _TicketNow] = {}
        for (ticket_id, choices), rows in zip(joins, joined, strict=True):
            if not rows:
                raise BeginAgain("a ticket to join was closed meanwhile")
            report_count, status, accepted_at, street_id = rows[0]
            for later, choice in enumerate(reversed(choices)):
                # Each report sees the count its own join left.
                now_at[choice.index] = _TicketNow(
                    ticket_id,
                    choice.ticket_ref,
                    TicketStatus(status),
                    report_count - later,
                    accepted_at,
                    street_id,
                )
        for choice in chosen:
            ticket = now_at.get(choice.index) or _TicketNow(
                choice.ticket_id,
                choice.ticket_ref,
                TicketStatus.NEW,
                1,
                None,
                choice.opened["street_id"] if choice.opened is not None else None,
            )
            self._book(choice, ticket)

    def _book(self, choice: _Choice, ticket: "_TicketNow") -> None:
        """The report, its photos, its event, what it earns and its receipt."""
        submission, prepared, look = choice.submission, choice.prepared, choice.look
        data, route, category, now = (
            submission.data,
            prepared.route,
            prepared.category,
            submission.now,
        )
        rider_id, outcome = submission.rider_id, choice.outcome
        report_id, event_id = uuid.uuid4(), uuid.uuid4()
        stand = standing(ticket.status, ticket.accepted_at)
        report = ReportState(
            report_id,
            rider_id,
            look.platform_id,
            outcome,
            None,
            now,
            category.id,
            _id(route.street),
        )
        # One award per rider and ticket, however often the rider reports it.
        reported = choice.reported or (rider_id, ticket.id) in self.reported
        earns = not owed(category, outcome, stand=stand) or not reported
        cause = Cause(ticket.id, category.id, ticket.street_id, event_id, now)
        counted = settle_report(
            self.books, cause, category=category, report=report, stand=stand, held={}, earns=earns
        )
        self.reported.add((rider_id, ticket.id))
        self.rows["reports"].append(
            {
                "id": report_id,
                "rider_id": rider_id,
                "platform_id": look.platform_id,
                "ticket_id": ticket.id,
                "category_id": category.id,
                "outcome": outcome,
                "counted_as": counted,
                "lon": prepared.lon,
                "lat": prepared.lat,
                "input_lat": data.lat,
                "input_lon": data.lon,
                "input_coord_sys": data.coord_sys,
                "accuracy_m": data.accuracy_m,
                "description": data.description,
                "address_hint": data.address_hint,
                "district_id": route.district.id,
                "street_id": _id(route.street),
                "community_id": _id(route.community),
                "observed_at": prepared.observed_at,
                "received_at": now,
            }
        )
        self.rows["report_media"].extend(
            {"report_id": report_id, "media_id": media_id, "position": position}
            for position, media_id in enumerate(data.media_ids)
        )
        opened = outcome is ReportOutcome.NEW_TICKET
        self.rows["ticket_events"].append(
            {
                "id": event_id,
                "ticket_id": ticket.id,
                "actor_kind": ActorKind.RIDER.value,
                "actor_id": rider_id,
                "type": (
                    TicketEventType.CREATED if opened else TicketEventType.REPORT_JOINED
                ).value,
                "from_status": None,
                "to_status": TicketStatus.NEW if opened else None,
                "note": None,
                "data": {"report_id": str(report_id)},
                "created_at": now,
            }
        )
        body = self.render_receipt(
            Receipt(
                report_id,
                outcome,
                ticket.id,
                ticket.ref,
                ticket.status,
                ticket.report_count,
                route.district,
                route.street,
                route.community,
                prepared.lat,
                prepared.lon,
                now,
                prepared.observed_at,
            )
        )
        received = Received(201, body, replayed=False)
        if submission.key is not None:
            self.rows["idempotency_records"].append(
                {
                    "rider_id": rider_id,
                    "key": submission.key,
                    "request_hash": submission.fingerprint,
                    "response_status": 201,
                    "response_body": body,
                    "created_at": now,
                }
            )
            self.answered_keys[(rider_id, submission.key)] = (submission.fingerprint, received)
        self.answers[choice.index] = received

    async def _write_the_rest(self) -> None:
        """Everything but the tickets, table by table in one order (the one settlements
        use), and the commit: one round trip, two if points are announced."""
        s, books = self.statements, self.books
        steps = [
            Step(s.add_report, rows=self.rows["reports"]),
            Step(s.link_media, rows=self.rows["report_media"]),
            Step(s.add_event, rows=self.rows["ticket_events"]),
            Step(s.add_line, rows=[line.row() for line in books.lines]),
            Step(s.remember, rows=self.rows["idempotency_records"]),
            Step(s.add_to_totals, rows=books.totals_changes()),
            *(
                Step(s.add_to_activity[model], rows=books.activity_changes(model))
                for model in ACTIVITY_TABLES
            ),
        ]
        announced = sorted(
            {line.rider_id for line in books.lines if self.webhooks.get(line.platform_id)}
        )
        if not announced:
            await self.connection.run(steps, commit=True)
            return
        results = await self.connection.run(
            [*steps, *(Step(s.total_points, {"rider_id": r}) for r in announced)]
        )
        points_now = {
            rider_id: rows[0][0]
            for rider_id, rows in zip(announced, results[len(steps) :], strict=True)
        }
        events = [
            platforms.new_event(
                platform_id=line.platform_id,
                type=platforms.EventType.POINTS_AWARDED,
                now=line.cause.now,
                data=data,
            )
            for line, data in books.announcements(points_now, self.external_ids)
            if line.rider_id in points_now
        ]
        await self.connection.run([Step(s.add_outbox_event, rows=events)], commit=True)


@dataclass(frozen=True)
class _TicketNow:
    id: uuid.UUID
    ref: str
    status: TicketStatus
    report_count: int
    accepted_at: datetime | None
    street_id: int | None


def _id(area: AreaRef | None) -> int | None:
    return area.id if area is not None else None


def _locks_of(submission: Submission) -> list[tuple[object, ...]]:
    """The locks a report's batch takes for it: its rider's (for the rate limit) and its
    category's cells around it (for merge-or-open)."""
    prepared = submission.prepared
    if prepared is None:
        return [("rate", submission.rider_id)]
    return [
        ("rate", submission.rider_id),
        *dedup_lock_names(prepared.category, lon=prepared.lon, lat=prepared.lat),
    ]


def _within_reach(later: Prepared, opened: Prepared) -> bool:
    """Whether a ticket opened at ``opened`` could be one ``later`` merges into."""
    radius = later.category.dedup_radius_m
    if radius <= 0 or later.category.id != opened.category.id:
        return False
    min_lon, min_lat, max_lon, max_lat = bbox_around(later.lon, later.lat, radius)
    return min_lon <= opened.lon <= max_lon and min_lat <= opened.lat <= max_lat

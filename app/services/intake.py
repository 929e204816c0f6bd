"""A rider's report becomes part of a ticket: checked, converted, routed, merged or opened.

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
import contextlib
import logging
import math
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from geoalchemy2 import WKTElement
from sqlalchemy import (
    BigInteger,
    Float,
    Integer,
    and_,
    bindparam,
    exists,
    func,
    literal,
    select,
    true,
    update,
)
from sqlalchemy.orm import aliased

from app.config import Settings
from app.db import (
    BatchConnection,
    Database,
    Rows,
    Step,
    advisory_locks,
    advisory_try_lock,
    bbox_around,
    connect_batches,
    first,
    insert_rows,
    lat_of,
    lock_key,
    lon_of,
    point,
    unindexed,
    within_bbox,
)
from app.errors import (
    AppError,
    DatabaseBusy,
    IdempotencyKeyInFlight,
    IdempotencyKeyReused,
    ObservedAtOutOfRange,
    RateLimited,
    Unauthenticated,
    UnknownCategory,
)
from app.models import (
    OPEN_STATUSES,
    IdempotencyRecord,
    Media,
    OutboxEvent,
    Platform,
    Report,
    ReportMedia,
    ReportOutcome,
    Rider,
    Ticket,
    TicketEvent,
    TicketStatus,
    Webhook,
)
from app.services import outbox, reference
from app.services.contributions import (
    ACTIVITY_TABLES,
    LEDGER_LINE,
    TOTAL_POINTS,
    TOTALS_CHANGE,
    Books,
    Cause,
    ReportState,
    activity_change,
    add_ledger_line,
    add_to_activity,
    add_to_totals,
    owed,
    settle_report,
    standing,
)
from app.services.coords import CoordSys, metres_between, to_wgs84
from app.services.media import not_the_riders
from app.services.reference import CategoryRules, Reference
from app.services.routing import AreaRef, Route
from app.services.working_time import WorkingCalendar, due

logger = logging.getLogger("sentinel.intake")

MAX_CLOCK_SKEW = timedelta(minutes=5)
MAX_REPORT_AGE = timedelta(days=7)
RATE_WINDOW = timedelta(hours=1)
# Reports within a category's radius of each other share at least one locked cell: each
# locks every cell its search box touches.
LOCK_CELL_DEG = 0.01
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
# The most reports one transaction stores; more wait for the next.
MAX_BATCH = 64
# How often a batch is begun again when the world moved under it (a ticket it joins
# was closed meanwhile, a deadlock with a merge, the reference data replaced).
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class ReportInput:
    category: str
    lat: float
    lon: float
    coord_sys: CoordSys
    accuracy_m: float | None
    description: str | None
    address_hint: str | None
    observed_at: datetime | None
    media_ids: tuple[uuid.UUID, ...]


@dataclass(frozen=True)
class Received:
    """What a report was answered: its status, the body, and whether it was a replay."""

    status: int
    body: dict[str, Any]
    replayed: bool


def wkt_point(lon: float, lat: float) -> WKTElement:
    return WKTElement(f"POINT({lon!r} {lat!r})", srid=4326)


def new_ticket_ref() -> str:
    """12 random Crockford base32 characters (60 bits), in groups of four."""
    bits = int.from_bytes(secrets.token_bytes(8), "big") >> 4
    chars = "".join(_REF_ALPHABET[(bits >> shift) & 31] for shift in range(55, -1, -5))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


# --- checking and routing, where the request arrives ----------------------------------


@dataclass(frozen=True)
class Prepared:
    """A report checked and routed, ready to be stored."""

    category: CategoryRules
    observed_at: datetime
    lon: float  # WGS-84
    lat: float
    route: Route
    calendar: WorkingCalendar


def prepare(known: Reference, data: ReportInput, *, now: datetime, snap_m: float) -> Prepared:
    """Everything that needs no more than the reference data: the category, the time
    window, the point in WGS-84 and its areas."""
    category = known.categories.get(data.category)
    if category is None or not category.active:
        raise UnknownCategory(
            f"no active category {data.category!r}",
            errors=[{"field": "category", "message": "unknown category"}],
        )
    observed_at = _check_observed_at(data.observed_at, now)
    lon, lat = to_wgs84(data.lon, data.lat, data.coord_sys)
    route = known.areas.route(lon=lon, lat=lat, snap_m=snap_m)
    return Prepared(category, observed_at, lon, lat, route, known.calendar)


def _check_observed_at(observed_at: datetime | None, now: datetime) -> datetime:
    if observed_at is None:
        return now
    if observed_at > now + MAX_CLOCK_SKEW or observed_at < now - MAX_REPORT_AGE:
        raise ObservedAtOutOfRange(
            "observed_at may be at most 5 minutes ahead and 7 days behind the server's clock",
            errors=[{"field": "observed_at", "message": "out of range"}],
        )
    return observed_at


def dedup_lock_names(category: CategoryRules, lon: float, lat: float) -> list[tuple[object, ...]]:
    """The locks of every grid cell that the dedup search box around (lon, lat) touches."""
    if category.dedup_radius_m <= 0:
        return []
    min_lon, min_lat, max_lon, max_lat = bbox_around(lon, lat, category.dedup_radius_m)
    columns = range(math.floor(min_lon / LOCK_CELL_DEG), math.floor(max_lon / LOCK_CELL_DEG) + 1)
    rows = range(math.floor(min_lat / LOCK_CELL_DEG), math.floor(max_lat / LOCK_CELL_DEG) + 1)
    return [("dedup", category.id, x, y) for x in columns for y in rows]


# --- the statements -----------------------------------------------------------------


_OPEN = [literal(status.value) for status in sorted(OPEN_STATUSES)]
_WHEN = Report.received_at.type

# A report's look-up: who sends it, with which key, and where it may merge.
LOOK_UP: dict[str, Any] = {
    "rider_id": Rider.id.type,
    "key": IdempotencyRecord.key.type,
    "counted_since": _WHEN,
    "category_id": Integer(),
    "lon": Float(),
    "lat": Float(),
    "radius_m": Float(),
    "opened_since": _WHEN,
    "min_lon": Float(),
    "min_lat": Float(),
    "max_lon": Float(),
    "max_lat": Float(),
}


def look_up(p: Rows) -> Any:
    """One report's reads, in one row per open ticket of its category in reach (one row
    if there is none): its rider and platform (none if unknown), the first response to its
    key, its rider's reports of the last hour, whether its platform takes webhooks, and
    the ticket — where it is, when it was opened, whether the rider reported it. Each is
    read for the row, by its index (a nested read per row, whatever the planner thinks a
    batch's size is: ``LIMIT 1`` keeps PostgreSQL from turning the reads by key into
    joins of whole tables). Which ticket is nearest is decided in Python (one distance
    rule, :func:`metres_between`, where SpatiaLite's ellipsoid distance costs more than
    all of the statement's reads)."""
    reports = aliased(Report)
    rider = p.each(
        first(
            select(
                Rider.platform_id,
                and_(Platform.active, Rider.erased_at.is_(None)).label("active"),
                Rider.external_id,
            )
            .join(Platform, Platform.id == Rider.platform_id)
            .where(Rider.id == p.rider_id)
        ),
        "rider",
    )
    kept = p.each(
        first(
            select(
                IdempotencyRecord.request_hash,
                IdempotencyRecord.response_status,
                IdempotencyRecord.response_body,
            ).where(IdempotencyRecord.rider_id == p.rider_id, IdempotencyRecord.key == p.key)
        ),
        "kept",
    )
    reported = first(
        select(literal(1))
        .select_from(reports)
        .where(reports.ticket_id == Ticket.id, reports.rider_id == p.rider_id)
        .correlate(Ticket, p.source)
    ).scalar_subquery()
    in_reach = p.each(
        select(
            Ticket.id,
            Ticket.ref,
            lon_of(Ticket.location).label("lon"),
            lat_of(Ticket.location).label("lat"),
            Ticket.created_at,
            reported.label("reported"),
        )
        # The spatial index is the selective filter: a few tickets near the point, where
        # the category's b-tree would match every open ticket of the category.
        .where(
            unindexed(Ticket.category_id) == p.category_id,
            Ticket.status.in_(_OPEN),
            Ticket.created_at >= p.opened_since,
            within_bbox(Ticket.location, p.min_lon, p.min_lat, p.max_lon, p.max_lat),
        ),
        "in_reach",
    )
    # The window holds at most the limit's reports (the rest were refused), unless the
    # limit was lowered within the hour.
    recent = (
        select(func.count())
        .select_from(reports)
        .where(reports.rider_id == p.rider_id, reports.received_at > p.counted_since)
        .correlate(p.source)
        .scalar_subquery()
    )
    takes_webhooks = exists().where(Webhook.platform_id == rider.c.platform_id)
    return (
        select(
            p.ordinal,
            rider.c.platform_id,
            rider.c.active,
            rider.c.external_id,
            kept.c.request_hash,
            kept.c.response_status,
            kept.c.response_body,
            recent,
            takes_webhooks,
            in_reach.c.id,
            in_reach.c.ref,
            in_reach.c.lon,
            in_reach.c.lat,
            in_reach.c.created_at,
            in_reach.c.reported.is_not(None),
        )
        .select_from(p.source)
        .outerjoin(rider, true())
        .outerjoin(kept, true())
        .outerjoin(in_reach, true())
        .order_by(p.ordinal)
    )


PHOTO = {"rider_id": Media.rider_id.type, "media_id": Media.id.type}


def owned_photo(p: Rows) -> Any:
    """A photo of a report, if its rider uploaded it."""
    return (
        select(p.ordinal, Media.id)
        .select_from(p.source)
        .outerjoin(Media, (Media.id == p.media_id) & (Media.rider_id == p.rider_id))
        .order_by(p.ordinal)
    )


def _columns(model: Any, *names: str) -> dict[str, Any]:
    return {name: model.__table__.c[name].type for name in names}


def _every_column(model: Any) -> dict[str, Any]:
    return {column.name: column.type for column in model.__table__.c}


_POINT = {"lon": Float(), "lat": Float()}
NEW_TICKET = {
    **_columns(
        Ticket,
        "id",
        "ref",
        "category_id",
        "status",
        "priority",
        "district_id",
        "street_id",
        "community_id",
        "report_count",
        "version",
        "created_at",
        "updated_at",
        "respond_by",
        "resolve_by",
    ),
    **_POINT,
}
TICKET_JOINED = {"ticket_id": Ticket.id.type, "joined": Integer(), "now": Ticket.updated_at.type}
NEW_REPORT = {
    **_columns(
        Report,
        "id",
        "rider_id",
        "platform_id",
        "ticket_id",
        "category_id",
        "outcome",
        "counted_as",
        "input_lat",
        "input_lon",
        "input_coord_sys",
        "accuracy_m",
        "description",
        "address_hint",
        "district_id",
        "street_id",
        "community_id",
        "observed_at",
        "received_at",
    ),
    **_POINT,
}
MEDIA_LINK = _columns(ReportMedia, "report_id", "media_id", "position")
NEW_EVENT = _every_column(TicketEvent)
KEPT_RESPONSE = _every_column(IdempotencyRecord)
NEW_OUTBOX_EVENT = _columns(
    OutboxEvent,
    *outbox.new_event(
        platform_id=uuid.UUID(int=0),
        type=outbox.EventType.POINTS_AWARDED,
        data={},
        now=datetime.min,
    ),
)
KEY_FREE = {"key": BigInteger()}


def _with_point(table: Any, types: dict[str, Any]) -> Callable[[Rows], Any]:
    columns = [name for name in types if name not in _POINT]

    def build(rows: Rows) -> Any:
        return insert_rows(table, rows, [*columns, "location"], location=point(rows.lon, rows.lat))

    return build


def join_tickets(rows: Rows) -> Any:
    """Count ``joined`` more reports on an open ticket; what it is now. Staff do not take
    the cell locks: if the ticket was resolved or merged since the look-up, its status is
    checked again here (and the batch begun again). An office may have accepted it
    meanwhile: the reports' standing, and their points, follow from what it returns."""
    return (
        update(Ticket)
        .where(Ticket.id == rows.ticket_id, Ticket.status.in_(_OPEN))
        .values(report_count=Ticket.report_count + rows.joined, updated_at=rows.now)
        .returning(
            rows.ordinal, Ticket.report_count, Ticket.status, Ticket.accepted_at, Ticket.street_id
        )
    )


class IntakeStatements:
    """The statements of a batch, compiled once for the writer's connection."""

    def __init__(self, connection: BatchConnection) -> None:
        p, each = connection.prepare, connection.prepare_rows
        self.tokens = p(reference.TOKENS)
        self.lock = p(select(advisory_locks(bindparam("keys"))))
        self.try_lock = each(
            lambda r: (
                select(r.ordinal, advisory_try_lock(r.key))
                .select_from(r.source)
                .order_by(r.ordinal)
            ),
            KEY_FREE,
        )
        self.look_up = each(look_up, LOOK_UP)
        self.owned_photo = each(owned_photo, PHOTO)
        self.open_ticket = each(_with_point(Ticket.__table__, NEW_TICKET), NEW_TICKET)
        self.join_tickets = each(join_tickets, TICKET_JOINED)
        self.add_report = each(_with_point(Report.__table__, NEW_REPORT), NEW_REPORT)
        self.link_media = each(
            lambda r: insert_rows(ReportMedia.__table__, r, list(MEDIA_LINK)), MEDIA_LINK
        )
        self.add_event = each(
            lambda r: insert_rows(TicketEvent.__table__, r, list(NEW_EVENT)), NEW_EVENT
        )
        self.add_line = each(add_ledger_line, LEDGER_LINE)
        self.remember = each(
            lambda r: insert_rows(IdempotencyRecord.__table__, r, list(KEPT_RESPONSE)),
            KEPT_RESPONSE,
        )
        self.add_to_totals = each(add_to_totals, TOTALS_CHANGE)
        self.add_to_activity = {
            model: each(add_to_activity(model, connection.dialect), activity_change(model))
            for model in ACTIVITY_TABLES
        }
        self.add_outbox_event = each(
            lambda r: insert_rows(OutboxEvent.__table__, r, list(NEW_OUTBOX_EVENT)),
            NEW_OUTBOX_EVENT,
        )
        self.total_points = p(TOTAL_POINTS)
        self.hour_of_reports = p(
            select(Report.received_at)
            .where(
                Report.rider_id == bindparam("rider_id", type_=Report.rider_id.type),
                Report.received_at > bindparam("counted_since", type_=_WHEN),
            )
            .order_by(Report.received_at)
        )


@dataclass(frozen=True)
class InReach:
    """An open ticket of a report's category in its search box."""

    id: uuid.UUID
    ref: str
    lon: float
    lat: float
    created_at: datetime
    reported: bool  # by the report's rider, already


@dataclass(frozen=True)
class Look:
    """What the look-up found for one report (see :func:`look_up`)."""

    platform_id: uuid.UUID
    platform_active: bool
    rider_external_id: str
    request_hash: str | None
    response_status: int | None
    response_body: dict[str, Any] | None
    recent: int
    takes_webhooks: bool
    in_reach: tuple[InReach, ...]

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]]) -> "Look | None":
        """From the look-up's rows for one report: None if its rider is unknown."""
        if not rows or rows[0][0] is None:
            return None
        tickets = tuple(InReach(*row[8:]) for row in rows if row[8] is not None)
        (
            platform_id,
            active,
            external_id,
            request_hash,
            response_status,
            response_body,
            recent,
            takes_webhooks,
        ) = rows[0][:8]
        return cls(
            platform_id,
            bool(active),
            external_id,
            request_hash,
            response_status,
            response_body,
            recent,
            bool(takes_webhooks),
            tickets,
        )

    def nearest(self, prepared: Prepared) -> tuple[float, InReach] | None:
        """The ticket this report merges into: the nearest within its category's radius,
        the oldest of equally near ones."""
        radius = prepared.category.dedup_radius_m
        found = [
            (metres_between(prepared.lon, prepared.lat, t.lon, t.lat), t.created_at, t)
            for t in self.in_reach
        ]
        near = [(metres, created, t) for metres, created, t in found if metres <= radius]
        if radius <= 0 or not near:
            return None
        metres, _, ticket = min(near, key=lambda item: (item[0], item[1]))
        return metres, ticket


# --- the writer ------------------------------------------------------------------------


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


class _BeginAgain(Exception):
    """The batch is to be rolled back and begun again (``reload``: with fresh reference
    data)."""

    def __init__(self, why: str, *, reload: bool = False) -> None:
        super().__init__(why)
        self.reload = reload


class IntakeWriter:
    """Stores the reports of this process, in batches, from a task on its event loop."""

    def __init__(
        self, database: Database, settings: Settings, *, render_receipt: RenderReceipt
    ) -> None:
        self.database = database
        self.settings = settings
        self.render_receipt = render_receipt
        self._queue: asyncio.Queue[Submission] = asyncio.Queue()
        self._in_flight: set[tuple[uuid.UUID, str]] = set()
        self._connection: BatchConnection | None = None
        self._statements: IntakeStatements | None = None
        self._task: asyncio.Task[None] | None = None

    # -- the requests' side

    def submit(
        self,
        *,
        rider_id: uuid.UUID,
        data: ReportInput,
        key: str | None,
        fingerprint: str,
        now: datetime,
    ) -> "asyncio.Future[Received]":
        """Queue one report (received ``now``, its ``key`` checked already); the future is
        answered once its batch has committed."""
        return self.submit_all(rider_id=rider_id, reports=[(data, key, fingerprint, now)])[0]

    def submit_all(
        self,
        *,
        rider_id: uuid.UUID,
        reports: Sequence[tuple[ReportInput, str | None, str, datetime]],
    ) -> list["asyncio.Future[Received]"]:
        """Queue a rider's reports in this order (an offline queue flushed at once: a key
        that comes twice is answered as a retry of the first)."""
        self._ensure_running()
        loop = asyncio.get_running_loop()
        known = reference.held(self.database)
        answers = []
        claimed: set[tuple[uuid.UUID, str]] = set()
        for data, key, fingerprint, now in reports:
            answer: asyncio.Future[Received] = loop.create_future()
            answers.append(answer)
            if key is not None:
                entry = (rider_id, key)
                if entry in self._in_flight and entry not in claimed:
                    answer.set_exception(IdempotencyKeyInFlight())
                    continue
                self._in_flight.add(entry)
                claimed.add(entry)
            submission = Submission(rider_id, data, key, fingerprint, now, answer)
            if known is not None:
                self._check(submission, known)
            self._queue.put_nowait(submission)
        return answers

    def _check(self, submission: Submission, known: Reference) -> None:
        submission.checked_with, submission.prepared, submission.refusal = known, None, None
        try:
            submission.prepared = prepare(
                known, submission.data, now=submission.now, snap_m=self.settings.routing_snap_m
            )
        except AppError as refusal:
            submission.refusal = refusal

    # -- the task

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sentinel-intake")

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Store what is queued (waiting at most ``timeout_s`` for it), then close the
        connection."""
        if self._task is not None and not self._task.done():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), timeout_s)
            self._task.cancel()
            with _suppress_cancel():
                await self._task
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._store(batch)
            except Exception as error:  # never lose the task: answer the batch instead
                logger.exception("storing a batch of reports failed")
                self._answer_all(batch, error)
            finally:
                for _ in batch:
                    self._queue.task_done()

    def _answer_all(self, batch: list[Submission], error: BaseException) -> None:
        for submission in batch:
            self._answer(submission, error)

    def _answer(self, submission: Submission, outcome: Received | BaseException) -> None:
        if submission.key is not None:
            self._in_flight.discard((submission.rider_id, submission.key))
        if submission.answer.done():  # its request went away
            return
        if isinstance(outcome, BaseException):
            submission.answer.set_exception(outcome)
        else:
            submission.answer.set_result(outcome)

    async def _connect(self) -> tuple[BatchConnection, IntakeStatements]:
        if self._connection is not None and self._connection.broken:
            with _suppress_errors():
                await self._connection.close()
            self._connection = None
        if self._connection is None:
            self._connection = await connect_batches(self.database)
            self._statements = IntakeStatements(self._connection)
        assert self._statements is not None
        return self._connection, self._statements

    async def _store(self, batch: list[Submission]) -> None:
        """Store ``batch`` in one transaction, begun again if the world moved under it;
        if it fails otherwise, each report alone, so that one cannot sink the others."""
        for _ in range(MAX_ATTEMPTS):
            try:
                connection, statements = await self._connect()
            except Exception as error:
                logger.warning(
                    "the database is unavailable to intake", extra={"fields": {"error": str(error)}}
                )
                self._answer_all(batch, DatabaseBusy("the database is unavailable; retry shortly"))
                return
            try:
                await connection.begin()
                answers = await _Batch(self, connection, statements, batch).store()
            except _BeginAgain as why:
                await connection.rollback()
                if why.reload:
                    await self._reload()
                continue
            except DatabaseBusy as error:
                await connection.rollback()
                self._answer_all(batch, error)
                return
            except Exception as error:
                with _suppress_errors():
                    await connection.rollback()
                if _retryable(error):
                    continue
                if len(batch) > 1:
                    logger.warning(
                        "a batch of reports failed; storing each alone",
                        extra={
                            "fields": {
                                "reports": len(batch),
                                "error": f"{type(error).__name__}: {error}",
                            }
                        },
                    )
                    for submission in batch:
                        await self._store([submission])
                    return
                if _unavailable(error) or connection.broken:
                    logger.warning(
                        "the database failed a report", extra={"fields": {"error": str(error)}}
                    )
                    self._answer_all(
                        batch, DatabaseBusy("the database is unavailable; retry shortly")
                    )
                    return
                raise
            for submission, answer in zip(batch, answers, strict=True):
                self._answer(submission, answer)
            return
        self._answer_all(batch, DatabaseBusy("too much contention; retry shortly"))

    async def _reload(self) -> None:
        def load() -> Reference:
            with self.database.session() as session:
                return reference.current(session)

        await asyncio.to_thread(load)


class _suppress_cancel:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, *_: Any) -> bool:
        return kind is asyncio.CancelledError


class _suppress_errors:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, *_: Any) -> bool:
        return kind is not None and issubclass(kind, Exception)


def _sqlstate(error: BaseException) -> str | None:
    return getattr(error, "sqlstate", None)


def _retryable(error: BaseException) -> bool:
    # A deadlock (with a merge that locks two tickets) or a serialisation failure: the
    # other transaction went on; this one will, begun again.
    return _sqlstate(error) in ("40P01", "40001")


def _unavailable(error: BaseException) -> bool:
    return type(error).__name__ == "OperationalError" or (_sqlstate(error) or "").startswith(
        ("08", "57P")
    )


# --- one batch -------------------------------------------------------------------------


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
class _Batch:
    writer: IntakeWriter
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
        known = reference.held(self.writer.database)
        for submission in self.submissions:
            if submission.checked_with is None or submission.checked_with is not known:
                if known is None:
                    raise _BeginAgain("no reference data yet", reload=True)
                self.writer._check(submission, known)
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
                        {"rider_id": self.submissions[i].rider_id, "media_id": media_id}
                        for i, media_id in photos
                    ],
                ),
                Step(s.look_up, rows=[self._look_values(sub) for sub in self.submissions]),
            ]
        )
        if tuple(tokens) != known.tokens:
            raise _BeginAgain("the reference data changed", reload=True)
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
        limit = self.writer.settings.rider_reports_per_hour
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
                category.sla_clock, prepared.calendar, now, category.respond_within_h
            ),
            "resolve_by": due(
                category.sla_clock, prepared.calendar, now, category.resolve_within_h
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
                raise _BeginAgain("a ticket to join was closed meanwhile")
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
        earns = not owed(category, outcome, stand) or not reported
        cause = Cause(ticket.id, category.id, ticket.street_id, event_id, now)
        counted = settle_report(self.books, cause, category, report, stand, {}, earns=earns)
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
                "actor_kind": "rider",
                "actor_id": rider_id,
                "type": "created" if opened else "report_joined",
                "from_status": None,
                "to_status": TicketStatus.NEW if opened else None,
                "note": None,
                "data": {"report_id": str(report_id)},
                "created_at": now,
            }
        )
        body = self.writer.render_receipt(
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
            outbox.new_event(
                platform_id=line.platform_id,
                type=outbox.EventType.POINTS_AWARDED,
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
        *dedup_lock_names(prepared.category, prepared.lon, prepared.lat),
    ]


def _within_reach(later: Prepared, opened: Prepared) -> bool:
    """Whether a ticket opened at ``opened`` could be one ``later`` merges into."""
    radius = later.category.dedup_radius_m
    if radius <= 0 or later.category.id != opened.category.id:
        return False
    min_lon, min_lat, max_lon, max_lat = bbox_around(later.lon, later.lat, radius)
    return min_lon <= opened.lon <= max_lon and min_lat <= opened.lat <= max_lat

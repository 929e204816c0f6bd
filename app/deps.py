"""Request-scoped dependencies: the session, the caller, and role checks.

Permissions are dependencies, not ``if`` statements in handlers: a handler that takes
``CurrentAdmin`` cannot run for anyone else.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import AwareDatetime
from sqlalchemy.orm import Session

from app import alerts
from app.config import Settings
from app.db import Database
from app.errors import DatabaseBusy, Forbidden, Unauthenticated
from app.intake import IntakeWriter
from app.models import Area, Platform, Rider, Staff, StaffRole, Ticket
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest
from app.platforms import platform_by_api_key
from app.riders import Window
from app.security import TokenKind, decode_token, looks_like_api_key
from app.staff import area_in_scope
from app.tickets import ticket_in_scope


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


# Dependencies that only look at the request or the caller are async: a sync one would
# cost a trip through the threadpool on every request.
async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


async def _turn(request: Request) -> AsyncIterator[None]:
    """A turn to use the database. A request holds its session's connection from its
    first query to its end, across several trips through the threadpool (the caller's
    dependency, then the handler). Were every thread of the pool taken by requests
    waiting for a connection while the requests holding the connections waited for a
    thread, none would move until the pool's timeout. So requests take turns, awaited
    on the event loop before any thread or connection is theirs: as many at once as
    ``SENTINEL_DB_REQUESTS_AT_ONCE`` says, never more than leave a connection to spare
    for each (``Database.sessions_at_once``); one that waits longer than
    ``SENTINEL_DB_TURN_WAIT_S`` is answered 503 at once. Intake's reports take no turn: they are
    written by the intake writer's own connection, and its event loop keeps its share of
    the interpreter because only a few threads run requests at once."""
    turns: asyncio.Semaphore = request.app.state.session_turns
    settings: Settings = request.app.state.settings
    try:
        async with asyncio.timeout(settings.db_turn_wait_s):
            await turns.acquire()
    except TimeoutError:
        raise DatabaseBusy(
            "more requests than this server can answer now; try again shortly"
        ) from None
    try:
        yield
    finally:
        turns.release()


def get_session(request: Request, _turn: Annotated[None, Depends(_turn)]) -> Iterator[Session]:
    """One request, one transaction: committed before the response is sent, or rolled back."""
    # Every request starts reading; a service that writes calls begin_writes() first.
    with get_database(request).transaction(write=False) as session:
        yield session


# scope="function": commit before the response leaves, so a failed commit is an error
# response and never a 201 for something that was not stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]


async def get_lagging_read_database(request: Request) -> Database:
    """Where reads whose answers may lag by seconds go: the read replica when one is
    configured (``SENTINEL_READ_DATABASE_URL``), else the database."""
    replica: Database | None = request.app.state.read_database
    return replica or get_database(request)


def get_lagging_read_session(request: Request, session: SessionDep) -> Iterator[Session]:
    """A read-only session on the read replica when one is configured, else the request's
    own session (a session connects only when first used: the one asked for here costs
    nothing when the replica answers). Whoever is asking is still found by ``SessionDep``,
    on the database itself, so that a revoked key or token is refused at once."""
    replica: Database | None = request.app.state.read_database
    if replica is None:
        yield session
        return
    # Nothing to commit: its transactions are read-only (``Database(read_only=True)``).
    with replica.session() as lagging:
        yield lagging


# For the answers that may lag by seconds (dashboards and statistics, Open311's and the
# public page's reads, the exports staff download), never for what writes or what a
# clerk acts on: the replica's rows may be seconds behind the database's.
LaggingReadSession = Annotated[Session, Depends(get_lagging_read_session, scope="function")]
# The same, for an export streamed after the request's sessions have ended.
LaggingReadDatabase = Annotated[Database, Depends(get_lagging_read_database)]


async def get_clock(request: Request) -> Callable[[], datetime]:
    """The app's clock: ``utcnow`` in service, a controlled one in tests."""
    clock: Callable[[], datetime] = request.app.state.clock
    return clock


ClockDep = Annotated[Callable[[], datetime], Depends(get_clock)]


async def get_client_address(request: Request) -> str | None:
    """The caller's address, as the server (and its trusted proxy headers) saw it."""
    return request.client.host if request.client else None


ClientAddress = Annotated[str | None, Depends(get_client_address)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
DatabaseDep = Annotated[Database, Depends(get_database)]


class Role(StrEnum):
    PLATFORM = "platform"
    RIDER = "rider"
    OFFICER = "officer"
    DISTRICT = "district"
    ADMIN = "admin"
    CREW = "crew"


@dataclass(frozen=True)
class Caller:
    role: Role
    platform: Platform | None = None
    rider: Rider | None = None
    staff: Staff | None = None


_bearer = HTTPBearer(auto_error=False, description="A platform API key, or a rider or staff token")


def get_caller(
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    if credentials is None:
        raise Unauthenticated("send Authorization: Bearer <token>")
    return caller_for_token(session, settings, credentials.credentials)


def caller_for_token(session: Session, settings: Settings, token: str) -> Caller:
    if looks_like_api_key(token):
        platform = platform_by_api_key(session, token)
        if platform is None:
            raise Unauthenticated("unknown or revoked API key")
        return Caller(Role.PLATFORM, platform=platform)
    claims = decode_token(token, settings)
    if claims is None:
        raise Unauthenticated("the token is invalid or has expired")
    if claims.kind is TokenKind.RIDER:
        rider = session.get(Rider, claims.subject)
        if rider is None or not rider.is_active:
            raise Unauthenticated("the rider or its platform is no longer active")
        return Caller(Role.RIDER, rider=rider, platform=rider.platform)
    staff = session.get(Staff, claims.subject)
    if staff is None or not staff.active:
        raise Unauthenticated("the account is no longer active")
    if staff.tokens_valid_after is not None and claims.issued_at < staff.tokens_valid_after:
        raise Unauthenticated("this token was revoked (signed out, or the password changed)")
    return Caller(Role(staff.role), staff=staff)


CallerDep = Annotated[Caller, Depends(get_caller)]


def _wrong_role(caller: Caller, roles: tuple[Role, ...]) -> Forbidden:
    return Forbidden(f"this needs the role {' or '.join(roles)}, not {caller.role}")


def _require(*roles: Role) -> Annotated[Caller, Depends]:
    async def check(caller: CallerDep) -> Caller:
        if caller.role not in roles:
            raise _wrong_role(caller, roles)
        return caller

    return Depends(check)


@dataclass(frozen=True)
class Reporting:
    """A rider reporting: who (from the token alone: whether that rider and its platform
    are still active is checked where the report is stored, in the same transaction —
    ``app.intake``), through which writer, and when."""

    rider_id: uuid.UUID
    writer: IntakeWriter
    clock: Callable[[], datetime]


# One dependency for the intake's requests, which come in thousands at a time: each
# dependency FastAPI solves costs about as much as the rest of a small request.
async def _reporting(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Reporting:
    if credentials is None:
        raise Unauthenticated("send Authorization: Bearer <token>")
    state = request.app.state
    claims = (
        None
        if looks_like_api_key(credentials.credentials)
        else decode_token(credentials.credentials, state.settings)
    )
    if claims is not None and claims.kind is TokenKind.RIDER:
        return Reporting(claims.subject, state.intake, state.clock)

    # Any other caller gets the full check, and with it the 401 or 403 it has earned.
    def check() -> Caller:
        with get_database(request).transaction(write=False) as session:
            return caller_for_token(session, state.settings, credentials.credentials)

    raise _wrong_role(await run_in_threadpool(check), (Role.RIDER,))


async def _platform(caller: Annotated[Caller, _require(Role.PLATFORM)]) -> Platform:
    assert caller.platform is not None
    return caller.platform


async def _rider(caller: Annotated[Caller, _require(Role.RIDER)]) -> Rider:
    assert caller.rider is not None
    return caller.rider


async def _office_staff(caller: Annotated[Caller, _require(Role.OFFICER, Role.DISTRICT)]) -> Staff:
    assert caller.staff is not None
    return caller.staff


async def _case_worker(
    caller: Annotated[Caller, _require(Role.OFFICER, Role.DISTRICT, Role.CREW)],
) -> Staff:
    assert caller.staff is not None
    return caller.staff


def _uploading_case_worker(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> uuid.UUID:
    """A case worker's id, checked in a transaction of its own: an upload holds no
    database connection while its photo waits for its turn and is decoded."""
    if credentials is None:
        raise Unauthenticated("send Authorization: Bearer <token>")
    with get_database(request).transaction(write=False) as session:
        caller = caller_for_token(session, settings, credentials.credentials)
    roles = (Role.OFFICER, Role.DISTRICT, Role.CREW)
    if caller.role not in roles or caller.staff is None:
        raise _wrong_role(caller, roles)
    return caller.staff.id


async def _alert_publisher(
    caller: Annotated[Caller, _require(Role.OFFICER, Role.DISTRICT)],
) -> Staff:
    """District staff, or staff an admin allowed to publish area alerts: refused before
    anything of the request is read."""
    assert caller.staff is not None
    if not alerts.may_publish(caller.staff):
        raise Forbidden(alerts.NOT_A_PUBLISHER)
    return caller.staff


async def _staff(
    caller: Annotated[Caller, _require(Role.OFFICER, Role.DISTRICT, Role.ADMIN, Role.CREW)],
) -> Staff:
    assert caller.staff is not None
    return caller.staff


async def _channel_keeper(caller: Annotated[Caller, _require(Role.ADMIN, Role.DISTRICT)]) -> Staff:
    assert caller.staff is not None
    return caller.staff


async def _admin(caller: Annotated[Caller, _require(Role.ADMIN)]) -> Staff:
    assert caller.staff is not None
    return caller.staff


def _area_in_scope(
    code: str, staff: Annotated[Staff, Depends(_office_staff)], session: SessionDep
) -> Area:
    return area_in_scope(session, staff, code=code)


def _ticket_in_scope(
    ticket_id: uuid.UUID, staff: Annotated[Staff, Depends(_office_staff)], session: SessionDep
) -> Ticket:
    return ticket_in_scope(session, staff, ticket_id=ticket_id)


def _case_in_scope(
    ticket_id: uuid.UUID, staff: Annotated[Staff, Depends(_case_worker)], session: SessionDep
) -> Ticket:
    return ticket_in_scope(session, staff, ticket_id=ticket_id)


CurrentPlatform = Annotated[Platform, Depends(_platform)]
CurrentRider = Annotated[Rider, Depends(_rider)]
ReportingDep = Annotated[Reporting, Depends(_reporting)]
CurrentOfficeStaff = Annotated[Staff, Depends(_office_staff)]
# Whoever works on tickets: the offices, and the crews of the units they dispatch to.
CaseWorker = Annotated[Staff, Depends(_case_worker)]
# The same, by id alone, for an upload (no session held while it lasts).
UploadingCaseWorker = Annotated[uuid.UUID, Depends(_uploading_case_worker)]
AlertPublisher = Annotated[Staff, Depends(_alert_publisher)]
# Any member of staff, whatever the role.
CurrentStaff = Annotated[Staff, Depends(_staff)]
CurrentAdmin = Annotated[Staff, Depends(_admin)]
# Who keeps channels: admins, every one; district staff, their district's.
ChannelKeeper = Annotated[Staff, Depends(_channel_keeper)]
# The area named by the path's ``code``, if the caller's scope holds it; else 404.
AreaInScope = Annotated[Area, Depends(_area_in_scope)]
# The ticket named by the path's ``ticket_id``, if the caller's scope holds it; else 404.
TicketInScope = Annotated[Ticket, Depends(_ticket_in_scope)]
# The same for a case worker: a crew member's scope is the tickets of its unit.
CaseInScope = Annotated[Ticket, Depends(_case_in_scope)]

__all__ = [
    "AlertPublisher",
    "AreaInScope",
    "CallerDep",
    "CaseInScope",
    "CaseWorker",
    "ChannelKeeper",
    "ClientAddress",
    "ClockDep",
    "CurrentAdmin",
    "CurrentOfficeStaff",
    "CurrentPlatform",
    "CurrentRider",
    "CurrentStaff",
    "DatabaseDep",
    "LaggingReadDatabase",
    "LaggingReadSession",
    "Reporting",
    "ReportingDep",
    "Role",
    "SessionDep",
    "SettingsDep",
    "StaffRole",
    "TicketInScope",
    "UploadingCaseWorker",
]


# A page's cursor: the ``next_cursor`` of the page before (URL-safe base64, unpadded).
Cursor = Annotated[
    str | None,
    Query(
        description="next_cursor of the previous page; absent for the first",
        # Said in the schema; checked when the cursor is read (422 "invalid cursor").
        json_schema_extra={"pattern": r"^[A-Za-z0-9_-]{1,2048}$"},
    ),
]


# A page's size.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many items")]


def _page_request(limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> PageRequest:
    return PageRequest(limit, cursor)


# The page a list endpoint is asked for (?limit= and ?cursor=).
PageParams = Annotated[PageRequest, Depends(_page_request)]

From = Annotated[AwareDatetime | None, Query(alias="from", description="inclusive")]
To = Annotated[AwareDatetime | None, Query(alias="to", description="exclusive")]


def _window(start: From = None, end: To = None) -> Window:
    return Window(start, end)


# The time a figure counts over, [?from=, ?to=); either end may be open.
WindowParams = Annotated[Window, Depends(_window)]

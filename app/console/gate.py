"""Who may send the console a body, decided before a byte of it is read.

FastAPI reads a route's form before it solves a single dependency, so a page guarded
only by its dependencies has anyone's body read and parsed, however large, before it
says no. Every console route is a ``ConsoleRoute``: a request that changes something
is first held to the route's body limit, then to the route's own guards — the sign-in
and the role, found among its dependencies, so that each rule is written once, here —
and only then is its body read (and its CSRF token checked).

The guards live here, at the bottom of the console: the session cookie, who is signed
in, and whose pages are whose."""

import uuid
from collections.abc import Callable, Coroutine, Sequence
from typing import Annotated, Any

from fastapi import Depends, Request, params
from fastapi.concurrency import run_in_threadpool
from fastapi.dependencies.models import Dependant
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.types import Message, Receive

from app.deps import Role, SessionDep, SettingsDep, caller_for_token, get_database
from app.errors import Unauthenticated
from app.models import Staff, StaffRole

SESSION_COOKIE = "sentinel_console"
CONSOLE_ROLES = frozenset({Role.OFFICER, Role.DISTRICT, Role.ADMIN, Role.CREW})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# A form's body at most: a member of staff's (the largest, a category's description and
# names in Chinese, percent-encoded, comes to 55 KB), and a sign-in form's.
FORM_LIMIT = 64 * 1024
SIGN_IN_LIMIT = 16 * 1024


class SignInRequired(Exception):
    """The request has no valid console session: it goes to the sign-in page."""

    def __init__(self, next_url: str) -> None:
        self.next_url = next_url


HOMES = {StaffRole.ADMIN: "/console/admin/categories", StaffRole.CREW: "/console/work"}


def home_of(staff: Staff) -> str:
    """Where a member of staff's pages start: an admin's at the categories, a unit's crew
    at its work list, an office's at the queue."""
    return HOMES.get(StaffRole(staff.role), "/console/queue")


class WrongRole(Exception):
    """A page for another role: an officer on an admin page, an admin in the queue, a
    crew member anywhere but its work list."""

    def __init__(self, staff: Staff) -> None:
        self.home = home_of(staff)


class BodyTooLarge(HTTPException):
    """A body over its route's limit. An HTTPException, because FastAPI passes those
    through untouched while it reads a body (it turns anything else into a 400)."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the body may be at most {limit} bytes")
        self.limit = limit


def _here(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def signed_in(request: Request, session: SessionDep, settings: SettingsDep) -> Staff:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        raise SignInRequired(_here(request))
    try:
        caller = caller_for_token(session, settings, token)
    except Unauthenticated:
        raise SignInRequired(_here(request)) from None
    if caller.staff is None or caller.role not in CONSOLE_ROLES:
        raise SignInRequired(_here(request))
    return caller.staff


def office_only(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    if staff.role not in (StaffRole.OFFICER, StaffRole.DISTRICT):
        raise WrongRole(staff)
    return staff


def crew_only(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    if staff.role != StaffRole.CREW:
        raise WrongRole(staff)
    return staff


def case_worker(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    """Whoever works on tickets: an office's staff or a unit's crew (each sees its own)."""
    if staff.role == StaffRole.ADMIN:
        raise WrongRole(staff)
    return staff


def admin_only(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    if staff.role != StaffRole.ADMIN:
        raise WrongRole(staff)
    return staff


def channel_keeper(staff: Annotated[Staff, Depends(signed_in)]) -> Staff:
    """Who keeps the channels: an admin (every one) or district staff (its district's)."""
    if staff.role not in (StaffRole.ADMIN, StaffRole.DISTRICT):
        raise WrongRole(staff)
    return staff


ROLE_GUARDS = (office_only, admin_only, crew_only, case_worker, channel_keeper)


def crew_uploader(request: Request) -> uuid.UUID:
    """The crew member the gate let in, by id: for a route that sends a photo to be
    decoded, which holds no database session while it waits (the gate checked the
    session and the role in a transaction of its own, before the body was read)."""
    admitted: uuid.UUID = request.state.admitted_staff_id
    return admitted


def admitted_channel_keeper(request: Request) -> uuid.UUID:
    """The channel keeper the gate let in, by id: for the test message, which holds no
    database session while it waits for the channel's answer."""
    admitted: uuid.UUID = request.state.admitted_staff_id
    return admitted


# Dependencies that stand for the gate's own check: the guards they stand for.
ADMITTED_BY_THE_GATE: dict[Callable[..., Any], tuple[Callable[..., Staff], ...]] = {
    crew_uploader: (crew_only,),
    admitted_channel_keeper: (channel_keeper,),
}


# -- the gate


def _calls(dependant: Dependant) -> set[Callable[..., Any]]:
    found = {dependant.call} if dependant.call else set()
    for sub in dependant.dependencies:
        found |= _calls(sub)
    return found


def _takes_a_file(dependant: Dependant) -> bool:
    return any(isinstance(field.field_info, params.File) for field in dependant.body_params)


def _limited(receive: Receive, limit: int) -> Receive:
    """``receive``, cut off once the body passes ``limit`` (a body sent in chunks)."""
    received = 0

    async def limited() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise BodyTooLarge(limit)
        return message

    return limited


def _admit(request: Request, guards: Sequence[Callable[..., Staff]]) -> None:
    """The route's guards on the request's session cookie, in a transaction of their own."""
    settings = request.app.state.settings
    with get_database(request).transaction(write=False) as session:
        staff = signed_in(request, session, settings)
        for guard in guards:
            guard(staff)
        request.state.admitted_staff_id = staff.id


class ConsoleRoute(APIRoute):
    """A console route whose requests that change something meet its body limit and its
    guards before FastAPI reads their body.

    The limit: a route that takes a file has the one the app sets for its path
    (``app.main``: the area import's); one behind the sign-in, a form's; the sign-in's own
    forms (no guard), a small one. Declared sizes are refused at once, chunked bodies cut
    off as they come."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if SAFE_METHODS.issuperset(self.methods or ()):
            return handler
        calls = _calls(self.dependant)
        guards: list[Callable[..., Staff]] = [guard for guard in ROLE_GUARDS if guard in calls]
        for stand_in, its_guards in ADMITTED_BY_THE_GATE.items():
            if stand_in in calls:
                guards.extend(its_guards)
        behind_sign_in = signed_in in calls or any(c in calls for c in ADMITTED_BY_THE_GATE)
        limit = None
        if not _takes_a_file(self.dependant):
            limit = FORM_LIMIT if behind_sign_in else SIGN_IN_LIMIT

        async def gated(request: Request) -> Response:
            if request.method in SAFE_METHODS:
                return await handler(request)
            if limit is not None:
                declared = request.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise BodyTooLarge(limit)
                request = Request(request.scope, _limited(request.receive, limit))
            if behind_sign_in:
                await run_in_threadpool(_admit, request, guards)
            return await handler(request)

        return gated

"""The street office's tickets: read one, act on it."""

import re
from typing import Annotated

from fastapi import APIRouter, Header, Response

from app.deps import ClockDep, CurrentOfficeStaff, SessionDep, TicketInScope
from app.errors import PreconditionFailed
from app.schemas.common import ProblemRead
from app.schemas.office import ActionCreate, TicketDetail
from app.services.tickets import ticket_detail
from app.services.workflow import ActionInput, apply_action

router = APIRouter(prefix="/v1/office/tickets", tags=["office"],
                   responses={401: {"model": ProblemRead}, 403: {"model": ProblemRead},
                              404: {"model": ProblemRead}})
_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')


def _etag(version: int) -> str:
    return f'"{version}"'


@router.get("/{ticket_id}", response_model=TicketDetail,
            summary="A ticket with its reports, events and SLA; ETag is its version")
def read_ticket(ticket: TicketInScope, session: SessionDep, clock: ClockDep,
                response: Response) -> TicketDetail:
    response.headers["ETag"] = _etag(ticket.version)
    return ticket_detail(session, ticket, clock())


@router.post("/{ticket_id}/actions", response_model=TicketDetail,
             summary="Act on a ticket (accept, reject, assign, start, resolve, close, reopen, "
                     "transfer, merge, comment, set_priority)",
             responses={409: {"model": ProblemRead}, 412: {"model": ProblemRead},
                        422: {"model": ProblemRead}})
def act(body: ActionCreate, ticket: TicketInScope, staff: CurrentOfficeStaff,
        session: SessionDep, clock: ClockDep, response: Response,
        if_match: Annotated[str | None, Header(description='"<version>" from the ETag')]
        = None) -> TicketDetail:
    expected = None
    if if_match is not None:
        match = _ETAG.match(if_match.strip())
        if match is None:
            raise PreconditionFailed('If-Match must be an ETag of this ticket, e.g. "3"')
        expected = int(match[1])
    now = clock()
    updated = apply_action(session, ticket=ticket, staff=staff, now=now,
                           expected_version=expected,
                           data=ActionInput(**body.model_dump()))
    response.headers["ETag"] = _etag(updated.version)
    return ticket_detail(session, updated, now)

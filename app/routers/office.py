"""The street office's tickets: the queue (JSON, GeoJSON, CSV), one ticket, its actions."""

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import AwareDatetime

from app.areas import AREA_CODE
from app.deps import (
    CaseInScope,
    CaseWorker,
    ClockDep,
    LaggingReadDatabase,
    LaggingReadSession,
    PageParams,
    SessionDep,
    SettingsDep,
    TicketInScope,
)
from app.errors import NotFound, PreconditionFailed, ValidationFailed
from app.geo import BadBox, parse_bbox
from app.models import StaffRole, TicketStatus
from app.open311 import forwarding_of
from app.schemas.common import CATEGORY_CODE, Page, problems
from app.schemas.forwarding import ForwardingRead
from app.schemas.office import ActionCreate, QueueTicket, TicketDetail
from app.tickets import (
    QueueFilter,
    QueueSort,
    apply_action,
    page_query,
    queue_csv,
    queue_page,
    queue_rows,
    ticket_view,
)
from app.units import UNIT_CODE

router = APIRouter(prefix="/v1/office/tickets", tags=["office"], responses=problems(401, 403, 404))
_ETAG = re.compile(r'^(?:W/)?"(\d+)"$')


def _etag(version: int) -> str:
    return f'"{version}"'


# Four decimal numbers, comma-separated.
BBOX = r"^-?\d{1,3}(\.\d+)?(,-?\d{1,3}(\.\d+)?){3}$"

Statuses = Annotated[list[TicketStatus] | None, Query(alias="status")]


def queue_filter(
    statuses: Statuses = None,
    category: Annotated[str | None, Query(pattern=CATEGORY_CODE)] = None,
    street: Annotated[str | None, Query(pattern=AREA_CODE, examples=["310105002"])] = None,
    community: Annotated[str | None, Query(pattern=AREA_CODE)] = None,
    overdue: bool | None = None,
    bbox: Annotated[
        str | None,
        Query(
            pattern=BBOX,
            description="minLon,minLat,maxLon,maxLat (WGS-84)",
            examples=["121.40,31.20,121.44,31.23"],
        ),
    ] = None,
    created_from: Annotated[
        AwareDatetime | None, Query(description="inclusive; with a time zone offset")
    ] = None,
    created_to: Annotated[
        AwareDatetime | None, Query(description="exclusive; with a time zone offset")
    ] = None,
    unrouted: Annotated[
        bool | None, Query(description="true: only tickets in no street (the district's)")
    ] = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=100, description="text in the ref or a description"),
    ] = None,
    unit: Annotated[
        str | None, Query(pattern=UNIT_CODE, description="dispatched to this unit")
    ] = None,
    escalated: bool | None = None,
    dissatisfied: bool | None = None,
    needs_review: Annotated[
        bool | None,
        Query(description="true: a unit's work to check, or an extension to decide"),
    ] = None,
) -> QueueFilter:
    box = None
    if bbox is not None:
        try:
            box = parse_bbox(bbox)
        except BadBox as bad:
            if bad.malformed:
                raise ValidationFailed(
                    "bbox is minLon,minLat,maxLon,maxLat",
                    errors=[{"field": "bbox", "message": "four comma-separated numbers"}],
                ) from None
            raise ValidationFailed(
                "bbox out of range",
                errors=[{"field": "bbox", "message": "minLon ≤ maxLon, minLat ≤ maxLat, in range"}],
            ) from None
    return QueueFilter(
        statuses=statuses or (),
        category=category,
        street=street,
        community=community,
        overdue=overdue,
        bbox=box,
        created_from=created_from,
        created_to=created_to,
        unrouted=unrouted,
        text=q,
        unit=unit,
        escalated=escalated,
        dissatisfied=dissatisfied,
        needs_review=needs_review,
    )


QueueFilterDep = Annotated[QueueFilter, Depends(queue_filter)]


def _wants_geojson(request: Request, format: str | None) -> bool:
    return format == "geojson" or "application/geo+json" in request.headers.get("accept", "")


@router.get(
    "",
    response_model=Page[QueueTicket],
    summary="The queue: tickets in the caller's scope (JSON, or GeoJSON with "
    "?format=geojson or Accept: application/geo+json)",
    responses={200: {"content": {"application/geo+json": {}}}},
)
def list_tickets(
    request: Request,
    where: QueueFilterDep,
    staff: CaseWorker,
    session: SessionDep,
    clock: ClockDep,
    page_request: PageParams,
    sort: QueueSort = QueueSort.NEWEST,
    format: Annotated[str | None, Query(pattern="^(json|geojson)$")] = None,
) -> Any:
    now = clock()
    page = queue_page(
        session,
        staff=staff,
        where=where,
        sort=sort,
        page=page_request,
        now=now,
    )
    items = [QueueTicket.of(row, now) for row in queue_rows(session, page.items)]
    if not _wants_geojson(request, format):
        return Page[QueueTicket](items=items, next_cursor=page.next_cursor)
    features = [
        {
            "type": "Feature",
            "id": item.id,
            "geometry": {"type": "Point", "coordinates": [item.lon, item.lat]},
            "properties": item.model_dump(mode="json", exclude={"lat", "lon"}),
        }
        for item in items
    ]
    return JSONResponse(
        {"type": "FeatureCollection", "features": features, "next_cursor": page.next_cursor},
        media_type="application/geo+json",
    )


@router.get(
    ".csv",
    response_class=StreamingResponse,
    summary="The queue as CSV (UTF-8 with BOM, so that Excel reads Chinese text)",
)
def tickets_csv(
    where: QueueFilterDep,
    staff: CaseWorker,
    session: LaggingReadSession,
    database: LaggingReadDatabase,
    clock: ClockDep,
    sort: QueueSort = QueueSort.NEWEST,
) -> StreamingResponse:
    now = clock()
    query = page_query(
        session, staff=staff, where=where, sort=sort, limit=None, cursor=None, now=now
    )

    return StreamingResponse(
        queue_csv(database, query, now=now),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="tickets.csv"'},
    )


@router.get(
    "/{ticket_id}",
    response_model=TicketDetail,
    summary="A ticket with its reports, events and SLA; ETag is its version",
)
def read_ticket(
    ticket: CaseInScope,
    staff: CaseWorker,
    session: SessionDep,
    clock: ClockDep,
    response: Response,
) -> TicketDetail:
    response.headers["ETag"] = _etag(ticket.version)
    view = ticket_view(session, ticket, for_crew=staff.role == StaffRole.CREW)
    return TicketDetail.of(view, clock(), viewer=staff)


@router.post(
    "/{ticket_id}/actions",
    response_model=TicketDetail,
    summary="Act on a ticket (accept, reject, assign, start, resolve, close, reopen, "
    "transfer, merge, comment, set_priority; dispatch and the unit's steps; the "
    "exceptions)",
    responses=problems(409, 412, 422),
)
def act(
    body: ActionCreate,
    ticket: CaseInScope,
    staff: CaseWorker,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
    if_match: Annotated[str | None, Header(description='"<version>" from the ETag')] = None,
) -> TicketDetail:
    expected = None
    if if_match is not None:
        match = _ETAG.match(if_match.strip())
        if match is None:
            raise PreconditionFailed('If-Match must be an ETag of this ticket, e.g. "3"')
        expected = int(match[1])
    now = clock()
    updated = apply_action(
        session,
        ticket=ticket,
        staff=staff,
        now=now,
        expected_version=expected,
        data=body.as_input(),
        settings=settings,
    )
    response.headers["ETag"] = _etag(updated.version)
    view = ticket_view(session, updated, for_crew=staff.role == StaffRole.CREW)
    return TicketDetail.of(view, now, viewer=staff)


@router.get(
    "/{ticket_id}/forwarding",
    response_model=ForwardingRead,
    summary="Where the ticket was forwarded (an external Open311 server), its id there, "
    "and every call made",
)
def read_forwarding(ticket: TicketInScope, session: SessionDep) -> ForwardingRead:
    found = forwarding_of(session, ticket)
    if found is None:
        raise NotFound("this ticket is not forwarded")
    return ForwardingRead.of(found)

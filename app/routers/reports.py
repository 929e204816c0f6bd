"""The rider API: reports, the batch for offline queues, nearby tickets, and me."""

import uuid
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import FileResponse, Response

from app import intake, media, tickets
from app.deps import (
    ClockDep,
    CurrentRider,
    Limit,
    PageParams,
    ReportingDep,
    SessionDep,
    SettingsDep,
)
from app.geo import CoordSys, to_wgs84
from app.intake import ReportView
from app.pagination import DEFAULT_LIMIT
from app.photos import photo_response
from app.riders import totals
from app.schemas.common import CATEGORY_CODE, Page, problems
from app.schemas.reports import (
    BatchCreate,
    BatchResult,
    BatchResults,
    FeedbackCreate,
    FeedbackRead,
    MeRead,
    NearbyTicket,
    NearbyTickets,
    ReportCreate,
    ReportRead,
    ReportReceipt,
    VerificationCreate,
    VerificationRead,
)
from app.tickets import VerificationInput, verify_resolution

router = APIRouter(prefix="/v1", tags=["rider"], responses=problems(401, 403))

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="1–255 characters; strongly recommended"),
]


@router.post(
    "/reports",
    status_code=201,
    response_model=ReportReceipt,
    summary="Report a problem (idempotent with Idempotency-Key)",
    responses=problems(409, 422, 429),
)
async def create_report(
    body: ReportCreate, rider: ReportingDep, idempotency_key: IdempotencyKey = None
) -> Response:
    received = await intake.receive_report(
        rider.writer,
        rider_id=rider.rider_id,
        submission=body.submission(idempotency_key),
        now=rider.clock(),
    )
    headers = {"Idempotent-Replayed": "true"} if received.replayed else None
    return Response(
        orjson.dumps(received.body),
        status_code=received.status,
        headers=headers,
        media_type="application/json",
    )


@router.post(
    "/reports/batch",
    response_model=BatchResults,
    summary="Flush an offline queue: up to 50 reports, each as POST /v1/reports",
)
async def create_reports(body: BatchCreate, rider: ReportingDep) -> BatchResults:
    items = body.submissions()
    outcomes = await intake.receive_batch(
        rider.writer, rider_id=rider.rider_id, items=[item for _, item in items], clock=rider.clock
    )
    return BatchResults(
        results=[
            BatchResult.of(key, outcome) for (key, _), outcome in zip(items, outcomes, strict=True)
        ]
    )


@router.get("/reports", response_model=Page[ReportRead], summary="My reports, newest first")
def list_reports(
    rider: CurrentRider, session: SessionDep, page_request: PageParams
) -> Page[ReportRead]:
    page = intake.list_reports(session, rider=rider, page=page_request)
    return Page[ReportRead](items=_read(session, page.items), next_cursor=page.next_cursor)


@router.get(
    "/reports/{report_id}",
    response_model=ReportRead,
    summary="One of my reports, with its ticket's public timeline",
)
def read_report(report_id: uuid.UUID, rider: CurrentRider, session: SessionDep) -> ReportRead:
    return _read(session, [intake.get_report(session, rider=rider, report_id=report_id)])[0]


@router.post(
    "/reports/{report_id}/feedback",
    response_model=FeedbackRead,
    status_code=201,
    summary="Rate the fix of my report's ticket, once, within the days after its resolution "
    "(2 or lower escalates it to the district)",
    responses=problems(404, 409, 422),
)
def give_feedback(
    report_id: uuid.UUID,
    body: FeedbackCreate,
    rider: CurrentRider,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> FeedbackRead:
    event = tickets.give_feedback(
        session,
        rider,
        report_id=report_id,
        data=tickets.FeedbackInput(rating=body.rating, comment=body.comment),
        now=clock(),
        settings=settings,
    )
    return FeedbackRead(rating=body.rating, comment=event.note, created_at=event.created_at)


def _read(session: SessionDep, views: list[ReportView]) -> list[ReportRead]:
    """Reports as their rider reads them, with the photos of the work done on their
    tickets once resolved (one query for them all)."""
    after = media.after_photos(session, [view.ticket for view in views])
    return [ReportRead.of(view, after.get(view.ticket.id, [])) for view in views]


@router.get(
    "/reports/{report_id}/photos/{photo_id}",
    response_class=FileResponse,
    summary="A photo of the work done on my report's ticket, once it is resolved",
    responses=problems(404),
)
@router.get(
    "/reports/{report_id}/photos/{photo_id}/thumbnail",
    response_class=FileResponse,
    summary="A small JPEG",
    responses=problems(404),
)
def report_photo(
    request: Request,
    report_id: uuid.UUID,
    photo_id: uuid.UUID,
    rider: CurrentRider,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    photo = media.after_photo_for_rider(session, rider, report_id=report_id, photo_id=photo_id)
    return photo_response(settings, photo, thumbnail=request.url.path.endswith("/thumbnail"))


@router.get(
    "/tickets/nearby",
    response_model=NearbyTickets,
    summary="Open tickets near a point, nearest first: is this already reported?",
)
def tickets_nearby(
    rider: CurrentRider,
    session: SessionDep,
    lat: Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)],
    lon: Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)],
    coord_sys: CoordSys = CoordSys.WGS84,
    radius_m: Annotated[float, Query(gt=0, le=1000, allow_inf_nan=False)] = 200,
    category: Annotated[str | None, Query(pattern=CATEGORY_CODE)] = None,
    limit: Limit = DEFAULT_LIMIT,
) -> NearbyTickets:
    items = intake.nearby_tickets(
        session,
        lat=lat,
        lon=lon,
        coord_sys=coord_sys,
        radius_m=radius_m,
        category=category,
        limit=limit,
    )
    return NearbyTickets(
        items=[NearbyTicket.of(found, found.ticket) for found in items], coord_sys=coord_sys
    )


@router.get("/me", response_model=MeRead, summary="Me, and what my reports came to")
def me(rider: CurrentRider, session: SessionDep) -> MeRead:
    return MeRead.of(rider, totals(session, rider.id))


@router.post(
    "/tickets/{ticket_id}/verifications",
    status_code=201,
    response_model=VerificationRead,
    summary="Say whether a resolved ticket nearby is really fixed (fixed: false "
    "reopens it); within 200 m, once per rider",
    responses=problems(404, 409, 422),
)
def verify(
    ticket_id: uuid.UUID,
    body: VerificationCreate,
    rider: CurrentRider,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> VerificationRead:
    lon, lat = to_wgs84(body.lon, body.lat, body.coord_sys)
    now = clock()
    verification, ticket = verify_resolution(
        session,
        ticket_id=ticket_id,
        rider=rider,
        now=now,
        settings=settings,
        data=VerificationInput(
            fixed=body.fixed,
            lon=lon,
            lat=lat,
            note=body.note,
            media_ids=tuple(dict.fromkeys(body.media_ids)),
        ),
    )
    return VerificationRead.of(verification, ticket)

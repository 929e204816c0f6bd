from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, Response, status
from fastapi.responses import StreamingResponse

from app import privacy, riders
from app.deps import (
    ClockDep,
    CurrentPlatform,
    DatabaseDep,
    LaggingReadSession,
    PageParams,
    SessionDep,
    SettingsDep,
    WindowParams,
)
from app.errors import ValidationFailed
from app.media import media_store
from app.riders import get_rider, issue_rider_token
from app.schemas.common import Page, problems
from app.schemas.platforms import (
    RiderRead,
    RiderStats,
    RiderStatsDetail,
    RiderTokenCreate,
    RiderTokenRead,
    Summary,
    SummaryRow,
)

router = APIRouter(prefix="/v1/platform", tags=["platform"])


@router.post(
    "/rider-tokens",
    response_model=RiderTokenRead,
    status_code=status.HTTP_201_CREATED,
    summary="A signed, expiring token for one of this platform's riders",
)
def create_rider_token(
    body: RiderTokenCreate, platform: CurrentPlatform, session: SessionDep, settings: SettingsDep
) -> RiderTokenRead:
    issued = issue_rider_token(
        session,
        platform=platform,
        rider_id=body.rider_id,
        display_name=body.display_name,
        settings=settings,
    )
    return RiderTokenRead.of(issued)


@router.get(
    "/riders/stats",
    response_model=Page[RiderStats],
    summary="This platform's riders and what they contributed (all time, or in "
    "[from, to)), sorted, cursor-paginated",
)
def riders_stats(
    platform: CurrentPlatform,
    session: LaggingReadSession,
    page_request: PageParams,
    window: WindowParams,
    sort: str = "-points",
) -> Page[RiderStats]:
    page = riders.rider_page(
        session,
        platform=platform,
        window=window,
        sort=sort,
        page=page_request,
    )
    return Page(items=[RiderStats(**item) for item in page.items], next_cursor=page.next_cursor)


@router.get(
    "/riders/{rider_id}/stats",
    response_model=RiderStatsDetail,
    summary="One of this platform's riders, with its numbers by category",
)
def rider_stats(
    rider_id: str,
    platform: CurrentPlatform,
    session: SessionDep,
    figures: LaggingReadSession,
    window: WindowParams,
) -> RiderStatsDetail:
    # Found on the database: a rider the platform has just made is no 404.
    rider = get_rider(session, platform=platform, rider_id=rider_id)
    return RiderStatsDetail(
        **riders.rider_detail(figures, platform=platform, rider=rider, window=window)
    )


@router.get(
    "/summary",
    response_model=Summary,
    response_model_exclude_unset=True,
    summary="This platform's riders' contribution by day (in tz), category or "
    "street; the last 30 days unless from/to say otherwise",
)
def summary(
    platform: CurrentPlatform,
    session: LaggingReadSession,
    clock: ClockDep,
    asked: WindowParams,
    group_by: riders.GroupBy = riders.GroupBy.DAY,
    tz: str = "Asia/Shanghai",
) -> Summary:
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationFailed(
            f"{tz} is not an IANA time zone",
            errors=[{"field": "tz", "message": "an IANA time zone, e.g. Asia/Shanghai"}],
        ) from None
    window = riders.summary_window(asked, clock())
    rows = riders.summary(session, platform=platform, window=window, group_by=group_by, tz=zone)
    assert window.start is not None and window.end is not None
    return Summary(
        group_by=group_by.value,
        tz=tz,
        from_=window.start,
        to=window.end,
        items=[SummaryRow(**row) for row in rows],
    )


@router.get(
    "/riders/{rider_id}",
    response_model=RiderRead,
    summary="One of this platform's riders (another platform's is a 404)",
)
def read_rider(rider_id: str, platform: CurrentPlatform, session: SessionDep) -> RiderRead:
    return RiderRead.of(get_rider(session, platform=platform, rider_id=rider_id))


@router.get(
    "/riders/{rider_id}/export",
    response_class=StreamingResponse,
    summary="Everything held about one of this platform's riders (PIPL art. 45), as "
    "JSON; photos as links to fetch with this platform's key",
    responses={200: {"content": {"application/json": {}}}, **problems(404)},
)
def export_rider(
    rider_id: str, platform: CurrentPlatform, session: SessionDep, database: DatabaseDep
) -> StreamingResponse:
    rider = get_rider(session, platform=platform, rider_id=rider_id)
    return StreamingResponse(
        privacy.export_rider(database, rider.id),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="rider-export.json"',
            "Cache-Control": "no-store",
        },
    )


@router.delete(
    "/riders/{rider_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Erase one of this platform's riders (PIPL art. 47): tokens revoked, identity "
    "tombstoned, photos and free text removed, points kept only in anonymous sums",
    responses=problems(404),
)
def erase_rider(
    rider_id: str,
    platform: CurrentPlatform,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    rider = get_rider(session, platform=platform, rider_id=rider_id)
    privacy.erase_rider(session, media_store(settings), rider=rider, now=clock())
    return Response(status_code=status.HTTP_204_NO_CONTENT)

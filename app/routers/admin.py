"""Configuration, for the operator: areas, categories, platforms, staff."""

import json
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status
from starlette.concurrency import run_in_threadpool

from app import areas, categories, open311, tickets, units
from app import platforms as platform_service
from app import staff as staff_service
from app.deps import ClockDep, CurrentAdmin, PageParams, SessionDep, SettingsDep
from app.errors import InvalidGeoJSON
from app.geo import CoordSys
from app.models import AreaLevel, Staff
from app.schemas.areas import AreaImportResult, AreaRead
from app.schemas.calendar import CalendarPut, CalendarRead
from app.schemas.categories import CategoryAdminRead, CategoryPut, category_fields
from app.schemas.common import Page, problems
from app.schemas.forwarding import ForwardCreate, ForwardRead
from app.schemas.platforms import PlatformCreate, PlatformCreated, PlatformRead
from app.schemas.staff import (
    ActiveChange,
    StaffChange,
    StaffCreate,
    StaffCreated,
    StaffRead,
)

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=problems(401, 403))

CategoryCode = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_]{1,63}$")]


@router.post(
    "/areas:import",
    response_model=AreaImportResult,
    summary="Import or update areas from a GeoJSON FeatureCollection (all or nothing)",
    responses=problems(413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/geo+json": {"schema": {"type": "object"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def import_areas(
    request: Request,
    session: SessionDep,
    _admin: CurrentAdmin,
    coord_sys: CoordSys = CoordSys.WGS84,
    level: AreaLevel | None = None,
    parent: str | None = None,
) -> AreaImportResult:
    try:
        collection = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        raise InvalidGeoJSON("the body is not JSON") from None
    imported = await run_in_threadpool(
        areas.import_areas,
        session,
        collection,
        coord_sys=coord_sys,
        default_level=level,
        default_parent=parent,
    )
    return AreaImportResult.of(imported)


@router.get("/areas", response_model=Page[AreaRead], summary="Areas, by code")
def list_areas(
    session: SessionDep,
    _admin: CurrentAdmin,
    page_request: PageParams,
    level: AreaLevel | None = None,
    parent: str | None = None,
) -> Page[AreaRead]:
    page = areas.page_areas(session, level=level, parent_code=parent, page=page_request)
    codes = areas.parent_codes(session, page.items)
    return Page[AreaRead].of(page, lambda area: AreaRead.of(area, codes))


@router.get(
    "/categories",
    response_model=Page[CategoryAdminRead],
    summary="Every category, inactive ones included",
)
def list_categories(
    session: SessionDep, _admin: CurrentAdmin, page_request: PageParams
) -> Page[CategoryAdminRead]:
    page = categories.page_categories(session, page_request)
    return Page[CategoryAdminRead].of(page, CategoryAdminRead.of)


@router.get("/categories/{code}", response_model=CategoryAdminRead)
def read_category(code: str, session: SessionDep, _admin: CurrentAdmin) -> CategoryAdminRead:
    return CategoryAdminRead.of(categories.get_category(session, code))


@router.put(
    "/categories/{code}",
    response_model=CategoryAdminRead,
    summary="Create or replace a category",
    responses={201: {"model": CategoryAdminRead, "description": "created"}},
)
def put_category(
    code: CategoryCode,
    body: CategoryPut,
    session: SessionDep,
    _admin: CurrentAdmin,
    response: Response,
) -> CategoryAdminRead:
    category, created = categories.put_category(session, code, fields=category_fields(body))
    if created:
        response.status_code = status.HTTP_201_CREATED
    return CategoryAdminRead.of(category)


Year = Annotated[int, Path(ge=2000, le=2100)]


@router.get(
    "/calendar/{year}",
    response_model=CalendarRead,
    summary="The working calendar of a year: holidays, adjusted working days, office hours",
    responses=problems(404),
)
def read_calendar(year: Year, session: SessionDep, _admin: CurrentAdmin) -> CalendarRead:
    return CalendarRead.of(tickets.get_year(session, year))


@router.put(
    "/calendar/{year}",
    response_model=CalendarRead,
    summary="Set a year's working calendar (due times of tickets opened from now on "
    "follow it; those already open keep theirs)",
    responses=problems(422),
)
def put_calendar(
    year: Year, body: CalendarPut, session: SessionDep, admin: CurrentAdmin
) -> CalendarRead:
    row = tickets.set_year(session, year, data=body.as_input(), source=admin.username)
    return CalendarRead.of(row)


@router.post(
    "/platforms",
    response_model=PlatformCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Register a delivery platform; its API key is shown once",
)
def create_platform(
    body: PlatformCreate, session: SessionDep, _admin: CurrentAdmin
) -> PlatformCreated:
    new = platform_service.create_platform(session, code=body.code, name=body.name)
    return PlatformCreated(code=new.platform.code, name=new.platform.name, api_key=new.api_key)


@router.get("/platforms", response_model=Page[PlatformRead])
def list_platforms(
    session: SessionDep, _admin: CurrentAdmin, page_request: PageParams
) -> Page[PlatformRead]:
    page = platform_service.page_platforms(session, page_request)
    return Page[PlatformRead].of(page, PlatformRead.model_validate)


@router.post(
    "/platforms/{code}/api-key",
    response_model=PlatformCreated,
    summary="Replace a platform's API key; the old one works on for grace_h hours (0: none)",
    responses=problems(422),
)
def rotate_platform_key(
    code: str,
    session: SessionDep,
    _admin: CurrentAdmin,
    grace_h: Annotated[float, Query(ge=0, le=720, description="hours the old key still works")] = 0,
) -> PlatformCreated:
    platform = platform_service.get_platform(session, code)
    api_key = platform_service.rotate_api_key(session, platform, grace=timedelta(hours=grace_h))
    return PlatformCreated(code=platform.code, name=platform.name, api_key=api_key)


@router.patch(
    "/platforms/{code}",
    response_model=PlatformRead,
    summary="Switch a platform off (its key and its riders' tokens stop working at once) or on",
)
def set_platform_active(
    code: str, body: ActiveChange, session: SessionDep, _admin: CurrentAdmin
) -> PlatformRead:
    platform = platform_service.get_platform(session, code)
    return PlatformRead.model_validate(
        platform_service.set_platform_active(session, platform, active=body.active)
    )


@router.patch(
    "/staff/{username}",
    response_model=StaffRead,
    summary="Disable a staff account (its tokens stop working at once) or enable it; let "
    "it publish area alerts or not",
)
def change_staff(
    username: str, body: StaffChange, session: SessionDep, _admin: CurrentAdmin
) -> StaffRead:
    staff = staff_service.get_staff(session, username)
    if body.active is not None:
        staff_service.set_active(session, staff, active=body.active)
    if body.may_publish_alerts is not None:
        staff_service.allow_alerts(session, staff, allowed=body.may_publish_alerts)
    if "display_name" in body.model_fields_set:
        staff_service.set_display_name(session, staff, display_name=body.display_name)
    return _staff_reads(session, [staff])[0]


def _staff_reads(session: SessionDep, accounts: list[Staff]) -> list[StaffRead]:
    """The accounts as read, crew members' units named by code."""
    codes = units.unit_codes(session, (s.unit_id for s in accounts if s.unit_id is not None))
    return [StaffRead.with_unit(staff, codes) for staff in accounts]


@router.post(
    "/staff",
    response_model=StaffCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create an officer (street), district user (district), admin, or member of a "
    "unit's crew (unit)",
)
def create_staff(
    body: StaffCreate, session: SessionDep, settings: SettingsDep, _admin: CurrentAdmin
) -> StaffCreated:
    new = staff_service.create_staff(session, body.account(), settings=settings)
    return StaffCreated(
        username=new.staff.username,
        password=new.password,
        role=new.staff.role,
        area=body.area,
        unit=body.unit,
        display_name=new.staff.display_name,
    )


@router.get("/staff", response_model=Page[StaffRead])
def list_staff(
    session: SessionDep, _admin: CurrentAdmin, page_request: PageParams
) -> Page[StaffRead]:
    page = staff_service.page_staff(session, page_request)
    return Page[StaffRead](items=_staff_reads(session, page.items), next_cursor=page.next_cursor)


@router.get(
    "/forwards",
    response_model=list[ForwardRead],
    summary="Where categories' tickets are forwarded (external Open311 servers)",
)
def list_forwards(session: SessionDep, _admin: CurrentAdmin) -> list[ForwardRead]:
    return [ForwardRead.of(f) for f in open311.list_forwards(session)]


@router.post(
    "/forwards",
    response_model=ForwardRead,
    status_code=status.HTTP_201_CREATED,
    summary="Forward a category's tickets (of one street, or all) to an Open311 server",
    responses=problems(422),
)
def add_forward(
    body: ForwardCreate, session: SessionDep, clock: ClockDep, _admin: CurrentAdmin
) -> ForwardRead:
    data = open311.ForwardInput(**body.model_dump())
    return ForwardRead.of(open311.add_forward(session, data, now=clock()))


@router.delete(
    "/forwards/{forward_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Stop forwarding (what was sent is still followed)",
)
def stop_forward(forward_id: int, session: SessionDep, _admin: CurrentAdmin) -> Response:
    open311.stop_forward(session, forward_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)

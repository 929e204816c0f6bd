"""Responsible units: the admin's list and edits, and the units an office dispatches to."""

from typing import Annotated

from fastapi import APIRouter, Path, status

from app import units
from app.deps import CurrentAdmin, CurrentOfficeStaff, PageParams, SessionDep
from app.schemas.common import Page, problems
from app.schemas.units import UnitCreate, UnitList, UnitPatch, UnitRead
from app.staff import staff_area_ids

router = APIRouter(prefix="/v1", responses=problems(401, 403))

UnitCode = Annotated[str, Path(max_length=64)]


@router.get(
    "/admin/units",
    response_model=Page[UnitRead],
    tags=["admin"],
    summary="Every responsible unit, inactive ones included, by code",
)
def list_units(
    session: SessionDep, _admin: CurrentAdmin, page_request: PageParams
) -> Page[UnitRead]:
    return Page[UnitRead].of(units.page_units(session, page_request), UnitRead.of)


@router.post(
    "/admin/units",
    response_model=UnitRead,
    status_code=status.HTTP_201_CREATED,
    tags=["admin"],
    summary="Add a responsible unit: the streets it serves and the categories it handles",
    responses=problems(409, 422),
)
def create_unit(body: UnitCreate, session: SessionDep, _admin: CurrentAdmin) -> UnitRead:
    return UnitRead.of(units.create_unit(session, body.unit_input()))


@router.get("/admin/units/{code}", response_model=UnitRead, tags=["admin"], responses=problems(404))
def read_unit(code: UnitCode, session: SessionDep, _admin: CurrentAdmin) -> UnitRead:
    return UnitRead.of(units.get_unit(session, code))


@router.patch(
    "/admin/units/{code}",
    response_model=UnitRead,
    tags=["admin"],
    summary="Change a unit's name, kind, streets, categories, or switch it off or on "
    "(an inactive unit is dispatched nothing new)",
    responses=problems(404, 422),
)
def change_unit(
    code: UnitCode, body: UnitPatch, session: SessionDep, _admin: CurrentAdmin
) -> UnitRead:
    return UnitRead.of(units.update_unit(session, code, change=body.change()))


@router.get(
    "/office/units",
    response_model=UnitList,
    tags=["office"],
    summary="The active units serving the caller's street (a district's: any of its streets)",
)
def office_units(staff: CurrentOfficeStaff, session: SessionDep) -> UnitList:
    serving = units.units_serving(session, staff_area_ids(session, staff) or ())
    return UnitList(items=[UnitRead.of(unit) for unit in serving])

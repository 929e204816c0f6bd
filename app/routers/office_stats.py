from typing import Literal

from fastapi import APIRouter, Query, Response

from app import tickets
from app.deps import ClockDep, CurrentOfficeStaff, LaggingReadSession, WindowParams
from app.schemas.common import problems
from app.schemas.office import OfficeStats, StreetFigures, UnitFigures
from app.tickets import STREET_FIGURES, office_stats, street_table, unit_table

router = APIRouter(prefix="/v1/office", tags=["office"], responses=problems(401, 403))

Format = Query(default="json", description="json, or xlsx for the district's report")
XLSX_RESPONSE = {"content": {tickets.XLSX: {}}, "description": "with format=xlsx"}


def _xlsx(content: bytes, name: str) -> Response:
    return Response(
        content,
        media_type=tickets.XLSX,
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


@router.get(
    "/stats",
    response_model=OfficeStats,
    summary="Counts by status, category and community; open, overdue; the KPIs "
    "(closure, on-time response and resolution, reopen rates; median hours and working "
    "hours); format=xlsx for a workbook",
    responses={200: XLSX_RESPONSE},
)
def stats(
    staff: CurrentOfficeStaff,
    session: LaggingReadSession,
    clock: ClockDep,
    created: WindowParams,
    format: Literal["json", "xlsx"] = Format,
) -> OfficeStats | Response:
    figures = office_stats(
        session, staff=staff, created_from=created.start, created_to=created.end, now=clock()
    )
    if format == "xlsx":
        return _xlsx(
            tickets.stats_xlsx(figures, created_from=created.start, created_to=created.end),
            "office-stats",
        )
    return OfficeStats(**figures)


@router.get(
    "/stats/streets",
    response_model=list[StreetFigures],
    summary="The district's streets, a row each with their KPIs, ranked by sort; "
    "format=xlsx for the month's report",
    responses={200: XLSX_RESPONSE},
)
def streets(
    staff: CurrentOfficeStaff,
    session: LaggingReadSession,
    clock: ClockDep,
    created: WindowParams,
    sort: str = Query(
        default="-total",
        pattern="^-?(" + "|".join(STREET_FIGURES) + ")$",
        description="a figure, '-' first for the highest first",
    ),
    format: Literal["json", "xlsx"] = Format,
) -> list[StreetFigures] | Response:
    rows = street_table(
        session,
        staff=staff,
        created_from=created.start,
        created_to=created.end,
        now=clock(),
        sort=sort,
    )
    if format == "xlsx":
        return _xlsx(
            tickets.streets_xlsx(rows, created_from=created.start, created_to=created.end),
            "streets",
        )
    return [StreetFigures(**row) for row in rows]


@router.get(
    "/stats/units",
    response_model=list[UnitFigures],
    summary="The units serving the caller's street or district, a row each: dispatched, "
    "done, on-time rate, median working hours to done, rework and return rates "
    "(dispatched in the window); format=xlsx for a workbook",
    responses={200: XLSX_RESPONSE},
)
def units(
    staff: CurrentOfficeStaff,
    session: LaggingReadSession,
    clock: ClockDep,
    dispatched: WindowParams,
    format: Literal["json", "xlsx"] = Format,
) -> list[UnitFigures] | Response:
    rows = unit_table(
        session,
        staff=staff,
        dispatched_from=dispatched.start,
        dispatched_to=dispatched.end,
        now=clock(),
    )
    if format == "xlsx":
        return _xlsx(
            tickets.streets_xlsx(
                rows,
                created_from=dispatched.start,
                created_to=dispatched.end,
                title="处置单位 units",
            ),
            "units",
        )
    return [UnitFigures(**row) for row in rows]

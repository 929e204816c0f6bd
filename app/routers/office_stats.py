from fastapi import APIRouter, Query
from pydantic import AwareDatetime

from app.deps import ClockDep, CurrentOfficeStaff, SessionDep
from app.schemas.common import problems
from app.schemas.office import OfficeStats
from app.services.stats import office_stats

router = APIRouter(prefix="/v1/office", tags=["office"], responses=problems(401, 403))


@router.get(
    "/stats",
    response_model=OfficeStats,
    summary="Counts by status, category and community; open, overdue; median hours "
    "to accept and to resolve; share resolved within the SLA",
)
def stats(
    staff: CurrentOfficeStaff,
    session: SessionDep,
    clock: ClockDep,
    created_from: AwareDatetime | None = Query(default=None, alias="from"),
    created_to: AwareDatetime | None = Query(default=None, alias="to"),
) -> OfficeStats:
    return OfficeStats(
        **office_stats(
            session, staff=staff, created_from=created_from, created_to=created_to, now=clock()
        )
    )

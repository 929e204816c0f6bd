from fastapi import APIRouter, status

from app.deps import CurrentPlatform, SessionDep, SettingsDep
from app.models import Rider
from app.schemas.platforms import RiderRead, RiderRef, RiderTokenCreate, RiderTokenRead
from app.services.platforms import get_rider, issue_rider_token

router = APIRouter(prefix="/v1/platform", tags=["platform"])


def rider_read(rider: Rider) -> RiderRead:
    return RiderRead(id=str(rider.id), rider_id=rider.external_id,
                     display_name=rider.display_name, pseudonym=rider.pseudonym,
                     created_at=rider.created_at, last_token_at=rider.last_token_at)


@router.post("/rider-tokens", response_model=RiderTokenRead, status_code=status.HTTP_201_CREATED,
             summary="A signed, expiring token for one of this platform's riders")
def create_rider_token(body: RiderTokenCreate, platform: CurrentPlatform, session: SessionDep,
                       settings: SettingsDep) -> RiderTokenRead:
    issued = issue_rider_token(session, platform=platform, rider_id=body.rider_id,
                               display_name=body.display_name, settings=settings)
    return RiderTokenRead(token=issued.issued.token, expires_at=issued.issued.expires_at,
                          rider=RiderRef(id=str(issued.rider.id), rider_id=body.rider_id))


@router.get("/riders/{rider_id}", response_model=RiderRead,
            summary="One of this platform's riders (another platform's is a 404)")
def read_rider(rider_id: str, platform: CurrentPlatform, session: SessionDep) -> RiderRead:
    return rider_read(get_rider(session, platform=platform, rider_id=rider_id))

"""Photos on the console's pages: the riders' photos of a ticket and the photos staff
showed with its actions, for whoever works on it — an office in its scope, a unit's
crew on the tickets dispatched to it."""

import uuid
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import Response

from app.console.gate import case_worker
from app.console.web import console_router
from app.deps import SessionDep, SettingsDep
from app.media import media_for_staff, staff_photo_for
from app.models import Staff
from app.photos import photo_response

router = console_router()

CaseWorker = Annotated[Staff, Depends(case_worker)]


def _thumbnail(request: Request) -> bool:
    return request.url.path.endswith("/thumbnail")


@router.get("/media/{media_id}")
@router.get("/media/{media_id}/thumbnail", name="thumbnail")
def rider_photo(
    media_id: uuid.UUID,
    request: Request,
    staff: CaseWorker,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """A rider's photo of a ticket the member of staff works on, or its thumbnail."""
    media = media_for_staff(session, staff, media_id=media_id)
    return photo_response(settings, media, thumbnail=_thumbnail(request))


@router.get("/staff-photos/{photo_id}")
@router.get("/staff-photos/{photo_id}/thumbnail", name="staff_photo_thumbnail")
def staff_photo(
    photo_id: uuid.UUID,
    request: Request,
    staff: CaseWorker,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """A photo staff showed with an action on a ticket the member of staff works on (or
    uploaded itself), or its thumbnail."""
    photo = staff_photo_for(session, staff, photo_id=photo_id)
    return photo_response(settings, photo, thumbnail=_thumbnail(request))

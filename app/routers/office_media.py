"""Photo moderation for street-office staff: where the faces and plates are, and the
blurred copy published (or withdrawn) for the public."""

import uuid

from fastapi import APIRouter, Response

from app import public
from app.deps import ClockDep, CurrentOfficeStaff, SessionDep, SettingsDep
from app.media import media_store
from app.schemas.common import problems
from app.schemas.public import PublishedPhoto, PublishPhoto, SuggestedBox, Suggestions

router = APIRouter(prefix="/v1/office/media", tags=["office"], responses=problems(401, 403, 404))


@router.get(
    "/{media_id}/suggestions",
    response_model=Suggestions,
    summary="Where faces and plates seem to be on a photo of a ticket in scope",
)
def suggestions(
    media_id: uuid.UUID, staff: CurrentOfficeStaff, session: SessionDep, settings: SettingsDep
) -> Suggestions:
    found = public.photo_on_ticket(session, staff, media_id=media_id)
    boxes = public.suggest(session, staff, media_id=media_id, store=media_store(settings))
    return Suggestions(
        boxes=[SuggestedBox.of(s) for s in boxes],
        width=found.media.width,
        height=found.media.height,
    )


@router.put(
    "/{media_id}/public",
    response_model=PublishedPhoto,
    summary="Publish a copy of the photo with the boxes blurred (the original stays "
    "staff-only); public once its ticket is",
    responses=problems(422, 503),
)
def publish(
    media_id: uuid.UUID,
    body: PublishPhoto,
    staff: CurrentOfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> PublishedPhoto:
    copy = public.publish(
        session,
        staff,
        media_id=media_id,
        boxes=[b.box() for b in body.boxes],
        store=media_store(settings),
        now=clock(),
    )
    return PublishedPhoto.of(copy)


@router.delete(
    "/{media_id}/public", status_code=204, summary="Withdraw the published copy of a photo"
)
def unpublish(
    media_id: uuid.UUID,
    staff: CurrentOfficeStaff,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    public.unpublish(session, staff, media_id=media_id, store=media_store(settings), now=clock())
    return Response(status_code=204)

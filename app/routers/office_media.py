"""Photos for case workers: those they upload to show with an action on a ticket (the
spot after the work), and, for street-office staff, moderation of riders' photos: where
the faces and plates are, and the blurred copy published (or withdrawn) for the public."""

import uuid

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse

from app import media, public
from app.deps import (
    CaseWorker,
    ClockDep,
    CurrentOfficeStaff,
    DatabaseDep,
    SessionDep,
    SettingsDep,
    UploadingCaseWorker,
)
from app.media import media_store
from app.photos import photo_response
from app.routers.media import PHOTO_BODY, read_photo
from app.schemas.common import problems
from app.schemas.public import PublishedPhoto, PublishPhoto, SuggestedBox, Suggestions
from app.schemas.reports import MediaRead

router = APIRouter(prefix="/v1/office/media", tags=["office"], responses=problems(401, 403, 404))


@router.post(
    "",
    status_code=201,
    response_model=MediaRead,
    summary="Upload a photo to show with an action (JPEG, PNG or WebP), as POST /v1/media: "
    "the same bytes again → 200, same id",
    responses={
        200: {"model": MediaRead, "description": "uploaded before"},
        **problems(413, 415, 422, 429, 503),
    },
    openapi_extra=PHOTO_BODY,
)
async def upload(
    staff_id: UploadingCaseWorker,
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    response: Response,
) -> MediaRead:
    stored = await media.receive_staff_photo(
        database,
        media_store(settings),
        settings=settings,
        staff_id=staff_id,
        data=await read_photo(request, settings),
        now=clock(),
    )
    if not stored.created:
        response.status_code = 200
    return MediaRead.of(stored.media)


@router.get(
    "/{media_id}",
    response_class=FileResponse,
    summary="A photo staff uploaded: for its uploader and whoever holds a ticket showing it",
)
def read_staff_photo(
    media_id: uuid.UUID, staff: CaseWorker, session: SessionDep, settings: SettingsDep
) -> Response:
    photo = media.staff_photo_for(session, staff, photo_id=media_id)
    return photo_response(settings, photo, thumbnail=False)


@router.get("/{media_id}/thumbnail", response_class=FileResponse, summary="A small JPEG")
def read_staff_thumbnail(
    media_id: uuid.UUID, staff: CaseWorker, session: SessionDep, settings: SettingsDep
) -> Response:
    photo = media.staff_photo_for(session, staff, photo_id=media_id)
    return photo_response(settings, photo, thumbnail=True)


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

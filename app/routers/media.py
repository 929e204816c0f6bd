"""Riders' photos: upload, and read back by the uploader or by staff who hold the ticket
(a unit's crew: the tickets dispatched to its unit)."""

import uuid
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile

from app import media
from app.config import Settings
from app.deps import CallerDep, DatabaseDep, ReportingDep, Role, SessionDep, SettingsDep
from app.errors import Forbidden, PayloadTooLarge, ValidationFailed
from app.media import media_store
from app.models import Media
from app.photos import photo_response
from app.schemas.common import problems
from app.schemas.reports import MediaRead

router = APIRouter(
    prefix="/v1/media",
    tags=["media"],
    responses=problems(401, 403),
)
_CHUNK = 1 << 20


# The body of a photo upload, as the schema shows it: read by hand (``read_photo``), so
# that FastAPI does not read and parse it before the caller's token is checked.
PHOTO_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the photo"}
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=201,
    response_model=MediaRead,
    summary="Upload a photo (JPEG, PNG or WebP); the same bytes again → 200, same id",
    responses={
        200: {"model": MediaRead, "description": "uploaded before"},
        **problems(413, 415, 422, 429, 503),
    },
    openapi_extra=PHOTO_BODY,
)
async def upload(
    reporting: ReportingDep,
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    response: Response,
) -> MediaRead:
    stored = await media.receive_photo(
        database,
        media_store(settings),
        settings=settings,
        rider_id=reporting.rider_id,
        data=await read_photo(request, settings),
        now=reporting.clock(),
    )
    if not stored.created:
        response.status_code = 200
    return MediaRead.of(stored.media)


async def read_photo(request: Request, settings: Settings) -> bytes:
    """The photo of a multipart upload (its field ``file``), read only now that the caller
    is known, a chunk at a time, and refused (413) past the cap rather than read whole."""
    cap = int(settings.max_upload_mb * 1024 * 1024)
    async with request.form(max_files=1, max_fields=16) as form:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise ValidationFailed.of_field("file", "the photo, as the multipart field file")
        data = bytearray()
        while chunk := await file.read(_CHUNK):
            data += chunk
            if len(data) > cap:
                raise PayloadTooLarge(f"photos may be at most {settings.max_upload_mb:g} MB")
    return bytes(data)


def _visible_media(caller: CallerDep, session: SessionDep, media_id: uuid.UUID) -> Media:
    if caller.role is Role.RIDER and caller.rider is not None:
        return media.media_for_rider(session, caller.rider, media_id=media_id)
    if caller.role in (Role.OFFICER, Role.DISTRICT, Role.CREW) and caller.staff is not None:
        return media.media_for_staff(session, caller.staff, media_id=media_id)
    if caller.role is Role.PLATFORM and caller.platform is not None:
        return media.media_for_platform(session, caller.platform, media_id=media_id)
    raise Forbidden(
        "photos are for their uploader, the uploader's platform, and the street office and "
        "the unit handling them"
    )


@router.get("/{media_id}", response_class=FileResponse, summary="The stored photo")
def read_media(
    media_id: uuid.UUID, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    return photo_response(settings, _visible_media(caller, session, media_id), thumbnail=False)


@router.get("/{media_id}/thumbnail", response_class=FileResponse, summary="A small JPEG")
def read_thumbnail(
    media_id: uuid.UUID, caller: CallerDep, session: SessionDep, settings: SettingsDep
) -> Response:
    return photo_response(settings, _visible_media(caller, session, media_id), thumbnail=True)

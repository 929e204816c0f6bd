"""How a photo leaves the service: after its caller's access check, never before."""

from fastapi.responses import FileResponse, Response, StreamingResponse

from app import media as media_service
from app.config import Settings
from app.media import Blob, media_store
from app.models import StoredImage

# Kept by the browser a day (a photo's bytes never change); like every answer, never to
# be sniffed into anything but an image (app.middleware).
PHOTO_HEADERS = {"Cache-Control": "private, max-age=86400"}
# A published copy at a versioned URL never changes: any cache may keep it. Without its
# version, a cache may keep it five minutes (a withdrawn copy goes within them).
# How long caches may keep a public copy: a version of it for good, the current one (its
# URL names no version) five minutes.
VERSION_MAX_AGE_S = 31536000
CURRENT_MAX_AGE_S = 300
PUBLIC_COPY_HEADERS = {"Cache-Control": f"public, max-age={VERSION_MAX_AGE_S}, immutable"}
PUBLIC_UNVERSIONED_HEADERS = {"Cache-Control": f"public, max-age={CURRENT_MAX_AGE_S}"}


def public_copy_headers(*, versioned: bool, good_for_s: int | None = None) -> dict[str, str]:
    """The cache headers of a public copy: kept for good if ``versioned``, else five
    minutes; never longer than ``good_for_s`` (a link that expires)."""
    max_age = VERSION_MAX_AGE_S if versioned else CURRENT_MAX_AGE_S
    if good_for_s is not None:
        max_age = min(max_age, max(0, good_for_s))
    return {"Cache-Control": f"public, max-age={max_age}" + (", immutable" if versioned else "")}


def photo_response(
    settings: Settings,
    media: StoredImage,
    *,
    thumbnail: bool,
    headers: dict[str, str] = PHOTO_HEADERS,
) -> Response:
    """The bytes of a photo its caller has been found to be allowed to see: a file sent
    by the server, or the object store's stream passed through (never a redirect to the
    store, whose URL would outlive the check)."""
    blob, content_type = media_service.open_photo(media_store(settings), media, thumbnail=thumbnail)
    return blob_response(blob, content_type, headers=headers)


def blob_response(
    blob: Blob, content_type: str, *, headers: dict[str, str] = PHOTO_HEADERS
) -> Response:
    """A stored blob sent as it is stored: by the server's sendfile, or streamed."""
    if blob.path is not None:
        return FileResponse(blob.path, media_type=content_type, headers=headers)
    return StreamingResponse(
        blob.chunks or iter(()),
        media_type=content_type,
        headers={**headers, "Content-Length": str(blob.size)},
    )

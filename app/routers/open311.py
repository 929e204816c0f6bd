"""Open311 GeoReport v2 at ``/open311/v2``: every endpoint as ``.json`` and ``.xml``.

GETs are public open data. A POST carries a platform's ``api_key`` and its rider's
``account_id`` and goes through the same intake as ``POST /v1/reports``. Errors are
Open311's ``[{"code", "description"}]`` (or ``<errors>``) in the format asked for.
"""

import re
import uuid
from typing import Annotated, Any, Literal
from urllib.parse import parse_qsl, urlsplit

import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from pydantic import AwareDatetime
from starlette.datastructures import FormData, UploadFile

from app import open311
from app.config import Settings
from app.deps import ClockDep, LaggingReadSession, SessionDep, SettingsDep, get_database
from app.errors import AppError
from app.geo import BadBox, parse_bbox
from app.photos import photo_response, public_copy_headers
from app.schemas import open311 as render

PREFIX = "/open311/v2"
router = APIRouter(prefix=PREFIX, tags=["open311"])
Format = Annotated[Literal["json", "xml"], Path(description="json or xml")]
XML = "text/xml; charset=utf-8"
_LISTS = {"services": "service", "service_requests": "request", "errors": "error"}


def respond(
    format: str,
    root: str,
    body: Any,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """``body`` as JSON, or as XML under ``<root>``."""
    if format == "xml":
        return Response(
            render.to_xml(root, _LISTS.get(root), body),
            status_code=status_code,
            media_type=XML,
            headers=headers,
        )
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        media_type="application/json",
        headers=headers,
    )


def format_of(request: Request) -> str:
    """The format a request under ``/open311/v2`` asked for (JSON unless ``.xml``)."""
    path = request.url.path
    return "xml" if path.endswith(".xml") else "json"


def error_response(request: Request, status: int, description: str) -> Response:
    return respond(
        format_of(request), "errors", render.errors(status, description), status_code=status
    )


def app_error_response(request: Request, error: AppError) -> Response:
    status, description = open311.as_open311(error)
    return error_response(request, status, description)


# A Host header as clients send it: a name or an address (IPv6 in brackets), a port.
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?::([0-9]{1,5}))?$")


def public_base(request: Request, settings: Settings) -> str:
    """What every URL this service writes for ``request`` starts with, ``/open311/v2/…``
    appended. The request's Host header is the client's word, and an answer that echoed
    it (``Host: evil.example``) would be kept by a shared cache for every client. So:
    ``SENTINEL_PUBLIC_URL`` when set, whatever the Host. Else the request's own
    ``scheme://host`` only for a Host named in ``SENTINEL_TRUSTED_HOSTS`` (on no port or
    the server's own: a local deployment's clients get absolute URLs as Open311 expects);
    any other Host gets the path alone, a URL relative to this server."""
    if settings.public_url:
        return settings.public_url
    own = str(request.base_url).rstrip("/")
    host = _HOST.match(request.headers.get("host", ""))
    server_port = (request.scope.get("server") or (None, None))[1]
    if (
        host is not None
        and host[1].strip("[]").lower() in settings.trusted_host_names
        and (host[2] is None or int(host[2]) == server_port)
    ):
        return own
    return urlsplit(own).path


def _base(request: Request, settings: Settings) -> str:
    return public_base(request, settings) + PREFIX


@router.get("/discovery.{format}", summary="Open311 discovery")
def discovery(request: Request, format: Format, settings: SettingsDep) -> Response:
    return respond(format, "discovery", render.discovery(_base(request, settings)))


@router.get("/services.{format}", summary="Open311 services: the categories")
def services(format: Format, session: LaggingReadSession) -> Response:
    return respond(format, "services", [render.service(s) for s in open311.services(session)])


@router.get("/services/{service_code}.{format}", summary="An Open311 service definition")
def service_definition(service_code: str, format: Format, session: LaggingReadSession) -> Response:
    definition = render.service_definition(open311.get_service(session, service_code))
    return respond(format, "service_definition", definition)


def _ids(raw: str | None) -> list[uuid.UUID]:
    ids = []
    for part in (raw or "").split(","):
        if part.strip():
            try:
                ids.append(uuid.UUID(part.strip()))
            except ValueError:
                raise open311.Open311BadRequest.of_field(
                    "service_request_id", f"{part.strip()} is not a service request id"
                ) from None
    return ids


def _listed(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _box(raw: str | None) -> tuple[float, float, float, float] | None:
    if not raw:
        return None
    try:
        return parse_bbox(raw)
    except BadBox as bad:
        message = "bbox is minLong,minLat,maxLong,maxLat" if bad.malformed else "bbox out of range"
        raise open311.Open311BadRequest.of_field("bbox", message) from None


@router.get("/requests.{format}", summary="Open311 service requests: the tickets (open data)")
def list_requests(
    request: Request,
    format: Format,
    session: LaggingReadSession,
    settings: SettingsDep,
    clock: ClockDep,
    service_request_id: str | None = None,
    service_code: Annotated[str | None, Query(description="comma-separated")] = None,
    status: Annotated[
        str | None, Query(pattern="^((open|closed)(,(open|closed))*)?$", description="open, closed")
    ] = None,
    start_date: AwareDatetime | None = None,
    end_date: AwareDatetime | None = None,
    jurisdiction_id: str | None = None,
    bbox: Annotated[
        str | None, Query(description="extension: minLong,minLat,maxLong,maxLat")
    ] = None,
    page_size: Annotated[
        int, Query(ge=1, le=open311.MAX_REQUESTS, description="extension")
    ] = open311.MAX_REQUESTS,
    cursor: Annotated[
        str | None, Query(description="extension: the next page's, from Link")
    ] = None,
) -> Response:
    query = open311.RequestQuery(
        ids=_ids(service_request_id),
        service_codes=_listed(service_code),
        statuses=_listed(status),
        start=start_date,
        end=end_date,
        district=open311.district_of(session, jurisdiction_id),
        bbox=_box(bbox),
        limit=page_size,
        cursor=cursor,
    )
    now = clock()
    found, following = open311.find_requests(session, query, now=now)
    base = _base(request, settings)
    headers = {}
    if following is not None:
        params = request.url.include_query_params(cursor=following).query
        headers["Link"] = f'<{base}/requests.{format}?{params}>; rel="next"'
    body = [render.service_request(r, base_url=base, now=now, settings=settings) for r in found]
    return respond(format, "service_requests", body, headers=headers)


@router.get("/requests/{service_request_id}.{format}", summary="One Open311 service request")
def read_request(
    request: Request,
    service_request_id: str,
    format: Format,
    session: LaggingReadSession,
    settings: SettingsDep,
    clock: ClockDep,
) -> Response:
    found = open311.get_request(session, service_request_id)
    base = _base(request, settings)
    body = [render.service_request(found, base_url=base, now=clock(), settings=settings)]
    return respond(format, "service_requests", body)


async def _form(request: Request) -> FormData:
    """The POST's fields. A form-encoded body is read as UTF-8 whether its bytes came
    percent-encoded or raw (as ``curl -d '描述=…'`` sends them), which Starlette's parser
    would read as Latin-1."""
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        try:
            text = (await request.body()).decode("utf-8")
        except UnicodeDecodeError:
            raise open311.Open311BadRequest("the form is not UTF-8") from None
        pairs: list[tuple[str, str | UploadFile]] = list(parse_qsl(text, keep_blank_values=True))
        return FormData(pairs)
    return await request.form()


def _attributes(form: Any) -> dict[str, list[str]]:
    """``attribute[code]=v`` and ``attribute[code][]=v1&…``, as clients send them."""
    found: dict[str, list[str]] = {}
    for key in form:
        if key.startswith("attribute[") and "]" in key:
            code = key[len("attribute[") : key.index("]")]
            found.setdefault(code, []).extend(
                v for v in form.getlist(key) if isinstance(v, str) and v
            )
    return found


@router.post(
    "/requests.{format}",
    status_code=201,
    summary="Post an Open311 service request: a platform's rider reports",
)
async def create_request(
    request: Request, format: Format, settings: SettingsDep, clock: ClockDep
) -> Response:
    form = await _form(request)
    created = await open311.post_request(
        get_database(request),
        request.app.state.intake,
        fields={k: v for k, v in form.items() if isinstance(v, str)},
        attributes=_attributes(form),
        snap_m=settings.routing_snap_m,
        now=clock(),
    )
    return respond(
        format,
        "service_requests",
        [render.created(created.service_request_id, created.notice)],
        status_code=201,
    )


@router.get("/media/{media_id}", summary="The photo of a service request (signed URL)")
def media(
    media_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    sig: Annotated[str, Query(max_length=64)] = "",
    v: Annotated[str | None, Query(max_length=64, description="the copy's version")] = None,
    exp: Annotated[int, Query(ge=0, lt=2**40, description="when the link expires")] = 0,
) -> Response:
    now = clock()
    found = open311.public_media(
        session, media_id, signature=sig, version=v, expires=exp, now=now, settings=settings
    )
    # No cache keeps the photo longer than its link works.
    headers = public_copy_headers(versioned=v is not None, good_for_s=exp - int(now.timestamp()))
    return photo_response(settings, found, thumbnail=False, headers=headers)

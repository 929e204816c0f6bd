"""The public page (政务公开): what riders reported and the city fixed, for residents —
no sign-in, in Chinese and English, everything served from the package.

Everything here follows the public rule (``app.public``): only tickets an office
accepted and did not hide, their masked or summarised words, and only the photos staff
published as blurred copies. Pages are the same for everyone who asks in the same
language, so shared caches may keep them a minute; an ETag spares the unchanged."""

import hashlib
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping
from sqlalchemy.orm import Session

from app import public
from app.categories import all_categories
from app.config import Settings
from app.console.i18n import Formats, negotiate, translator
from app.console.web import content_security_policy, query_with, templates
from app.deps import ClockDep, LaggingReadSession, SessionDep, SettingsDep
from app.errors import NotFound, ValidationFailed
from app.geo import BadBox, parse_bbox
from app.models import Area, Category
from app.pagination import PageRequest
from app.photos import PUBLIC_COPY_HEADERS, PUBLIC_UNVERSIONED_HEADERS, photo_response

MAX_AGE_S = 60


async def _public_page_on(settings: SettingsDep) -> None:
    if not settings.public_page:
        raise NotFound("the public page is turned off")


router = APIRouter(
    prefix="/public",
    include_in_schema=False,
    default_response_class=HTMLResponse,
    dependencies=[Depends(_public_page_on)],
)


def _locale(request: Request) -> str:
    """``?lang=`` (the page's switch, which every link keeps), else Accept-Language."""
    return negotiate(request.headers.get("accept-language"), request.query_params.get("lang"))


def _cached(
    request: Request,
    body: bytes,
    media_type: str,
    *,
    max_age: int = MAX_AGE_S,
    status_code: int = 200,
) -> Response:
    """``body`` with a strong ETag and a public max-age; 304 when the client has it."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}",
        "Vary": "Accept-Language",
    }
    if status_code == 200 and etag in [
        t.strip() for t in request.headers.get("if-none-match", "").split(",")
    ]:
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status_code, media_type=media_type, headers=headers)


class Names:
    """Categories and streets by id, named in the page's language."""

    def __init__(self, categories: list[Category], streets: list[Area], locale: str) -> None:
        english = locale == "en"
        self.categories = {
            c.id: (c.name_en if english and c.name_en else c.name_zh) for c in categories
        }
        self.codes = {c.id: c.code for c in categories}
        self.streets = {a.id: (a.name_en if english and a.name_en else a.name) for a in streets}
        self.street_codes = {a.id: a.code for a in streets}


def _names(request: Request, session: Session) -> Names:
    return Names(all_categories(session), public.streets(session), _locale(request))


def _render(
    request: Request, settings: Settings, template: str, *, status_code: int = 200, **context: Any
) -> Response:
    locale = _locale(request)
    lang = "zh-CN" if locale == "zh_CN" else "en"
    html = templates.get_template(template).render(
        request=request,
        locale=locale,
        lang=lang,
        lang_param=locale,
        _=translator(locale),
        fmt=Formats(locale),
        switch_query=lambda other: query_with(request, lang=other),
        next_query=lambda cursor: query_with(request, cursor=cursor),
        **context,
    )
    response = _cached(request, html.encode(), "text/html; charset=utf-8", status_code=status_code)
    response.headers["Content-Security-Policy"] = content_security_policy(settings)
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _query(request: Request) -> public.PublicQuery:
    p = request.query_params
    return public.PublicQuery(
        category=p.get("category") or None,
        status=p.get("status") or None,
        street=p.get("street") or None,
    )


@router.get("/")
def index(
    request: Request, session: LaggingReadSession, settings: SettingsDep, clock: ClockDep
) -> Response:
    now = clock()
    query = _query(request)
    names = _names(request, session)
    try:
        page = public.list_public_tickets(
            session,
            query,
            page=PageRequest(limit=30, cursor=request.query_params.get("cursor") or None),
            now=now,
        )
        problem = None
    except ValidationFailed as refused:
        page, problem = None, refused
    tickets = page.items if page else []
    return _render(
        request,
        settings,
        "public/index.html",
        status_code=problem.status if problem else 200,
        query=query,
        names=names,
        tickets=tickets,
        words=public.public_words(session, tickets),
        next_cursor=page.next_cursor if page else None,
        problem=problem,
        figures=public.street_figures(
            session, now=now, max_age_s=settings.public_figures_max_age_s
        ),
        street_names={code: names.streets[i] for i, code in names.street_codes.items()},
        status_groups=list(public.PUBLIC_STATUS_GROUPS),
        window_days=public.WINDOW.days,
        now=now,
    )


@router.get("/tickets/{ref}")
def ticket_page(
    ref: str, request: Request, session: LaggingReadSession, settings: SettingsDep
) -> Response:
    if len(ref) > 16:
        raise NotFound("no such public ticket")
    ticket = public.public_ticket_by_ref(session, ref)
    lon, lat = public.public_point(ticket)
    return _render(
        request,
        settings,
        "public/ticket.html",
        ticket=ticket,
        words=public.public_words(session, [ticket])[ticket.id],
        names=_names(request, session),
        lat=lat,
        lon=lon,
    )


@router.get("/map.geojson", response_class=JSONResponse)
def map_points(request: Request, session: LaggingReadSession, clock: ClockDep) -> Response:
    """The map's points: the newest public tickets (of the filter, within ``bbox``)."""
    bbox = None
    if raw := request.query_params.get("bbox"):
        try:
            bbox = parse_bbox(raw)
        except BadBox as error:
            raise ValidationFailed.of_field("bbox", str(error)) from None
    names = _names(request, session)
    lang = request.query_params.get("lang")
    suffix = f"?lang={lang}" if lang in ("en", "zh_CN") else ""
    features = []
    shown = public.public_map(session, _query(request), bbox=bbox, now=clock())
    for t, place in zip(shown, public.public_points(shown), strict=True):
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": list(place)},
                "properties": {
                    "ref": t.ref,
                    "status": t.status,
                    "category": names.categories.get(t.category_id, ""),
                    "url": f"/public/tickets/{t.ref}{suffix}",
                },
            }
        )
    body = orjson.dumps({"type": "FeatureCollection", "features": features})
    return _cached(request, body, "application/geo+json")


@router.get("/streets.geojson", response_class=JSONResponse)
def street_outlines(request: Request, session: LaggingReadSession) -> Response:
    """The streets' outlines, for the map."""
    names = _names(request, session)
    features = [
        {
            "type": "Feature",
            "geometry": mapping(to_shape(a.boundary)),
            "properties": {"code": a.code, "name": names.streets.get(a.id, a.name)},
        }
        for a in public.streets(session, boundaries=True)
        if a.boundary is not None
    ]
    body = orjson.dumps({"type": "FeatureCollection", "features": features})
    return _cached(request, body, "application/geo+json", max_age=3600)


@router.get("/photos/{media_id}", response_class=Response)
@router.get("/photos/{media_id}/thumbnail", response_class=Response, name="public_thumbnail")
def photo(
    media_id: uuid.UUID, request: Request, session: SessionDep, settings: SettingsDep
) -> Response:
    """A published, blurred copy, while the public rule lets it be seen; at its version
    (``?v=``, as the pages link it) kept by any cache for good."""
    version = request.query_params.get("v") or None
    copy = public.public_photo(session, media_id, version=version)
    return photo_response(
        settings,
        copy,
        thumbnail=request.url.path.endswith("/thumbnail"),
        headers=PUBLIC_COPY_HEADERS if version else PUBLIC_UNVERSIONED_HEADERS,
    )

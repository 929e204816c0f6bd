"""Open311 GeoReport v2: categories as services, tickets as service requests.

What a service request shows is public open data, by the public rule (``app.public``):
only tickets an office accepted and did not hide; of each, its category, status, place,
times, the street office that owns it, its public words (the office's summary, or the
first shown report's words with personal details masked), its first published photo (the
blurred copy), and the office's public word on how it was resolved. Never a rider's
identity or platform, an internal note or a staff member's name.
"""

import base64
import hashlib
import hmac
import math
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from anyio import to_thread
from sqlalchemy import Select, select, tuple_
from sqlalchemy.orm import Session, defer

from app.categories import STANDARD_FIELDS, list_categories
from app.config import Settings
from app.db import Database, lat_of, lon_of, within_bbox
from app.errors import AppError, LinkExpired, NotFound, Unauthenticated, ValidationFailed
from app.geo import CoordSys
from app.intake import IntakeWriter, ReportInput, ReportSubmission, prepare, receive_report
from app.models import (
    OPEN_STATUSES,
    Area,
    Category,
    PublicPhoto,
    ReportOutcome,
    Ticket,
    TicketStatus,
)
from app.pagination import cursor_time, cursor_uuid, encode_cursor, read_cursor
from app.platforms import platform_by_api_key
from app.public import (
    PublishedPhotoRef,
    public_photo,
    public_place,
    public_points,
    public_words,
)
from app.riders import rider_of
from app.text import has_control_characters
from app.tickets import current_reference

MAX_REQUESTS = 1000
DEFAULT_DAYS = 90
MAX_DESCRIPTION = 4000
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


class Open311BadRequest(ValidationFailed):
    """Refused as Open311 refuses: a 400 with the field named."""

    code = "open311_bad_request"


# -- services


@dataclass(frozen=True)
class Service:
    code: str
    name: str
    description: str
    group: str
    keywords: str


def services(session: Session) -> list[Service]:
    """The categories riders may report in, as Open311 services (no extra attributes:
    ``metadata`` is false for each)."""
    return [
        Service(c.code, c.name_zh, c.description, *_group_and_keywords(c))
        for c in list_categories(session)
    ]


KINDS = {"event": "事件", "component": "部件"}


def _group_and_keywords(category: Category) -> tuple[str, str]:
    """Open311's ``group``: the national class (``事件·街面秩序``), or else the department;
    its ``keywords``: the English name and the classification's codes and names."""
    standard = category.standard
    if not standard:
        return category.department, category.name_en
    group = f"{KINDS.get(standard['kind'], standard['kind'])}·{standard['class_name']}"
    words = [category.name_en, *(standard[f] for f in STANDARD_FIELDS if f != "kind")]
    return group, ",".join(w.replace(",", " ") for w in words)


def get_service(session: Session, code: str) -> Service:
    for service in services(session):
        if service.code == code:
            return service
    raise NotFound(f"no service {code}")


# -- service requests


@dataclass(frozen=True)
class ServiceRequest:
    """A ticket as open data."""

    id: str
    status: str  # open | closed
    status_notes: str
    service_code: str
    service_name: str
    description: str | None
    agency_responsible: str
    address: str | None
    requested: datetime
    updated: datetime
    expected: datetime
    lat: float
    lon: float
    photo: PublishedPhotoRef | None


def open_or_closed(status: TicketStatus) -> str:
    return "open" if status in OPEN_STATUSES else "closed"


@dataclass(frozen=True)
class RequestQuery:
    ids: Sequence[uuid.UUID] = ()
    service_codes: Sequence[str] = ()
    statuses: Sequence[str] = ()  # open, closed
    start: datetime | None = None
    end: datetime | None = None
    district: Area | None = None
    bbox: tuple[float, float, float, float] | None = None
    limit: int = MAX_REQUESTS
    cursor: str | None = None


def district_of(session: Session, jurisdiction_id: str | None) -> Area | None:
    """The district a ``jurisdiction_id`` names (empty: none asked for)."""
    if not jurisdiction_id:
        return None
    district = session.scalar(
        select(Area).where(Area.code == jurisdiction_id, Area.parent_id.is_(None))
    )
    if district is None:
        raise NotFound(f"no jurisdiction {jurisdiction_id}")
    return district


def _filtered(session: Session, query: RequestQuery, *, now: datetime) -> Select[Ticket]:
    statement = select(Ticket).where(Ticket.is_public)
    if query.ids:
        # Asked by id, the other filters do not apply (the spec's rule).
        return statement.where(Ticket.id.in_(list(query.ids)))
    if query.service_codes:
        known = {
            code: category_id
            for code, category_id in session.execute(
                select(Category.code, Category.id).where(Category.code.in_(query.service_codes))
            )
        }
        unknown = [c for c in query.service_codes if c not in known]
        if unknown:
            raise Open311BadRequest.of_field("service_code", f"no service {', '.join(unknown)}")
        statement = statement.where(Ticket.category_id.in_(list(known.values())))
    if len(set(query.statuses)) == 1:  # both is all
        opened = Ticket.is_open
        statement = statement.where(opened if query.statuses[0] == "open" else ~opened)
    for name, value in (("start_date", query.start), ("end_date", query.end)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise Open311BadRequest.of_field(name, "a date between 2000 and 2100")
    end = query.end or now
    start = query.start or end - timedelta(days=DEFAULT_DAYS)
    statement = statement.where(Ticket.created_at >= start, Ticket.created_at < end)
    if query.district is not None:
        statement = statement.where(Ticket.district_id == query.district.id)
    if query.bbox is not None:
        statement = statement.where(within_bbox(Ticket.location, *query.bbox))
    return statement


def find_requests(
    session: Session, query: RequestQuery, *, now: datetime
) -> tuple[list[ServiceRequest], str | None]:
    """Service requests, newest first, at most ``query.limit``, after ``query.cursor``;
    and the cursor of the next page (an extension of the spec)."""
    statement = _filtered(session, query, now=now)
    if query.cursor is not None:
        # [the last row's aware ISO time, its UUID], nothing else: Open311's 400 otherwise.
        not_ours = Open311BadRequest.of_field("cursor", "not a cursor of this server")
        try:
            at, last = read_cursor(query.cursor, [cursor_time, cursor_uuid])
        except ValidationFailed:
            raise not_ours from None
        if not EARLIEST <= at <= LATEST:
            raise not_ours
        statement = statement.where(tuple_(Ticket.created_at, Ticket.id) < tuple_(at, last))
    # The place as two numbers from the database: a page of a thousand geometries, each
    # parsed into an object, would cost more than everything else about a ticket.
    found = session.execute(
        statement.add_columns(lon_of(Ticket.location), lat_of(Ticket.location))
        .options(defer(Ticket.location, raiseload=True))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(query.limit + 1)
    ).all()
    more = len(found) > query.limit
    found = found[: query.limit]
    rows = [ticket for ticket, _, _ in found]
    following = encode_cursor([rows[-1].created_at.isoformat(), str(rows[-1].id)]) if more else None
    places = [public_place(lon, lat) for _, lon, lat in found]
    return service_requests(session, rows, places=places), following


def get_request(session: Session, request_id: str) -> ServiceRequest:
    try:
        ticket_id = uuid.UUID(request_id)
    except ValueError:
        raise NotFound(f"no service request {request_id}") from None
    ticket = session.scalar(select(Ticket).where(Ticket.id == ticket_id, Ticket.is_public))
    if ticket is None:
        raise NotFound(f"no service request {request_id}")
    return service_requests(session, [ticket])[0]


def service_requests(
    session: Session,
    tickets: Sequence[Ticket],
    *,
    places: Sequence[tuple[float, float]] | None = None,
) -> list[ServiceRequest]:
    """The open data of ``tickets``, in a fixed handful of queries (their public places,
    if the caller read them already)."""
    if not tickets:
        return []
    categories = {
        c.id: c
        for c in session.scalars(
            select(Category).where(Category.id.in_({t.category_id for t in tickets}))
        )
    }
    area_ids = {i for t in tickets for i in (t.street_id, t.district_id) if i}
    areas = {
        a.id: a.name
        for a in session.execute(select(Area.id, Area.name).where(Area.id.in_(area_ids)))
    }
    words = public_words(session, tickets)

    def one(t: Ticket, place: tuple[float, float]) -> ServiceRequest:
        lon, lat = place
        public = words[t.id]
        category = categories[t.category_id]
        detail, note = str(t.status), public.note
        return ServiceRequest(
            id=str(t.id),
            status=open_or_closed(TicketStatus(t.status)),
            status_notes=f"{detail}: {note}" if note else detail,
            service_code=category.code,
            service_name=category.name_zh,
            description=public.description[:MAX_DESCRIPTION] if public.description else None,
            agency_responsible=areas.get(t.street_id or t.district_id, ""),
            address=public.address,
            requested=t.created_at,
            updated=t.updated_at,
            expected=t.resolve_by,
            lat=lat,
            lon=lon,
            photo=public.photos[0] if public.photos else None,
        )

    places = public_points(tickets) if places is None else places
    return [one(t, place) for t, place in zip(tickets, places, strict=True)]


# -- photos of service requests: a signed URL, checked when it is fetched


# A photo's URL is good for a day or so, and the same for every answer within the hour
# (it ends on the hour): clients and caches that read the list again see one URL.
MEDIA_URL_HOUR = 3600


def media_expiry(now: datetime, settings: Settings) -> int:
    """When a photo URL written at ``now`` stops working (Unix seconds, on the hour)."""
    end = now.timestamp() + settings.open311_media_ttl_h * 3600
    return math.ceil(end / MEDIA_URL_HOUR) * MEDIA_URL_HOUR


def media_signature(
    media_id: uuid.UUID, *, version: str | None, expires: int, settings: Settings
) -> str:
    digest = hmac.new(
        settings.secret_key.encode(),
        f"open311-media:{media_id}:{version or ''}:{expires}".encode(),
        hashlib.sha256,
    ).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def media_query(
    media_id: uuid.UUID, *, version: str, now: datetime, settings: Settings
) -> dict[str, str]:
    """The query of a photo's signed URL: its version, when it expires, the signature."""
    expires = media_expiry(now, settings)
    signature = media_signature(media_id, version=version, expires=expires, settings=settings)
    return {"v": version, "exp": str(expires), "sig": signature}


def public_media(
    session: Session,
    media_id: uuid.UUID,
    *,
    signature: str,
    version: str | None,
    expires: int,
    now: datetime,
    settings: Settings,
) -> PublicPhoto:
    """The published copy of the photo a service request shows, if ``signature`` is this
    server's for it, its ``version`` and ``expires``, the link has not expired, the public
    rule lets it be seen, and it is the ``version`` asked for (if any)."""
    expected = media_signature(media_id, version=version, expires=expires, settings=settings)
    if not hmac.compare_digest(signature.encode(), expected.encode()):
        raise NotFound("no such photo")
    if now.timestamp() >= expires:
        raise LinkExpired("this photo link has expired; read the service request again")
    return public_photo(session, media_id, version=version)


# -- a request posted by a client


def report_input(form: Mapping[str, str], attributes: Mapping[str, list[str]]) -> ReportInput:
    """A report from an Open311 POST's fields (``attribute[...]`` kept in the
    description, which is where a category without attributes keeps what a client adds)."""
    for name, value in [*form.items(), *((k, v) for k, vs in attributes.items() for v in vs)]:
        if has_control_characters(value) or has_control_characters(name):
            raise Open311BadRequest.of_field(name, "control characters are not allowed")
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311BadRequest.of_field("service_code", "service_code is required")
    lat, lon = _coordinate(form, "lat", bound=90), _coordinate(form, "long", bound=180)
    if lat is None or lon is None:
        raise Open311BadRequest.of_field(
            "lat", "lat and long are required (this server locates by coordinates only)"
        )
    description = (form.get("description") or "").strip()
    extra = "; ".join(f"{k}: {', '.join(v)}" for k, v in sorted(attributes.items()) if v)
    if extra:
        description = f"{description}\n{extra}".strip()
    if len(description) > MAX_DESCRIPTION:
        raise Open311BadRequest.of_field("description", f"at most {MAX_DESCRIPTION} characters")
    address = (form.get("address_string") or "").strip()[:200] or None
    return ReportInput(
        category=code,
        lat=lat,
        lon=lon,
        coord_sys=CoordSys.WGS84,
        accuracy_m=None,
        description=description or None,
        address_hint=address,
        observed_at=None,
        media_ids=(),
    )


def _coordinate(form: Mapping[str, str], name: str, *, bound: float) -> float | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Open311BadRequest.of_field(name, f"{name} must be a number") from None
    if not math.isfinite(value) or abs(value) > bound:
        raise Open311BadRequest.of_field(name, f"{name} must be within ±{bound:g}")
    return value


def as_open311(error: AppError) -> tuple[int, str]:
    """The status Open311 gives a refusal (400 bad input, 403 bad key, 404 unknown),
    and its description."""
    if error.status in (401, 403):
        return 403, error.detail
    if error.status == 404:
        return 404, error.detail
    if error.status in (409, 422):
        return 400, error.detail
    return error.status, error.detail


@dataclass(frozen=True)
class CreatedRequest:
    """A posted service request: the ticket it opened or joined, and a notice when it
    joined one (Open311's ``service_notice``)."""

    service_request_id: str
    notice: str | None


async def post_request(
    database: Database,
    writer: IntakeWriter,
    *,
    fields: Mapping[str, str],
    attributes: Mapping[str, list[str]],
    snap_m: float,
    now: datetime,
) -> CreatedRequest:
    """A platform's rider reports through Open311: ``api_key`` names the platform,
    ``account_id`` its rider (registered on first use), and the report goes through the
    same intake as ``POST /v1/reports``."""
    api_key, account_id = fields.get("api_key", ""), fields.get("account_id", "").strip()
    if not account_id or len(account_id) > 64:
        raise Open311BadRequest.of_field(
            "account_id", "account_id (the platform's rider id, 1–64 characters) is required"
        )
    data = report_input(fields, attributes)
    jurisdiction = fields.get("jurisdiction_id") or None

    def rider() -> uuid.UUID:
        with database.transaction() as session:
            platform = platform_by_api_key(session, api_key) if api_key else None
            if platform is None:
                raise Unauthenticated("api_key is not a key of this server")
            district_of(session, jurisdiction)
            # What intake would refuse (the service, the place) is refused before a new
            # rider is registered, so that a refused POST leaves nothing behind.
            prepare(current_reference(session), data, now=now, snap_m=snap_m)
            return rider_of(session, platform=platform, rider_id=account_id).id

    received = await receive_report(
        writer,
        rider_id=await to_thread.run_sync(rider),
        submission=ReportSubmission(data=data, key=None, fingerprint=""),
        now=now,
    )
    ticket = received.body["ticket"]
    notice = (
        f"Already reported: this report joins service request {ticket['id']} "
        f"({ticket['report_count']} reports)."
        if received.body["outcome"] == ReportOutcome.JOINED_TICKET.value
        else None
    )
    return CreatedRequest(ticket["id"], notice)

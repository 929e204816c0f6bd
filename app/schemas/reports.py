import uuid
from datetime import datetime
from typing import Any, Protocol

from pydantic import AwareDatetime, Field

from app.models import ReportOutcome, TicketStatus
from app.schemas.common import (
    CATEGORY_CODE,
    AreaRefRead,
    InputSchema,
    Schema,
    UtcTime,
    rfc3339_utc,
)
from app.services.coords import CoordSys

Latitude = Field(ge=-90, le=90, allow_inf_nan=False)
Longitude = Field(ge=-180, le=180, allow_inf_nan=False)


class ReportCreate(InputSchema):
    category: str = Field(pattern=CATEGORY_CODE, examples=["road_damage"])
    lat: float = Latitude
    lon: float = Longitude
    coord_sys: CoordSys = CoordSys.WGS84
    accuracy_m: float | None = Field(default=None, ge=0, le=10_000, allow_inf_nan=False)
    description: str | None = Field(default=None, max_length=2000)
    observed_at: AwareDatetime | None = Field(
        default=None, description="when the rider saw it; at most 5 min ahead, 7 days back")
    address_hint: str | None = Field(default=None, max_length=200)
    media_ids: list[uuid.UUID] = Field(default_factory=list, max_length=9)


class BatchReportCreate(ReportCreate):
    # Checked as the Idempotency-Key header is (idempotency.check_key), not here: a bad key
    # must be the same 422 invalid_idempotency_key in a batch as in a single POST.
    idempotency_key: str | None = Field(
        default=None, description="as the Idempotency-Key header: 1–255 printable characters")


class BatchCreate(InputSchema):
    reports: list[dict[str, Any]] = Field(min_length=1, max_length=50,
                                          description="each as the body of POST /v1/reports, "
                                                      "plus its idempotency_key")


class RoutedArea(Schema):
    district: AreaRefRead
    street: AreaRefRead | None
    community: AreaRefRead | None


class TicketSummary(Schema):
    id: str
    ref: str
    status: TicketStatus
    report_count: int


class ReportReceipt(Schema):
    id: str
    outcome: ReportOutcome
    ticket: TicketSummary
    area: RoutedArea
    lat: float
    lon: float
    received_at: UtcTime
    observed_at: UtcTime


class NamedArea(Protocol):
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...


def receipt_json(*, report_id: uuid.UUID, outcome: ReportOutcome, ticket_id: uuid.UUID,
                 ticket_ref: str, ticket_status: TicketStatus, report_count: int,
                 district: NamedArea, street: NamedArea | None, community: NamedArea | None,
                 lat: float, lon: float, received_at: datetime,
                 observed_at: datetime) -> dict[str, Any]:
    """A :class:`ReportReceipt` as JSON, built directly (every report gets one, and keeps
    it for its retries); ``tests`` hold it equal to the model's own rendering."""

    def area(named: NamedArea | None) -> dict[str, str] | None:
        return {"code": named.code, "name": named.name} if named is not None else None

    return {"id": str(report_id), "outcome": outcome.value,
            "ticket": {"id": str(ticket_id), "ref": ticket_ref, "status": ticket_status.value,
                       "report_count": report_count},
            "area": {"district": area(district), "street": area(street),
                     "community": area(community)},
            "lat": lat, "lon": lon, "received_at": rfc3339_utc(received_at),
            "observed_at": rfc3339_utc(observed_at)}


class BatchResult(Schema):
    idempotency_key: str | None
    status: int
    replayed: bool = False
    report: ReportReceipt | None = None
    problem: dict[str, Any] | None = None


class BatchResults(Schema):
    results: list[BatchResult]


class TimelineEntry(Schema):
    status: TicketStatus
    at: UtcTime


class ReportTicket(TicketSummary):
    category: str
    timeline: list[TimelineEntry]


class ReportRead(Schema):
    id: str
    category: str
    outcome: ReportOutcome
    lat: float
    lon: float
    accuracy_m: float | None
    description: str | None
    address_hint: str | None
    media_ids: list[str]
    area: RoutedArea
    received_at: UtcTime
    observed_at: UtcTime
    ticket: ReportTicket


class NearbyTicket(Schema):
    id: str
    ref: str
    category: str
    status: TicketStatus
    report_count: int
    lat: float
    lon: float
    distance_m: float
    created_at: UtcTime


class NearbyTickets(Schema):
    items: list[NearbyTicket]
    # The radius is at most 1000 m and the list at most ``limit`` long: one page.
    next_cursor: str | None = None
    coord_sys: CoordSys


class MediaRead(Schema):
    id: str
    content_type: str
    width: int
    height: int
    bytes: int
    sha256: str


class MeRead(Schema):
    id: str
    rider_id: str
    platform: str
    display_name: str | None
    reports: int
    tickets_opened: int
    joined: int
    accepted: int
    resolved: int
    rejected: int
    verifications: int
    points: int



class VerificationCreate(InputSchema):
    fixed: bool
    lat: float = Latitude
    lon: float = Longitude
    coord_sys: CoordSys = CoordSys.WGS84
    note: str | None = Field(default=None, max_length=2000)
    media_ids: list[uuid.UUID] = Field(default_factory=list, max_length=9)


class VerificationRead(Schema):
    id: str
    fixed: bool
    distance_m: float
    created_at: UtcTime
    ticket: TicketSummary

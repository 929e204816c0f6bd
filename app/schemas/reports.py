import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

from geoalchemy2.shape import to_shape
from pydantic import AwareDatetime, Field, ValidationError

from app import intake
from app.areas import AreaRef
from app.errors import AppError, ValidationFailed
from app.geo import CoordSys
from app.intake import Receipt, Received, ReportInput, ReportSubmission, ReportView
from app.models import (
    Report,
    ReportOutcome,
    Rider,
    StaffPhoto,
    Ticket,
    TicketStatus,
    Verification,
)
from app.schemas.common import (
    CATEGORY_CODE,
    AreaRefRead,
    Id,
    InputSchema,
    Read,
    Schema,
    UtcTime,
    rfc3339_utc,
)

Latitude = Field(ge=-90, le=90, allow_inf_nan=False)
Longitude = Field(ge=-180, le=180, allow_inf_nan=False)


class OnTheSpot(InputSchema):
    """What a rider sends from where they stand: the point, a note and photos (a
    verification of a fix, a sighting for an alert)."""

    lat: float = Latitude
    lon: float = Longitude
    coord_sys: CoordSys = CoordSys.WGS84
    note: str | None = Field(default=None, max_length=2000)
    media_ids: list[uuid.UUID] = Field(default_factory=list, max_length=9)


class ReportCreate(InputSchema):
    category: str = Field(pattern=CATEGORY_CODE, examples=["road_damage"])
    lat: float = Latitude
    lon: float = Longitude
    coord_sys: CoordSys = CoordSys.WGS84
    accuracy_m: float | None = Field(default=None, ge=0, le=10_000, allow_inf_nan=False)
    description: str | None = Field(default=None, max_length=2000)
    observed_at: AwareDatetime | None = Field(
        default=None, description="when the rider saw it; at most 5 min ahead, 7 days back"
    )
    address_hint: str | None = Field(default=None, max_length=200)
    media_ids: list[uuid.UUID] = Field(default_factory=list, max_length=9)

    def submission(self, key: str | None) -> ReportSubmission:
        """This report as intake takes it, with ``key``."""
        fields = self.model_dump(include=_REPORT_FIELDS)
        fields["media_ids"] = tuple(dict.fromkeys(self.media_ids))  # each photo once
        return ReportSubmission(ReportInput(**fields), key, self.fingerprint())

    def fingerprint(self) -> str:
        """The hash a retry of this report's key must repeat: of the report's own fields
        (a batch item's idempotency_key is not part of its body)."""
        payload = self.model_dump(mode="json", include=_REPORT_FIELDS)
        if self.observed_at is not None:  # one instant, whatever offset the phone used
            payload["observed_at"] = self.observed_at.astimezone(UTC).isoformat()
        return intake.request_hash(payload)


_REPORT_FIELDS = set(ReportCreate.model_fields)


class BatchReportCreate(ReportCreate):
    # Checked as the Idempotency-Key header is (intake.check_key), not here: a bad key
    # must be the same 422 invalid_idempotency_key in a batch as in a single POST.
    idempotency_key: str | None = Field(
        default=None, description="as the Idempotency-Key header: 1–255 printable characters"
    )


class BatchCreate(InputSchema):
    reports: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=50,
        description="each as the body of POST /v1/reports, plus its idempotency_key",
    )

    def submissions(self) -> list[tuple[str | None, ReportSubmission | AppError]]:
        """Each item read on its own, with its key as given: a report to submit, or why
        it is refused (an item that is not a valid report is a 422 in its place)."""
        read: list[tuple[str | None, ReportSubmission | AppError]] = []
        for raw in self.reports:
            key = raw.get("idempotency_key")
            key = key if isinstance(key, str) else None
            try:
                item = BatchReportCreate.model_validate(raw)
            except ValidationError as invalid:
                read.append((key, ValidationFailed.of_pydantic(invalid.errors())))
            else:
                read.append((key, item.submission(item.idempotency_key)))
        return read


class RoutedArea(Schema):
    district: AreaRefRead
    street: AreaRefRead | None
    community: AreaRefRead | None


class TicketSummary(Read):
    id: Id
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


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """A :class:`ReportReceipt` as JSON, built directly (every report gets one, and keeps
    it for its retries); ``tests`` hold it equal to the model's own rendering."""

    def area(named: AreaRef | None) -> dict[str, str] | None:
        return {"code": named.code, "name": named.name} if named is not None else None

    return {
        "id": str(receipt.report_id),
        "outcome": receipt.outcome.value,
        "ticket": {
            "id": str(receipt.ticket_id),
            "ref": receipt.ticket_ref,
            "status": receipt.ticket_status.value,
            "report_count": receipt.report_count,
        },
        "area": {
            "district": area(receipt.district),
            "street": area(receipt.street),
            "community": area(receipt.community),
        },
        "lat": receipt.lat,
        "lon": receipt.lon,
        "received_at": rfc3339_utc(receipt.received_at),
        "observed_at": rfc3339_utc(receipt.observed_at),
    }


class BatchResult(Schema):
    idempotency_key: str | None
    status: int
    replayed: bool = False
    report: ReportReceipt | None = None
    problem: dict[str, Any] | None = None

    @classmethod
    def of(cls, key: str | None, outcome: Received | AppError) -> "BatchResult":
        if isinstance(outcome, AppError):
            return cls(idempotency_key=key, status=outcome.status, problem=outcome.to_problem())
        return cls(
            idempotency_key=key,
            status=outcome.status,
            replayed=outcome.replayed,
            report=ReportReceipt.model_validate(outcome.body),
        )


class BatchResults(Schema):
    results: list[BatchResult]


class TimelineEntry(Schema):
    status: TicketStatus
    at: UtcTime


class PhotoLink(Schema):
    """A photo as a response links it: where to fetch it and its thumbnail, with the
    caller's credentials."""

    id: str
    url: str
    thumbnail_url: str

    @classmethod
    def at(cls, url: str, photo_id: uuid.UUID) -> "PhotoLink":
        return cls(id=str(photo_id), url=url, thumbnail_url=f"{url}/thumbnail")


class ReportTicket(TicketSummary):
    category: str
    timeline: list[TimelineEntry]
    after_photos: list[PhotoLink] = Field(
        description="once the ticket is resolved or closed: the photos of the work done, "
        "shown with the unit's report, the office's check or the resolution"
    )


def report_fields(report: Report, media_ids: list[str]) -> dict[str, Any]:
    """What every view of a report shows, as the view's fields."""
    where = to_shape(report.location)
    return {
        "id": str(report.id),
        "lat": where.y,
        "lon": where.x,
        "description": report.description,
        "address_hint": report.address_hint,
        "media_ids": media_ids,
        "observed_at": report.observed_at,
        "received_at": report.received_at,
    }


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

    @classmethod
    def of(cls, view: ReportView, after_photos: Sequence[StaffPhoto]) -> "ReportRead":
        """The report, with ``after_photos`` (``media.after_photos``) linked for its rider."""
        r, ticket = view.report, view.ticket

        def area(area_id: int | None) -> AreaRefRead | None:
            return AreaRefRead.of_optional(view.areas.get(area_id) if area_id else None)

        district = area(r.district_id)
        assert district is not None
        return cls(
            **report_fields(r, view.media_ids),
            category=view.categories[r.category_id],
            outcome=r.outcome,
            accuracy_m=r.accuracy_m,
            area=RoutedArea(
                district=district, street=area(r.street_id), community=area(r.community_id)
            ),
            ticket=ReportTicket(
                id=str(ticket.id),
                ref=ticket.ref,
                status=ticket.status,
                report_count=ticket.report_count,
                category=view.categories[ticket.category_id],
                timeline=[TimelineEntry(status=status, at=at) for status, at in view.timeline],
                after_photos=[
                    PhotoLink.at(f"/v1/reports/{r.id}/photos/{p.id}", p.id) for p in after_photos
                ],
            ),
        )


class NearbyTicket(Read):
    id: Id
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


class MediaRead(Read):
    id: Id
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

    @classmethod
    def of(cls, rider: Rider, totals: Mapping[str, int]) -> "MeRead":
        return cls(
            id=str(rider.id),
            rider_id=rider.external_id,
            platform=rider.platform.code,
            display_name=rider.display_name,
            **totals,
        )


class VerificationCreate(OnTheSpot):
    fixed: bool


class VerificationRead(Schema):
    id: str
    fixed: bool
    distance_m: float
    created_at: UtcTime
    ticket: TicketSummary

    @classmethod
    def of(cls, verification: Verification, ticket: Ticket) -> "VerificationRead":
        return cls(
            id=str(verification.id),
            fixed=verification.fixed,
            distance_m=verification.distance_m,
            created_at=verification.created_at,
            ticket=TicketSummary.of(ticket),
        )


class FeedbackCreate(Schema):
    """A reporter's rating of the fix of its report's ticket."""

    rating: int = Field(ge=1, le=5, description="1 (very poor) to 5 (very good)")
    comment: str | None = Field(default=None, max_length=1000)


class FeedbackRead(Schema):
    rating: int
    comment: str | None
    created_at: UtcTime

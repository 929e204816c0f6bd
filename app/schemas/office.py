import uuid
from datetime import date, datetime

from geoalchemy2.shape import to_shape
from pydantic import Field, field_validator

from app.geo import CoordSys, to_wgs84
from app.models import Staff, StaffPhoto, StaffRole, Ticket, TicketAction, TicketStatus
from app.schemas.common import AreaRefRead, Id, InputSchema, Read, Schema, UtcTime
from app.schemas.reports import PhotoLink, RoutedArea, report_fields
from app.tickets import ActionInput, QueueRow, ReportOnTicket, TicketView, actions_for


class ActionCreate(InputSchema):
    action: TicketAction
    note: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(
        default=None,
        max_length=32,
        description="reject: spam, not_actionable, not_our_responsibility or other; "
        "hide_report: personal_information, offensive, not_relevant or other",
    )
    assignee: str | None = Field(default=None, max_length=200)
    to_street: str | None = Field(default=None, max_length=32)
    into_ticket: uuid.UUID | None = None
    priority: int | None = None
    public_summary: str | None = Field(
        default=None,
        max_length=2000,
        description="set_public_summary: the words the public reads instead of the first "
        "report's (empty: the first report's, masked, again)",
    )
    report_id: uuid.UUID | None = Field(
        default=None, description="hide_report, unhide_report: one of the ticket's reports"
    )
    unit: str | None = Field(
        default=None, max_length=32, description="dispatch: a unit serving the ticket's street"
    )
    media_ids: list[uuid.UUID] = Field(
        default=[], max_length=9, description="photos uploaded by the actor (POST /v1/office/media)"
    )
    hours: float | None = Field(
        default=None, description="request_extension: hours more, on the category's clock"
    )
    review_on: date | None = Field(default=None, description="shelve: when to look again")
    category: str | None = Field(
        default=None, max_length=64, description="recategorise: the new category's code"
    )
    lat: float | None = Field(default=None, ge=-90, le=90, description="relocate")
    lon: float | None = Field(default=None, ge=-180, le=180, description="relocate")
    coord_sys: CoordSys = CoordSys.WGS84

    def as_input(self) -> ActionInput:
        lon, lat = (
            to_wgs84(self.lon, self.lat, self.coord_sys)
            if self.lon is not None and self.lat is not None
            else (self.lon, self.lat)
        )
        return ActionInput(
            **self.model_dump(exclude={"media_ids", "lat", "lon", "coord_sys"}),
            media_ids=tuple(dict.fromkeys(self.media_ids)),
            lat=lat,
            lon=lon,
        )


class TicketRider(Schema):
    platform: str
    pseudonym: str


class TicketReport(Schema):
    id: str
    rider: TicketRider | None = Field(description="null for a unit's crew")
    lat: float
    lon: float
    description: str | None
    address_hint: str | None
    media_ids: list[str]
    observed_at: UtcTime
    received_at: UtcTime
    hidden_at: UtcTime | None = Field(
        description="when the office hid it from the public (its words and photos)"
    )
    hidden_reason: str | None
    public_media_ids: list[str] = Field(description="the photos whose blurred copy is published")

    @classmethod
    def of(cls, on: ReportOnTicket, *, with_rider: bool = True) -> "TicketReport":
        return cls(
            **{
                **report_fields(on.report, on.media_ids),
                # The words as the viewer reads them (masked for a unit's crew).
                "description": on.description,
                "address_hint": on.address_hint,
            },
            rider=TicketRider(platform=on.platform, pseudonym=on.pseudonym) if with_rider else None,
            hidden_at=on.report.hidden_at,
            hidden_reason=on.report.hidden_reason,
            public_media_ids=on.public_media_ids,
        )


class TicketEventRead(Read):
    id: Id
    type: str
    actor: str  # "rider", "system", or the staff member's username
    from_status: TicketStatus | None
    to_status: TicketStatus | None
    note: str | None
    at: UtcTime = Field(validation_alias="created_at")
    photos: list[PhotoLink] = Field(
        description="the photos staff showed with it (the spot after the work, say)"
    )

    @field_validator("photos", mode="before")
    @classmethod
    def _office_links(cls, photos: list[StaffPhoto]) -> list[PhotoLink]:
        return [PhotoLink.at(f"/v1/office/media/{p.id}", p.id) for p in photos]


class UnitRef(Schema):
    code: str
    name: str


class Extension(Schema):
    hours: float
    reason: str | None
    status: str = Field(description="pending, approved or denied")


class TicketFields(Schema):
    """What every view of a ticket shows."""

    id: str
    ref: str
    status: TicketStatus
    category: str
    priority: int
    lat: float
    lon: float
    report_count: int
    assignee: str | None
    created_at: UtcTime
    respond_by: UtcTime
    resolve_by: UtcTime
    overdue: bool

    @staticmethod
    def fields_of(ticket: Ticket, category: str, now: datetime) -> dict[str, object]:
        point = to_shape(ticket.location)
        return {
            "id": str(ticket.id),
            "ref": ticket.ref,
            "status": ticket.status,
            "category": category,
            "priority": ticket.priority,
            "lat": point.y,
            "lon": point.x,
            "report_count": ticket.report_count,
            "assignee": ticket.assignee,
            "created_at": ticket.created_at,
            "respond_by": ticket.respond_by,
            "resolve_by": ticket.resolve_by,
            "overdue": ticket.is_overdue(now),
        }


class TicketDetail(TicketFields):
    area: RoutedArea
    reject_reason: str | None
    duplicate_of: str | None
    version: int
    allowed_actions: list[str]
    updated_at: UtcTime
    accepted_at: UtcTime | None
    resolved_at: UtcTime | None
    closed_at: UtcTime | None
    public: bool = Field(
        description="whether the public sees it now (accepted, not every report hidden)"
    )
    public_summary: str | None
    unit: UnitRef | None = Field(description="the unit it is dispatched to (or was last)")
    acknowledged_at: UtcTime | None = Field(description="when whoever it waits on signed for it")
    extension: Extension | None
    review_on: date | None = Field(description="a shelved ticket's date to be looked at again")
    escalated: bool
    dissatisfied: bool = Field(description="a reporter rated the fix 2 or lower")
    reports: list[TicketReport]
    events: list[TicketEventRead]

    @classmethod
    def of(cls, view: TicketView, now: datetime, *, viewer: Staff | None = None) -> "TicketDetail":
        """The ticket as ``viewer`` sees it: what it may do; a unit's crew never sees
        which rider or platform reported it."""
        crew = viewer is not None and viewer.role == StaffRole.CREW
        t = view.ticket

        def area(area_id: int | None) -> AreaRefRead | None:
            return AreaRefRead.of_optional(view.areas.get(area_id) if area_id else None)

        district = area(t.district_id)
        assert district is not None
        return cls(
            **cls.fields_of(t, view.category, now),
            area=RoutedArea(
                district=district, street=area(t.street_id), community=area(t.community_id)
            ),
            reject_reason=t.reject_reason,
            duplicate_of=view.duplicate_of,
            version=t.version,
            allowed_actions=actions_for(t, viewer),
            updated_at=t.updated_at,
            accepted_at=t.accepted_at,
            resolved_at=t.resolved_at,
            closed_at=t.closed_at,
            public=t.is_public,
            public_summary=t.public_summary,
            unit=UnitRef(code=t.unit.code, name=t.unit.name) if t.unit is not None else None,
            acknowledged_at=t.acknowledged_at,
            extension=Extension(
                hours=t.extension_hours, reason=t.extension_reason, status=t.extension_status
            )
            if t.extension_status is not None and t.extension_hours is not None
            else None,
            review_on=t.review_on,
            escalated=t.escalated,
            dissatisfied=t.dissatisfied,
            reports=[TicketReport.of(r, with_rider=not crew) for r in view.reports],
            events=[TicketEventRead.of(e, e.event) for e in view.events],
        )


class QueueTicket(TicketFields):
    street: str | None
    community: str | None

    @classmethod
    def of(cls, row: QueueRow, now: datetime) -> "QueueTicket":
        return cls(
            **cls.fields_of(row.ticket, row.category, now),
            street=row.street,
            community=row.community,
        )


class OfficeStats(Schema):
    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_community: dict[str, int]
    open: int = Field(description="not fixed yet, shelved tickets included (shelved_count)")
    overdue: int = Field(description="open past the deadline that matters now; never shelved")
    shelved_count: int = Field(description="shelved now (挂账): open, never overdue")
    extended_count: int = Field(description="given more time: an extension approved")
    escalated_count: int = Field(description="escalated (提级督办) and not taken back")
    median_hours_to_accept: float | None
    median_hours_to_resolve: float | None
    resolved_within_sla: float | None = None
    closure_rate: float | None = Field(
        default=None, description="resolved or closed ÷ tickets not rejected or merged"
    )
    on_time_response_rate: float | None = Field(
        default=None,
        description="accepted by respond_by ÷ tickets accepted or new past respond_by",
    )
    on_time_resolution_rate: float | None = Field(
        default=None,
        description="resolved by resolve_by (as an approved extension moved it) ÷ tickets "
        "resolved or open past resolve_by (a shelved one is not on the clock)",
    )
    reopen_rate: float | None = Field(
        default=None, description="reopened at least once ÷ tickets ever resolved"
    )
    on_time_without_extension_rate: float | None = Field(
        default=None,
        description="resolved by the deadline before any extension ÷ tickets resolved",
    )
    median_working_hours_to_respond: float | None = Field(
        default=None, description="opening to first acceptance, on the working calendar"
    )
    median_working_hours_to_resolve: float | None = Field(
        default=None, description="opening to resolution, on the working calendar"
    )
    median_minutes_to_acknowledge: float | None = Field(
        default=None,
        description="minutes from opening to the office's first acknowledgement (签收: an "
        "officer's or the district's first acknowledge or accept)",
    )
    acknowledged_within_1h_rate: float | None = Field(
        default=None,
        description="signed for by the office within 60 minutes of opening ÷ tickets signed "
        "for, and those not signed for and more than an hour old",
    )


class StreetFigures(Schema):
    street: str
    street_name: str
    total: int
    open: int
    overdue: int
    closure_rate: float | None
    on_time_response_rate: float | None
    on_time_resolution_rate: float | None
    reopen_rate: float | None
    median_working_hours_to_respond: float | None
    median_working_hours_to_resolve: float | None
    median_minutes_to_acknowledge: float | None = Field(
        default=None, description="opening to the office's first acknowledgement"
    )
    acknowledged_within_1h_rate: float | None = Field(
        default=None,
        description="signed for within 60 minutes ÷ signed for, or unsigned past the hour",
    )


class UnitFigures(Schema):
    unit: str
    unit_name: str
    kind: str
    dispatched: int
    done: int = Field(description="reported done at least once")
    on_time_rate: float | None = Field(description="done by the deadline it had, of those done")
    median_working_hours_to_done: float | None
    rework_rate: float | None = Field(description="failed checks ÷ reports of work done")
    return_rate: float | None = Field(description="handed back ÷ dispatched")
    median_minutes_to_acknowledge: float | None = Field(
        default=None, description="minutes from dispatch to the crew's first acknowledgement"
    )
    acknowledged_within_1h_rate: float | None = Field(
        default=None,
        description="signed for within 60 minutes of dispatch ÷ dispatches signed for, and "
        "those not signed for and dispatched more than an hour ago",
    )

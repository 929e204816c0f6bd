import uuid

from pydantic import Field

from app.models import TicketStatus
from app.schemas.common import InputSchema, Schema, UtcTime
from app.schemas.reports import RoutedArea
from app.services.workflow import TicketAction


class ActionCreate(InputSchema):
    action: TicketAction
    note: str | None = Field(default=None, max_length=2000)
    reason: str | None = Field(default=None, max_length=32,
                               description="reject: spam, not_actionable, "
                                           "not_our_responsibility or other")
    assignee: str | None = Field(default=None, max_length=200)
    to_street: str | None = Field(default=None, max_length=32)
    into_ticket: uuid.UUID | None = None
    priority: int | None = None


class RiderRef(Schema):
    platform: str
    pseudonym: str


class TicketReport(Schema):
    id: str
    rider: RiderRef
    lat: float
    lon: float
    description: str | None
    address_hint: str | None
    media_ids: list[str]
    observed_at: UtcTime
    received_at: UtcTime


class TicketEventRead(Schema):
    id: str
    type: str
    actor: str  # "rider", "system", or the staff member's username
    from_status: TicketStatus | None
    to_status: TicketStatus | None
    note: str | None
    at: UtcTime


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
    reports: list[TicketReport]
    events: list[TicketEventRead]


class QueueTicket(TicketFields):
    street: str | None
    community: str | None


class OfficeStats(Schema):
    total: int
    by_status: dict[str, int]
    by_category: dict[str, int]
    by_community: dict[str, int]
    open: int
    overdue: int
    median_hours_to_accept: float | None
    median_hours_to_resolve: float | None
    resolved_within_sla: float | None = None

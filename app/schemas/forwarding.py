from pydantic import Field

from app.open311 import Forwarding
from app.schemas.common import CATEGORY_CODE, InputSchema, Read, Schema, UtcTime


class ForwardCreate(InputSchema):
    category: str = Field(pattern=CATEGORY_CODE)
    street: str | None = Field(default=None, max_length=32, description="only this street's")
    name: str = Field(
        min_length=1, max_length=200, description="the external system, as staff call it"
    )
    endpoint: str = Field(
        max_length=2048,
        description="the Open311 server's base, e.g. https://city.example/open311/v2",
        json_schema_extra={"format": "uri"},
    )
    api_key: str = Field(min_length=1, max_length=256)
    jurisdiction_id: str | None = Field(default=None, max_length=64)
    service_code: str = Field(min_length=1, max_length=64)
    trigger: str = Field(default="accepted", pattern="^(accepted|created)$")


class ForwardRead(Read):
    id: int
    category_id: int
    street_id: int | None
    name: str
    endpoint: str
    jurisdiction_id: str | None
    service_code: str
    trigger: str
    active: bool
    created_at: UtcTime


class ForwardAttemptRead(Read):
    kind: str
    attempted_at: UtcTime
    status_code: int | None
    error: str | None
    external_status: str | None
    duration_ms: int


class ForwardingRead(Schema):
    system: str
    endpoint: str
    state: str = Field(description="pending, posted, closed or failed")
    external_id: str | None = Field(description="the service_request_id the system gave it")
    external_status: str | None
    posted_at: UtcTime | None
    closed_at: UtcTime | None
    attempts: list[ForwardAttemptRead]

    @classmethod
    def of(cls, f: Forwarding) -> "ForwardingRead":
        row = f.forwarded
        return cls(
            system=f.forward.name,
            endpoint=f.forward.endpoint,
            state=row.state,
            external_id=row.external_id,
            external_status=row.external_status,
            posted_at=row.posted_at,
            closed_at=row.closed_at,
            attempts=[ForwardAttemptRead.of(a) for a in f.attempts],
        )

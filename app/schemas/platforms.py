from typing import Any

from pydantic import Field

from app.schemas.common import Id, InputSchema, Read, Schema, UtcTime


class PlatformCreate(InputSchema):
    code: str = Field(pattern=r"^[a-z][a-z0-9_-]{1,63}$", examples=["meituan"])
    name: str = Field(min_length=1, max_length=200, examples=["美团"])


class PlatformRead(Schema):
    code: str
    name: str
    api_key_prefix: str
    active: bool
    created_at: UtcTime


class PlatformCreated(Schema):
    code: str
    name: str
    api_key: str = Field(description="shown once; only its hash is stored")


class RiderTokenCreate(InputSchema):
    rider_id: str = Field(min_length=1, max_length=128, description="the platform's own rider id")
    display_name: str | None = Field(default=None, max_length=100)


class TokenRider(Schema):
    id: str
    rider_id: str


class RiderTokenRead(Schema):
    token: str
    token_type: str = "bearer"
    expires_at: UtcTime
    rider: TokenRider

    @classmethod
    def of(cls, issued: Any) -> "RiderTokenRead":
        """``issued``: a rider token issued (``riders.issue_rider_token``)."""
        return cls(
            token=issued.issued.token,
            expires_at=issued.issued.expires_at,
            rider=TokenRider(id=str(issued.rider.id), rider_id=issued.rider.external_id),
        )


class RiderRead(Read):
    id: Id
    rider_id: str = Field(validation_alias="external_id")
    display_name: str | None
    pseudonym: str
    created_at: UtcTime
    last_token_at: UtcTime | None


class Contribution(Schema):
    reports: int = Field(description="reports received")
    tickets_opened: int = Field(description="of them, the first report of their ticket")
    joined: int = Field(description="of them, confirmations of a ticket already open")
    accepted: int = Field(description="of them, on a ticket an office accepted")
    resolved: int = Field(description="of them, on a ticket now resolved or closed")
    rejected: int = Field(description="of them, on a ticket the office rejected")
    verifications: int
    points: int = Field(description="the sum of the ledger's lines")


class RiderStats(Contribution):
    rider_id: str = Field(description="the platform's own rider id")
    display_name: str | None


class RiderStatsDetail(RiderStats):
    by_category: dict[str, Contribution]


class SummaryRow(Contribution):
    day: str | None = Field(default=None, description="group_by=day: a date in `tz`")
    category: str | None = None
    street: str | None = Field(
        default=None, description="group_by=street: its code; null for reports outside every street"
    )
    street_name: str | None = None


class Summary(Schema):
    group_by: str
    tz: str
    from_: UtcTime = Field(serialization_alias="from")
    to: UtcTime
    items: list[SummaryRow]

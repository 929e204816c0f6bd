from pydantic import Field

from app.schemas.common import InputSchema, Schema, UtcTime


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


class RiderRef(Schema):
    id: str
    rider_id: str


class RiderTokenRead(Schema):
    token: str
    token_type: str = "bearer"
    expires_at: UtcTime
    rider: RiderRef


class RiderRead(Schema):
    id: str
    rider_id: str
    display_name: str | None
    pseudonym: str
    created_at: UtcTime
    last_token_at: UtcTime | None

from pydantic import Field

from app.models import Staff, StaffRole
from app.schemas.common import InputSchema, Schema, UtcTime


class StaffCreate(InputSchema):
    username: str = Field(min_length=3, max_length=64)
    role: StaffRole
    area: str | None = Field(default=None, description="street code (officer), district code")
    password: str | None = Field(
        default=None, max_length=256, description="generated and returned when omitted"
    )
    display_name: str | None = Field(default=None, max_length=100)


class StaffCreated(Schema):
    username: str
    password: str
    role: StaffRole
    area: str | None


class StaffRead(Schema):
    id: str
    username: str
    display_name: str | None
    role: StaffRole
    area: str | None
    active: bool
    created_at: UtcTime

    @classmethod
    def of(cls, staff: Staff) -> "StaffRead":
        return cls(
            id=str(staff.id),
            username=staff.username,
            display_name=staff.display_name,
            role=staff.role,
            area=staff.area.code if staff.area else None,
            active=staff.active,
            created_at=staff.created_at,
        )


class AccessToken(Schema):
    access_token: str
    token_type: str = "bearer"
    expires_at: UtcTime
    role: StaffRole
    area: str | None

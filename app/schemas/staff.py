from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from app.models import Staff, StaffRole
from app.schemas.common import Id, InputSchema, Read, Schema, UtcTime
from app.security import IssuedToken
from app.staff import Account


class StaffCreate(InputSchema):
    username: str = Field(min_length=3, max_length=64)
    role: StaffRole
    area: str | None = Field(
        default=None, description="street code (officer), district code (district)"
    )
    unit: str | None = Field(default=None, max_length=64, description="unit code (crew)")
    password: str | None = Field(
        default=None, max_length=256, description="generated and returned when omitted"
    )
    display_name: str | None = Field(default=None, max_length=100)

    def account(self) -> Account:
        return Account(
            self.username,
            self.role,
            self.area,
            self.display_name,
            self.password,
            unit_code=self.unit,
        )


class StaffCreated(Schema):
    username: str
    password: str
    role: StaffRole
    area: str | None
    unit: str | None
    display_name: str | None


def _code_of(area: Any) -> Any:
    return getattr(area, "code", area)


# The code of the area a staff member works in (None: the whole city).
AreaCodeOf = Annotated[str | None, BeforeValidator(_code_of)]


class StaffRead(Read):
    id: Id
    username: str
    display_name: str | None
    role: StaffRole
    area: AreaCodeOf
    unit: str | None = Field(description="the code of a crew member's unit")
    active: bool
    may_publish_alerts: bool
    created_at: UtcTime

    @classmethod
    def with_unit(cls, staff: Staff, unit_codes: Mapping[int, str]) -> "StaffRead":
        """The account, its unit named by code from ``unit_codes`` (by unit id)."""
        unit = unit_codes.get(staff.unit_id) if staff.unit_id is not None else None
        return cls.of(_UnitCode(unit), staff)


class _UnitCode:
    """The one attribute a staff account lacks to be read: its unit's code."""

    __slots__ = ("unit",)

    def __init__(self, unit: str | None) -> None:
        self.unit = unit


class AccessToken(Schema):
    access_token: str
    token_type: str = "bearer"
    expires_at: UtcTime
    role: StaffRole
    area: str | None

    @classmethod
    def of(cls, staff: Staff, token: IssuedToken) -> "AccessToken":
        return cls(
            access_token=token.token,
            expires_at=token.expires_at,
            role=staff.role,
            area=staff.area.code if staff.area else None,
        )


class PasswordChange(InputSchema):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=10, max_length=1024)


class ActiveChange(InputSchema):
    active: bool


class StaffChange(InputSchema):
    """What an admin changes of an account: whether it is enabled, whether it may publish
    area alerts (district staff always may), the name it is shown by (null: none)."""

    active: bool | None = None
    may_publish_alerts: bool | None = None
    display_name: str | None = Field(default=None, max_length=100)

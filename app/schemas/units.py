from typing import Annotated, Any

from pydantic import Field, field_validator

from app.models import Unit, UnitKind
from app.schemas.common import InputSchema, Schema
from app.units import UNIT_CODE, UnitChange, UnitInput

# A street's or category's code, as a unit's lists name them.
Code = Annotated[str, Field(min_length=1, max_length=64)]
# Enough for every street of a large city.
MAX_CODES = 500


class UnitCreate(InputSchema):
    code: str = Field(pattern=UNIT_CODE, examples=["cg_310105002"])
    name: str = Field(min_length=1, max_length=200, examples=["江苏路街道城管中队"])
    kind: UnitKind
    streets: list[Code] = Field(
        min_length=1, max_length=MAX_CODES, description="codes of the streets it serves"
    )
    categories: list[Code] | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_CODES,
        description="codes of the categories it handles; null: every category",
    )
    active: bool = True

    def unit_input(self) -> UnitInput:
        return UnitInput(
            code=self.code,
            name=self.name,
            kind=self.kind,
            streets=self.streets,
            categories=self.categories,
            active=self.active,
        )


class UnitPatch(InputSchema):
    """Only the fields sent change. ``categories`` sent as null: every category."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    kind: UnitKind | None = None
    streets: list[Code] | None = Field(default=None, min_length=1, max_length=MAX_CODES)
    categories: list[Code] | None = Field(default=None, min_length=1, max_length=MAX_CODES)
    active: bool | None = None

    @field_validator("name", "kind", "streets", "active", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        # Called only for the fields sent: null is no value for these.
        if value is None:
            raise ValueError("may not be null (leave it out to keep it)")
        return value

    def change(self) -> UnitChange:
        return UnitChange(
            name=self.name,
            kind=self.kind,
            streets=self.streets,
            categories=self.categories,
            change_categories="categories" in self.model_fields_set,
            active=self.active,
        )


class UnitRead(Schema):
    code: str
    name: str
    kind: UnitKind
    streets: list[str] = Field(description="codes of the streets it serves")
    categories: list[str] | None = Field(description="codes of its categories; null: every one")
    active: bool

    @classmethod
    def of(cls, unit: Unit) -> "UnitRead":
        return cls(
            code=unit.code,
            name=unit.name,
            kind=unit.kind,
            streets=sorted(street.code for street in unit.streets),
            categories=(None if unit.all_categories else sorted(c.code for c in unit.categories)),
            active=unit.active,
        )


class UnitList(Schema):
    items: list[UnitRead]

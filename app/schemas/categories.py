from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from app.models import Category, Priority
from app.schemas.common import InputSchema, Schema, UtcTime
from app.tickets import SlaClock

MAX_POINTS = 1000

# A name must fit its VARCHAR(200) column and points its integer column: PostgreSQL refuses
# what does not fit, and that must be a 422 naming the field, not a 500.
Name = Annotated[str, Field(min_length=1, max_length=200)]
Points = Annotated[int, Field(ge=0, le=MAX_POINTS)]


class LocalizedName(Schema):
    zh: Name
    en: Name


class CategoryPoints(Schema):
    open: Points = Field(description="the report that opens a ticket the office accepts")
    confirm: Points = Field(description="a report that joins a ticket, once it is accepted")
    resolve: Points = Field(description="more for the opener when the ticket is resolved")
    verify: Points = Field(description="a rider's verification of a resolution")


class Classification(Schema):
    """Where the category stands in the national classification of urban-management
    components and events (GB/T 30428.2, formerly CJ/T 214)."""

    kind: Literal["event", "component"] = Field(description="事件 (event) or 部件 (component)")
    class_code: str = Field(pattern=r"^[0-9]{2}$", examples=["05"])
    class_name: Name = Field(examples=["街面秩序"])
    subclass_code: str = Field(pattern=r"^[0-9]{4}$", examples=["0506"])
    subclass_name: Name = Field(examples=["非机动车乱停放"])

    @field_validator("subclass_code")
    @classmethod
    def _within_its_class(cls, code: str, info: ValidationInfo) -> str:
        parent = info.data.get("class_code")
        if parent is not None and not code.startswith(parent):
            raise ValueError(f"a subclass of class {parent} begins with {parent}")
        return code


class CategoryRead(Schema):
    code: str
    name: LocalizedName
    description: str
    department: str
    priority: int
    respond_within_h: int
    resolve_within_h: int
    sla_clock: SlaClock = Field(
        description="how the hours count: hours (day and night) or working_hours (office "
        "hours of working days on the working calendar)"
    )
    standard: Classification | None
    dedup_radius_m: int
    dedup_window_h: int
    points: CategoryPoints
    after_photo_required: bool = Field(
        description="a unit reporting its work done must show a photo of it"
    )

    @staticmethod
    def fields_of(c: Category) -> dict[str, Any]:
        return {
            "code": c.code,
            "name": LocalizedName(zh=c.name_zh, en=c.name_en),
            "description": c.description,
            "department": c.department,
            "priority": c.priority,
            "respond_within_h": c.respond_within_h,
            "resolve_within_h": c.resolve_within_h,
            "sla_clock": c.sla_clock,
            "standard": Classification(**c.standard) if c.standard else None,
            "dedup_radius_m": c.dedup_radius_m,
            "dedup_window_h": c.dedup_window_h,
            "points": CategoryPoints(
                open=c.points_open,
                confirm=c.points_confirm,
                resolve=c.points_resolve,
                verify=c.points_verify,
            ),
            "after_photo_required": c.after_photo_required,
        }

    @classmethod
    def of(cls, category: Category) -> "CategoryRead":
        return cls(**cls.fields_of(category))


class CategoryAdminRead(CategoryRead):
    active: bool
    updated_at: UtcTime

    @classmethod
    def of(cls, category: Category) -> "CategoryAdminRead":
        return cls(
            **cls.fields_of(category), active=category.active, updated_at=category.updated_at
        )


class CategoryPut(InputSchema):
    name: LocalizedName
    description: str = Field(default="", max_length=2000)
    department: str = Field(default="", max_length=200)
    priority: int = Field(ge=min(Priority).value, le=max(Priority).value)
    respond_within_h: int = Field(ge=1, le=24 * 90)
    resolve_within_h: int = Field(ge=1, le=24 * 365)
    sla_clock: SlaClock = SlaClock.HOURS
    standard: Classification | None = None
    dedup_radius_m: int = Field(ge=0, le=500)
    dedup_window_h: int = Field(default=72, ge=1, le=24 * 30)
    points: CategoryPoints = CategoryPoints(open=10, confirm=2, resolve=5, verify=3)
    active: bool = True
    after_photo_required: bool = False

    @field_validator("resolve_within_h")
    @classmethod
    def _fixed_no_sooner_than_answered(cls, hours: int, info: ValidationInfo) -> int:
        # A new ticket is overdue once its answer is late; a category that wanted the
        # fix before the answer would make a new ticket late by one deadline and not the
        # other (the database refuses it too: ck_categories_resolve_after_respond).
        respond = info.data.get("respond_within_h")
        if respond is not None and hours < respond:
            raise ValueError(
                f"must be at least respond_within_h ({respond}): a ticket is "
                "answered before it is fixed"
            )
        return hours


def category_fields(body: CategoryPut) -> dict[str, object]:
    """The model's columns from an admin's PUT body."""
    data = body.model_dump(exclude={"name", "points"}, mode="json")
    data.update(
        name_zh=body.name.zh,
        name_en=body.name.en,
        points_open=body.points.open,
        points_confirm=body.points.confirm,
        points_resolve=body.points.resolve,
        points_verify=body.points.verify,
    )
    return data

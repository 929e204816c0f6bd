from enum import IntEnum

from sqlalchemy import JSON, CheckConstraint, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps


class Priority(IntEnum):
    """How urgent a category's tickets are (each ticket starts with its category's, and an
    office may change it)."""

    HIGH = 1
    NORMAL = 2
    LOW = 3


class Category(Timestamps, Base):
    """A kind of problem riders report (an Open311 "service"), with its SLA and points."""

    __tablename__ = "categories"
    # Answered no later than fixed: a new ticket's one deadline that matters is then its
    # answer (see ``Ticket.is_overdue``).
    __table_args__ = (
        CheckConstraint("resolve_within_h >= respond_within_h", name="resolve_after_respond"),
        CheckConstraint("sla_clock IN ('hours', 'working_hours')", name="sla_clock"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name_zh: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    department: Mapped[str] = mapped_column(String(200), default="")
    priority: Mapped[int] = mapped_column(default=Priority.NORMAL.value)
    respond_within_h: Mapped[int]
    resolve_within_h: Mapped[int]
    # How the hours above are counted: "hours" (day and night) or "working_hours" (office
    # hours of working days, on the working calendar).
    sla_clock: Mapped[str] = mapped_column(String(16), default="hours")
    # The national classification (GB/T 30428.2): {"kind": "event" | "component",
    # "class_code", "class_name", "subclass_code", "subclass_name"}.
    standard: Mapped[dict[str, str] | None] = mapped_column(JSON)
    dedup_radius_m: Mapped[int]
    dedup_window_h: Mapped[int] = mapped_column(default=72)
    points_open: Mapped[int] = mapped_column(default=10)
    points_confirm: Mapped[int] = mapped_column(default=2)
    points_resolve: Mapped[int] = mapped_column(default=5)
    points_verify: Mapped[int] = mapped_column(default=3)
    active: Mapped[bool] = mapped_column(default=True)
    # A unit reporting its work done must show it (an after-photo).
    after_photo_required: Mapped[bool] = mapped_column(default=False, server_default="0")
    sort_order: Mapped[int] = mapped_column(default=0)

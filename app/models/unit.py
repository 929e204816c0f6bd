import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, ForeignKey, Index, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.area import Area
from app.models.base import Base, Timestamps, UtcDateTime, UuidPk, str_enum
from app.models.category import Category


class UnitKind(StrEnum):
    DEPARTMENT = "department"  # a street's own team, e.g. its 城管中队
    CONTRACTOR = "contractor"  # e.g. a road-maintenance company under contract
    UTILITY = "utility"  # the owner of pipes, cables, manhole covers
    PROPERTY = "property"  # a residential compound's property company


unit_streets = Table(
    "unit_streets",
    Base.metadata,
    Column("unit_id", ForeignKey("units.id"), primary_key=True),
    Column("street_id", ForeignKey("areas.id"), primary_key=True, index=True),
)
unit_categories = Table(
    "unit_categories",
    Base.metadata,
    Column("unit_id", ForeignKey("units.id"), primary_key=True),
    Column("category_id", ForeignKey("categories.id"), primary_key=True),
)


class Unit(Timestamps, Base):
    """A responsible unit (处置单位): those who fix what a street office dispatches to
    them, in the streets and (unless all) the categories they serve."""

    __tablename__ = "units"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[UnitKind] = mapped_column(str_enum(UnitKind))
    # Serves every category (its ``categories`` are then empty).
    all_categories: Mapped[bool] = mapped_column(default=True)
    active: Mapped[bool] = mapped_column(default=True)

    streets: Mapped[list[Area]] = relationship(secondary=unit_streets, lazy="selectin")
    categories: Mapped[list[Category]] = relationship(secondary=unit_categories, lazy="selectin")


class Dispatch(UuidPk, Base):
    """A ticket sent to a unit, from dispatch until the unit is done with it (the office
    passed its check, it returned the ticket, or the ticket went to another unit): what
    the unit did with it and how long it took, for the unit's work list and its figures."""

    __tablename__ = "dispatches"
    __table_args__ = (
        Index("ix_dispatches_unit_id_dispatched_at", "unit_id", "dispatched_at"),
        Index("ix_dispatches_ticket_id_dispatched_at", "ticket_id", "dispatched_at"),
    )

    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"))
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    dispatched_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # The ticket's deadline when it was dispatched (moved by an approved extension).
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # The unit's last report of the work done, and how many it made (a failed check
    # sends the ticket back for another).
    done_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    done_working_h: Mapped[float | None]
    done_count: Mapped[int] = mapped_column(default=0)
    check_fail_count: Mapped[int] = mapped_column(default=0)
    passed_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    returned_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    return_reason: Mapped[str | None] = mapped_column(String(32))
    return_note: Mapped[str | None] = mapped_column(Text)
    # No longer the unit's to act on (passed, returned, or dispatched elsewhere).
    ended_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    unit: Mapped[Unit] = relationship(lazy="joined")

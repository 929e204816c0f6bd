from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.area import Area
from app.models.base import Base, Timestamps, UtcDateTime, UuidPk, str_enum


class StaffRole(StrEnum):
    OFFICER = "officer"
    DISTRICT = "district"
    ADMIN = "admin"
    CREW = "crew"  # a member of a responsible unit (处置单位)


class Staff(UuidPk, Timestamps, Base):
    """A person who logs in: street-office officer, district user, operator (admin), or a
    member of a responsible unit's crew."""

    __tablename__ = "staff"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str | None] = mapped_column(String(100))
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[StaffRole] = mapped_column(str_enum(StaffRole))
    # The street of an officer, the district of a district user; none for an admin.
    area_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    # The unit of a member of its crew.
    unit_id: Mapped[int | None] = mapped_column(ForeignKey("units.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Granted by an admin: may publish area alerts though not district staff.
    may_publish_alerts: Mapped[bool] = mapped_column(default=False)
    # Tokens issued before this are no longer honoured (signed out, password changed).
    tokens_valid_after: Mapped[datetime | None] = mapped_column(UtcDateTime)

    area: Mapped[Area | None] = relationship(lazy="joined")

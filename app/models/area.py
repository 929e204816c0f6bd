from enum import StrEnum

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Timestamps, str_enum


class AreaLevel(StrEnum):
    DISTRICT = "district"
    STREET = "street"
    COMMUNITY = "community"

    @property
    def depth(self) -> int:
        """0 for a district, 1 for a street, 2 for a community."""
        return _DEPTHS[self]

    @property
    def parent_level(self) -> "AreaLevel | None":
        return {AreaLevel.STREET: AreaLevel.DISTRICT, AreaLevel.COMMUNITY: AreaLevel.STREET}.get(
            self
        )


_DEPTHS = {level: depth for depth, level in enumerate(AreaLevel)}


class Area(Timestamps, Base):
    """A district (区), street (街道/镇) or community (社区/居委会) with its boundary."""

    __tablename__ = "areas"

    # An integer key: SpatiaLite's R*Tree index is keyed by ROWID.
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str | None] = mapped_column(String(200))
    level: Mapped[AreaLevel] = mapped_column(str_enum(AreaLevel), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    # Where the boundary comes from, e.g. "synthetic demo partition, not official".
    source: Mapped[str | None] = mapped_column(String(200))
    # Deferred: a district's outline is large, and most reads of an area (a staff
    # member's scope, a ticket's street) need only its code and name.
    boundary: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=True, nullable=False),
        deferred=True,
    )

    parent: Mapped["Area | None"] = relationship(remote_side=[id], lazy="raise")

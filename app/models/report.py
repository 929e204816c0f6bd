import uuid
from datetime import datetime
from enum import StrEnum

from geoalchemy2 import Geometry, WKBElement
from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.geo import CoordSys
from app.models.base import Base, UtcDateTime, UuidPk, str_enum
from app.models.ticket import Ticket


class ReportOutcome(StrEnum):
    NEW_TICKET = "new_ticket"
    JOINED_TICKET = "joined_ticket"


class Report(UuidPk, Base):
    """What one rider saw at one moment: a point, a category, photos, words."""

    __tablename__ = "reports"
    __table_args__ = (
        # A rider's figures by category come from the index alone (PostgreSQL).
        Index(
            "ix_reports_rider_id_received_at",
            "rider_id",
            "received_at",
            postgresql_include=["category_id", "counted_as"],
        ),
        Index("ix_reports_platform_id_received_at", "platform_id", "received_at"),
        # A ticket's reports; and whether a rider has reported a ticket already (one
        # award per rider and ticket), asked of every report that joins one.
        Index("ix_reports_ticket_id_rider_id", "ticket_id", "rider_id"),
    )

    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"))
    # The rider's platform, copied so that a platform's numbers are one index range.
    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"))
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"))
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    outcome: Mapped[ReportOutcome] = mapped_column(str_enum(ReportOutcome))
    # How the rider's totals count this report now ("<outcome>/<standing>", see
    # app.riders.points); compared with what it should be after every change.
    counted_as: Mapped[str | None] = mapped_column(String(32))
    location: Mapped[WKBElement] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False, nullable=False)
    )
    # As sent, before conversion to WGS-84.
    input_lat: Mapped[float]
    input_lon: Mapped[float]
    input_coord_sys: Mapped[CoordSys] = mapped_column(str_enum(CoordSys, length=8))
    accuracy_m: Mapped[float | None]
    description: Mapped[str | None] = mapped_column(Text)
    address_hint: Mapped[str | None] = mapped_column(String(200))
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    community_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    observed_at: Mapped[datetime] = mapped_column(UtcDateTime)
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Hidden by the office: its words and photos leave every public output (the office,
    # the rider and the rider's platform still see them).
    hidden_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    hidden_reason: Mapped[str | None] = mapped_column(String(32))

    # Declared so that one flush inserts ticket, report and photo links in FK order;
    # never loaded lazily.
    ticket: Mapped[Ticket] = relationship(lazy="raise")
    media_links: Mapped[list["ReportMedia"]] = relationship(lazy="raise")


class ReportMedia(Base):
    __tablename__ = "report_media"

    report_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("reports.id"), primary_key=True)
    media_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("media.id"), primary_key=True, index=True
    )
    position: Mapped[int]

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import ClassVar

from sqlalchemy import BigInteger, ForeignKey, Index, inspect
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UtcDateTime, UuidPk, str_enum


class PointsReason(StrEnum):
    OPENED_ACCEPTED = "opened_accepted"  # the report that opened a ticket the office accepted
    CONFIRMED_ACCEPTED = "confirmed_accepted"  # a report that joined an accepted ticket
    OPENED_RESOLVED = "opened_resolved"  # the opener, when the ticket is resolved
    VERIFIED = "verified"  # a verification of a resolution


class PointsEntry(UuidPk, Base):
    """One line of the points ledger. Appended, never updated or deleted (the database
    refuses updates): what changes an earlier award is a correcting line of the opposite
    sign, naming the event that caused it. A rider's points are the sum of its lines."""

    __tablename__ = "points_ledger"
    __table_args__ = (
        # A rider's points by category come from the index alone (PostgreSQL).
        Index(
            "ix_points_ledger_rider_id_created_at",
            "rider_id",
            "created_at",
            postgresql_include=["category_id", "points"],
        ),
        Index("ix_points_ledger_platform_id_created_at", "platform_id", "created_at"),
    )

    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"))
    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"))
    reason: Mapped[PointsReason] = mapped_column(str_enum(PointsReason, length=32))
    points: Mapped[int]
    ticket_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("tickets.id"))
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ticket_events.id"))
    report_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("reports.id"), index=True)
    verification_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("verifications.id"))
    # Where and what, as they were when the line was written: for the platform's summary.
    category_id: Mapped[int] = mapped_column(ForeignKey("categories.id"))
    street_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR, DAY = timedelta(hours=1), timedelta(days=1)


def hour_of(at: datetime) -> int:
    """The hour an hourly activity row counts ``at`` in: Unix time // 3600, exactly."""
    return (at - EPOCH) // HOUR


def day_of(at: datetime) -> int:
    """The (UTC) day a daily activity row counts ``at`` in: Unix time // 86400."""
    return (at - EPOCH) // DAY


def activity_key(model: type["Contribution"]) -> tuple[str, ...]:
    """The names of an activity table's key columns, in order: the tuples that name its
    rows while a settlement gathers them are in this order."""
    return tuple(column.name for column in inspect(model).primary_key)


class Contribution:
    """What riders contributed, counted: the columns the precomputed tables share."""

    COUNTERS: ClassVar[tuple[str, ...]]  # the names of the columns below, in order

    reports: Mapped[int] = mapped_column(default=0)
    tickets_opened: Mapped[int] = mapped_column(default=0)
    joined: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    resolved: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    verifications: Mapped[int] = mapped_column(default=0)
    points: Mapped[int] = mapped_column(default=0)


Contribution.COUNTERS = tuple(name for name in Contribution.__annotations__ if name != "COUNTERS")


class RiderTotals(Contribution, Base):
    """A rider's all-time numbers, kept in step with reports, tickets and the ledger in
    the same transactions (so the platform's rider list is one indexed read). Always
    equal to what the base tables say; a test recomputes and compares."""

    __tablename__ = "rider_totals"
    __table_args__ = (
        Index("ix_rider_totals_platform_id_points_rider_id", "platform_id", "points", "rider_id"),
    )

    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"), primary_key=True)
    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"))


class PlatformActivity(Contribution, Base):
    """A platform's riders' numbers in one hour (UTC), for one category and street: the
    summary reads these instead of every report. Kept in step with reports, the ledger
    and verifications in the same transactions, by the same differences as the totals."""

    __tablename__ = "platform_activity"

    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # hour_of(the time)
    category_id: Mapped[int] = mapped_column(primary_key=True)
    street_key: Mapped[int] = mapped_column(primary_key=True)  # the street's id; 0: none


class RiderActivity(Contribution, Base):
    """One rider's numbers in one hour (UTC): a rider list over a window sums these, one
    index range of the platform's hours, instead of counting every report, verification
    and ledger line in it. Kept in step in the same transactions, by the same
    differences as the totals; clustered by its key on SQLite."""

    __tablename__ = "rider_activity"
    __table_args__ = ({"sqlite_with_rowid": False},)

    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # hour_of(the time)
    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"), primary_key=True)


class RiderDailyActivity(Contribution, Base):
    """One rider's numbers in one UTC day: the sums of its hours in ``rider_activity``,
    kept in step with them. A rider list over weeks reads a day's row where it would
    read each of the day's hours."""

    __tablename__ = "rider_daily_activity"
    __table_args__ = ({"sqlite_with_rowid": False},)

    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"), primary_key=True)
    day: Mapped[int] = mapped_column(BigInteger, primary_key=True)  # day_of(the time)
    rider_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("riders.id"), primary_key=True)

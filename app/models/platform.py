import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, Timestamps, UtcDateTime, UuidPk


class Platform(UuidPk, Timestamps, Base):
    """A delivery platform (Meituan, Ele.me …) whose servers call the platform API."""

    __tablename__ = "platforms"

    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the API key: keys are 256 random bits, so a fast hash is enough and
    # lets every request find its platform with one indexed lookup.
    api_key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    api_key_prefix: Mapped[str] = mapped_column(String(32))
    # The key replaced by the last rotation, still honoured until it expires.
    previous_key_hash: Mapped[str | None] = mapped_column(String(64), index=True)
    previous_key_expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    active: Mapped[bool] = mapped_column(default=True)


class Rider(UuidPk, Timestamps, Base):
    """A courier, known to us by its platform and the platform's own rider id."""

    __tablename__ = "riders"
    __table_args__ = (UniqueConstraint("platform_id", "external_id"),)

    platform_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("platforms.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(128))
    display_name: Mapped[str | None] = mapped_column(String(100))
    # What street offices see instead of a name or phone number.
    pseudonym: Mapped[str] = mapped_column(String(32))
    last_token_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # Erased at the rider's request: a tombstone, kept so that anonymous sums add up.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime)

    platform: Mapped[Platform] = relationship(lazy="joined")

    @property
    def is_active(self) -> bool:
        """Neither erased nor of a platform that was switched off: may report."""
        return self.erased_at is None and self.platform.active

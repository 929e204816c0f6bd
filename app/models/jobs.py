import uuid
from datetime import UTC, datetime

from sqlalchemy import String, Uuid
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from app.models.base import Base, UtcDateTime


class JobMark(Base):
    """How far a background job has got through rows in the order of their time: rows
    up to ``at`` (and, at ``at`` itself, up to ``after_id``) are done, so the next run
    starts there instead of at the beginning."""

    __tablename__ = "job_marks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    after_id: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.UUID(int=0))

    @classmethod
    def held(cls, session: Session, name: str, *, start: datetime | None = None) -> "JobMark":
        """The job's mark, locked (two workers take turns); made at ``start`` (else the
        beginning of time) if the job has none yet."""
        found = session.get(cls, name, with_for_update=True, populate_existing=True)
        if found is not None:
            return found
        try:
            with session.begin_nested():
                at = start or datetime(1970, 1, 1, tzinfo=UTC)
                session.add(cls(name=name, at=at, after_id=uuid.UUID(int=0)))
        except IntegrityError:
            pass  # another worker made it a moment ago
        return session.get_one(cls, name, with_for_update=True, populate_existing=True)

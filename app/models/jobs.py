import uuid
from datetime import datetime

from sqlalchemy import String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UtcDateTime


class JobMark(Base):
    """How far a background job has got through rows in the order of their time: rows
    up to ``at`` (and, at ``at`` itself, up to ``after_id``) are done, so the next run
    starts there instead of at the beginning."""

    __tablename__ = "job_marks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    after_id: Mapped[uuid.UUID] = mapped_column(Uuid, default=uuid.UUID(int=0))

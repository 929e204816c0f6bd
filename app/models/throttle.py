from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, UtcDateTime


class SignInThrottle(Base):
    """Failed sign-ins of one account at one client address (``pair:<name>|<address>``),
    of one address (``ip:<address>``) or of one account from everywhere
    (``user:<name>``), and until when the next attempt must wait."""

    __tablename__ = "sign_in_throttles"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    blocked_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UtcDateTime)

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, Timestamps


class WorkingCalendarYear(Timestamps, Base):
    """One year of the working calendar: its public holidays, the weekends made working
    days (调休), and the office hours (app.tickets.working_time)."""

    __tablename__ = "working_calendars"

    year: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    tz: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    office_start: Mapped[str] = mapped_column(String(5), default="09:00")  # HH:MM
    office_end: Mapped[str] = mapped_column(String(5), default="17:30")
    holidays: Mapped[list[str]] = mapped_column(JSON)  # ISO dates
    workdays: Mapped[list[str]] = mapped_column(JSON)
    # Where it came from: "chinesecalendar 1.11.0", or the admin who last set it.
    source: Mapped[str] = mapped_column(String(200))

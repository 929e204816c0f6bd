from datetime import date, time

from pydantic import Field

from app.models import WorkingCalendarYear
from app.schemas.common import InputSchema, Schema, UtcTime
from app.tickets import YearInput

HHMM = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class OfficeHours(Schema):
    start: str = Field(default="09:00", pattern=HHMM, examples=["09:00"])
    end: str = Field(default="17:30", pattern=HHMM, examples=["17:30"])


class CalendarPut(InputSchema):
    holidays: list[date] = Field(
        max_length=366, description="public holidays, weekends among them included or not"
    )
    workdays: list[date] = Field(
        default_factory=list,
        max_length=366,
        description="weekend days made working days (调休)",
    )
    office_hours: OfficeHours = OfficeHours()
    tz: str = Field(default="Asia/Shanghai", min_length=1, max_length=64)

    def as_input(self) -> YearInput:
        return YearInput(
            holidays=self.holidays,
            workdays=self.workdays,
            start=time.fromisoformat(self.office_hours.start),
            end=time.fromisoformat(self.office_hours.end),
            tz=self.tz,
        )


class CalendarRead(Schema):
    year: int
    holidays: list[date]
    workdays: list[date]
    office_hours: OfficeHours
    tz: str
    source: str = Field(description="chinesecalendar <version>, or the admin who set it")
    updated_at: UtcTime

    @classmethod
    def of(cls, row: WorkingCalendarYear) -> "CalendarRead":
        return cls(
            year=row.year,
            holidays=[date.fromisoformat(d) for d in row.holidays],
            workdays=[date.fromisoformat(d) for d in row.workdays],
            office_hours=OfficeHours(start=row.office_start, end=row.office_end),
            tz=row.tz,
            source=row.source,
            updated_at=row.updated_at,
        )

from datetime import UTC, datetime
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer

T = TypeVar("T")


def _rfc3339_utc(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


# Responses carry times in UTC with a "Z".
UtcTime = Annotated[datetime, PlainSerializer(_rfc3339_utc, return_type=str)]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class ProblemRead(BaseModel):
    """RFC 9457 problem details, as every error of this API is rendered."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = None

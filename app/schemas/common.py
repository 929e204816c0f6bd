from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, field_validator

from app.text import has_control_characters, rfc3339_utc

T = TypeVar("T")
CATEGORY_CODE = r"^[a-z][a-z0-9_]{1,63}$"


# Responses carry times in UTC with a "Z".
UtcTime = Annotated[datetime, PlainSerializer(rfc3339_utc, return_type=str)]
# Responses carry a row's id as a string, whatever its type in the database.
Id = Annotated[str, BeforeValidator(str)]


class Schema(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class _Attributes:
    """The attributes of several objects as one: each name from the first that has it."""

    __slots__ = ("_sources",)

    def __init__(self, sources: tuple[Any, ...]) -> None:
        self._sources = sources

    def __getattr__(self, name: str) -> Any:
        for source in self._sources:
            if hasattr(source, name):
                return getattr(source, name)
        raise AttributeError(name)


class Read(Schema):
    """A response read from attributes by name (a field's ``validation_alias`` where the
    response names it otherwise)."""

    @classmethod
    def of(cls, *sources: Any) -> Self:
        """Each field from the first of ``sources`` that has it."""
        return cls.model_validate(sources[0] if len(sources) == 1 else _Attributes(sources))


class InputSchema(Schema):
    """A request body: no string in it may carry NUL or other control characters."""

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: Any) -> Any:
        for text in _strings(value):
            if has_control_characters(text):
                raise ValueError("control characters are not allowed")
        return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, BaseModel):
        return [s for item in value.__dict__.values() for s in _strings(item)]
    return []


class Page(Schema, Generic[T]):
    items: list[T]
    next_cursor: str | None = None

    @classmethod
    def of(cls, page: Any, read: Callable[[Any], T]) -> "Page[T]":
        """A page of the service's (``items``, ``next_cursor``), each item read by
        ``read``."""
        return cls(items=[read(item) for item in page.items], next_cursor=page.next_cursor)


class ProblemRead(BaseModel):
    """RFC 9457 problem details, as every error of this API is rendered."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, str]] | None = None


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problem+json answers with these statuses."""
    return {status: {"model": ProblemRead} for status in statuses}


class AreaRefRead(Read):
    """An area as responses name it: its official code and its name."""

    code: str
    name: str

    @classmethod
    def of_optional(cls, area: Any | None) -> "AreaRefRead | None":
        return None if area is None else cls.of(area)

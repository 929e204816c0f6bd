"""Shapes of photo moderation and of the public open data."""

from pydantic import Field

from app.media import Box, Suggestion
from app.models import PublicPhoto
from app.public import MAX_BOXES
from app.schemas.common import InputSchema, Schema, UtcTime


class BoxIn(InputSchema):
    """A region of the stored photo, in its pixels."""

    x: int = Field(ge=0, le=100_000)
    y: int = Field(ge=0, le=100_000)
    w: int = Field(gt=0, le=100_000)
    h: int = Field(gt=0, le=100_000)

    def box(self) -> Box:
        return Box(x=self.x, y=self.y, w=self.w, h=self.h)


class SuggestedBox(Schema):
    x: int
    y: int
    w: int
    h: int
    kind: str = Field(description="face or plate")
    score: float = Field(ge=0, le=1)

    @classmethod
    def of(cls, suggestion: Suggestion) -> "SuggestedBox":
        b = suggestion.box
        return cls(x=b.x, y=b.y, w=b.w, h=b.h, kind=suggestion.kind, score=suggestion.score)


class Suggestions(Schema):
    boxes: list[SuggestedBox] = Field(description="where faces and plates seem to be, best first")
    width: int = Field(description="the stored photo's width in pixels")
    height: int


class PublishPhoto(InputSchema):
    boxes: list[BoxIn] = Field(
        max_length=MAX_BOXES,
        description="the regions to blur (an empty list publishes the photo as it is)",
    )


class PublishedPhoto(Schema):
    media_id: str
    boxes: list[BoxIn]
    width: int
    height: int
    published_at: UtcTime

    @classmethod
    def of(cls, photo: PublicPhoto) -> "PublishedPhoto":
        return cls(
            media_id=str(photo.media_id),
            boxes=[BoxIn(**b) for b in photo.boxes],
            width=photo.width,
            height=photo.height,
            published_at=photo.created_at,
        )

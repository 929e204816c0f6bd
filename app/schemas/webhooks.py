from pydantic import Field

from app.schemas.common import Id, InputSchema, Read, Schema, UtcTime


class WebhookPut(InputSchema):
    url: str = Field(
        min_length=1,
        max_length=2048,
        examples=["https://hooks.example.com/sentinel"],
        description="http(s), resolving to public addresses only",
        # Said in the schema; checked by the service, whose refusal names the reason
        # (webhook_url_refused).
        json_schema_extra={"format": "uri", "pattern": "^https?://[^\\s/@]+(/\\S*)?$"},
    )


class WebhookRead(Schema):
    url: str


class WebhookCreated(Schema):
    url: str
    secret: str = Field(description="signs every delivery; shown only here, new at each PUT")


class DeliveryRead(Read):
    event_id: Id
    type: str
    attempt: int = Field(description="1 for the first attempt to deliver this event")
    attempted_at: UtcTime
    url: str
    status_code: int | None = Field(description="the receiver's answer; null if none came")
    error: str | None = Field(description="why no answer came (timeout, refused address …)")
    duration_ms: int

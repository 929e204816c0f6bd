"""Channels as the API reads and writes them."""

from datetime import datetime
from typing import Any

from pydantic import Field

from app.models import Channel, ChannelDelivery
from app.notify import ChannelInput, Owner, is_dead, shown_url
from app.schemas.common import Schema, UtcTime


class ChannelOwner(Schema):
    area: str | None = Field(
        default=None, max_length=64, description="a street's or district's code"
    )
    unit: str | None = Field(default=None, max_length=64, description="a unit's code")


class ChannelCreate(Schema):
    code: str = Field(max_length=64)
    kind: str = Field(max_length=16, description="wecom, dingtalk, feishu, email or webhook")
    url: str = Field(
        max_length=2048,
        description="the robot's or webhook's URL as the service gives it; mailto:a@b,c@d",
    )
    secret: str | None = Field(
        default=None,
        max_length=256,
        description="DingTalk's and Feishu's signing secret (加签), a webhook's; write-only",
    )
    owner: ChannelOwner
    lang: str = Field(default="zh", max_length=2)
    events: list[str] = Field(max_length=32)
    categories: list[str] | None = Field(default=None, max_length=200)
    min_priority: int | None = None
    quiet_hours: bool = True
    active: bool = True

    def channel_input(self) -> ChannelInput:
        return ChannelInput(
            code=self.code,
            kind=self.kind,
            url=self.url,
            owner=Owner(area=self.owner.area, unit=self.owner.unit),
            events=self.events,
            secret=self.secret,
            lang=self.lang,
            categories=self.categories,
            min_priority=self.min_priority,
            quiet_hours=self.quiet_hours,
            active=self.active,
        )


class ChannelPatch(Schema):
    """The fields to change; those left out stay (a secret too)."""

    kind: str | None = Field(default=None, max_length=16)
    url: str | None = Field(default=None, max_length=2048)
    secret: str | None = Field(default=None, max_length=256)
    owner: ChannelOwner | None = None
    lang: str | None = Field(default=None, max_length=2)
    events: list[str] | None = Field(default=None, max_length=32)
    categories: list[str] | None = Field(default=None, max_length=200)
    min_priority: int | None = None
    quiet_hours: bool | None = None
    active: bool | None = None

    def changes(self) -> dict[str, Any]:
        sent = self.model_dump(include=self.model_fields_set)
        return sent


class ChannelRead(Schema):
    code: str
    kind: str
    url: str = Field(description="as saved, its key or token half hidden")
    has_secret: bool
    owner: ChannelOwner
    lang: str
    events: list[str]
    categories: list[str] | None
    min_priority: int | None
    quiet_hours: bool
    active: bool
    failing_since: UtcTime | None = Field(description="since when every attempt failed")
    last_error: str | None
    last_sent_at: UtcTime | None
    dead: bool = Field(description="every attempt has failed for an hour or more")

    @classmethod
    def of(cls, channel: Channel, owner: Owner, *, now: datetime) -> "ChannelRead":
        failing = channel.failing_since
        return cls(
            code=channel.code,
            kind=str(channel.kind),
            url=shown_url(channel),
            has_secret=bool(channel.secret),
            owner=ChannelOwner(area=owner.area, unit=owner.unit),
            lang=channel.lang,
            events=channel.events,
            categories=channel.categories,
            min_priority=channel.min_priority,
            quiet_hours=channel.quiet_hours,
            active=channel.active,
            failing_since=failing,
            last_error=channel.last_error,
            last_sent_at=channel.last_sent_at,
            dead=is_dead(channel, now=now),
        )


class ChannelList(Schema):
    items: list[ChannelRead]


class ChannelDeliveryRead(Schema):
    attempted_at: UtcTime
    events: list[str]
    notifications: int = Field(description="how many notifications the message carried")
    delivered: bool
    status_code: int | None
    error: str | None
    duration_ms: int

    @classmethod
    def of(cls, delivery: ChannelDelivery) -> "ChannelDeliveryRead":
        return cls(
            attempted_at=delivery.attempted_at,
            events=delivery.events,
            notifications=delivery.notifications,
            delivered=delivery.error is None,
            status_code=delivery.status_code,
            error=delivery.error,
            duration_ms=delivery.duration_ms,
        )


class ChannelTestResult(Schema):
    delivered: bool
    status_code: int | None
    error: str | None

"""Channels: where an office, a district or a unit wants to be told, kept by admins and
by district staff for their district.

A channel's URL is checked as a webhook's is (http(s), no credentials, a host that
resolves to public addresses unless the operator allows private ones) and against its
kind's own shape — a WeCom robot's URL carries its ``key``, a DingTalk robot's its
``access_token`` — so a URL pasted under the wrong kind is said at once. An e-mail
channel's URL is ``mailto:`` with its addresses. Secrets are written, never read back:
a channel's view says only whether it has one, and shows its URL's key half hidden."""

import re
from collections.abc import Sequence
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import begin_writes, lock
from app.errors import AlreadyExists, Forbidden, NotFound, ValidationFailed, WebhookUrlRefused
from app.models import (
    Area,
    AreaLevel,
    Category,
    Channel,
    ChannelDelivery,
    ChannelKind,
    Notification,
    NotifyEvent,
    Staff,
    StaffRole,
    Unit,
    unit_streets,
)
from app.platforms import checked_addresses, parse_url

CHANNEL_CODE = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")
LANGS = frozenset({"zh", "en"})
MAX_ADDRESSES = 20
_ADDRESS = re.compile(r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$")
# The query parameter that carries a robot's own key, by kind: present in its URL.
KEY_PARAMETER = {ChannelKind.WECOM: "key", ChannelKind.DINGTALK: "access_token"}
FEISHU_HOOK_PATH = "/open-apis/bot/v2/hook/"


@dataclass(frozen=True)
class Owner:
    """Whose channel it is: an area's (a street or a district) or a unit's, by code."""

    area: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class ChannelInput:
    code: str
    kind: str
    url: str
    owner: Owner
    events: Sequence[str]
    secret: str | None = None
    lang: str = "zh"
    categories: Sequence[str] | None = None
    min_priority: int | None = None
    quiet_hours: bool = True
    active: bool = True


def _fail(field: str, message: str) -> ValidationFailed:
    return ValidationFailed.of_field(field, message)


def mail_recipients(url: str) -> list[str]:
    """The addresses of a ``mailto:`` URL (comma-separated, percent-encoded or not)."""
    addresses = [unquote(a).strip() for a in url.removeprefix("mailto:").split(",")]
    return [a for a in addresses if a]


def _checked_url(kind: ChannelKind, url: str, *, settings: Settings) -> str:
    url = url.strip()
    if kind == ChannelKind.EMAIL:
        if not url.startswith("mailto:"):
            raise _fail("url", "an e-mail channel's URL is mailto:a@example.com,b@example.com")
        addresses = mail_recipients(url)
        if not addresses or len(addresses) > MAX_ADDRESSES:
            raise _fail("url", f"between 1 and {MAX_ADDRESSES} addresses")
        for address in addresses:
            if not _ADDRESS.fullmatch(address) or parseaddr(address)[1] != address:
                raise _fail("url", f"{address!r} is not an e-mail address")
        return "mailto:" + ",".join(addresses)
    try:
        parsed = parse_url(url)
        checked_addresses(parsed, allow_private=settings.allow_private_webhooks)
    except WebhookUrlRefused as refused:
        raise _fail("url", refused.detail) from None
    query = dict(parse_qsl(urlsplit(url).query))
    key = KEY_PARAMETER.get(kind)
    if key is not None and not query.get(key):
        raise _fail("url", f"a {kind} robot's URL carries its {key}=… (copy it whole)")
    if kind == ChannelKind.FEISHU and FEISHU_HOOK_PATH not in urlsplit(url).path:
        raise _fail("url", f"a Feishu bot's URL has {FEISHU_HOOK_PATH}… (copy it whole)")
    return url


def _checked_events(events: Sequence[str]) -> list[str]:
    known = {e.value for e in NotifyEvent}
    if not events:
        raise _fail("events", "name at least one event")
    unknown = [e for e in events if e not in known]
    if unknown:
        raise _fail("events", f"unknown: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return sorted(set(events))


def _checked_categories(session: Session, codes: Sequence[str] | None) -> list[str] | None:
    if codes is None:
        return None
    if not codes:
        raise _fail("categories", "null for every category, else at least one code")
    found = set(session.scalars(select(Category.code).where(Category.code.in_(codes))))
    unknown = sorted(set(codes) - found)
    if unknown:
        raise _fail("categories", f"no category {', '.join(unknown)}")
    return sorted(set(codes))


def _district_of(staff: Staff) -> int | None:
    """The district a district user keeps channels of (None: an admin, every one)."""
    if staff.role == StaffRole.ADMIN:
        return None
    if staff.role == StaffRole.DISTRICT and staff.area_id is not None:
        return staff.area_id
    raise Forbidden("channels are kept by admins and district staff")


def _owner(session: Session, staff: Staff, *, owner: Owner) -> tuple[int | None, int | None]:
    """(area_id, unit_id) of ``owner``, which must be in ``staff``'s district."""
    district = _district_of(staff)
    if (owner.area is None) == (owner.unit is None):
        raise _fail("owner", 'either {"area": code} or {"unit": code}')
    if owner.area is not None:
        area = session.scalar(select(Area).where(Area.code == owner.area))
        in_scope = area is not None and (
            district is None or area.id == district or area.parent_id == district
        )
        if area is None or area.level == AreaLevel.COMMUNITY or not in_scope:
            raise _fail("owner", f"no street or district {owner.area} in your scope")
        return area.id, None
    unit = session.scalar(
        select(Unit).where(
            Unit.code == owner.unit,
            *((Unit.id.in_(_units_of(district)),) if district is not None else ()),
        )
    )
    if unit is None:
        raise _fail("owner", f"no unit {owner.unit} in your scope")
    return None, unit.id


def _scope(staff: Staff) -> Any:
    """The channels ``staff`` keeps: every one (admin), or its district's, its streets'
    and those of the units serving them."""
    district = _district_of(staff)
    if district is None:
        return True
    streets = select(Area.id).where(Area.parent_id == district)
    return (
        (Channel.area_id == district)
        | Channel.area_id.in_(streets)
        | Channel.unit_id.in_(_units_of(district))
    )


def _units_of(district: int) -> Any:
    """The units a district keeps channels of: those serving its streets and no other
    district's (a unit's channel hears every ticket it holds, wherever; one serving two
    districts is the admin's to connect)."""
    ours = select(Area.id).where(Area.parent_id == district)
    theirs = select(Area.id).where(Area.parent_id != district)
    return select(unit_streets.c.unit_id).where(
        unit_streets.c.street_id.in_(ours),
        unit_streets.c.unit_id.not_in(
            select(unit_streets.c.unit_id).where(unit_streets.c.street_id.in_(theirs))
        ),
    )


def list_channels(session: Session, staff: Staff) -> list[Channel]:
    return list(session.scalars(select(Channel).where(_scope(staff)).order_by(Channel.code)))


def get_channel(session: Session, staff: Staff, *, code: str) -> Channel:
    channel = session.scalar(select(Channel).where(Channel.code == code, _scope(staff)))
    if channel is None:
        raise NotFound(f"no channel {code}")
    return channel


def create_channel(
    session: Session, staff: Staff, *, data: ChannelInput, settings: Settings
) -> Channel:
    """A new channel; 422 naming the first field that is wrong, 409 if the code is taken."""
    _district_of(staff)  # who may, before what
    if not CHANNEL_CODE.fullmatch(data.code):
        raise _fail("code", "2–32 of a-z, 0-9, '_' or '-', from a letter")
    values = _checked(session, staff, data=data, settings=settings)
    begin_writes(session)
    lock(session, ("channel", data.code))
    if session.scalar(select(Channel.id).where(Channel.code == data.code)) is not None:
        raise AlreadyExists(f"channel {data.code} exists already")
    channel = Channel(code=data.code, allowance=0.0, **values)
    session.add(channel)
    session.flush()
    return channel


def _checked(
    session: Session, staff: Staff, *, data: ChannelInput, settings: Settings
) -> dict[str, Any]:
    try:
        kind = ChannelKind(data.kind)
    except ValueError:
        raise _fail("kind", f"one of {', '.join(k.value for k in ChannelKind)}") from None
    if data.lang not in LANGS:
        raise _fail("lang", "zh or en")
    if data.min_priority is not None and not 1 <= data.min_priority <= 3:
        raise _fail("min_priority", "1 (high) to 3 (low), or null")
    if data.secret is not None and not 1 <= len(data.secret) <= 256:
        raise _fail("secret", "1 to 256 characters")
    if kind == ChannelKind.EMAIL and data.secret:
        raise _fail("secret", "an e-mail channel has no secret")
    area_id, unit_id = _owner(session, staff, owner=data.owner)
    return {
        "kind": kind,
        "url": _checked_url(kind, data.url, settings=settings),
        "secret": data.secret or None,
        "area_id": area_id,
        "unit_id": unit_id,
        "lang": data.lang,
        "events": _checked_events(data.events),
        "categories": _checked_categories(session, data.categories),
        "min_priority": data.min_priority,
        "quiet_hours": data.quiet_hours,
        "active": data.active,
    }


def update_channel(
    session: Session, staff: Staff, *, code: str, changes: dict[str, Any], settings: Settings
) -> Channel:
    """The channel with ``changes`` (the fields sent; a secret left out stays), checked
    as a new one is."""
    channel = get_channel(session, staff, code=code)
    owner = changes.get("owner")
    current = ChannelInput(
        code=channel.code,
        kind=changes.get("kind", channel.kind),
        url=changes.get("url", channel.url),
        owner=Owner(**owner) if isinstance(owner, dict) else owner_of(session, channel),
        events=changes.get("events", channel.events),
        secret=changes.get("secret", channel.secret),
        lang=changes.get("lang", channel.lang),
        categories=changes.get("categories", channel.categories),
        min_priority=changes.get("min_priority", channel.min_priority),
        quiet_hours=changes.get("quiet_hours", channel.quiet_hours),
        active=changes.get("active", channel.active),
    )
    for field in ("kind", "url", "events", "lang", "quiet_hours", "active", "owner"):
        if field in changes and changes[field] is None:
            raise _fail(field, "may not be null")
    values = _checked(session, staff, data=current, settings=settings)
    begin_writes(session)
    # Where and how it is sent changed: its failures were those of before.
    readdressed = any(values[key] != getattr(channel, key) for key in ("kind", "url", "secret"))
    for key, value in values.items():
        setattr(channel, key, value)
    if readdressed:
        channel.failing_since, channel.last_error = None, None
    session.flush()
    return channel


def delete_channel(session: Session, staff: Staff, *, code: str) -> None:
    """Removes the channel, with its queue and its log."""
    channel = get_channel(session, staff, code=code)
    begin_writes(session)
    session.execute(delete(Notification).where(Notification.channel_id == channel.id))
    session.execute(delete(ChannelDelivery).where(ChannelDelivery.channel_id == channel.id))
    session.delete(channel)
    session.flush()


def owner_of(session: Session, channel: Channel) -> Owner:
    """Whose channel it is, by code."""
    if channel.area_id is not None:
        return Owner(area=session.scalar(select(Area.code).where(Area.id == channel.area_id)))
    return Owner(unit=session.scalar(select(Unit.code).where(Unit.id == channel.unit_id)))


def shown_url(channel: Channel) -> str:
    """The channel's URL as it is shown again: a robot's key, a token, half hidden."""
    if channel.kind == ChannelKind.EMAIL:
        return channel.url
    parts = urlsplit(channel.url)
    query = "&".join(
        f"{quote(k, safe='')}={_half(quote(v, safe=''))}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    path = parts.path
    if FEISHU_HOOK_PATH in path:
        head, _, token = path.partition(FEISHU_HOOK_PATH)
        path = head + FEISHU_HOOK_PATH + _half(token)
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))


def _half(value: str) -> str:
    return value[: min(4, len(value) // 3)] + "…" if value else value

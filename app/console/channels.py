"""The channels' pages: where a district, its streets and the units serving them are told
what happens — a WeCom, DingTalk or Feishu group's robot, e-mail addresses, a webhook —
kept by admins (every one) and district staff (their district's), through the same
domain functions as ``/v1/admin/channels``: the list, a form to add one, each channel's
page with its log, its form and its test message, which says whether it arrived.

A channel's URL carries its robot's key and its secret signs its messages: neither is
shown again. Their fields on a channel's form start blank, and blank keeps them."""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import unquote

from fastapi import Depends, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from app import notify
from app.areas import page_areas, streets_of
from app.categories import all_categories
from app.console.auth import StaffPage
from app.console.gate import admitted_channel_keeper, channel_keeper
from app.console.labels import CHANNEL_KINDS, NOTIFY_EVENTS, TEST_MESSAGE
from app.console.web import console_router, locale_of
from app.deps import ClockDep, DatabaseDep, SessionDep, SettingsDep
from app.errors import AlreadyExists, AppError, ValidationFailed
from app.models import Area, AreaLevel, Channel, ChannelKind, NotifyEvent, Staff, StaffRole
from app.pagination import MAX_LIMIT, PageRequest
from app.platforms import outbound_client
from app.staff import units_to_join
from app.units import units_serving

router = console_router()

LOG_PAGE = 50  # attempts on a channel's page at once
# The events a new channel's form offers checked.
FIRST_EVENTS = frozenset(
    {NotifyEvent.TICKET_NEW, NotifyEvent.SLA_BREACHED, NotifyEvent.TICKET_ESCALATED}
)

ChannelCode = Annotated[str, Path(max_length=64)]
Code = Annotated[str, Form(max_length=64)]
Choice = Annotated[str, Form(max_length=80)]  # a kind, an owner ("area:…", "unit:…"), a flag
Url = Annotated[str, Form(max_length=2048)]
Secret = Annotated[str, Form(max_length=256)]
Codes = Annotated[list[str] | None, Form(max_length=300)]


# -- who is at the page


@dataclass(frozen=True, kw_only=True)
class Keeper(StaffPage):
    """An admin or district user at the channels' pages, and the time it is."""

    now: datetime


def _keeper(
    request: Request,
    staff: Annotated[Staff, Depends(channel_keeper)],
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> Keeper:
    return Keeper(request=request, settings=settings, staff=staff, session=session, now=clock())


AtChannels = Annotated[Keeper, Depends(_keeper)]


# -- what the pages show


@dataclass(frozen=True)
class OwnerChoice:
    """Whose a channel may be, as the form's select offers it: ``area:<code>`` (the
    district or one of its streets) or ``unit:<code>``."""

    value: str
    name: str
    group: str  # district, street or unit


def _area_name(area: Area, locale: str) -> str:
    return str(area.name_en if locale == "en" and area.name_en else area.name)


def _every_district(session: Session) -> list[Area]:
    districts: list[Area] = []
    cursor = None
    while True:
        found = page_areas(
            session,
            level=AreaLevel.DISTRICT,
            parent_code=None,
            page=PageRequest(MAX_LIMIT, cursor),
        )
        districts += found.items
        cursor = found.next_cursor
        if cursor is None:
            return districts


def owner_choices(session: Session, staff: Staff, locale: str) -> list[OwnerChoice]:
    """What ``staff`` may own a channel by: an admin, every district, street and active
    unit; district staff, its district, its streets and the units serving them."""
    if staff.role == StaffRole.ADMIN:
        districts = _every_district(session)
    else:
        districts = [staff.area] if staff.area is not None else []
    streets = [street for d in districts for street in streets_of(session, d.id)]
    units = (
        units_to_join(session)
        if staff.role == StaffRole.ADMIN
        else units_serving(session, [s.id for s in streets])
    )
    return [
        *(OwnerChoice(f"area:{d.code}", _area_name(d, locale), "district") for d in districts),
        *(OwnerChoice(f"area:{s.code}", _area_name(s, locale), "street") for s in streets),
        *(OwnerChoice(f"unit:{u.code}", u.name, "unit") for u in units),
    ]


def _owner_value(owner: notify.Owner) -> str:
    return f"area:{owner.area}" if owner.area is not None else f"unit:{owner.unit}"


@dataclass(frozen=True)
class Health:
    """How a channel is doing: ``paused`` (not active), ``well`` (its last attempt went
    through, or none failed yet), ``failing`` since when and why, or ``dead`` (every
    attempt failed for ``notify.DEAD_AFTER`` or more)."""

    state: str
    since: datetime | None = None
    error: str | None = None


def health_of(channel: Channel, now: datetime) -> Health:
    if not channel.active:
        return Health("paused")
    failing = channel.failing_since
    if failing is None:
        return Health("well", channel.last_sent_at)
    dead = notify.is_dead(channel, now=now)
    return Health("dead" if dead else "failing", failing, channel.last_error)


@dataclass(frozen=True)
class Row:
    channel: Channel
    owner: str  # its name
    health: Health


@dataclass
class ChannelForm:
    """A channel's form as it was filled in (or as the channel is, to edit it)."""

    code: str = ""
    kind: str = ChannelKind.WECOM.value
    url: str = ""
    owner: str = ""
    lang: str = "zh"
    events: set[str] = field(default_factory=lambda: {e.value for e in FIRST_EVENTS})
    categories: set[str] = field(default_factory=set)
    min_priority: str = ""
    quiet_hours: bool = True
    active: bool = True

    @classmethod
    def of(cls, channel: Channel, owner: notify.Owner) -> "ChannelForm":
        # A URL with a key or a token is not shown again: its field starts blank.
        shown = notify.shown_url(channel)
        return cls(
            code=channel.code,
            kind=str(channel.kind),
            url=shown if shown == channel.url else "",
            owner=_owner_value(owner),
            lang=channel.lang,
            events=set(channel.events),
            categories=set(channel.categories or ()),
            min_priority=str(channel.min_priority or ""),
            quiet_hours=channel.quiet_hours,
            active=channel.active,
        )


def _refusal(error: AppError) -> list[dict[str, str]]:
    """The fields a refusal names, with what it says of each (a taken code names ``code``)."""
    named = "code" if isinstance(error, AlreadyExists) else ""
    return error.errors or [{"field": named, "message": error.detail}]


def _words() -> dict[str, Any]:
    """What the channels' templates name the domain's values with."""
    return {
        "kinds": [k.value for k in ChannelKind],
        "kind_labels": CHANNEL_KINDS,
        "events": [e.value for e in NotifyEvent],
        "event_words": {**NOTIFY_EVENTS, "test": TEST_MESSAGE},
    }


def _render(
    page: Keeper,
    template: str,
    *,
    owners: list[OwnerChoice],
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    return page.render(
        template,
        status_code=status_code,
        owners=owners,
        categories=all_categories(page.session),
        **_words(),
        **context,
    )


def _owner_name(owner: notify.Owner, owners: list[OwnerChoice]) -> str:
    value = _owner_value(owner)
    name = next((c.name for c in owners if c.value == value), None)
    return name or owner.area or owner.unit or ""


def _list_page(page: Keeper, **context: Any) -> HTMLResponse:
    session, staff = page.session, page.staff
    owners = owner_choices(session, staff, locale_of(page.request))
    rows = [
        Row(c, _owner_name(notify.owner_of(session, c), owners), health_of(c, page.now))
        for c in notify.list_channels(session, staff)
    ]
    context.setdefault("form", ChannelForm())
    status_code = context.pop("status_code", 200)
    return _render(
        page, "channels.html", owners=owners, status_code=status_code, rows=rows, **context
    )


def _channel_page(page: Keeper, code: str, **context: Any) -> HTMLResponse:
    session = page.session
    channel = notify.get_channel(session, page.staff, code=code)
    owner = notify.owner_of(session, channel)
    owners = owner_choices(session, page.staff, locale_of(page.request))
    if _owner_value(owner) not in {c.value for c in owners}:  # an inactive unit's, say
        group = "unit" if owner.unit else "street"
        owners.append(OwnerChoice(_owner_value(owner), owner.area or owner.unit or "", group))
    log = notify.page_deliveries(
        session,
        channel,
        page=PageRequest(LOG_PAGE, page.request.query_params.get("cursor") or None),
    )
    context.setdefault("form", ChannelForm.of(channel, owner))
    status_code = context.pop("status_code", 200)
    return _render(
        page,
        "channel.html",
        owners=owners,
        status_code=status_code,
        channel=channel,
        owner_name=_owner_name(owner, owners),
        shown_url=unquote(notify.shown_url(channel)),  # its hidden half as "…", not "%E2%80%A6"
        health=health_of(channel, page.now),
        log=log.items,
        next_cursor=log.next_cursor,
        **context,
    )


# -- reading the form


def _owner(value: str) -> notify.Owner:
    kind, _, code = value.partition(":")
    if kind == "area" and code:
        return notify.Owner(area=code)
    if kind == "unit" and code:
        return notify.Owner(unit=code)
    raise ValidationFailed.of_field("owner", "choose whose channel it is")


def _min_priority(value: str) -> int | None:
    if not value:
        return None
    if value.isascii() and value.isdigit():
        return int(value)
    raise ValidationFailed.of_field("min_priority", "1 (high) to 3 (low), or none")


@dataclass(frozen=True)
class Filled:
    """The fields a channel's form sends (the code only when it adds one)."""

    kind: str
    url: str
    owner: str
    lang: str
    events: Sequence[str]
    categories: Sequence[str]
    min_priority: str
    quiet_hours: bool
    active: bool

    def form(self, code: str) -> ChannelForm:
        """The form again as it was filled in (the secret never)."""
        return ChannelForm(
            code=code,
            kind=self.kind,
            url=self.url,
            owner=self.owner,
            lang=self.lang,
            events=set(self.events),
            categories=set(self.categories),
            min_priority=self.min_priority,
            quiet_hours=self.quiet_hours,
            active=self.active,
        )


def _filled(
    kind: Choice,
    owner: Choice,
    lang: Annotated[str, Form(max_length=8)],
    url: Url = "",  # on a channel's form, blank keeps its URL
    events: Codes = None,
    categories: Codes = None,
    min_priority: Annotated[str, Form(max_length=8)] = "",
    quiet_hours: Choice = "",
    active: Choice = "",
) -> Filled:
    return Filled(
        kind=kind,
        url=url.strip(),
        owner=owner,
        lang=lang,
        events=events or [],
        categories=categories or [],
        min_priority=min_priority.strip(),
        quiet_hours=bool(quiet_hours),
        active=bool(active),
    )


FilledIn = Annotated[Filled, Depends(_filled)]


# -- the pages


@router.get("/channels")
def channel_list(page: AtChannels) -> Response:
    return _list_page(page, deleted=page.request.query_params.get("deleted"))


@router.post("/channels")
def add_channel(page: AtChannels, filled: FilledIn, code: Code, secret: Secret = "") -> Response:
    """Adds a channel, as ``POST /v1/admin/channels`` does; a refusal is shown beside
    the form, filled in as it was sent, and nothing is kept."""
    code = code.strip()
    try:
        channel = notify.create_channel(
            page.session,
            page.staff,
            data=notify.ChannelInput(
                code=code,
                kind=filled.kind,
                url=filled.url,
                owner=_owner(filled.owner),
                events=filled.events,
                secret=secret or None,
                lang=filled.lang,
                categories=filled.categories or None,
                min_priority=_min_priority(filled.min_priority),
                quiet_hours=filled.quiet_hours,
                active=filled.active,
            ),
            settings=page.settings,
        )
    except AppError as refused:
        page.session.rollback()
        return _list_page(
            page,
            status_code=refused.status,
            problems=_refusal(refused),
            form=filled.form(code),
        )
    return RedirectResponse(f"/console/channels/{channel.code}?saved=1", status_code=303)


@router.get("/channels/{code}")
def channel_page(code: ChannelCode, page: AtChannels) -> Response:
    return _channel_page(page, code, saved=bool(page.request.query_params.get("saved")))


@router.post("/channels/{code}")
def change_channel(
    code: ChannelCode,
    page: AtChannels,
    filled: FilledIn,
    secret: Secret = "",
    forget_secret: Choice = "",
) -> Response:
    """Changes a channel, as ``PATCH /v1/admin/channels/{code}`` does: a URL or a secret
    left blank stays as it is."""
    channel = notify.get_channel(page.session, page.staff, code=code)
    try:
        owner = _owner(filled.owner)
        changes: dict[str, Any] = {
            "kind": filled.kind,
            "owner": {"area": owner.area, "unit": owner.unit},
            "lang": filled.lang,
            "events": list(filled.events),
            "categories": list(filled.categories) or None,
            "min_priority": _min_priority(filled.min_priority),
            "quiet_hours": filled.quiet_hours,
            "active": filled.active,
        }
        if filled.url and filled.url != channel.url:
            changes["url"] = filled.url
        if forget_secret:
            changes["secret"] = None
        elif secret:
            changes["secret"] = secret
        notify.update_channel(
            page.session, page.staff, code=code, changes=changes, settings=page.settings
        )
    except AppError as refused:
        page.session.rollback()
        return _channel_page(
            page,
            code,
            status_code=refused.status,
            problems=_refusal(refused),
            form=filled.form(code),
        )
    return RedirectResponse(f"/console/channels/{code}?saved=1", status_code=303)


@router.post("/channels/{code}/delete")
def remove_channel(code: ChannelCode, page: AtChannels) -> Response:
    """Removes the channel with its queue and its log (the form asks to be sure)."""
    notify.delete_channel(page.session, page.staff, code=code)
    return RedirectResponse(f"/console/channels?deleted={code}", status_code=303)


def _staff(session: Session, staff_id: uuid.UUID) -> Staff:
    staff = session.get(Staff, staff_id)
    assert staff is not None  # the gate has just let it in
    return staff


@router.post("/channels/{code}/test")
def send_test_message(
    code: ChannelCode,
    request: Request,
    database: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
    staff_id: Annotated[uuid.UUID, Depends(admitted_channel_keeper)],
) -> Response:
    """Sends the channel a test message now, as ``POST /v1/admin/channels/{code}/test``
    does: the channel read in one transaction, the message sent with none open (a robot
    may take seconds to answer), the attempt recorded in another; the channel's page
    then says whether it arrived."""
    with database.transaction(write=False) as session:
        channel = notify.get_channel(session, _staff(session, staff_id), code=code)
        message = notify.test_message(notify.addressee(channel))
    now = clock()
    with outbound_client(settings) as client:
        outcome = notify.send(client, message, settings=settings, base_url="", now=now)
    with database.transaction() as session:
        notify.record_attempt(session, message, outcome=outcome, now=now)
    with database.transaction(write=False) as session:
        page = Keeper(
            request=request,
            settings=settings,
            staff=_staff(session, staff_id),
            session=session,
            now=now,
        )
        return _channel_page(page, code, tested=outcome)

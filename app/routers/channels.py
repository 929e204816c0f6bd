"""Channels: where streets, districts and units are told what happens (admins keep
every one; district staff those of their district, its streets and its units)."""

from typing import Annotated

from fastapi import APIRouter, Path, Response, status

from app import notify
from app.deps import ChannelKeeper, ClockDep, DatabaseDep, PageParams, SessionDep, SettingsDep
from app.models import Channel
from app.platforms import outbound_client
from app.schemas.channels import (
    ChannelCreate,
    ChannelDeliveryRead,
    ChannelList,
    ChannelPatch,
    ChannelRead,
    ChannelTestResult,
)
from app.schemas.common import Page, problems

router = APIRouter(prefix="/v1/admin/channels", tags=["admin"], responses=problems(401, 403))

ChannelCode = Annotated[str, Path(max_length=64)]


def _read(session: SessionDep, channel: Channel, clock: ClockDep) -> ChannelRead:
    return ChannelRead.of(
        channel,
        notify.owner_of(session, channel),
        now=clock(),
    )


@router.get("", response_model=ChannelList, summary="The channels the caller keeps, by code")
def list_channels(staff: ChannelKeeper, session: SessionDep, clock: ClockDep) -> ChannelList:
    return ChannelList(
        items=[_read(session, c, clock) for c in notify.list_channels(session, staff)]
    )


@router.post(
    "",
    response_model=ChannelRead,
    status_code=status.HTTP_201_CREATED,
    summary="Add a channel: a WeCom, DingTalk or Feishu group's robot, e-mail addresses, "
    "or a webhook, with the events it wants",
    responses=problems(409, 422),
)
def create_channel(
    body: ChannelCreate,
    staff: ChannelKeeper,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> ChannelRead:
    channel = notify.create_channel(session, staff, data=body.channel_input(), settings=settings)
    return _read(session, channel, clock)


@router.get("/{code}", response_model=ChannelRead, responses=problems(404))
def read_channel(
    code: ChannelCode, staff: ChannelKeeper, session: SessionDep, clock: ClockDep
) -> ChannelRead:
    return _read(session, notify.get_channel(session, staff, code=code), clock)


@router.patch(
    "/{code}",
    response_model=ChannelRead,
    summary="Change a channel (fields left out stay, the secret too)",
    responses=problems(404, 422),
)
def change_channel(
    code: ChannelCode,
    body: ChannelPatch,
    staff: ChannelKeeper,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> ChannelRead:
    channel = notify.update_channel(
        session, staff, code=code, changes=body.changes(), settings=settings
    )
    return _read(session, channel, clock)


@router.delete(
    "/{code}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=problems(404),
)
def delete_channel(code: ChannelCode, staff: ChannelKeeper, session: SessionDep) -> Response:
    notify.delete_channel(session, staff, code=code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{code}/test",
    response_model=ChannelTestResult,
    summary="Send the channel a test message now; the answer says whether it arrived",
    responses=problems(404),
)
def test_channel(
    code: ChannelCode,
    staff: ChannelKeeper,
    database: DatabaseDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> ChannelTestResult:
    with database.transaction(write=False) as session:
        message = notify.test_message(
            notify.addressee(notify.get_channel(session, staff, code=code))
        )
    now = clock()
    # In the threadpool (a sync route), with no transaction open while the call is out.
    with outbound_client(settings) as client:
        outcome = notify.send(client, message, settings=settings, base_url="", now=now)
    with database.transaction() as session:
        notify.record_attempt(session, message, outcome=outcome, now=now)
    return ChannelTestResult(
        delivered=outcome.delivered, status_code=outcome.status_code, error=outcome.error
    )


@router.get(
    "/{code}/deliveries",
    response_model=Page[ChannelDeliveryRead],
    summary="Attempts to send the channel its messages, newest first",
    responses=problems(404),
)
def list_deliveries(
    code: ChannelCode, staff: ChannelKeeper, session: SessionDep, page_request: PageParams
) -> Page[ChannelDeliveryRead]:
    channel = notify.get_channel(session, staff, code=code)
    page = notify.page_deliveries(session, channel, page=page_request)
    return Page[ChannelDeliveryRead].of(page, ChannelDeliveryRead.of)

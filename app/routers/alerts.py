"""Area alerts: the district publishes and closes them and reads the sightings; riders
ask which are active where they are and send sightings; photos for both."""

import uuid
from functools import partial

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from app import alerts
from app.deps import (
    AlertPublisher,
    CallerDep,
    ClockDep,
    CurrentOfficeStaff,
    CurrentRider,
    Role,
    SessionDep,
    SettingsDep,
)
from app.errors import Forbidden, NotFound
from app.geo import CoordSys, to_wgs84
from app.media import media_store
from app.photos import blob_response
from app.routers.media import PHOTO_BODY, read_photo
from app.schemas.alerts import (
    ActiveAlerts,
    AlertClose,
    AlertCreate,
    AlertPhotoRead,
    AlertPublic,
    AlertRead,
    SightingCreate,
    SightingCreated,
)
from app.schemas.common import problems

office = APIRouter(prefix="/v1/office/alerts", tags=["alerts"], responses=problems(401, 403))
riders = APIRouter(prefix="/v1/alerts", tags=["alerts"], responses=problems(401, 403))


@office.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertRead,
    summary="Publish an alert to every platform (district staff, or staff an admin allowed)",
    responses=problems(422),
)
def publish(
    body: AlertCreate, staff: AlertPublisher, session: SessionDep, clock: ClockDep
) -> AlertRead:
    alert = alerts.publish(session, staff, data=body.as_input(), now=clock())
    return AlertRead.of_office(alert, alerts.photo_ids(session, alert))


@office.post(
    "/photos",
    status_code=status.HTTP_201_CREATED,
    response_model=AlertPhotoRead,
    summary="Upload a photo for an alert about to be published (a missing person's)",
    responses=problems(413, 415, 422, 503),
    openapi_extra=PHOTO_BODY,
)
async def upload_photo(
    staff: AlertPublisher,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
) -> AlertPhotoRead:
    data = await read_photo(request, settings)
    photo = await run_in_threadpool(
        partial(alerts.store_photo, session, staff, data=data, store=media_store(settings))
    )
    return AlertPhotoRead(
        id=str(photo.id), content_type=photo.content_type, width=photo.width, height=photo.height
    )


@office.get("", response_model=list[AlertRead], summary="The district's alerts, newest first")
def list_alerts(staff: CurrentOfficeStaff, session: SessionDep) -> list[AlertRead]:
    listed = alerts.alerts_of(session, staff)
    photos = alerts.photos_of(session, listed)
    return [AlertRead.of_office(alert, photos[alert.id]) for alert in listed]


@office.get(
    "/{alert_id}",
    response_model=AlertRead,
    summary="One of the district's alerts, with its sightings, newest first",
    responses=problems(404),
)
def read_alert(alert_id: uuid.UUID, staff: CurrentOfficeStaff, session: SessionDep) -> AlertRead:
    alert = alerts.alert_in_scope(session, staff, alert_id=alert_id)
    return AlertRead.of_office(
        alert, alerts.photo_ids(session, alert), alerts.sightings_of(session, alert)
    )


@office.post(
    "/{alert_id}/close",
    response_model=AlertRead,
    summary="Close an alert: every platform is told",
    responses=problems(404, 409, 422),
)
def close_alert(
    alert_id: uuid.UUID,
    body: AlertClose,
    staff: AlertPublisher,
    session: SessionDep,
    clock: ClockDep,
) -> AlertRead:
    alert = alerts.alert_in_scope(session, staff, alert_id=alert_id)
    alerts.close(session, staff, alert=alert, outcome=body.outcome, note=body.note, now=clock())
    return AlertRead.of_office(alert, alerts.photo_ids(session, alert))


@riders.get(
    "/active",
    response_model=ActiveAlerts,
    summary="The active alerts whose area holds this point",
)
def active(
    _rider: CurrentRider,
    session: SessionDep,
    clock: ClockDep,
    lat: float = Query(ge=-90, le=90, allow_inf_nan=False),
    lon: float = Query(ge=-180, le=180, allow_inf_nan=False),
    coord_sys: CoordSys = CoordSys.WGS84,
) -> ActiveAlerts:
    x, y = to_wgs84(lon, lat, coord_sys)
    found = alerts.active_at(session, lon=x, lat=y, now=clock())
    photos = alerts.photos_of(session, found)
    return ActiveAlerts(items=[AlertPublic.of(a, photos[a.id]) for a in found])


@riders.post(
    "/{alert_id}/sightings",
    status_code=status.HTTP_201_CREATED,
    response_model=SightingCreated,
    summary="Tell the district you saw what an active alert asks about (do not pursue; "
    "call 110 in an emergency)",
    responses=problems(404, 422, 429),
)
def sight(
    alert_id: uuid.UUID,
    body: SightingCreate,
    rider: CurrentRider,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
) -> SightingCreated:
    lon, lat = to_wgs84(body.lon, body.lat, body.coord_sys)
    sighting = alerts.sight(
        session,
        rider,
        alert_id=alert_id,
        lon=lon,
        lat=lat,
        note=body.note,
        media_ids=tuple(dict.fromkeys(body.media_ids)),
        now=clock(),
        settings=settings,
    )
    return SightingCreated(
        id=str(sighting.id), alert_id=str(alert_id), created_at=sighting.created_at
    )


@riders.get(
    "/{alert_id}/photos/{photo_id}",
    response_class=FileResponse,
    summary="An alert's photo: for riders and platforms while it is active, and for its district",
    responses=problems(404),
)
def alert_photo(
    alert_id: uuid.UUID,
    photo_id: uuid.UUID,
    caller: CallerDep,
    session: SessionDep,
    settings: SettingsDep,
    clock: ClockDep,
    thumbnail: bool = False,
) -> Response:
    if caller.role in (Role.OFFICER, Role.DISTRICT):
        staff = caller.staff
    elif caller.role in (Role.RIDER, Role.PLATFORM):
        staff = None
    else:
        raise Forbidden("alert photos are for riders, platforms and the district")
    photo = alerts.photo_for(session, alert_id, photo_id=photo_id, staff=staff, now=clock())
    key, content_type = alerts.photo_key(photo, thumbnail=thumbnail)
    blob = media_store(settings).open(key)
    if blob is None:
        raise NotFound("the photo's file is missing")
    return blob_response(blob, content_type)

"""Area alerts, the reverse direction: the district tells the riders in an area, through
their platforms, and riders who see something send a sighting back.

Like Chengdu's 红袖套 patrols and the national 团圆 system for missing children, an alert
names an area (a community or street, a drawn polygon, or a centre and radius that may
grow on a schedule: 100 km in the first hour, 200 km after two …), goes to every
platform as a signed webhook with the area as GeoJSON, and the platforms' apps notify the
riders inside it. The service never learns where riders are who do not report. Closing
tells every platform. A missing person's photos, words and sightings are deleted a set
time after the alert closes; every step is an audit event.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from geoalchemy2.shape import to_shape
from shapely.geometry import Point, mapping, shape
from shapely.validation import explain_validity
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app import platforms
from app.areas import area_tree_ids, wgs84_coordinates
from app.config import Settings
from app.db import DATABASE, after_commit, begin_writes, lock
from app.errors import Conflict, Forbidden, NotFound, RateLimited, ValidationFailed
from app.geo import CoordSys, circle, to_wgs84
from app.media import (
    EXTENSIONS,
    MediaStore,
    blob_key,
    blobs_in_use,
    check_media_owner,
    delete_media,
    digest_of,
    remove_if_idle,
    store_image,
)
from app.models import (
    CLOSING_OUTCOMES,
    ActorKind,
    Alert,
    AlertEvent,
    AlertEventType,
    AlertKind,
    AlertOutcome,
    AlertPhoto,
    AlertSighting,
    AlertStatus,
    Area,
    AreaLevel,
    Platform,
    ReportMedia,
    Rider,
    SightingMedia,
    Staff,
    StaffRole,
    Webhook,
)

MAX_RADIUS_M = 1_000_000
MAX_DAYS = 30


# -- the area ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AreaInput:
    """One of: ``area_code``; ``geometry`` (GeoJSON Polygon or MultiPolygon); or
    ``center`` (lon, lat) and ``radius_m``. Coordinates in ``coord_sys``."""

    area_code: str | None = None
    geometry: dict[str, Any] | None = None
    center: tuple[float, float] | None = None
    radius_m: float | None = None
    coord_sys: CoordSys = CoordSys.WGS84


def _resolve_area(
    session: Session, district: Area, *, data: AreaInput
) -> tuple[dict[str, Any], str | None, tuple[float, float] | None, float | None]:
    given = [data.area_code is not None, data.geometry is not None, data.center is not None]
    if sum(given) != 1:
        raise ValidationFailed.of_field(
            "area", "one of area_code, geometry, or center with radius_m"
        )
    if data.area_code is not None:
        area = session.scalar(select(Area).where(Area.code == data.area_code))
        if area is None or area.id not in area_tree_ids(session, district):
            raise ValidationFailed.of_field(
                "area.area_code", f"{data.area_code} is not an area of this district"
            )
        return mapping(to_shape(area.boundary)), area.code, None, None
    if data.geometry is not None:
        if data.geometry.get("type") not in ("Polygon", "MultiPolygon"):
            raise ValidationFailed.of_field("area.geometry", "a GeoJSON Polygon or MultiPolygon")
        try:
            geometry = {
                "type": data.geometry["type"],
                "coordinates": wgs84_coordinates(data.geometry["coordinates"], data.coord_sys),
            }
            drawn = shape(geometry)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError):
            raise ValidationFailed.of_field(
                "area.geometry", "not a GeoJSON polygon (rings of [lon, lat] points)"
            ) from None
        if drawn.is_empty or not drawn.is_valid:
            reason = explain_validity(drawn) if not drawn.is_empty else "empty"
            raise ValidationFailed.of_field("area.geometry", f"not a valid polygon: {reason}")
        if not to_shape(district.boundary).intersects(drawn):
            raise ValidationFailed.of_field("area.geometry", "the area lies outside the district")
        return geometry, None, None, None
    assert data.center is not None
    if data.radius_m is None or not 10 <= data.radius_m <= MAX_RADIUS_M:
        raise ValidationFailed.of_field("area.radius_m", f"10 to {MAX_RADIUS_M} metres")
    lon, lat = to_wgs84(data.center[0], data.center[1], data.coord_sys)
    if not to_shape(district.boundary).contains(Point(lon, lat)):
        raise ValidationFailed.of_field("area.center", "the centre lies outside the district")
    return circle(lon, lat, data.radius_m), None, (lon, lat), data.radius_m


def _growth(
    steps: Sequence[tuple[int, float]] | None, radius_m: float | None
) -> list[dict[str, Any]] | None:
    """The schedule as stored: the first radius at minute 0, then each step."""
    if not steps:
        return None
    if radius_m is None:
        raise ValidationFailed.of_field("growth", "only an area given by centre and radius grows")
    schedule = [(0, radius_m), *sorted(steps)]
    for (minute, radius), (next_minute, next_radius) in pairwise(schedule):
        if next_minute <= minute or next_radius <= radius or next_radius > MAX_RADIUS_M:
            raise ValidationFailed.of_field(
                "growth",
                "each step later than the one before (after_min > 0) with a larger radius, "
                f"at most {MAX_RADIUS_M} m",
            )
    return [{"after_min": minute, "radius_m": radius} for minute, radius in schedule]


def radius_due(alert: Alert, now: datetime) -> float | None:
    """The radius the alert's schedule gives at ``now``."""
    if not alert.growth:
        return alert.radius_m
    minutes = (now - alert.created_at).total_seconds() / 60
    reached = [step for step in alert.growth if step["after_min"] <= minutes]
    return float(reached[-1]["radius_m"]) if reached else float(alert.growth[0]["radius_m"])


# -- who may --------------------------------------------------------------------------------


def may_publish(staff: Staff) -> bool:
    """Who publishes and closes alerts: district staff, or staff an admin allowed."""
    return staff.role == StaffRole.DISTRICT or staff.may_publish_alerts


NOT_A_PUBLISHER = "only district staff, or staff an admin allowed, publish alerts"


def _publisher(session: Session, staff: Staff) -> Area:
    """The district ``staff`` publishes for."""
    if not may_publish(staff):
        raise Forbidden(NOT_A_PUBLISHER)
    district = district_of(session, staff)
    if district is None:
        raise Forbidden("this account belongs to no district")
    return district


def district_of(session: Session, staff: Staff) -> Area | None:
    """The district the staff member's area is in (or is)."""
    area = session.get(Area, staff.area_id) if staff.area_id is not None else None
    while area is not None and area.level != AreaLevel.DISTRICT:
        area = session.get(Area, area.parent_id) if area.parent_id is not None else None
    return area


def alert_in_scope(session: Session, staff: Staff, *, alert_id: uuid.UUID) -> Alert:
    """An alert of the staff member's district (officers read; publishers act)."""
    alert = session.get(Alert, alert_id)
    district = district_of(session, staff)
    if alert is None or district is None or alert.district_id != district.id:
        raise NotFound("no such alert")
    return alert


def alerts_of(session: Session, staff: Staff, *, limit: int = 100) -> list[Alert]:
    """The district's alerts, newest first."""
    district = district_of(session, staff)
    if district is None:
        return []
    return list(
        session.scalars(
            select(Alert)
            .where(Alert.district_id == district.id)
            .order_by(Alert.created_at.desc(), Alert.id.desc())
            .limit(limit)
        )
    )


# -- the district's side ---------------------------------------------------------------------


@dataclass(frozen=True)
class AlertInput:
    kind: AlertKind
    title: str
    description: str | None
    photo_ids: tuple[uuid.UUID, ...]
    area: AreaInput
    expires_at: datetime
    growth: tuple[tuple[int, float], ...] = ()


def _audit(
    session: Session,
    alert: Alert,
    *,
    type: AlertEventType,
    actor: Staff | Rider | None,
    now: datetime,
    data: dict[str, Any] | None = None,
) -> None:
    session.add(
        AlertEvent(
            alert_id=alert.id,
            type=type,
            actor_kind=(
                ActorKind.STAFF
                if isinstance(actor, Staff)
                else ActorKind.RIDER
                if actor
                else ActorKind.SYSTEM
            ),
            actor_id=actor.id if actor is not None else None,
            data=data,
            created_at=now,
        )
    )


def publish(session: Session, staff: Staff, *, data: AlertInput, now: datetime) -> Alert:
    district = _publisher(session, staff)
    if not now < data.expires_at <= now + timedelta(days=MAX_DAYS):
        raise ValidationFailed.of_field("expires_at", f"later than now, within {MAX_DAYS} days")
    area, code, center, radius = _resolve_area(session, district, data=data.area)
    growth = _growth(data.growth, radius)
    begin_writes(session)
    photos = _own_photos(session, staff, ids=data.photo_ids)
    alert = Alert(
        id=uuid.uuid4(),
        kind=data.kind,
        status=AlertStatus.ACTIVE,
        title=data.title,
        description=data.description,
        district_id=district.id,
        published_by=staff.id,
        area_code=code,
        center_lon=center[0] if center else None,
        center_lat=center[1] if center else None,
        radius_m=radius,
        growth=growth,
        area=area,
        expires_at=data.expires_at,
        created_at=now,
        updated_at=now,
    )
    session.add(alert)
    session.flush()
    for photo in photos:
        photo.alert_id = alert.id
    _audit(
        session,
        alert,
        type=AlertEventType.PUBLISHED,
        actor=staff,
        now=now,
        data={"area_code": code, "radius_m": radius},
    )
    _tell_every_platform(session, alert, type=platforms.EventType.ALERT_PUBLISHED, now=now)
    return alert


def close(
    session: Session, staff: Staff, *, alert: Alert, outcome: str, note: str | None, now: datetime
) -> Alert:
    _publisher(session, staff)
    if outcome not in CLOSING_OUTCOMES:
        raise ValidationFailed.of_field("outcome", "found, resolved or cancelled")
    begin_writes(session)
    lock(session, ("alert", alert.id))
    session.refresh(alert)
    if alert.status != AlertStatus.ACTIVE:
        raise Conflict("the alert is closed already")
    _end(session, alert, outcome=outcome, note=note, actor=staff, now=now)
    return alert


def _end(
    session: Session,
    alert: Alert,
    *,
    outcome: str,
    note: str | None,
    actor: Staff | None,
    now: datetime,
) -> None:
    alert.status = AlertStatus.CLOSED
    alert.closed_at, alert.outcome, alert.close_note = now, outcome, note
    alert.updated_at = now
    _audit(
        session, alert, type=AlertEventType.CLOSED, actor=actor, now=now, data={"outcome": outcome}
    )
    _tell_every_platform(session, alert, type=platforms.EventType.ALERT_CLOSED, now=now)


def _own_photos(session: Session, staff: Staff, *, ids: tuple[uuid.UUID, ...]) -> list[AlertPhoto]:
    if not ids:
        return []
    found = {
        p.id: p
        for p in session.scalars(
            select(AlertPhoto).where(AlertPhoto.id.in_(ids), AlertPhoto.alert_id.is_(None))
        )
        if p.uploaded_by == staff.id
    }
    if missing := [str(i) for i in ids if i not in found]:
        raise ValidationFailed(
            f"photos not uploaded by this account for a new alert: {', '.join(missing)}",
            errors=[{"field": "media_ids", "message": f"unknown: {m}"} for m in missing],
        )
    return [found[i] for i in ids]


def store_photo(session: Session, staff: Staff, *, data: bytes, store: MediaStore) -> AlertPhoto:
    """A photo for an alert about to be published (a missing person's)."""
    _publisher(session, staff)
    stored = store_image(session, store, data=data)
    begin_writes(session)
    photo = AlertPhoto(
        uploaded_by=staff.id,
        sha256=stored.sha256,
        thumbnail_sha256=stored.thumbnail_sha256,
        content_type=stored.image.content_type,
        width=stored.image.width,
        height=stored.image.height,
        bytes=len(stored.image.content),
    )
    session.add(photo)
    session.flush()
    return photo


def photo_key(photo: AlertPhoto, *, thumbnail: bool) -> tuple[str, str]:
    if thumbnail:
        return blob_key(photo.thumbnail_sha256, "jpg"), "image/jpeg"
    return blob_key(photo.sha256, EXTENSIONS[photo.content_type]), photo.content_type


# -- what platforms are told ----------------------------------------------------------------


def event_data(session: Session, alert: Alert) -> dict[str, Any]:
    """An alert as its webhooks carry it: no rider, no sighting."""
    photos = session.scalars(select(AlertPhoto.id).where(AlertPhoto.alert_id == alert.id))
    return {
        "alert_id": str(alert.id),
        "kind": alert.kind.value,
        "status": alert.status.value,
        "title": alert.title,
        "description": alert.description,
        "area": alert.area,
        "radius_m": alert.radius_m,
        "expires_at": _iso(alert.expires_at),
        "photos": [f"/v1/alerts/{alert.id}/photos/{p}" for p in photos],
        "outcome": alert.outcome,
        "closed_at": _iso(alert.closed_at),
    }


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


def _tell_every_platform(
    session: Session, alert: Alert, *, type: platforms.EventType, now: datetime
) -> None:
    data = event_data(session, alert)
    for platform_id in session.scalars(
        select(Webhook.platform_id)
        .join(Platform, Platform.id == Webhook.platform_id)
        .where(Platform.active)
    ):
        platforms.emit(session, platform_id=platform_id, type=type, data=data, now=now)


# -- the riders' side ----------------------------------------------------------------------


def active_at(session: Session, *, lon: float, lat: float, now: datetime) -> list[Alert]:
    """The active alerts whose area holds (lon, lat) (WGS-84): a few at any time, read by
    their index and tested here."""
    point = Point(lon, lat)
    return [
        alert
        for alert in session.scalars(
            select(Alert)
            .where(Alert.status == AlertStatus.ACTIVE, Alert.expires_at > now)
            .order_by(Alert.created_at.desc())
        )
        if shape(alert.area).covers(point)
    ]


def sight(
    session: Session,
    rider: Rider,
    *,
    alert_id: uuid.UUID,
    lon: float,
    lat: float,
    note: str | None,
    media_ids: tuple[uuid.UUID, ...],
    now: datetime,
    settings: Settings,
) -> AlertSighting:
    alert = session.get(Alert, alert_id)
    if alert is None or alert.status != AlertStatus.ACTIVE or alert.expires_at <= now:
        raise NotFound("no such active alert")
    begin_writes(session)
    lock(session, ("sightings", rider.id))
    since = now - timedelta(hours=1)
    recent = (
        session.scalar(
            select(func.count())
            .select_from(AlertSighting)
            .where(AlertSighting.rider_id == rider.id, AlertSighting.created_at > since)
        )
        or 0
    )
    if recent >= settings.rider_sightings_per_hour:
        raise RateLimited(
            f"at most {settings.rider_sightings_per_hour} sightings an hour",
            headers={"Retry-After": "600"},
            retry_after=600,
        )
    check_media_owner(session, rider, media_ids=media_ids, now=now, settings=settings)
    sighting = AlertSighting(
        id=uuid.uuid4(),
        alert_id=alert.id,
        rider_id=rider.id,
        platform_id=rider.platform_id,
        lon=lon,
        lat=lat,
        note=note,
        created_at=now,
    )
    session.add(sighting)
    session.flush()
    for position, media_id in enumerate(media_ids):
        session.add(SightingMedia(sighting_id=sighting.id, media_id=media_id, position=position))
    _audit(
        session,
        alert,
        type=AlertEventType.SIGHTING,
        actor=rider,
        now=now,
        data={"sighting_id": str(sighting.id)},
    )
    return sighting


def sightings_of(
    session: Session, alert: Alert
) -> list[tuple[AlertSighting, str, str, list[uuid.UUID]]]:
    """The alert's sightings, newest first: each with its rider's pseudonym, platform and
    photos."""
    photos: dict[uuid.UUID, list[uuid.UUID]] = {}
    for link in session.execute(
        select(SightingMedia.sighting_id, SightingMedia.media_id)
        .join(AlertSighting, AlertSighting.id == SightingMedia.sighting_id)
        .where(AlertSighting.alert_id == alert.id)
        .order_by(SightingMedia.position)
    ):
        photos.setdefault(link.sighting_id, []).append(link.media_id)
    rows = session.execute(
        select(AlertSighting, Rider.pseudonym, Platform.code)
        .join(Rider, Rider.id == AlertSighting.rider_id)
        .join(Platform, Platform.id == AlertSighting.platform_id)
        .where(AlertSighting.alert_id == alert.id)
        .order_by(AlertSighting.created_at.desc())
    )
    return [(s, pseudonym, platform, photos.get(s.id, [])) for s, pseudonym, platform in rows]


# -- the worker's rounds -------------------------------------------------------------------


def grow_and_expire(session: Session, now: datetime) -> int:
    """Grow the active alerts whose schedule says so (telling every platform), and close
    those past their expiry."""
    begin_writes(session)
    changed = 0
    for alert in session.scalars(select(Alert).where(Alert.status == AlertStatus.ACTIVE)):
        if alert.expires_at <= now:
            _end(session, alert, outcome=AlertOutcome.EXPIRED, note=None, actor=None, now=now)
            changed += 1
            continue
        radius = radius_due(alert, now)
        if radius is not None and radius != alert.radius_m and alert.center_lon is not None:
            assert alert.center_lat is not None
            alert.radius_m = radius
            alert.area = circle(alert.center_lon, alert.center_lat, radius)
            alert.updated_at = now
            _audit(
                session,
                alert,
                type=AlertEventType.GROWN,
                actor=None,
                now=now,
                data={"radius_m": radius},
            )
            _tell_every_platform(session, alert, type=platforms.EventType.ALERT_UPDATED, now=now)
            changed += 1
    return changed


def purge_closed(session: Session, store: MediaStore, *, now: datetime, days: float) -> int:
    """``days`` after an alert closed: its riders' sightings (and their photos) go, and a
    missing person's photos and words too; the alert keeps its kind, area, times and
    outcome. Photos uploaded for an alert that was never published go after a day."""
    begin_writes(session)
    cutoff = now - timedelta(days=days)
    unattached = list(
        session.scalars(
            select(AlertPhoto).where(
                AlertPhoto.alert_id.is_(None), AlertPhoto.created_at < now - timedelta(days=1)
            )
        )
    )
    _delete_photos(session, store, photos=unattached)
    purged = 0
    for alert in session.scalars(
        select(Alert).where(
            Alert.status == AlertStatus.CLOSED,
            Alert.purged_at.is_(None),
            Alert.closed_at < cutoff,
        )
    ):
        sightings = list(
            session.scalars(select(AlertSighting.id).where(AlertSighting.alert_id == alert.id))
        )
        media = set(
            session.scalars(
                select(SightingMedia.media_id).where(SightingMedia.sighting_id.in_(sightings))
            )
        )
        session.execute(delete(SightingMedia).where(SightingMedia.sighting_id.in_(sightings)))
        session.execute(delete(AlertSighting).where(AlertSighting.id.in_(sightings)))
        used = set(
            session.scalars(select(SightingMedia.media_id).where(SightingMedia.media_id.in_(media)))
        )
        delete_media(session, store, media_ids=media - used - _in_reports(session, media))
        if alert.kind == AlertKind.MISSING_PERSON:
            photos = session.scalars(select(AlertPhoto).where(AlertPhoto.alert_id == alert.id))
            _delete_photos(session, store, photos=list(photos))
            alert.description = None
            alert.close_note = None
            alert.title = "寻人（已结束）"
        alert.purged_at = now
        _audit(
            session,
            alert,
            type=AlertEventType.PURGED,
            actor=None,
            now=now,
            data={"sightings": len(sightings)},
        )
        purged += 1
    return purged


def _in_reports(session: Session, media: set[uuid.UUID]) -> set[uuid.UUID]:
    return set(session.scalars(select(ReportMedia.media_id).where(ReportMedia.media_id.in_(media))))


def _delete_photos(session: Session, store: MediaStore, *, photos: list[AlertPhoto]) -> None:
    if not photos:
        return
    keys = [photo_key(p, thumbnail=t)[0] for p in photos for t in (False, True)]
    for photo in photos:
        session.delete(photo)
    database = session.info[DATABASE]

    def remove() -> None:
        with database.session() as check:
            named = blobs_in_use(check, {digest_of(key) for key in keys})
        remove_if_idle(store, [key for key in keys if digest_of(key) not in named])

    after_commit(session, remove)


def photo_ids(session: Session, alert: Alert) -> list[uuid.UUID]:
    return list(
        session.scalars(
            select(AlertPhoto.id)
            .where(AlertPhoto.alert_id == alert.id)
            .order_by(AlertPhoto.created_at)
        )
    )


def photo_for(
    session: Session,
    alert_id: uuid.UUID,
    *,
    photo_id: uuid.UUID,
    staff: Staff | None,
    now: datetime,
) -> AlertPhoto:
    """An alert's photo: for the staff of its district, and, while it is active, for every
    rider and platform (whose apps show it)."""
    photo = session.get(AlertPhoto, photo_id)
    alert = session.get(Alert, alert_id)
    if photo is None or alert is None or photo.alert_id != alert.id:
        raise NotFound("no such photo")
    if staff is not None:
        district = district_of(session, staff)
        if district is None or district.id != alert.district_id:
            raise NotFound("no such photo")
    elif alert.status != AlertStatus.ACTIVE or alert.expires_at <= now:
        raise NotFound("the alert has ended")
    return photo


def photos_of(session: Session, listed: Sequence[Alert]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """The photo ids of each of ``listed``, in one query."""
    found: dict[uuid.UUID, list[uuid.UUID]] = {alert.id: [] for alert in listed}
    if found:
        for alert_id, photo_id in session.execute(
            select(AlertPhoto.alert_id, AlertPhoto.id)
            .where(AlertPhoto.alert_id.in_(found))
            .order_by(AlertPhoto.created_at)
        ):
            if alert_id is not None:
                found[alert_id].append(photo_id)
    return found

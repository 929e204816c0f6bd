import uuid
from typing import Any

from pydantic import AwareDatetime, Field, model_validator

from app.alerts import AlertInput, AreaInput
from app.geo import CoordSys
from app.models import CLOSING_OUTCOMES, Alert, AlertKind, AlertSighting, AlertStatus
from app.schemas.common import InputSchema, Schema, UtcTime
from app.schemas.reports import Latitude, Longitude, OnTheSpot


class Center(InputSchema):
    lat: float = Latitude
    lon: float = Longitude


class AreaSpec(InputSchema):
    """Exactly one of: ``area_code``; ``geometry`` (a GeoJSON Polygon or MultiPolygon);
    ``center`` and ``radius_m``."""

    area_code: str | None = Field(default=None, pattern=r"^[0-9]{6,12}$")
    geometry: dict[str, Any] | None = None
    center: Center | None = None
    radius_m: float | None = Field(default=None, ge=10, le=1_000_000, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_kind(self) -> "AreaSpec":
        given = [self.area_code is not None, self.geometry is not None, self.center is not None]
        if sum(given) != 1:
            raise ValueError("one of area_code, geometry, or center with radius_m")
        if self.center is not None and self.radius_m is None:
            raise ValueError("a center needs radius_m")
        return self


class GrowthStep(InputSchema):
    after_min: int = Field(ge=1, le=60 * 24 * 30)
    radius_m: float = Field(ge=10, le=1_000_000, allow_inf_nan=False)


class AlertCreate(InputSchema):
    kind: AlertKind
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=4000)
    media_ids: list[uuid.UUID] = Field(default_factory=list, max_length=9)
    area: AreaSpec
    coord_sys: CoordSys = CoordSys.WGS84
    expires_at: AwareDatetime
    growth: list[GrowthStep] = Field(default_factory=list, max_length=12)

    def as_input(self) -> AlertInput:
        return AlertInput(
            kind=self.kind,
            title=self.title.strip(),
            description=self.description,
            photo_ids=tuple(self.media_ids),
            area=AreaInput(
                area_code=self.area.area_code,
                geometry=self.area.geometry,
                center=(self.area.center.lon, self.area.center.lat) if self.area.center else None,
                radius_m=self.area.radius_m,
                coord_sys=self.coord_sys,
            ),
            expires_at=self.expires_at,
            growth=tuple((s.after_min, s.radius_m) for s in self.growth),
        )


class AlertClose(InputSchema):
    outcome: str = Field(pattern=f"^({'|'.join(CLOSING_OUTCOMES)})$")
    note: str | None = Field(default=None, max_length=2000)


class AlertPublic(Schema):
    """An alert as riders and platforms see it."""

    id: str
    kind: AlertKind
    status: AlertStatus
    title: str
    description: str | None
    area: dict[str, Any] = Field(description="GeoJSON geometry, WGS-84")
    radius_m: float | None
    expires_at: UtcTime
    created_at: UtcTime
    photos: list[str]

    @staticmethod
    def fields_of(alert: Alert, photos: list[uuid.UUID]) -> dict[str, Any]:
        return {
            "id": str(alert.id),
            "kind": alert.kind,
            "status": alert.status,
            "title": alert.title,
            "description": alert.description,
            "area": alert.area,
            "radius_m": alert.radius_m,
            "expires_at": alert.expires_at,
            "created_at": alert.created_at,
            "photos": [f"/v1/alerts/{alert.id}/photos/{p}" for p in photos],
        }

    @classmethod
    def of(cls, alert: Alert, photos: list[uuid.UUID]) -> "AlertPublic":
        return cls(**cls.fields_of(alert, photos))


class SightingRider(Schema):
    platform: str
    pseudonym: str


class SightingRead(Schema):
    id: str
    lat: float
    lon: float
    note: str | None
    rider: SightingRider
    photos: list[str]
    created_at: UtcTime

    @classmethod
    def of(
        cls, sighting: AlertSighting, pseudonym: str, platform: str, photos: list[uuid.UUID]
    ) -> "SightingRead":
        return cls(
            id=str(sighting.id),
            lat=sighting.lat,
            lon=sighting.lon,
            note=sighting.note,
            rider=SightingRider(platform=platform, pseudonym=pseudonym),
            photos=[f"/v1/media/{m}" for m in photos],
            created_at=sighting.created_at,
        )


class AlertRead(AlertPublic):
    """An alert as the district sees it."""

    area_code: str | None
    center: dict[str, float] | None
    growth: list[dict[str, float]] | None
    closed_at: UtcTime | None
    outcome: str | None
    purged_at: UtcTime | None
    sightings: list[SightingRead] | None = None

    @classmethod
    def of_office(
        cls,
        alert: Alert,
        photos: list[uuid.UUID],
        sightings: list[tuple[AlertSighting, str, str, list[uuid.UUID]]] | None = None,
    ) -> "AlertRead":
        return cls(
            **cls.fields_of(alert, photos),
            area_code=alert.area_code,
            center={"lat": alert.center_lat, "lon": alert.center_lon}
            if alert.center_lat is not None and alert.center_lon is not None
            else None,
            growth=alert.growth,
            closed_at=alert.closed_at,
            outcome=alert.outcome,
            purged_at=alert.purged_at,
            sightings=None if sightings is None else [SightingRead.of(*s) for s in sightings],
        )


class SightingCreate(OnTheSpot):
    # A sighting for an active alert: where, what the rider saw, and photos.
    pass


class SightingCreated(Schema):
    id: str
    alert_id: str
    created_at: UtcTime


class AlertPhotoRead(Schema):
    id: str
    content_type: str
    width: int
    height: int


class ActiveAlerts(Schema):
    items: list[AlertPublic]

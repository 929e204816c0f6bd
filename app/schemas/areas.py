from collections.abc import Mapping, Sequence
from typing import Any

from geoalchemy2.shape import to_shape
from shapely.geometry import mapping

from app.areas import ImportedArea
from app.models import Area, AreaLevel
from app.schemas.common import AreaRefRead, Schema


class AreaRead(Schema):
    code: str
    name: str
    name_en: str | None
    level: AreaLevel
    parent_code: str | None
    source: str | None

    @classmethod
    def of(cls, area: Area, parent_codes: Mapping[int, str]) -> "AreaRead":
        return cls(
            code=area.code,
            name=area.name,
            name_en=area.name_en,
            level=area.level,
            parent_code=parent_codes.get(area.parent_id) if area.parent_id else None,
            source=area.source,
        )


class AreaImportResult(Schema):
    imported: int
    created: int
    updated: int
    repaired: int
    areas: list[ImportedArea]

    @classmethod
    def of(cls, imported: Sequence[ImportedArea]) -> "AreaImportResult":
        return cls(
            imported=len(imported),
            created=sum(a.created for a in imported),
            updated=sum(not a.created for a in imported),
            repaired=sum(a.repaired for a in imported),
            areas=list(imported),
        )


class RouteRead(Schema):
    district: AreaRefRead
    street: AreaRefRead | None
    community: AreaRefRead | None
    snapped_m: float | None
    lat: float
    lon: float

    @classmethod
    def of(cls, route: Any, *, lon: float, lat: float) -> "RouteRead":
        """``route`` (a routing ``Route``) of the WGS-84 point (lon, lat)."""
        return cls(
            district=AreaRefRead.of(route.district),
            street=AreaRefRead.of_optional(route.street),
            community=AreaRefRead.of_optional(route.community),
            snapped_m=route.snapped_m,
            lat=lat,
            lon=lon,
        )


class AreaFeature(Schema):
    type: str = "Feature"
    id: str
    properties: AreaRead
    geometry: dict[str, Any]

    @classmethod
    def of(cls, area: Area, parent_codes: Mapping[int, str]) -> "AreaFeature":
        return cls(
            id=area.code,
            properties=AreaRead.of(area, parent_codes),
            geometry=mapping(to_shape(area.boundary)),
        )


class AreaFeatureCollection(Schema):
    type: str = "FeatureCollection"
    features: list[AreaFeature]

from collections.abc import Sequence
from typing import Any

from app.models import AreaLevel
from app.schemas.common import Schema


class AreaRead(Schema):
    code: str
    name: str
    name_en: str | None
    level: AreaLevel
    parent_code: str | None
    source: str | None


class AreaImported(Schema):
    code: str
    name: str
    level: AreaLevel
    parent_code: str | None
    created: bool
    repaired: bool


class AreaImportResult(Schema):
    imported: int
    created: int
    updated: int
    repaired: int
    areas: list[AreaImported]

    @classmethod
    def of(cls, imported: Sequence[Any]) -> "AreaImportResult":
        return cls(imported=len(imported), created=sum(a.created for a in imported),
                   updated=sum(not a.created for a in imported),
                   repaired=sum(a.repaired for a in imported),
                   areas=[AreaImported.model_validate(a) for a in imported])


class AreaRefRead(Schema):
    code: str
    name: str


class RouteRead(Schema):
    district: AreaRefRead
    street: AreaRefRead | None
    community: AreaRefRead | None
    snapped_m: float | None
    lat: float
    lon: float


class AreaFeature(Schema):
    type: str = "Feature"
    id: str
    properties: AreaRead
    geometry: dict[str, Any]


class AreaFeatureCollection(Schema):
    type: str = "FeatureCollection"
    features: list[AreaFeature]

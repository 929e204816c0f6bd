"""Areas for those who work with them: the routing look-up and the office's map layer."""

from typing import Annotated

from fastapi import APIRouter, Query
from geoalchemy2.shape import to_shape
from shapely.geometry import mapping

from app.deps import AreaInScope, CallerDep, CurrentOfficeStaff, SessionDep, SettingsDep
from app.models import Area
from app.schemas.areas import (
    AreaFeature,
    AreaFeatureCollection,
    AreaRead,
    AreaRefRead,
    RouteRead,
)
from app.services.areas import list_areas, parent_codes
from app.services.coords import CoordSys, to_wgs84
from app.services.reference import route_point
from app.services.scope import staff_area_ids

router = APIRouter(prefix="/v1", tags=["areas"])

Latitude = Annotated[float, Query(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Query(ge=-180, le=180, allow_inf_nan=False)]


def area_read(area: Area, parent_codes: dict[int, str]) -> AreaRead:
    return AreaRead(code=area.code, name=area.name, name_en=area.name_en, level=area.level,
                    parent_code=parent_codes.get(area.parent_id) if area.parent_id else None,
                    source=area.source)


def area_feature(area: Area, parent_codes: dict[int, str]) -> AreaFeature:
    return AreaFeature(id=area.code, properties=area_read(area, parent_codes),
                       geometry=mapping(to_shape(area.boundary)))


@router.get("/areas/route", response_model=RouteRead,
            summary="Which district, street and community own a point")
def route(lat: Latitude, lon: Longitude, session: SessionDep, settings: SettingsDep,
          _caller: CallerDep, coord_sys: CoordSys = CoordSys.WGS84) -> RouteRead:
    w_lon, w_lat = to_wgs84(lon, lat, coord_sys)
    found = route_point(session, lon=w_lon, lat=w_lat, snap_m=settings.routing_snap_m)

    def ref(a: object) -> AreaRefRead | None:
        return AreaRefRead.model_validate(a) if a is not None else None

    return RouteRead(district=AreaRefRead.model_validate(found.district), street=ref(found.street),
                     community=ref(found.community), snapped_m=found.snapped_m,
                     lat=w_lat, lon=w_lon)


@router.get("/office/areas", response_model=AreaFeatureCollection,
            summary="The areas in the caller's scope, as a GeoJSON map layer (WGS-84)")
def office_areas(staff: CurrentOfficeStaff, session: SessionDep) -> AreaFeatureCollection:
    scope = staff_area_ids(session, staff)
    areas = list_areas(session, ids=scope)
    codes = parent_codes(session, areas)
    return AreaFeatureCollection(features=[area_feature(a, codes) for a in areas])


@router.get("/office/areas/{code}", response_model=AreaFeature,
            summary="One area in the caller's scope, as a GeoJSON Feature")
def office_area(area: AreaInScope, session: SessionDep) -> AreaFeature:
    return area_feature(area, parent_codes(session, [area]))

"""Areas for those who work with them: the routing look-up and the office's map layer."""

from typing import Annotated, Any

from fastapi import APIRouter, Query

from app.areas import list_areas, parent_codes
from app.deps import AreaInScope, CallerDep, CurrentOfficeStaff, SessionDep, SettingsDep
from app.geo import CoordSys, to_wgs84
from app.schemas.areas import (
    AreaFeature,
    AreaFeatureCollection,
    RouteRead,
)
from app.staff import staff_area_ids
from app.tickets import route_point

router = APIRouter(prefix="/v1", tags=["areas"])


# A point where the service has areas (the demo's: Changning, Shanghai); a point outside
# every district served is a 422 outside_service_area.
def _served(bound: float, example: float) -> Any:
    return Query(
        ge=-bound,
        le=bound,
        allow_inf_nan=False,
        examples=[example],
        description="inside a district served (else 422 outside_service_area)",
    )


Latitude = Annotated[float, _served(90, 31.2200)]
Longitude = Annotated[float, _served(180, 121.4330)]


@router.get(
    "/areas/route",
    response_model=RouteRead,
    summary="Which district, street and community own a point",
)
def route(
    lat: Latitude,
    lon: Longitude,
    session: SessionDep,
    settings: SettingsDep,
    _caller: CallerDep,
    coord_sys: CoordSys = CoordSys.WGS84,
) -> RouteRead:
    w_lon, w_lat = to_wgs84(lon, lat, coord_sys)
    found = route_point(session, lon=w_lon, lat=w_lat, snap_m=settings.routing_snap_m)
    return RouteRead.of(found, lon=w_lon, lat=w_lat)


@router.get(
    "/office/areas",
    response_model=AreaFeatureCollection,
    summary="The areas in the caller's scope, as a GeoJSON map layer (WGS-84)",
)
def office_areas(staff: CurrentOfficeStaff, session: SessionDep) -> AreaFeatureCollection:
    scope = staff_area_ids(session, staff)
    areas = list_areas(session, ids=scope)
    codes = parent_codes(session, areas)
    return AreaFeatureCollection(features=[AreaFeature.of(a, codes) for a in areas])


@router.get(
    "/office/areas/{code}",
    response_model=AreaFeature,
    summary="One area in the caller's scope, as a GeoJSON Feature",
)
def office_area(area: AreaInScope, session: SessionDep) -> AreaFeature:
    return AreaFeature.of(area, parent_codes(session, [area]))

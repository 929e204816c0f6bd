"""Which district, street and community own a point.

The deepest area covering the point wins (boundary points included). Where that is not
a community — a gap or sliver between community polygons — the nearest community of the
covering street (or, if the point is in no street, of the district) within
``snap_m`` metres is taken, and its street with it. Otherwise the point stays at the
level that covers it. A point outside every district is refused.

Both queries go through the spatial index (``within_bbox``) before any exact test.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row, select
from sqlalchemy.orm import Session, aliased

from app.db import bbox_around, covers, distance_m, point, within_bbox
from app.errors import OutsideServiceArea
from app.models import Area, AreaLevel


@dataclass(frozen=True)
class AreaRef:
    id: int
    code: str
    name: str


@dataclass(frozen=True)
class Route:
    district: AreaRef
    street: AreaRef | None
    community: AreaRef | None
    # Metres to the community the point was snapped to; None when a polygon covers it.
    snapped_m: float | None = None


def _ref(row: Row) -> AreaRef:  # type: ignore[type-arg]
    return AreaRef(row.id, row.code, row.name)


def route_point(session: Session, *, lon: float, lat: float, snap_m: float) -> Route:
    here = point(lon, lat)
    covering = session.execute(
        select(Area.id, Area.code, Area.name, Area.level, Area.parent_id)
        .where(within_bbox(Area.boundary, lon, lat, lon, lat),
               covers(Area.boundary, here))
        .order_by(Area.code)
    ).all()
    districts = [r for r in covering if r.level == AreaLevel.DISTRICT]
    if not districts:
        raise OutsideServiceArea(f"({lon:.6f}, {lat:.6f}) is outside every district served")
    # A point on a border (or in an overlap) is covered by two districts: the deepest
    # chain wins, ties go to the lowest code (``covering`` is ordered by code).
    district, street, community = max(
        (_chain(covering, d) for d in districts),
        key=lambda chain: sum(area is not None for area in chain))
    if street is not None and community is not None:
        return Route(_ref(district), _ref(street), _ref(community))

    snapped = _nearest_community(session, lon=lon, lat=lat, snap_m=snap_m,
                                 district_id=district.id,
                                 street_id=street.id if street is not None else None)
    if snapped is None:
        return Route(_ref(district), _ref(street) if street is not None else None, None)
    return Route(_ref(district),
                 AreaRef(snapped.street_id, snapped.street_code, snapped.street_name),
                 AreaRef(snapped.id, snapped.code, snapped.name),
                 snapped_m=snapped.distance)


def _chain(covering: Sequence[Row], district: Row) -> tuple[Row, Row | None, Row | None]:  # type: ignore[type-arg]
    """``district`` and the street and community below it that cover the point."""
    street = next((r for r in covering
                   if r.level == AreaLevel.STREET and r.parent_id == district.id), None)
    community = None if street is None else next(
        (r for r in covering if r.level == AreaLevel.COMMUNITY and r.parent_id == street.id),
        None)
    return district, street, community


def _nearest_community(session: Session, *, lon: float, lat: float, snap_m: float,
                       district_id: int, street_id: int | None) -> Row | None:  # type: ignore[type-arg]
    if snap_m <= 0:
        return None
    street = aliased(Area)
    distance = distance_m(Area.boundary, point(lon, lat)).label("distance")
    query = (
        select(Area.id, Area.code, Area.name, distance, street.id.label("street_id"),
               street.code.label("street_code"), street.name.label("street_name"))
        .join(street, street.id == Area.parent_id)
        .where(Area.level == AreaLevel.COMMUNITY,
               within_bbox(Area.boundary, *bbox_around(lon, lat, snap_m)),
               distance_m(Area.boundary, point(lon, lat)) <= snap_m)
        .order_by(distance, Area.code)
        .limit(1)
    )
    query = query.where(street.id == street_id) if street_id is not None \
        else query.where(street.parent_id == district_id)
    return session.execute(query).first()

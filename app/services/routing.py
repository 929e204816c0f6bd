"""Which district, street and community own a point.

The deepest area covering the point wins (boundary points included). Where that is not
a community — a gap or sliver between community polygons — the nearest community of the
covering street (or, if the point is in no street, of the district) within
``snap_m`` metres is taken, and its street with it. Otherwise the point stays at the
level that covers it. A point outside every district is refused.

Both queries go through the spatial index (``within_bbox``) before any exact test.
"""

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


_DEPTH = {AreaLevel.DISTRICT: 0, AreaLevel.STREET: 1, AreaLevel.COMMUNITY: 2}
_COLUMNS = (Area.id, Area.code, Area.name, Area.level, Area.parent_id)


def route_point(session: Session, *, lon: float, lat: float, snap_m: float) -> Route:
    here = point(lon, lat)
    covering = session.execute(
        select(*_COLUMNS).where(within_bbox(Area.boundary, lon, lat, lon, lat),
                                covers(Area.boundary, here))).all()
    if not covering:
        raise OutsideServiceArea(f"({lon:.6f}, {lat:.6f}) is outside every district served")
    # The deepest area covering the point wins; on a shared border, the lowest code.
    deepest = min(covering, key=lambda r: (-_DEPTH[AreaLevel(r.level)], r.code))
    chain = _with_ancestors(session, deepest, {r.id: r for r in covering})
    district, street, community = (chain.get(level) for level in _DEPTH)
    if district is None:
        raise OutsideServiceArea(f"({lon:.6f}, {lat:.6f}) is in no district served")
    if community is not None:
        return Route(_ref(district), _ref(street), _ref(community))  # type: ignore[arg-type]

    snapped = _nearest_community(session, lon=lon, lat=lat, snap_m=snap_m,
                                 district_id=district.id,
                                 street_id=street.id if street is not None else None)
    if snapped is None:
        return Route(_ref(district), _ref(street) if street is not None else None, None)
    return Route(_ref(district),
                 AreaRef(snapped.street_id, snapped.street_code, snapped.street_name),
                 AreaRef(snapped.id, snapped.code, snapped.name),
                 snapped_m=snapped.distance)


def _with_ancestors(session: Session, area: Row, known: dict[int, Row]) -> dict[AreaLevel, Row]:  # type: ignore[type-arg]
    """``area`` and the areas above it, by level.

    Usually all of them cover the point too; a child may stick out of its parent by a
    sliver (imports tolerate 1%), and then the parent is looked up.
    """
    chain = {AreaLevel(area.level): area}
    while area.parent_id is not None:
        area = known.get(area.parent_id) or session.execute(
            select(*_COLUMNS).where(Area.id == area.parent_id)).one()
        chain[AreaLevel(area.level)] = area
    return chain


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

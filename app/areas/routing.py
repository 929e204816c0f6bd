"""Which district, street and community own a point.

The deepest area covering the point wins (boundary points included). Where that is not
a community — a gap or sliver between community polygons — the nearest community of the
covering street (or, if the point is in no street, of the district) within
``snap_m`` metres is taken, and its street with it. Otherwise the point stays at the
level that covers it. A point outside every district is refused.

Every report is routed, and areas change a few times a year: routing reads an
:class:`AreaMap`, the areas held in memory (``app.tickets.reference`` keeps it current)
with a spatial index over their boundaries. A point is tested against the few boundaries
whose boxes hold it, each prepared once (GEOS, the library PostGIS and SpatiaLite use for
the same test); so a route costs the same with a hundred communities or a hundred
thousand, and no round trip to the database.

The index that finds those boundaries is a grid of square cells about the size of a
community, each listing the areas whose boxes reach into it: one look-up whatever the
number of areas, where a tree's search grows with its depth (an R-tree took 7.7 µs a
route with 100 communities and 11 with 100,000; ``bench/routing.py``). A search by box
(the snapping's) uses an R-tree.
"""

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import shapely
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import OutsideServiceArea
from app.geo import bbox_around, metres_per_degree
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


@dataclass(frozen=True)
class MappedArea:
    ref: AreaRef
    level: AreaLevel
    parent_id: int | None


_ORIGIN = shapely.Point(0, 0)
# Each level's depth, looked up on every route.
_DEPTH = {level: level.depth for level in AreaLevel}
# The grid's cells are at least this fraction of the areas' whole extent on a side, so
# that an area as large as the extent lists itself in at most this many squared cells;
# and large enough that all areas together list themselves in at most _MOST_LISTED cells
# (a few tens of megabytes), whatever their sizes.
_MOST_CELLS_ACROSS = 256
_MOST_LISTED = 1_000_000


class _Grid:
    """Areas by the square cells of a grid that their boxes reach into."""

    def __init__(self, bounds: np.ndarray, deepest: np.ndarray) -> None:
        self._cells: dict[tuple[int, int], np.ndarray] = {}
        if not len(bounds):
            self._x0 = self._y0 = 0.0
            self._size = 1.0
            return
        self._x0, self._y0 = float(bounds[:, 0].min()), float(bounds[:, 1].min())
        extent = max(float(bounds[:, 2].max()) - self._x0, float(bounds[:, 3].max()) - self._y0)
        sides = np.maximum(bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1])
        typical = float(np.median(sides[deepest])) if deepest.any() else extent
        self._size = max(typical, extent / _MOST_CELLS_ACROSS, 1e-9)
        widths, heights = bounds[:, 2] - bounds[:, 0], bounds[:, 3] - bounds[:, 1]
        while (
            float(np.sum((widths // self._size + 2) * (heights // self._size + 2))) > _MOST_LISTED
        ):
            self._size *= 1.5
        listed: dict[tuple[int, int], list[int]] = {}
        for i, (min_x, min_y, max_x, max_y) in enumerate(bounds):
            (left, bottom), (right, top) = self._cell(min_x, min_y), self._cell(max_x, max_y)
            for x in range(left, right + 1):
                for y in range(bottom, top + 1):
                    listed.setdefault((x, y), []).append(i)
        self._cells = {cell: np.array(areas, dtype=np.intp) for cell, areas in listed.items()}

    def _cell(self, x: float, y: float) -> tuple[int, int]:
        return int((x - self._x0) // self._size), int((y - self._y0) // self._size)

    def at(self, x: float, y: float) -> np.ndarray | None:
        """The areas whose boxes may hold (x, y)."""
        return self._cells.get(self._cell(x, y))


class AreaMap:
    """Areas with their boundaries, indexed for routing."""

    def __init__(self, areas: Iterable[tuple[MappedArea, shapely.Geometry]]) -> None:
        listed = list(areas)
        self.areas = [area for area, _ in listed]
        self.by_id = {area.ref.id: area for area in self.areas}
        self._boundaries = np.array([boundary for _, boundary in listed], dtype=object)
        shapely.prepare(self._boundaries)
        self._tree = shapely.STRtree(self._boundaries)
        self._grid = _Grid(
            shapely.bounds(self._boundaries).reshape(-1, 4),
            np.array([a.level is AreaLevel.COMMUNITY for a in self.areas], dtype=bool),
        )

    def __len__(self) -> int:
        return len(self.areas)

    def covering(self, lon: float, lat: float) -> list[MappedArea]:
        """The areas whose boundaries cover (lon, lat), boundary points included."""
        near = self._grid.at(lon, lat)
        if near is None:
            return []
        # For a point, "intersects" is "covers": inside, or on the boundary.
        return [
            self.areas[i] for i in near[shapely.intersects_xy(self._boundaries[near], lon, lat)]
        ]

    def route(self, *, lon: float, lat: float, snap_m: float) -> Route:
        covering = self.covering(lon, lat)
        if not covering:
            raise OutsideServiceArea(f"({lon:.6f}, {lat:.6f}) is outside every district served")
        # The deepest area covering the point wins; on a shared border, the lowest code.
        deepest = min(covering, key=lambda a: (-_DEPTH[a.level], a.ref.code))
        chain = self._with_ancestors(deepest)
        district, street, community = (chain.get(level) for level in _DEPTH)
        if district is None:
            raise OutsideServiceArea(f"({lon:.6f}, {lat:.6f}) is in no district served")
        if community is not None:
            return Route(district, street, community)
        snapped = self._nearest_community(
            lon=lon, lat=lat, snap_m=snap_m, district=district, street=street
        )
        if snapped is None:
            return Route(district, street, None)
        metres, found = snapped
        assert found.parent_id is not None
        return Route(district, self.by_id[found.parent_id].ref, found.ref, snapped_m=metres)

    def _with_ancestors(self, area: MappedArea) -> dict[AreaLevel, AreaRef]:
        """``area`` and the areas above it, by level. (A child may stick out of its
        parent by a sliver — imports tolerate 1% — so the parent need not cover the
        point.)"""
        chain = {area.level: area.ref}
        while area.parent_id is not None:
            area = self.by_id[area.parent_id]
            chain[area.level] = area.ref
        return chain

    def _nearest_community(
        self, *, lon: float, lat: float, snap_m: float, district: AreaRef, street: AreaRef | None
    ) -> tuple[float, MappedArea] | None:
        """The nearest community within ``snap_m`` of the point, of ``street`` if the
        point is in one, else of any street of ``district``; ties by code."""
        if snap_m <= 0:
            return None

        def eligible(area: MappedArea) -> bool:
            if area.level is not AreaLevel.COMMUNITY or area.parent_id is None:
                return False
            if street is not None:
                return area.parent_id == street.id
            return self.by_id[area.parent_id].parent_id == district.id

        box = shapely.box(*bbox_around(lon, lat, snap_m))
        near = [i for i in self._tree.query(box) if eligible(self.areas[i])]
        if not near:
            return None
        # Distances in a plane centred on the point, scaled to metres on the ellipsoid.
        per_lon, per_lat = metres_per_degree(lat)
        local = shapely.transform(
            self._boundaries[near], lambda xy: (xy - (lon, lat)) * (per_lon, per_lat)
        )
        metres = shapely.distance(local, _ORIGIN)
        best = min((float(m), self.areas[i].ref.code, i) for m, i in zip(metres, near, strict=True))
        return (best[0], self.areas[best[2]]) if best[0] <= snap_m else None


def load_area_map(session: Session) -> AreaMap:
    """Every area and its boundary, as of this transaction."""
    rows = session.execute(
        select(Area.id, Area.code, Area.name, Area.level, Area.parent_id, Area.boundary)
    )
    return AreaMap(
        (
            MappedArea(AreaRef(r.id, r.code, r.name), AreaLevel(r.level), r.parent_id),
            shapely.from_wkb(r.boundary.data),
        )
        for r in rows
    )

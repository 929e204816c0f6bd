"""Geography with no database: coordinate systems (WGS-84, GCJ-02, BD-09), distances
and boxes on the earth.

The bottom floor: pure functions, used by every domain and by ``app.db``; it imports
nothing of the app."""

from app.geo.coords import BadBox, CoordSys, from_wgs84, gcj02_to_wgs84, parse_bbox, to_wgs84
from app.geo.earth import SRID, bbox_around, circle, metres_between, metres_per_degree
from app.geo.map_apps import MapLink, map_links

__all__ = [
    "SRID",
    "BadBox",
    "CoordSys",
    "MapLink",
    "bbox_around",
    "circle",
    "from_wgs84",
    "gcj02_to_wgs84",
    "map_links",
    "metres_between",
    "metres_per_degree",
    "parse_bbox",
    "to_wgs84",
]

"""The district → street → community tree: imported from GeoJSON, looked up, and the
routing of a point to the areas that own it.

Uses the bottom floor (``app.db``, ``app.geo``, ``app.errors``)."""

from app.areas.routing import AreaMap, AreaRef, Route, load_area_map
from app.areas.tree import (
    AREA_CODE,
    ImportedArea,
    area_tree_ids,
    areas_by_ids,
    get_area,
    import_areas,
    list_areas,
    page_areas,
    parent_codes,
    streets_of,
    wgs84_coordinates,
)

__all__ = [
    "AREA_CODE",
    "AreaMap",
    "AreaRef",
    "ImportedArea",
    "Route",
    "area_tree_ids",
    "areas_by_ids",
    "get_area",
    "import_areas",
    "list_areas",
    "load_area_map",
    "page_areas",
    "parent_codes",
    "streets_of",
    "wgs84_coordinates",
]

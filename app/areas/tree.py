"""The district → street → community tree: import from GeoJSON, look-ups, scope checks.

An import is all or nothing: every feature is parsed, converted, repaired and checked
against its parent before the first row is written, and the caller's transaction holds
the writes, so a refused feature leaves the tree as it was.
"""

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import shapely
from geoalchemy2.shape import from_shape, to_shape
from shapely.geometry import MultiPolygon, Polygon, shape
from sqlalchemy import select
from sqlalchemy.orm import Session, undefer

from app.db import begin_writes
from app.errors import (
    AreaMissingField,
    AreaOutsideParent,
    CoordinatesOutOfRange,
    InvalidAreaFeature,
    InvalidAreaLevel,
    InvalidGeoJSON,
    InvalidGeometry,
    UnknownParentArea,
    found,
)
from app.geo import CoordSys, to_wgs84
from app.models import Area, AreaLevel
from app.pagination import Page, PageRequest, keyset_page
from app.text import has_control_characters

AREA_CODE = r"^[A-Za-z0-9_-]{1,32}$"
CODE_PATTERN = re.compile(AREA_CODE)
# A child may stick out of its parent by this share of its own area: official
# boundaries are digitised one layer at a time and rarely meet to the centimetre.
OUTSIDE_PARENT_TOLERANCE = 0.01
# A polygon whose area is at most this share of its bounding box's squared diagonal is
# a line, not an area (a real 1 m wide, 10 km long strip scores 1e-4).
DEGENERATE_AREA_RATIO = 1e-9
# Share of area a repair may add beyond the drawn shells (floating-point noise only).
REPAIR_TOLERANCE = 1e-9
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class AreaFeature:
    index: int
    code: str
    name: str
    name_en: str | None
    level: AreaLevel
    parent_code: str | None
    boundary: MultiPolygon
    repaired: bool

    @property
    def label(self) -> str:
        return f"feature #{self.index} (code {self.code})"


@dataclass(frozen=True)
class ImportedArea:
    code: str
    name: str
    level: AreaLevel
    parent_code: str | None
    created: bool
    repaired: bool


def _label(index: int, code: str | None) -> str:
    return f"feature #{index}" + (f" (code {code})" if code else "")


def _refuse(
    error: type[InvalidAreaFeature], index: int, *, code: str | None, field: str, message: str
) -> InvalidAreaFeature:
    return error(
        f"{_label(index, code)}: {message}",
        errors=[{"field": f"features[{index}].{field}", "message": message}],
        feature_index=index,
        feature_code=code,
    )


def _positions(coordinates: Any) -> Iterable[Any]:
    """Every position of a Polygon's or MultiPolygon's nested coordinate arrays."""
    if (
        isinstance(coordinates, list | tuple)
        and coordinates
        and isinstance(coordinates[0], int | float)
    ):
        yield coordinates
        return
    if not isinstance(coordinates, list | tuple):
        raise TypeError("coordinates must be nested arrays of numbers")
    for item in coordinates:
        yield from _positions(item)


def wgs84_coordinates(coordinates: Any, coord_sys: CoordSys) -> Any:
    """GeoJSON coordinates (nested lists of [lon, lat]) in ``coord_sys``, in WGS-84."""
    if coordinates and isinstance(coordinates[0], int | float):
        return list(to_wgs84(float(coordinates[0]), float(coordinates[1]), coord_sys))
    return [wgs84_coordinates(item, coord_sys) for item in coordinates]


def _degenerate(polygon: Polygon) -> bool:
    """No area to speak of: empty, or a line drawn there and back (collinear points).

    Collinear points in real coordinates are rarely collinear to the last bit, so such a
    ring has an area of 1e-17 square degrees rather than 0; judge it against its extent.
    """
    if polygon.is_empty:
        return True
    min_x, min_y, max_x, max_y = polygon.bounds
    return polygon.area <= DEGENERATE_AREA_RATIO * ((max_x - min_x) ** 2 + (max_y - min_y) ** 2)


def _polygonal(geometry: shapely.Geometry) -> MultiPolygon:
    parts: list[Polygon] = []
    for part in getattr(geometry, "geoms", [geometry]):
        if isinstance(part, Polygon):
            parts.append(part)
        elif isinstance(part, MultiPolygon):
            parts.extend(part.geoms)
        elif hasattr(part, "geoms"):
            parts.extend(_polygonal(part).geoms)
    return MultiPolygon([p for p in parts if not _degenerate(p)])


def _parse_boundary(
    raw: Any, coord_sys: CoordSys, *, index: int, code: str
) -> tuple[MultiPolygon, bool]:
    if not isinstance(raw, dict) or raw.get("type") not in ("Polygon", "MultiPolygon"):
        raise _refuse(
            InvalidGeometry,
            index,
            code=code,
            field="geometry",
            message="the geometry must be a Polygon or MultiPolygon",
        )
    try:
        positions = list(_positions(raw.get("coordinates")))
    except (TypeError, RecursionError):
        positions = []
    if not positions:
        raise _refuse(
            InvalidGeometry,
            index,
            code=code,
            field="geometry.coordinates",
            message="coordinates must be nested arrays of [lon, lat] numbers",
        )
    for position in positions:
        if len(position) < 2 or not all(isinstance(v, int | float) for v in position[:2]):
            raise _refuse(
                InvalidGeometry,
                index,
                code=code,
                field="geometry.coordinates",
                message=f"{position!r} is not a [lon, lat] position",
            )
        lon, lat = float(position[0]), float(position[1])
        if not (
            math.isfinite(lon) and math.isfinite(lat) and -180 <= lon <= 180 and -90 <= lat <= 90
        ):
            raise _refuse(
                CoordinatesOutOfRange,
                index,
                code=code,
                field="geometry.coordinates",
                message=(
                    f"position [{position[0]}, {position[1]}] is not a longitude and latitude "
                    "in range"
                ),
            )
    try:
        geometry = shape(
            {"type": raw["type"], "coordinates": wgs84_coordinates(raw["coordinates"], coord_sys)}
        )
    except (ValueError, TypeError, IndexError, shapely.errors.ShapelyError) as exc:
        raise _refuse(
            InvalidGeometry, index, code=code, field="geometry", message=f"not a polygon: {exc}"
        ) from exc
    if geometry.is_valid:
        kept = _polygonal(geometry)
        if kept.is_empty:
            raise _refuse(
                InvalidGeometry,
                index,
                code=code,
                field="geometry",
                message="the polygon has no area (its points are collinear)",
            )
        # Dropping a part with no area is a repair too.
        return kept, len(kept.geoms) != len(getattr(geometry, "geoms", [geometry]))
    repaired = _polygonal(shapely.make_valid(geometry))
    # A repair may untangle a ring (a bow-tie, a ring touching itself) but never add
    # land: a hole outside its shell, or a shell inside a bigger hole, would become
    # territory nobody drew. So the result must stay within the shells' own area.
    shells = shapely.union_all(
        [
            shapely.make_valid(Polygon(part.exterior))
            for part in getattr(geometry, "geoms", [geometry])
        ]
    )
    added = repaired.difference(shells).area if not repaired.is_empty else 0.0
    if repaired.is_empty or not repaired.is_valid or added > REPAIR_TOLERANCE * shells.area:
        raise _refuse(
            InvalidGeometry,
            index,
            code=code,
            field="geometry",
            message=f"invalid and cannot be repaired safely ({shapely.is_valid_reason(geometry)})",
        )
    return repaired, True


def _text(properties: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = properties.get(name)
        if isinstance(value, int | float | str) and str(value).strip():
            return str(value).strip()
    return None


def parse_features(
    collection: Any,
    *,
    coord_sys: CoordSys,
    default_level: AreaLevel | None = None,
    default_parent: str | None = None,
) -> list[AreaFeature]:
    """Every feature of a FeatureCollection, checked on its own (not yet against parents)."""
    if (
        not isinstance(collection, dict)
        or collection.get("type") != "FeatureCollection"
        or not isinstance(collection.get("features"), list)
    ):
        raise InvalidGeoJSON("expected a GeoJSON FeatureCollection with a features array")
    if not collection["features"]:
        raise InvalidGeoJSON("the FeatureCollection has no features")
    features: list[AreaFeature] = []
    seen: set[str] = set()
    for index, feature in enumerate(collection["features"]):
        if not isinstance(feature, dict) or feature.get("type") != "Feature":
            raise _refuse(
                InvalidAreaFeature, index, code=None, field="type", message="not a GeoJSON Feature"
            )
        properties = feature.get("properties") or {}
        if not isinstance(properties, dict):
            raise _refuse(
                InvalidAreaFeature,
                index,
                code=None,
                field="properties",
                message="must be an object",
            )
        for name, value in properties.items():
            if isinstance(value, str) and has_control_characters(value):
                raise _refuse(
                    InvalidAreaFeature,
                    index,
                    code=None,
                    field=f"properties.{name}",
                    message="control characters are not allowed",
                )
        # DataV (the usual source of Chinese outlines) calls the code "adcode".
        code = _text(properties, "code", "adcode")
        if code is None:
            raise _refuse(
                AreaMissingField,
                index,
                code=None,
                field="properties.code",
                message="code is missing",
            )
        if not CODE_PATTERN.match(code):
            raise _refuse(
                InvalidAreaFeature,
                index,
                code=code,
                field="properties.code",
                message="code must be 1–32 letters, digits, '-' or '_'",
            )
        if code in seen:
            raise _refuse(
                InvalidAreaFeature,
                index,
                code=code,
                field="properties.code",
                message="the same code appears twice in this import",
            )
        seen.add(code)
        name = _text(properties, "name")
        if name is None:
            raise _refuse(
                AreaMissingField,
                index,
                code=code,
                field="properties.name",
                message="name is missing",
            )
        name_en = _text(properties, "name_en")
        for field, value in (("name", name), ("name_en", name_en)):
            if value is not None and len(value) > MAX_NAME_LENGTH:
                raise _refuse(
                    InvalidAreaFeature,
                    index,
                    code=code,
                    field=f"properties.{field}",
                    message=f"{field} is longer than {MAX_NAME_LENGTH} characters",
                )
        level_text = _text(properties, "level") or (default_level and default_level.value)
        if level_text is None:
            raise _refuse(
                AreaMissingField,
                index,
                code=code,
                field="properties.level",
                message="level is missing",
            )
        try:
            level = AreaLevel(level_text)
        except ValueError:
            raise _refuse(
                InvalidAreaLevel,
                index,
                code=code,
                field="properties.level",
                message="level must be district, street or community",
            ) from None
        parent_code = _text(properties, "parent_code") or default_parent
        if level is AreaLevel.DISTRICT:
            parent_code = None
        elif parent_code is None:
            raise _refuse(
                AreaMissingField,
                index,
                code=code,
                field="properties.parent_code",
                message=f"a {level} needs a parent_code",
            )
        boundary, repaired = _parse_boundary(
            feature.get("geometry"), coord_sys, index=index, code=code
        )
        features.append(
            AreaFeature(index, code, name, name_en, level, parent_code, boundary, repaired)
        )
    return features


def import_areas(
    session: Session,
    collection: Any,
    *,
    coord_sys: CoordSys = CoordSys.WGS84,
    default_level: AreaLevel | None = None,
    default_parent: str | None = None,
    source: str | None = None,
) -> list[ImportedArea]:
    features = parse_features(
        collection, coord_sys=coord_sys, default_level=default_level, default_parent=default_parent
    )
    features.sort(key=lambda f: (f.level.depth, f.index))
    begin_writes(session)
    codes = {f.code for f in features} | {f.parent_code for f in features if f.parent_code}
    existing = {a.code: a for a in session.scalars(select(Area).where(Area.code.in_(codes)))}

    batch = {f.code: f for f in features}
    for feature in features:
        if feature.parent_code is not None:
            _check_parent(
                feature, batch.get(feature.parent_code), stored=existing.get(feature.parent_code)
            )
    _check_stored_children(
        session, {existing[f.code].id: f for f in features if f.code in existing}, batch=batch
    )

    imported: list[ImportedArea] = []
    for feature in features:
        area = existing.get(feature.code)
        created = area is None
        if area is None:
            area = Area(code=feature.code)
            session.add(area)
            existing[feature.code] = area
        area.name, area.name_en, area.level = feature.name, feature.name_en, feature.level
        area.parent_id = existing[feature.parent_code].id if feature.parent_code else None
        area.boundary = from_shape(feature.boundary, srid=4326)
        area.source = source
        session.flush()
        imported.append(
            ImportedArea(
                feature.code,
                feature.name,
                feature.level,
                feature.parent_code,
                created,
                feature.repaired,
            )
        )
    return imported


def _check_parent(
    feature: AreaFeature, in_batch: AreaFeature | None, *, stored: Area | None
) -> None:
    if in_batch is not None:
        parent_level, parent_boundary = in_batch.level, in_batch.boundary
    elif stored is not None:
        parent_level, parent_boundary = AreaLevel(stored.level), to_shape(stored.boundary)
    else:
        raise _refuse(
            UnknownParentArea,
            feature.index,
            code=feature.code,
            field="properties.parent_code",
            message=f"parent {feature.parent_code} is neither stored nor in this import",
        )
    if parent_level is not feature.level.parent_level:
        raise _refuse(
            InvalidAreaLevel,
            feature.index,
            code=feature.code,
            field="properties.parent_code",
            message=f"a {feature.level}'s parent must be a {feature.level.parent_level}, "
            f"{feature.parent_code} is a {parent_level}",
        )
    outside = feature.boundary.difference(parent_boundary).area
    if outside > OUTSIDE_PARENT_TOLERANCE * feature.boundary.area:
        share = 100 * outside / feature.boundary.area
        raise _refuse(
            AreaOutsideParent,
            feature.index,
            code=feature.code,
            field="geometry",
            message=f"{share:.1f}% of it lies outside its parent {feature.parent_code}",
        )


def _check_stored_children(
    session: Session, updated: dict[int, AreaFeature], *, batch: dict[str, AreaFeature]
) -> None:
    """An update may not strand the children already stored under an area."""
    if not updated:
        return
    children = session.scalars(
        select(Area)
        .options(undefer(Area.boundary))
        .where(Area.parent_id.in_(updated), Area.code.not_in(batch))
        .order_by(Area.code)
    )
    for child in children:
        parent = updated[child.parent_id]  # type: ignore[index]
        if AreaLevel(child.level).parent_level is not parent.level:
            raise _refuse(
                InvalidAreaLevel,
                parent.index,
                code=parent.code,
                field="properties.level",
                message=f"its stored child {child.code} is a {child.level}, "
                f"which a {parent.level} cannot hold",
            )
        boundary = to_shape(child.boundary)
        outside = boundary.difference(parent.boundary).area
        if outside > OUTSIDE_PARENT_TOLERANCE * boundary.area:
            raise _refuse(
                AreaOutsideParent,
                parent.index,
                code=parent.code,
                field="geometry",
                message=f"its stored child {child.code} would lie "
                f"{100 * outside / boundary.area:.1f}% outside it",
            )


def get_area(session: Session, code: str) -> Area:
    area = session.scalar(select(Area).where(Area.code == code))
    return found(area, f"no area with code {code}")


def list_areas(session: Session, *, ids: Iterable[int] | None = None) -> list[Area]:
    """Areas with their boundaries, by code; all of them, or those with ``ids``."""
    query = select(Area).options(undefer(Area.boundary)).order_by(Area.code)
    if ids is not None:
        query = query.where(Area.id.in_(list(ids)))
    return list(session.scalars(query))


def areas_by_ids(session: Session, ids: Iterable[int]) -> list[Area]:
    """Areas with ``ids`` (their names and codes; boundaries only when asked for)."""
    wanted = list(ids)
    if not wanted:
        return []
    return list(session.scalars(select(Area).where(Area.id.in_(wanted)).order_by(Area.code)))


def parent_codes(session: Session, areas: Iterable[Area]) -> dict[int, str]:
    """``{parent id: parent code}`` for the parents of ``areas``, in one query."""
    wanted = {a.parent_id for a in areas if a.parent_id is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Area.id, Area.code).where(Area.id.in_(wanted)))
    return {area_id: code for area_id, code in rows}


def area_tree_ids(session: Session, root: Area) -> set[int]:
    """The ids of ``root`` and every area below it (at most two levels down)."""
    ids = {root.id}
    frontier = {root.id}
    while frontier:
        frontier = set(session.scalars(select(Area.id).where(Area.parent_id.in_(frontier))))
        ids |= frontier
    return ids


def page_areas(
    session: Session,
    *,
    level: AreaLevel | None,
    parent_code: str | None,
    page: PageRequest,
) -> Page[Area]:
    query = select(Area)
    if level is not None:
        query = query.where(Area.level == level)
    if parent_code is not None:
        query = query.where(Area.parent_id == get_area(session, parent_code).id)
    return keyset_page(session, query, key=Area.code, page=page)


def streets_of(session: Session, district_id: int) -> list[Area]:
    """The streets of a district, by code."""
    return list(
        session.scalars(
            select(Area)
            .where(Area.parent_id == district_id, Area.level == AreaLevel.STREET)
            .order_by(Area.code)
        )
    )

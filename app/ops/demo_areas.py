"""Synthetic administrative areas of Changning district (Shanghai) for demos and tests.

Only the district outline is real: Amap's boundary of 长宁区 (adcode 310105), shipped in
GCJ-02 and converted here vertex by vertex to WGS-84. No official polygons of Changning's
streets (街道/镇) or communities (居委会) are public, so both levels below it are made up:

* streets are the Voronoi cells of one hand-placed seed point per street (official codes
  and names from ``changning_streets.csv``), clipped to the district;
* communities are the Voronoi cells of 8–20 pseudo-random points per street, clipped to
  that street. The points come from ``random.Random(int(street_code))`` by rejection
  sampling with a minimum spacing, so every run yields the same areas and no cell is a
  sliver.

The streets are only roughly where the real ones are, and the communities bear no
relation to real ones; their names say "示例"/"synthetic" so nobody mistakes them for
official data. Real deployments import official boundaries instead.

All coordinates lie on a 1e-7° grid (about 1 cm). Rounding alone would break the
hierarchy: where a cell edge crosses its parent's edge, the rounded crossing point sits up
to a centimetre off the parent's edge, so children would stick out of (or fall short of)
their parent. Instead, all clipped community cells and the district outline are noded
together in one snap-rounded arrangement; every output area is the union of faces of that
arrangement, so children tile their parent exactly and neighbours share their edges
vertex for vertex. The outline gains vertices where cell edges meet it and otherwise moves
by at most a grid cell.
"""

from __future__ import annotations

import csv
import functools
import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, box, shape
from shapely.geometry.base import BaseGeometry

from app.geo import gcj02_to_wgs84

Level = Literal["district", "street", "community"]

DISTRICT_CODE = "310105"
DISTRICT_NAME = "长宁区"
DISTRICT_NAME_EN = "Changning District"

GRID_SIZE = 1e-7  # degrees; about 1 cm, far below any street-level accuracy
MIN_COMMUNITIES = 8
MAX_COMMUNITIES = 20

# Voronoi cells must reach past the parent on every side, or parts of it stay uncovered.
_VORONOI_MARGIN_DEG = 0.05
# Minimum spacing of community points as a fraction of sqrt(street area / count): large
# enough to rule out slivers, small enough that rejection sampling finds enough points.
_SPACING_FACTOR = 0.5
# Points also keep this fraction of the spacing away from the street edge, so that the
# centimetre moves of the final snapping can never push a point out of its own area.
_EDGE_CLEARANCE_FACTOR = 0.25
# Each failed batch of attempts shrinks the spacing, so narrow streets still terminate.
_ATTEMPTS_PER_ROUND = 2000
_SPACING_SHRINK = 0.8
_MAX_SAMPLING_ROUNDS = 20

_DATA_PACKAGE = "app"
_DATA_DIR = "demo_data"
_DISTRICT_FILE = "changning_gcj02.geojson"
_STREETS_FILE = "changning_streets.csv"


@dataclass(frozen=True)
class DemoArea:
    code: str
    name: str
    name_en: str
    level: Level
    parent_code: str | None
    boundary: MultiPolygon  # WGS-84 lon/lat
    seed: tuple[float, float] | None  # WGS-84 (lon, lat); streets only


@dataclass(frozen=True)
class _StreetRow:
    code: str
    name: str
    name_en: str
    seed_gcj02: tuple[float, float]


def _read_text(filename: str) -> str:
    return (resources.files(_DATA_PACKAGE) / _DATA_DIR / filename).read_text(encoding="utf-8")


def _load_district_gcj02() -> BaseGeometry:
    collection = json.loads(_read_text(_DISTRICT_FILE))
    features = collection["features"]
    if len(features) != 1:
        raise ValueError(f"{_DISTRICT_FILE}: expected exactly one feature, got {len(features)}")
    props = features[0]["properties"]
    if str(props.get("adcode")) != DISTRICT_CODE:
        raise ValueError(f"{_DISTRICT_FILE}: expected adcode {DISTRICT_CODE}, got {props!r}")
    return shape(features[0]["geometry"])


def _load_streets() -> list[_StreetRow]:
    rows = [
        _StreetRow(
            code=row["code"].strip(),
            name=row["name_zh"].strip(),
            name_en=row["name_en"].strip(),
            seed_gcj02=(float(row["seed_lon_gcj02"]), float(row["seed_lat_gcj02"])),
        )
        for row in csv.DictReader(_read_text(_STREETS_FILE).splitlines())
    ]
    codes = [row.code for row in rows]
    if len(set(codes)) != len(codes):
        raise ValueError(f"{_STREETS_FILE}: duplicate street codes in {codes}")
    return rows


def _gcj02_geometry_to_wgs84(geom: BaseGeometry) -> BaseGeometry:
    # The GCJ-02 inverse is an iteration on scalars, so it cannot be vectorised.
    def convert(coords: np.ndarray) -> np.ndarray:
        return np.array([gcj02_to_wgs84(float(x), float(y)) for x, y in coords])

    return shapely.transform(geom, convert)


def _round_point(lon: float, lat: float) -> tuple[float, float]:
    return round(lon, 7), round(lat, 7)


def _polygonal(geom: BaseGeometry) -> MultiPolygon:
    """Only the polygonal parts, as a MultiPolygon: overlays can add stray lines/points."""
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            if not part.is_empty:
                polygons.append(part)
        elif isinstance(part, MultiPolygon | shapely.GeometryCollection):
            polygons.extend(_polygonal(part).geoms)
    return MultiPolygon(polygons)


def _voronoi_clipped(
    parent: MultiPolygon, points: Sequence[tuple[float, float]]
) -> list[MultiPolygon]:
    """Cells of ``points`` clipped to ``parent`` on the grid, in the order of ``points``."""
    minx, miny, maxx, maxy = parent.bounds
    extent = box(
        minx - _VORONOI_MARGIN_DEG,
        miny - _VORONOI_MARGIN_DEG,
        maxx + _VORONOI_MARGIN_DEG,
        maxy + _VORONOI_MARGIN_DEG,
    )
    cells = shapely.get_parts(
        shapely.voronoi_polygons(shapely.MultiPoint(list(points)), extend_to=extent, ordered=True)
    )
    if len(cells) != len(points):
        raise RuntimeError(f"Voronoi gave {len(cells)} cells for {len(points)} points")
    return [_polygonal(shapely.intersection(cell, parent, grid_size=GRID_SIZE)) for cell in cells]


def _community_counts(codes: Iterable[str]) -> dict[str, int]:
    """8 + code mod 13, moved on to the next free count when two codes collide.

    Distinct counts make mix-ups between streets visible in tests and demos (the plain
    formula gives 310105011 and 310105102 both 16). Codes are taken in sorted order so the
    result does not depend on the row order of the CSV.
    """
    span = MAX_COMMUNITIES - MIN_COMMUNITIES + 1
    sorted_codes = sorted(codes)
    if len(sorted_codes) > span:
        raise ValueError(f"cannot give {len(sorted_codes)} streets distinct counts in {span}")
    taken: set[int] = set()
    counts: dict[str, int] = {}
    for code in sorted_codes:
        offset = int(code) % span
        while MIN_COMMUNITIES + offset in taken:
            offset = (offset + 1) % span
        counts[code] = MIN_COMMUNITIES + offset
        taken.add(counts[code])
    return counts


def _community_points(
    street_code: str, street: MultiPolygon, *, count: int
) -> list[tuple[float, float]]:
    rng = random.Random(int(street_code))
    minx, miny, maxx, maxy = street.bounds
    edge = street.boundary
    shapely.prepare(street)
    spacing = _SPACING_FACTOR * math.sqrt(street.area / count)
    for _ in range(_MAX_SAMPLING_ROUNDS):
        points: list[tuple[float, float]] = []
        for _ in range(_ATTEMPTS_PER_ROUND):
            lon, lat = _round_point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            if not shapely.contains_xy(street, lon, lat):
                continue
            if any(math.hypot(lon - x, lat - y) < spacing for x, y in points):
                continue
            if edge.distance(Point(lon, lat)) < _EDGE_CLEARANCE_FACTOR * spacing:
                continue
            points.append((lon, lat))
            if len(points) == count:
                return points
        spacing *= _SPACING_SHRINK
    raise RuntimeError(f"could not place {count} community points in street {street_code}")


def _snap_together(pieces: Sequence[MultiPolygon], outline: MultiPolygon) -> list[MultiPolygon]:
    """``pieces`` (which tile ``outline`` up to rounding) turned into an exact tiling.

    Snap rounding the linework of all pieces at once nodes each edge at the rounded
    crossing points it passes through, so both sides of a shared edge, and the outline,
    end up with identical vertices. Each face of the arrangement goes to the piece it
    mostly lies in. What remains are slivers less than a grid cell wide, where a street
    edge was bent by one street's rounded crossings but not its neighbour's; each joins
    the neighbour it shares the longest edge with, so no gap opens up and no community
    grows a detached speck.
    """
    linework = shapely.union_all(
        [outline.boundary, *(piece.boundary for piece in pieces)], grid_size=GRID_SIZE
    )
    faces = shapely.get_parts(shapely.polygonize(shapely.get_parts(linework)))
    piece_array = np.array(pieces, dtype=object)
    piece_tree = shapely.STRtree(piece_array)
    owner = np.full(len(faces), -1)
    for i, face in enumerate(faces):
        candidates = piece_tree.query(face)
        if len(candidates) == 0:
            continue
        overlaps = shapely.area(shapely.intersection(face, piece_array[candidates]))
        best = int(np.argmax(overlaps))
        if overlaps[best] > 0.5 * face.area:
            owner[i] = candidates[best]

    face_tree = shapely.STRtree(faces)
    # Slivers lie within a grid cell of the outline; faces filling a hole of the outline
    # lie far outside it and belong to nobody.
    pending = [
        int(i)
        for i in np.flatnonzero(owner < 0)
        if shapely.distance(outline, shapely.point_on_surface(faces[i])) <= 2 * GRID_SIZE
    ]
    while pending:
        progressed = False
        for i in list(pending):
            neighbours = [j for j in face_tree.query(faces[i]) if owner[j] >= 0]
            if not neighbours:
                continue
            shared = shapely.length(
                shapely.intersection(faces[i].boundary, shapely.boundary(faces[neighbours]))
            )
            owner[i] = owner[neighbours[int(np.argmax(shared))]]
            pending.remove(i)
            progressed = True
        if not progressed:
            raise RuntimeError(f"{len(pending)} faces of the arrangement have no owner")

    groups: list[list[Polygon]] = [[] for _ in pieces]
    for face, piece_index in zip(faces, owner, strict=True):
        if piece_index >= 0:
            groups[int(piece_index)].append(face)
    return [_union(group) for group in groups]


def _union(geoms: Sequence[BaseGeometry]) -> MultiPolygon:
    # The inputs are faces of one arrangement, i.e. an exact coverage, so dissolving
    # their shared edges suffices. An overlay union, even on the grid, would snap round
    # again and could collapse a sliver on one side of an edge but not the other.
    return _polygonal(shapely.coverage_union_all(list(geoms)))


def _district_outline() -> MultiPolygon:
    outline = _gcj02_geometry_to_wgs84(_load_district_gcj02())
    boundary = _polygonal(shapely.set_precision(shapely.make_valid(outline), GRID_SIZE))
    if boundary.is_empty:
        raise ValueError(f"{_DISTRICT_FILE}: district outline has no area")
    return boundary


@functools.cache
def build_demo_areas() -> list[DemoArea]:
    """District, then its 10 streets, then their communities (parents before children).

    Cached: every caller gets the same list, so treat it as read-only.
    """
    outline = _district_outline()
    rows = _load_streets()
    seeds = [_round_point(*gcj02_to_wgs84(*row.seed_gcj02)) for row in rows]
    for row, seed in zip(rows, seeds, strict=True):
        if not outline.contains(Point(seed)):
            raise ValueError(
                f"{_STREETS_FILE}: seed of street {row.code} ({row.name}) at GCJ-02 "
                f"{row.seed_gcj02} (WGS-84 {seed}) lies outside the district outline"
            )

    counts = _community_counts(row.code for row in rows)
    pieces: list[MultiPolygon] = []
    owners: list[int] = []  # index into rows of each piece's street
    for street_index, (row, cell) in enumerate(
        zip(rows, _voronoi_clipped(outline, seeds), strict=True)
    ):
        points = _community_points(row.code, cell, count=counts[row.code])
        pieces.extend(_voronoi_clipped(cell, points))
        owners.extend([street_index] * len(points))

    community_geoms = _snap_together(pieces, outline)
    street_geoms = [
        _union([g for g, owner in zip(community_geoms, owners, strict=True) if owner == i])
        for i in range(len(rows))
    ]
    district = DemoArea(
        code=DISTRICT_CODE,
        name=DISTRICT_NAME,
        name_en=DISTRICT_NAME_EN,
        level="district",
        parent_code=None,
        boundary=_union(street_geoms),
        seed=None,
    )

    streets: list[DemoArea] = []
    for row, seed, geom in zip(rows, seeds, street_geoms, strict=True):
        if not geom.contains(Point(seed)):
            raise RuntimeError(f"street {row.code}: seed {seed} is not inside its own area")
        streets.append(
            DemoArea(
                code=row.code,
                name=row.name,
                name_en=row.name_en,
                level="street",
                parent_code=district.code,
                boundary=geom,
                seed=seed,
            )
        )

    communities: list[DemoArea] = []
    for street_index, (row, street) in enumerate(zip(rows, streets, strict=True)):
        own = [g for g, owner in zip(community_geoms, owners, strict=True) if owner == street_index]
        for index, geom in enumerate(own, start=1):
            if geom.is_empty or geom.area <= 0:
                raise RuntimeError(f"street {row.code}: community {index} came out empty")
            communities.append(
                DemoArea(
                    code=f"{row.code}{index:03d}",
                    name=f"{row.name}第{index:02d}社区（示例）",
                    name_en=f"{row.name_en} Community {index:02d} (synthetic)",
                    level="community",
                    parent_code=street.code,
                    boundary=geom,
                    seed=None,
                )
            )
    return [district, *streets, *communities]

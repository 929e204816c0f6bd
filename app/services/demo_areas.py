"""Synthetic administrative areas of Changning district (Shanghai) for demos and tests.

Only the district outline is real: Amap's boundary of 长宁区 (adcode 310105), shipped in
GCJ-02 and converted here vertex by vertex to WGS-84. No official polygons of Changning's
streets (街道/镇) or communities (居委会) are public, so both levels are made up:

* streets are the Voronoi cells of one hand-placed seed point per street (official codes
  and names from ``changning_streets.csv``), clipped to the district;
* communities are the Voronoi cells of 8–20 pseudo-random points per street, clipped to
  that street. The points come from ``random.Random(int(street_code))`` with rejection
  sampling and a minimum spacing, so every run yields the same areas and no cell is a
  sliver.

The street boundaries are therefore only roughly where the real ones are, and the
communities bear no relation to real ones; their names say "示例"/"synthetic" so nobody
mistakes them for official data. Real deployments import official boundaries instead.

All coordinates are rounded to 1e-7° (about 1 cm). Each level is computed from the
already rounded level above it and clipped on the same grid, so children still exactly
tile their parent after rounding.
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

from app.services.coords import gcj02_to_wgs84

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
    reader = csv.DictReader(_read_text(_STREETS_FILE).splitlines())
    return [
        _StreetRow(
            code=row["code"].strip(),
            name=row["name_zh"].strip(),
            name_en=row["name_en"].strip(),
            seed_gcj02=(float(row["seed_lon_gcj02"]), float(row["seed_lat_gcj02"])),
        )
        for row in reader
    ]


def _transform(geom: BaseGeometry) -> BaseGeometry:
    # The GCJ-02 inverse is an iteration on scalars, so it cannot be vectorised.
    def convert(coords: np.ndarray) -> np.ndarray:
        return np.array([gcj02_to_wgs84(float(x), float(y)) for x, y in coords])

    return shapely.transform(geom, convert)


def _round_point(lon: float, lat: float) -> tuple[float, float]:
    return round(lon, 7), round(lat, 7)


def _polygonal(geom: BaseGeometry) -> MultiPolygon:
    """Keep only the polygonal parts: overlays can add stray lines and points."""
    polygons: list[Polygon] = []
    for part in shapely.get_parts(geom):
        if isinstance(part, Polygon):
            if not part.is_empty:
                polygons.append(part)
        elif isinstance(part, MultiPolygon):
            polygons.extend(p for p in part.geoms if not p.is_empty)
        elif part.geom_type == "GeometryCollection":
            polygons.extend(_polygonal(part).geoms)
    return MultiPolygon(polygons)


def _voronoi_partition(
    parent: MultiPolygon, points: Sequence[tuple[float, float]]
) -> list[MultiPolygon]:
    """Cells of ``points`` clipped to ``parent``, in the order of ``points``.

    ``parent`` must already lie on the grid. Rounding each cell before clipping means
    that neighbouring cells share the very same (rounded) edge, and clipping both on the
    same grid keeps them from overlapping or leaving gaps.
    """
    minx, miny, maxx, maxy = parent.bounds
    extent = box(
        minx - _VORONOI_MARGIN_DEG,
        miny - _VORONOI_MARGIN_DEG,
        maxx + _VORONOI_MARGIN_DEG,
        maxy + _VORONOI_MARGIN_DEG,
    )
    cells = shapely.voronoi_polygons(
        shapely.MultiPoint(list(points)), extend_to=extent, ordered=True
    )
    parts = list(shapely.get_parts(cells))
    if len(parts) != len(points):
        raise RuntimeError(f"Voronoi gave {len(parts)} cells for {len(points)} points")
    clipped: list[MultiPolygon] = []
    for cell in parts:
        rounded = shapely.set_precision(cell, GRID_SIZE)
        clipped.append(_polygonal(shapely.intersection(rounded, parent, grid_size=GRID_SIZE)))
    return clipped


def _community_counts(codes: Iterable[str]) -> dict[str, int]:
    """8 + code mod 13, moved up to the next free count when two codes collide.

    Distinct counts make mix-ups between streets visible in tests and demos; with 13
    possible counts this works for up to 13 streets. Codes are taken in sorted order so
    the result does not depend on the row order of the CSV.
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


def _community_points(street: DemoArea, count: int) -> list[tuple[float, float]]:
    rng = random.Random(int(street.code))
    minx, miny, maxx, maxy = street.boundary.bounds
    prepared = street.boundary
    shapely.prepare(prepared)
    spacing = _SPACING_FACTOR * math.sqrt(street.boundary.area / count)
    for _ in range(_MAX_SAMPLING_ROUNDS):
        points: list[tuple[float, float]] = []
        for _ in range(_ATTEMPTS_PER_ROUND):
            lon, lat = _round_point(rng.uniform(minx, maxx), rng.uniform(miny, maxy))
            if not shapely.contains_xy(prepared, lon, lat):
                continue
            if any(math.hypot(lon - x, lat - y) < spacing for x, y in points):
                continue
            points.append((lon, lat))
            if len(points) == count:
                return points
        spacing *= _SPACING_SHRINK
    raise RuntimeError(f"could not place {count} community points in street {street.code}")


def _district() -> DemoArea:
    outline = _transform(_load_district_gcj02())
    boundary = _polygonal(shapely.set_precision(shapely.make_valid(outline), GRID_SIZE))
    if boundary.is_empty:
        raise ValueError(f"{_DISTRICT_FILE}: district outline has no area")
    return DemoArea(
        code=DISTRICT_CODE,
        name=DISTRICT_NAME,
        name_en=DISTRICT_NAME_EN,
        level="district",
        parent_code=None,
        boundary=boundary,
        seed=None,
    )


def _streets(district: DemoArea) -> list[DemoArea]:
    rows = _load_streets()
    codes = [row.code for row in rows]
    if len(set(codes)) != len(codes):
        raise ValueError(f"{_STREETS_FILE}: duplicate street codes in {codes}")
    seeds = [_round_point(*gcj02_to_wgs84(*row.seed_gcj02)) for row in rows]
    for row, seed in zip(rows, seeds, strict=True):
        if not district.boundary.covers(Point(seed)):
            raise ValueError(
                f"{_STREETS_FILE}: seed of street {row.code} ({row.name}) at "
                f"GCJ-02 {row.seed_gcj02} lies outside the district outline"
            )
    streets: list[DemoArea] = []
    cells = _voronoi_partition(district.boundary, seeds)
    for row, seed, cell in zip(rows, seeds, cells, strict=True):
        if not cell.covers(Point(seed)):
            raise RuntimeError(f"street {row.code}: seed {seed} is not inside its own cell")
        streets.append(
            DemoArea(
                code=row.code,
                name=row.name,
                name_en=row.name_en,
                level="street",
                parent_code=district.code,
                boundary=cell,
                seed=seed,
            )
        )
    return streets


def _communities(street: DemoArea, count: int) -> list[DemoArea]:
    points = _community_points(street, count)
    communities: list[DemoArea] = []
    for index, cell in enumerate(_voronoi_partition(street.boundary, points), start=1):
        if cell.is_empty or cell.area <= 0:
            raise RuntimeError(f"street {street.code}: community {index} came out empty")
        communities.append(
            DemoArea(
                code=f"{street.code}{index:03d}",
                name=f"{street.name}第{index:02d}社区（示例）",
                name_en=f"{street.name_en} Community {index:02d} (synthetic)",
                level="community",
                parent_code=street.code,
                boundary=cell,
                seed=None,
            )
        )
    return communities


@functools.cache
def build_demo_areas() -> list[DemoArea]:
    """District, then its 10 streets, then their communities (parents before children).

    Cached: the result is shared between callers, so treat it as read-only.
    """
    district = _district()
    streets = _streets(district)
    counts = _community_counts(street.code for street in streets)
    communities = [
        community
        for street in streets
        for community in _communities(street, counts[street.code])
    ]
    return [district, *streets, *communities]

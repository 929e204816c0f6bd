import csv
import json
import math
from collections import defaultdict
from importlib import resources

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, shape

from app.geo.coords import gcj02_to_wgs84
from app.ops.demo_areas import DemoArea, build_demo_areas

EARTH_RADIUS_M = 6_371_008.8
# Relative area tolerance for "children tile their parent": far below one square metre.
AREA_TOLERANCE = 1e-9


def _data(filename: str) -> str:
    return (resources.files("app") / "demo_data" / filename).read_text(encoding="utf-8")


def _csv_streets() -> list[dict[str, str]]:
    return list(csv.DictReader(_data("changning_streets.csv").splitlines()))


def _equirectangular_m(a: Point, b: Point) -> float:
    mean_lat = math.radians((a.y + b.y) / 2)
    dx = math.radians(b.x - a.x) * math.cos(mean_lat)
    dy = math.radians(b.y - a.y)
    return EARTH_RADIUS_M * math.hypot(dx, dy)


@pytest.fixture(scope="module")
def areas() -> list[DemoArea]:
    return build_demo_areas()


@pytest.fixture(scope="module")
def children(areas: list[DemoArea]) -> dict[str, list[DemoArea]]:
    by_parent: dict[str, list[DemoArea]] = defaultdict(list)
    for area in areas:
        if area.parent_code is not None:
            by_parent[area.parent_code].append(area)
    return by_parent


def _by_level(areas: list[DemoArea], level: str) -> list[DemoArea]:
    return [area for area in areas if area.level == level]


def test_one_district_then_streets_then_communities(areas: list[DemoArea]) -> None:
    levels = [area.level for area in areas]
    assert levels[0] == "district"
    assert levels[1:11] == ["street"] * 10
    assert set(levels[11:]) == {"community"}

    district = areas[0]
    assert (district.code, district.name, district.name_en) == (
        "310105",
        "长宁区",
        "Changning District",
    )
    assert district.parent_code is None
    assert district.seed is None


def test_streets_match_csv(areas: list[DemoArea]) -> None:
    streets = _by_level(areas, "street")
    expected = [(row["code"], row["name_zh"], row["name_en"]) for row in _csv_streets()]
    assert sorted((s.code, s.name, s.name_en) for s in streets) == sorted(expected)
    assert all(s.parent_code == "310105" for s in streets)


def test_codes_are_unique_and_parents_come_first(areas: list[DemoArea]) -> None:
    codes = [area.code for area in areas]
    assert len(codes) == len(set(codes))
    seen: set[str] = set()
    for area in areas:
        if area.parent_code is not None:
            assert area.parent_code in seen, area.code
        seen.add(area.code)


def test_community_counts(areas: list[DemoArea], children: dict[str, list[DemoArea]]) -> None:
    counts = {street.code: len(children[street.code]) for street in _by_level(areas, "street")}
    assert all(8 <= n <= 20 for n in counts.values()), counts
    assert len(set(counts.values())) == len(counts), counts


def test_community_codes_and_names(
    areas: list[DemoArea], children: dict[str, list[DemoArea]]
) -> None:
    for street in _by_level(areas, "street"):
        for index, community in enumerate(children[street.code], start=1):
            assert community.level == "community"
            assert community.code == f"{street.code}{index:03d}"
            assert community.name.startswith(street.name)
            assert "示例" in community.name
            assert "synthetic" in community.name_en
            assert community.seed is None


def test_geometries_valid_multipolygons_with_area(areas: list[DemoArea]) -> None:
    for area in areas:
        assert isinstance(area.boundary, MultiPolygon), area.code
        assert shapely.is_valid(area.boundary), area.code
        assert area.boundary.area > 0, area.code


def test_coordinates_on_7_decimal_grid(areas: list[DemoArea]) -> None:
    coords = shapely.get_coordinates([area.boundary for area in areas]) * 1e7
    assert abs(coords - coords.round()).max() < 1e-3
    for street in _by_level(areas, "street"):
        assert street.seed is not None
        assert all(round(c, 7) == c for c in street.seed)


def test_seeds_inside_their_street(areas: list[DemoArea]) -> None:
    for street in _by_level(areas, "street"):
        assert street.seed is not None
        assert street.boundary.covers(Point(street.seed)), street.code


def _gcj02_district() -> MultiPolygon:
    collection = json.loads(_data("changning_gcj02.geojson"))
    return shape(collection["features"][0]["geometry"])


def test_district_shifted_from_gcj02_by_about_490_m(areas: list[DemoArea]) -> None:
    gcj02 = _gcj02_district()
    shift = _equirectangular_m(gcj02.centroid, areas[0].boundary.centroid)
    assert 400 < shift < 600, shift
    # A shift, not a reshaping: the offset field is smooth, so the area barely changes.
    assert areas[0].boundary.area == pytest.approx(gcj02.area, rel=1e-2)


def test_district_is_the_converted_outline(areas: list[DemoArea]) -> None:
    converted = shapely.transform(
        _gcj02_district(),
        lambda coords: np.array([gcj02_to_wgs84(float(x), float(y)) for x, y in coords]),
    )
    # Rounding and snapping may move the outline by a grid cell (1e-7°), never more.
    assert shapely.hausdorff_distance(converted, areas[0].boundary) < 3e-7


def test_children_tile_their_parent(
    areas: list[DemoArea], children: dict[str, list[DemoArea]]
) -> None:
    parents = [area for area in areas if area.code in children]
    assert len(parents) == 11
    for parent in parents:
        kids = [child.boundary for child in children[parent.code]]
        tolerance = AREA_TOLERANCE * parent.boundary.area

        union = shapely.union_all(kids)
        # Both one-sided differences as well: a floating-point symmetric difference of
        # nearly equal shapes can come out empty when one side alone does not.
        assert shapely.symmetric_difference(union, parent.boundary).area < tolerance
        assert shapely.difference(union, parent.boundary).area < tolerance, parent.code
        assert shapely.difference(parent.boundary, union).area < tolerance, parent.code
        for kid in kids:
            assert shapely.difference(kid, parent.boundary).area < tolerance, parent.code
        for i, a in enumerate(kids):
            for b in kids[i + 1 :]:
                assert shapely.intersection(a, b).area < tolerance, parent.code


def test_children_form_valid_coverage(
    areas: list[DemoArea], children: dict[str, list[DemoArea]]
) -> None:
    # Stricter than the area checks: neighbours share their edges vertex for vertex, also
    # across street borders, so a point on an edge never falls into a gap.
    for parent_code, kids in children.items():
        assert shapely.coverage_is_valid([kid.boundary for kid in kids]), parent_code
    communities = [area.boundary for area in _by_level(areas, "community")]
    assert shapely.coverage_is_valid(communities)


def test_deterministic() -> None:
    first = build_demo_areas.__wrapped__()
    second = build_demo_areas.__wrapped__()
    assert [a.code for a in first] == [b.code for b in second]
    assert [a.boundary.wkb for a in first] == [b.boundary.wkb for b in second]
    assert [a.seed for a in first] == [b.seed for b in second]


def test_cached() -> None:
    assert build_demo_areas() is build_demo_areas()

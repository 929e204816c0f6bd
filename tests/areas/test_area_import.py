"""Importing the area tree from GeoJSON: service, admin API and CLI; all or nothing.

The synthetic areas sit around 120.0°E 30.0°N (near Hangzhou), far from the Changning
demo, so they never overlap it. Shapes are drawn in metres from that origin.
"""

import json
import math
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import shapely
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from shapely.geometry import MultiPolygon, shape
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased
from typer.testing import CliRunner

from app import cli as cli_module
from app.areas.tree import import_areas
from app.cli import cli
from app.config import get_settings
from app.db import Database
from app.errors import InvalidAreaFeature, UnknownParentArea
from app.geo.coords import CoordSys, gcj02_to_wgs84, to_wgs84
from app.models import Area
from tests.conftest import DATA, TEST_SECRET, Auth

ORIGIN_LON, ORIGIN_LAT = 120.0, 30.0
# Metres per degree at 30°N on the WGS-84 ellipsoid.
M_PER_DEG_LAT = 110_852.4
M_PER_DEG_LON = 96_486.3

IMPORT_URL = "/v1/admin/areas:import"
DISTRICT = "T00001"
STREET_A, STREET_B = "T00001001", "T00001002"
COMMUNITIES = ("T00001001001", "T00001001002", "T00001002001")
ALL_CODES = (DISTRICT, STREET_A, STREET_B, *COMMUNITIES)

CountRows = Callable[[str], int]


def at(x: float, y: float) -> list[float]:
    """[lon, lat] of the point ``x`` metres east and ``y`` metres north of the origin."""
    return [ORIGIN_LON + x / M_PER_DEG_LON, ORIGIN_LAT + y / M_PER_DEG_LAT]


def polygon(*corners: tuple[float, float]) -> dict[str, Any]:
    ring = [at(x, y) for x, y in corners]
    return {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    return polygon((x0, y0), (x1, y0), (x1, y1), (x0, y1))


def feature(
    code: str | None, name: str | None, level: str | None, parent: str | None, geometry: Any
) -> dict[str, Any]:
    properties = {
        k: v
        for k, v in {"code": code, "name": name, "level": level, "parent_code": parent}.items()
        if v is not None
    }
    return {"type": "Feature", "properties": properties, "geometry": geometry}


def collection(*features: dict[str, Any]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": list(features)}


def district(name: str = "测试区") -> dict[str, Any]:
    return feature(DISTRICT, name, "district", None, rect(0, 0, 2000, 1000))


def tree() -> dict[str, Any]:
    """A district, two streets tiling it, three communities tiling the streets."""
    return collection(
        # Deliberately children first: the import orders by level itself.
        feature(COMMUNITIES[0], "甲一社区", "community", STREET_A, rect(0, 0, 1000, 500)),
        feature(STREET_A, "甲街道", "street", DISTRICT, rect(0, 0, 1000, 1000)),
        district(),
        feature(STREET_B, "乙街道", "street", DISTRICT, rect(1000, 0, 2000, 1000)),
        feature(COMMUNITIES[1], "甲二社区", "community", STREET_A, rect(0, 500, 1000, 1000)),
        feature(COMMUNITIES[2], "乙一社区", "community", STREET_B, rect(1000, 0, 2000, 1000)),
    )


# The tree as ``stored`` reads it back.
STORED_TREE = {
    DISTRICT: ("测试区", "district", None),
    STREET_A: ("甲街道", "street", DISTRICT),
    STREET_B: ("乙街道", "street", DISTRICT),
    COMMUNITIES[0]: ("甲一社区", "community", STREET_A),
    COMMUNITIES[1]: ("甲二社区", "community", STREET_A),
    COMMUNITIES[2]: ("乙一社区", "community", STREET_B),
}


def post_import(client: TestClient, headers: dict[str, str], body: Any, **params: str) -> Any:
    content = body if isinstance(body, str) else json.dumps(body)  # NaN stays NaN
    return client.post(
        IMPORT_URL,
        params=params,
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


def stored(database: Database, *codes: str) -> dict[str, tuple[str, str, str | None]]:
    """``{code: (name, level, parent code)}`` of the stored areas among ``codes``.

    Read in a fresh read-only session: holding the test's write session open would
    keep the API's writes waiting on SQLite.
    """
    parent = aliased(Area)
    with database.session(write=False) as s:
        rows = s.execute(
            select(Area.code, Area.name, Area.level, parent.code)
            .outerjoin(parent, parent.id == Area.parent_id)
            .where(Area.code.in_(codes))
        ).all()
    return {code: (name, str(level), parent_code) for code, name, level, parent_code in rows}


def stored_area(database: Database, code: str) -> tuple[int, str, MultiPolygon]:
    """``(id, name, boundary)`` of a stored area."""
    with database.session(write=False) as s:
        area = s.scalar(select(Area).where(Area.code == code))
        assert area is not None, code
        geometry = to_shape(area.boundary)
        assert isinstance(geometry, MultiPolygon)
        return area.id, area.name, geometry


def boundary(database: Database, code: str) -> MultiPolygon:
    return stored_area(database, code)[2]


@pytest.fixture
def admin(auth: Auth) -> dict[str, str]:
    return auth.staff("admin")


# --- success --------------------------------------------------------------------------


def test_import_creates_the_tree(
    client: TestClient, admin: dict[str, str], database: Database, count_rows: CountRows
) -> None:
    before = count_rows("areas")
    response = post_import(client, admin, tree())

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["created"], body["updated"], body["repaired"]) == (6, 6, 0, 0)
    assert sorted(a["code"] for a in body["areas"]) == sorted(ALL_CODES)
    assert all(a["created"] and not a["repaired"] for a in body["areas"])
    assert count_rows("areas") == before + 6
    assert stored(database, *ALL_CODES) == STORED_TREE
    # The stored outline is the one sent (WGS-84 in, WGS-84 stored).
    assert boundary(database, STREET_B).equals(shape(rect(1000, 0, 2000, 1000)))

    listed = client.get("/v1/admin/areas", params={"parent": DISTRICT}, headers=admin)
    assert listed.status_code == 200
    assert [(a["code"], a["parent_code"]) for a in listed.json()["items"]] == [
        (STREET_A, DISTRICT),
        (STREET_B, DISTRICT),
    ]


def test_level_and_parent_defaults_from_the_query(
    client: TestClient, admin: dict[str, str], database: Database
) -> None:
    assert post_import(client, admin, collection(district())).status_code == 200
    streets = collection(
        feature(STREET_A, "甲街道", None, None, rect(0, 0, 1000, 1000)),
        feature(STREET_B, "乙街道", None, None, rect(1000, 0, 2000, 1000)),
    )
    response = post_import(client, admin, streets, level="street", parent=DISTRICT)
    assert response.status_code == 200, response.text
    assert stored(database, STREET_A, STREET_B) == {
        STREET_A: ("甲街道", "street", DISTRICT),
        STREET_B: ("乙街道", "street", DISTRICT),
    }


def test_second_import_updates_by_code(
    client: TestClient, admin: dict[str, str], database: Database, count_rows: CountRows
) -> None:
    assert post_import(client, admin, tree()).status_code == 200
    district_id = stored_area(database, DISTRICT)[0]
    after_first = count_rows("areas")

    response = post_import(client, admin, collection(district(name="改名区")))

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["imported"], body["created"], body["updated"]) == (1, 0, 1)
    assert body["areas"][0]["created"] is False
    assert count_rows("areas") == after_first
    assert stored_area(database, DISTRICT)[0] == district_id
    # The district renamed, and the rest of the tree as it was.
    assert stored(database, *ALL_CODES) == {**STORED_TREE, DISTRICT: ("改名区", "district", None)}


def test_reimporting_a_demo_street_keeps_its_identity(
    client: TestClient, admin: dict[str, str], database: Database, count_rows: CountRows
) -> None:
    street_id, _, outline = stored_area(database, "310105002")
    geometry = shapely.geometry.mapping(outline)
    before = count_rows("areas")

    response = post_import(
        client,
        admin,
        collection(feature("310105002", "江苏路街道（新）", "street", "310105", geometry)),
    )

    assert response.status_code == 200, response.text
    assert response.json()["updated"] == 1
    assert count_rows("areas") == before
    assert stored_area(database, "310105002")[:2] == (street_id, "江苏路街道（新）")


@pytest.mark.parametrize("coord_sys", [CoordSys.GCJ02, CoordSys.BD09])
def test_coord_sys_converts_every_vertex(
    client: TestClient, admin: dict[str, str], database: Database, coord_sys: CoordSys
) -> None:
    sent = polygon((0, 0), (2000, 0), (2300, 700), (800, 1200), (-100, 900))
    response = post_import(
        client,
        admin,
        collection(feature(DISTRICT, "测试区", "district", None, sent)),
        coord_sys=coord_sys.value,
    )

    assert response.status_code == 200, response.text
    got = shapely.get_coordinates(boundary(database, DISTRICT)).tolist()
    convert = (
        gcj02_to_wgs84
        if coord_sys is CoordSys.GCJ02
        else lambda lon, lat: to_wgs84(lon, lat, CoordSys.BD09)
    )
    expected = [convert(lon, lat) for lon, lat in sent["coordinates"][0]]
    assert len(got) == len(expected)
    for (g_lon, g_lat), (e_lon, e_lat), (s_lon, s_lat) in zip(
        got, expected, sent["coordinates"][0], strict=True
    ):
        assert abs(g_lon - e_lon) < 1e-7 and abs(g_lat - e_lat) < 1e-7
        # ... and it did move: by hundreds of metres, not nothing.
        assert abs(g_lon - s_lon) > 1e-3 or abs(g_lat - s_lat) > 1e-3


def test_children_convert_with_their_parent(
    client: TestClient, admin: dict[str, str], database: Database
) -> None:
    # GCJ-02 children inside a GCJ-02 parent stay inside once both are converted, up
    # to slivers: the offset is not linear, so a child's vertex in the middle of the
    # parent's straight edge lands a centimetre or so off the converted edge.
    response = post_import(client, admin, tree(), coord_sys="gcj02")
    assert response.status_code == 200, response.text
    parent = boundary(database, DISTRICT)
    for code in (STREET_A, STREET_B):
        child = boundary(database, code)
        assert child.difference(parent).area < 1e-4 * child.area


def test_self_intersecting_ring_is_repaired(
    client: TestClient, admin: dict[str, str], database: Database
) -> None:
    bowtie = polygon((0, 0), (1000, 1000), (1000, 0), (0, 1000))
    assert not shape(bowtie).is_valid

    response = post_import(
        client, admin, collection(feature(DISTRICT, "蝴蝶区", "district", None, bowtie))
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["repaired"] == 1
    assert body["areas"][0]["repaired"] is True
    repaired = boundary(database, DISTRICT)
    assert repaired.is_valid
    # Both wings kept: two triangles, each a quarter of the square.
    assert len(repaired.geoms) == 2
    square = shape(rect(0, 0, 1000, 1000)).area
    assert repaired.area == pytest.approx(square / 2, rel=1e-9)
    assert repaired.difference(shape(rect(0, 0, 1000, 1000))).area < 1e-9 * square


def test_a_part_without_area_is_dropped(
    client: TestClient, admin: dict[str, str], database: Database
) -> None:
    square = rect(0, 0, 1000, 1000)["coordinates"]
    sliver = polygon((1200, 0), (1600, 400), (2000, 800))["coordinates"]
    response = post_import(
        client,
        admin,
        collection(
            feature(
                DISTRICT,
                "测试区",
                "district",
                None,
                {"type": "MultiPolygon", "coordinates": [square, sliver]},
            )
        ),
    )

    assert response.status_code == 200, response.text
    assert response.json()["areas"][0]["repaired"] is True
    kept = boundary(database, DISTRICT)
    assert len(kept.geoms) == 1
    assert kept.equals(shape(rect(0, 0, 1000, 1000)))


def test_repaired_geometry_through_the_service(session: Session) -> None:
    bowtie = polygon((0, 0), (1000, 1000), (1000, 0), (0, 1000))
    imported = import_areas(
        session,
        collection(
            feature(DISTRICT, "蝴蝶区", "district", None, rect(0, 0, 2000, 1000)),
            feature(STREET_A, "蝴蝶街道", "street", DISTRICT, bowtie),
        ),
    )
    assert [(a.code, a.created, a.repaired) for a in imported] == [
        (DISTRICT, True, False),
        (STREET_A, True, True),
    ]
    session.flush()
    stored_boundary = session.scalar(select(Area.boundary).where(Area.code == STREET_A))
    assert stored_boundary is not None
    assert to_shape(stored_boundary).is_valid


# --- refusals ---------------------------------------------------------------------------

GOOD_PREFIX = (district(), feature(STREET_A, "甲街道", "street", DISTRICT, rect(0, 0, 1000, 1000)))
NAN_RING = [at(0, 0), [float("nan"), ORIGIN_LAT], at(1000, 1000), at(0, 0)]
SQUARE_B = rect(1000, 0, 2000, 1000)


def after_good(bad: dict[str, Any]) -> dict[str, Any]:
    """Two features that import fine, then ``bad`` as feature #2."""
    return collection(*GOOD_PREFIX, bad)


def street_b(geometry: Any = SQUARE_B, **properties: Any) -> dict[str, Any]:
    """Street B under the district, with ``properties`` set over its own (None: left out)."""
    own = {"code": STREET_B, "name": "乙街道", "level": "street", "parent_code": DISTRICT}
    kept = {k: v for k, v in (own | properties).items() if v is not None}
    return {"type": "Feature", "properties": kept, "geometry": geometry}


def rings(*coordinates: list[Any]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": list(coordinates)}


def holed(shell: tuple[float, ...], hole: tuple[float, ...]) -> dict[str, Any]:
    """The rectangle ``shell`` with the rectangle ``hole`` cut out (each as ``rect`` takes it)."""
    return rings(rect(*shell)["coordinates"][0], rect(*hole)["coordinates"][0])


def refused(bad: dict[str, Any], code: str, field: str) -> tuple[Any, str, int, str]:
    """``bad`` imported as feature #2 is refused with ``code``, naming ``field``."""
    return after_good(bad), code, 2, field


# (body, problem code, index of the feature named in the detail, field in errors[])
REFUSALS: dict[str, tuple[Any, str, int | None, str | None]] = {
    "body not JSON": ('{"type": "FeatureCollection", "features": [', "invalid_geojson", None, None),
    "body empty": ("", "invalid_geojson", None, None),
    "a Feature, not a collection": (district(), "invalid_geojson", None, None),
    "a JSON array": ([district()], "invalid_geojson", None, None),
    "features not an array": (
        {"type": "FeatureCollection", "features": {}},
        "invalid_geojson",
        None,
        None,
    ),
    "no features": (collection(), "invalid_geojson", None, None),
    "not a Feature": refused({"type": "Polygon"}, "invalid_area_feature", "type"),
    "missing code": refused(
        street_b(code=None, name="丙街道"), "area_missing_field", "properties.code"
    ),
    "blank code": refused(street_b(code="  "), "area_missing_field", "properties.code"),
    "code with spaces": refused(street_b(code="T 1"), "invalid_area_feature", "properties.code"),
    "missing name": refused(street_b(name=None), "area_missing_field", "properties.name"),
    "missing level": refused(street_b(level=None), "area_missing_field", "properties.level"),
    "invalid level": refused(street_b(level="city"), "invalid_area_level", "properties.level"),
    "street without parent_code": refused(
        street_b(parent_code=None), "area_missing_field", "properties.parent_code"
    ),
    "unknown parent_code": refused(
        street_b(parent_code="T99999"), "unknown_parent_area", "properties.parent_code"
    ),
    "community directly under a district": refused(
        street_b(code=COMMUNITIES[2], name="乙一社区", level="community"),
        "invalid_area_level",
        "properties.parent_code",
    ),
    "child mostly outside its parent": refused(
        street_b(rect(1500, 0, 3500, 1000)), "area_outside_parent", "geometry"
    ),
    "latitude 95": refused(
        street_b(rings([at(1000, 0), at(2000, 0), [120.01, 95.0], at(1000, 0)])),
        "coordinates_out_of_range",
        "geometry.coordinates",
    ),
    "NaN coordinate": refused(
        street_b(rings(NAN_RING)), "coordinates_out_of_range", "geometry.coordinates"
    ),
    "Infinity coordinate": (
        json.dumps(
            after_good(street_b(rings([at(0, 0), [float("inf"), 30.0], at(9, 9), at(0, 0)])))
        ),
        "coordinates_out_of_range",
        2,
        "geometry.coordinates",
    ),
    "string coordinate": refused(
        street_b(rings([at(0, 0), ["120.01", 30.0], at(9, 9), at(0, 0)])),
        "invalid_geometry",
        "geometry.coordinates",
    ),
    "duplicate code": refused(
        street_b(code=STREET_A, name="甲街道二"), "invalid_area_feature", "properties.code"
    ),
    "point geometry": refused(
        street_b({"type": "Point", "coordinates": at(5, 5)}), "invalid_geometry", "geometry"
    ),
    "no geometry": refused(street_b(None), "invalid_geometry", "geometry"),
    "ring of three points": refused(
        street_b(rings([at(1000, 0), at(2000, 0), at(1000, 0)])), "invalid_geometry", "geometry"
    ),
    # Collinear in metres, but not to the last bit in degrees: an area of 1e-17.
    "collinear ring": refused(
        street_b(polygon((1000, 0), (1500, 500), (2000, 1000))), "invalid_geometry", "geometry"
    ),
    "flat ring along a parallel": refused(
        street_b(polygon((1000, 0), (1500, 0), (2000, 0))), "invalid_geometry", "geometry"
    ),
    # Repairing these would invent land nobody drew.
    "hole outside its shell": refused(
        street_b(holed((1000, 0, 1500, 500), (1600, 600, 1800, 800))),
        "invalid_geometry",
        "geometry",
    ),
    "shell inside a bigger hole": refused(
        street_b(holed((1200, 200, 1300, 300), (1000, 0, 1900, 900))),
        "invalid_geometry",
        "geometry",
    ),
    "name of 201 characters": refused(
        street_b(name="乙" * 201), "invalid_area_feature", "properties.name"
    ),
    "name_en of 201 characters": refused(
        street_b(name_en="B" * 201), "invalid_area_feature", "properties.name_en"
    ),
}


@pytest.mark.parametrize(("body", "code", "index", "field"), REFUSALS.values(), ids=REFUSALS.keys())
def test_refused_imports_change_nothing(
    client: TestClient,
    admin: dict[str, str],
    database: Database,
    count_rows: CountRows,
    body: Any,
    code: str,
    index: int | None,
    field: str | None,
) -> None:
    before = count_rows("areas")

    response = post_import(client, admin, body)

    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == 422
    if index is not None:
        assert problem["detail"].startswith(f"feature #{index}"), problem["detail"]
        assert [e["field"] for e in problem["errors"]] == [f"features[{index}].{field}"]
        assert problem["feature_index"] == index
    for secret in ("Traceback", "SELECT", "sqlalchemy"):
        assert secret not in response.text
    # Nothing stored: neither the bad feature nor the good ones before it.
    assert count_rows("areas") == before
    assert stored(database, *ALL_CODES) == {}


def test_refused_feature_is_named_with_its_code(client: TestClient, admin: dict[str, str]) -> None:
    response = post_import(
        client,
        admin,
        after_good(street_b(parent_code="T99999")),
    )
    assert response.json()["detail"].startswith(f"feature #2 (code {STREET_B}): ")
    assert "T99999" in response.json()["detail"]


def test_refused_import_leaves_updates_undone(
    client: TestClient, admin: dict[str, str], database: Database
) -> None:
    _, name, outline = stored_area(database, "310105002")
    geometry = shapely.geometry.mapping(outline)

    response = post_import(
        client,
        admin,
        collection(
            feature("310105002", "改名街道", "street", "310105", geometry),
            feature("310105999", "新街道", "street", "T99999", geometry),
        ),
    )

    assert response.status_code == 422
    assert response.json()["code"] == "unknown_parent_area"
    assert stored_area(database, "310105002")[1] == name
    assert stored(database, "310105999") == {}


def test_service_raises_the_typed_error(session: Session) -> None:
    with pytest.raises(UnknownParentArea) as caught:
        import_areas(
            session,
            after_good(street_b(parent_code="T99999")),
        )
    assert isinstance(caught.value, InvalidAreaFeature)
    assert caught.value.detail.startswith(f"feature #2 (code {STREET_B})")
    assert caught.value.code == "unknown_parent_area"


def test_only_admins_may_import(client: TestClient, auth: Auth, count_rows: CountRows) -> None:
    before = count_rows("areas")
    assert post_import(client, {}, tree()).status_code == 401
    for user in ("officer_310105002", "changning"):
        response = post_import(client, auth.staff(user), tree())
        assert response.status_code == 403
        assert response.json()["code"] == "forbidden"
    assert post_import(client, auth.platform("meituan"), tree()).status_code == 403
    assert count_rows("areas") == before


# --- the command line -------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, database_url: str, baseline: object) -> Iterator[None]:
    monkeypatch.setenv("SENTINEL_DATABASE_URL", database_url)
    monkeypatch.setenv("SENTINEL_ENV", "test")
    monkeypatch.setenv("SENTINEL_SECRET_KEY", TEST_SECRET)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _datav_districts() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((DATA / "districts_gcj02.geojson").read_text("utf-8"))
    return loaded


@pytest.mark.usefixtures("cli_env")
def test_cli_imports_the_shanghai_districts(
    database: Database, baseline: object, count_rows: CountRows, tmp_path: Path
) -> None:
    datav = _datav_districts()
    adcodes = sorted(str(f["properties"]["adcode"]) for f in datav["features"])
    assert len(adcodes) == 16 and "310105" in adcodes
    before = count_rows("areas")
    args = ["--coord-sys", "gcj02", "--level", "district", "--json"]

    # DataV's province file draws Changning more coarsely than the demo's county outline:
    # replacing it would leave part of a stored street outside its district.
    refused = CliRunner().invoke(
        cli, ["areas", "import", str(DATA / "districts_gcj02.geojson"), *args]
    )
    assert refused.exit_code == 1
    assert "(code 310105): its stored child 3101050" in refused.stderr
    assert count_rows("areas") == before

    others = {
        **datav,
        "features": [f for f in datav["features"] if f["properties"]["adcode"] != 310105],
    }
    path = tmp_path / "others.geojson"
    path.write_text(json.dumps(others), encoding="utf-8")
    result = CliRunner().invoke(cli, ["areas", "import", str(path), *args])

    assert result.exit_code == 0, (result.output, result.exception)
    printed = json.loads(result.stdout)
    assert sorted(a["code"] for a in printed["areas"]) == [c for c in adcodes if c != "310105"]
    assert {a["level"] for a in printed["areas"]} == {"district"}
    assert {a["parent_code"] for a in printed["areas"]} == {None}
    assert all(a["created"] for a in printed["areas"])
    assert (printed["imported"], printed["created"], printed["updated"]) == (15, 15, 0)
    assert count_rows("areas") == before + 15

    # Xuhui's outline is DataV's, converted from GCJ-02.
    source = next(f for f in datav["features"] if f["properties"]["adcode"] == 310104)
    expected = shapely.transform(
        shape(source["geometry"]), lambda xy: [gcj02_to_wgs84(float(x), float(y)) for x, y in xy]
    )
    assert shapely.hausdorff_distance(boundary(database, "310104"), expected) < 1e-7
    assert stored(database, "310101") == {"310101": ("黄浦区", "district", None)}


@pytest.mark.usefixtures("cli_env")
def test_cli_imports_a_street_under_a_parent(
    database: Database, baseline: object, tmp_path: Path
) -> None:
    inside = boundary(database, "310105").point_on_surface()
    half = 50 / M_PER_DEG_LAT
    ring = [
        [inside.x + dx * half, inside.y + dy * half]
        for dx, dy in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))
    ]
    path = tmp_path / "street.geojson"
    path.write_text(
        json.dumps(
            collection(
                {
                    "type": "Feature",
                    "properties": {"code": "310105999", "name": "测试街道"},
                    "geometry": {"type": "Polygon", "coordinates": [ring]},
                }
            )
        ),
        encoding="utf-8",
    )

    result = CliRunner().invoke(
        cli, ["areas", "import", str(path), "--level", "street", "--parent", "310105", "--json"]
    )

    assert result.exit_code == 0, (result.output, result.exception)
    assert json.loads(result.stdout) == {
        "imported": 1,
        "created": 1,
        "updated": 0,
        "repaired": 0,
        "areas": [
            {
                "code": "310105999",
                "name": "测试街道",
                "level": "street",
                "parent_code": "310105",
                "created": True,
                "repaired": False,
            }
        ],
    }
    assert stored(database, "310105999") == {"310105999": ("测试街道", "street", "310105")}


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_a_file_that_is_not_json(
    tmp_path: Path, count_rows: CountRows, baseline: object
) -> None:
    path = tmp_path / "broken.geojson"
    path.write_text('{"type": "FeatureCollection", ', encoding="utf-8")
    before = count_rows("areas")

    result = CliRunner().invoke(cli, ["areas", "import", str(path), "--json"])

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "not JSON" in lines[0], result.stderr
    assert count_rows("areas") == before


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_a_bad_feature_in_one_line(
    tmp_path: Path,
    count_rows: CountRows,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    baseline: object,
) -> None:
    path = tmp_path / "orphan.geojson"
    path.write_text(
        json.dumps(after_good(street_b(parent_code="T99999"))),
        encoding="utf-8",
    )
    before = count_rows("areas")
    # Through the installed entry point (``sentinel = app.cli:main``), which turns the
    # service's errors into the one-line message.
    monkeypatch.setattr(sys, "argv", ["sentinel", "areas", "import", str(path), "--json"])
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)

    with pytest.raises(SystemExit) as exited:
        cli_module.main()

    assert exited.value.code == 1
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("sentinel: feature #2 (code T00001002)")
    assert "T99999" in lines[0]
    assert count_rows("areas") == before


def test_metres_helper_matches_the_ellipsoid() -> None:
    # The fixtures above rely on metres→degrees at 30°N; check it against the formula.
    a, e2 = 6_378_137.0, 6.69437999014e-3
    phi = math.radians(ORIGIN_LAT)
    w = math.sqrt(1 - e2 * math.sin(phi) ** 2)
    assert math.radians(a * (1 - e2) / w**3) == pytest.approx(M_PER_DEG_LAT, rel=1e-6)
    assert math.radians(a / w * math.cos(phi)) == pytest.approx(M_PER_DEG_LON, rel=1e-6)


def test_an_update_may_not_strand_stored_children(client, auth, count_rows) -> None:
    """Shrinking Jiangsu Road street to a corner would leave its communities outside it."""
    from shapely.geometry import box, mapping

    admin = auth.staff("admin")
    corner = box(121.40, 31.20, 121.4001, 31.2001)
    before = count_rows("areas")
    shrunk = post_import(
        client,
        admin,
        collection(feature("310105002", "江苏路街道", "street", "310105", mapping(corner))),
    )
    assert shrunk.status_code == 422
    assert shrunk.json()["code"] == "area_outside_parent"
    assert "stored child 310105002001" in shrunk.json()["detail"]
    demoted = post_import(
        client,
        admin,
        collection(feature("310105", "长宁区", "street", "310105002", mapping(corner))),
    )
    assert demoted.status_code == 422
    assert count_rows("areas") == before
    route = client.get(
        "/v1/areas/route",
        headers=admin,
        params={"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"},
    )
    assert route.json()["street"]["code"] == "310105002"


def test_a_control_character_in_a_name_is_refused(client, auth, count_rows) -> None:
    before = count_rows("areas")
    response = post_import(
        client,
        auth.staff("admin"),
        collection(feature("T99", "测\u0000试", "district", None, rect(0, 0, 10, 10))),
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_area_feature"
    assert response.json()["errors"][0]["field"] == "features[0].properties.name"
    assert count_rows("areas") == before

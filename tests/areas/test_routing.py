"""Routing a point to its district, street and community, on a layout built for it.

The synthetic layout sits around 120.0°E 30.0°N, far from the Changning demo. Drawn
in metres east (x) and north (y) of that origin:

    y=2000 +-----------+-----------+-------+--------------+---------------+
           |  C1b      |  C1c      |       |  C2a         |               |
           |           |           |       |              |               |
    y=1000 +-----------+-----------+ strip |              |   (S2 only)   |   (D only)
           |      gap between C1a  | in no |              |               |
     y=900 +-----------------------+ street|              |               |
           |  C1a                  |       |              |               |
       y=0 +-----------------------+-------+--------------+---------------+----------+
          x=0         700        1400    1600           2300            3000      4000
           \\________ street S1 ____/        \\___________ street S2 ______/
           \\_________________________________ district D _______________________________/

C1b and C1c share their edge x=700 vertex for vertex.
"""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from geoalchemy2.shape import to_shape
from sqlalchemy import select
from sqlalchemy.orm import aliased

from app.areas.routing import Route
from app.areas.tree import import_areas
from app.db import Database
from app.errors import OutsideServiceArea
from app.geo.coords import CoordSys, from_wgs84
from app.models import Area, AreaLevel
from app.tickets.reference import route_point
from tests.conftest import Auth

ORIGIN_LON, ORIGIN_LAT = 120.0, 30.0
# Metres per degree at 30°N on the WGS-84 ellipsoid (1° lat ≈ 110.9 km, 1° lon ≈ 96.5 km).
M_PER_DEG_LAT = 110_852.4
M_PER_DEG_LON = 96_486.3
SNAP_M = 150.0  # SENTINEL_ROUTING_SNAP_M's default

D, S1, S2 = "TR0001", "TR0001001", "TR0001002"
C1A, C1B, C1C, C2A = "TR0001001001", "TR0001001002", "TR0001001003", "TR0001002001"


def lon_lat(x: float, y: float) -> tuple[float, float]:
    return ORIGIN_LON + x / M_PER_DEG_LON, ORIGIN_LAT + y / M_PER_DEG_LAT


def rect(x0: float, y0: float, x1: float, y1: float) -> dict[str, Any]:
    # Every corner goes through lon_lat(), so shared corners are bit-for-bit equal.
    ring = [list(lon_lat(x, y)) for x, y in ((x0, y0), (x1, y0), (x1, y1), (x0, y1), (x0, y0))]
    return {"type": "Polygon", "coordinates": [ring]}


def area(code: str, level: str, parent: str | None, geometry: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": f"{code} 测试", "level": level, "parent_code": parent},
    }


LAYOUT = {
    "type": "FeatureCollection",
    "features": [
        area(D, "district", None, rect(0, 0, 4000, 2000)),
        area(S1, "street", D, rect(0, 0, 1400, 2000)),
        area(S2, "street", D, rect(1600, 0, 3000, 2000)),
        area(C1A, "community", S1, rect(0, 0, 1400, 900)),
        area(C1B, "community", S1, rect(0, 1000, 700, 2000)),
        area(C1C, "community", S1, rect(700, 1000, 1400, 2000)),
        area(C2A, "community", S2, rect(1600, 0, 2300, 2000)),
    ],
}


@pytest.fixture
def layout(database: Database, baseline: object) -> None:
    with database.transaction() as session:
        import_areas(session, LAYOUT)


@pytest.fixture
def route(database: Database, layout: None) -> Callable[..., Route]:
    def at(x: float, y: float, snap_m: float = SNAP_M) -> Route:
        lon, lat = lon_lat(x, y)
        with database.session(write=False) as session:
            return route_point(session, lon=lon, lat=lat, snap_m=snap_m)

    return at


def codes(found: Route) -> tuple[str, str | None, str | None]:
    return (
        found.district.code,
        found.street.code if found.street else None,
        found.community.code if found.community else None,
    )


# --- the synthetic layout ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (300, 300, (D, S1, C1A)),
        (1300, 850, (D, S1, C1A)),
        (200, 1500, (D, S1, C1B)),
        (1000, 1900, (D, S1, C1C)),
        (2000, 1000, (D, S2, C2A)),
    ],
)
def test_point_in_a_community(
    route: Callable[..., Route], x: float, y: float, expected: tuple[str, str, str]
) -> None:
    found = route(x, y)
    assert codes(found) == expected
    assert found.snapped_m is None
    assert found.district.name == f"{D} 测试"
    assert found.street is not None and found.community is not None
    assert all(isinstance(ref.id, int) for ref in (found.district, found.street, found.community))


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (700, 1500),  # on the shared edge
        (700, 1000),  # the shared corner on the gap's side
        (700, 2000),  # the shared corner on the district's outer edge
    ],
)
def test_point_on_a_shared_edge_is_routed_and_always_the_same_way(
    route: Callable[..., Route], x: float, y: float
) -> None:
    first = route(x, y)
    assert codes(first)[:2] == (D, S1)
    assert first.community is not None and first.community.code in (C1B, C1C)
    # Covered (boundary included), not snapped.
    assert first.snapped_m is None
    assert all(codes(route(x, y)) == codes(first) for _ in range(5))


def test_point_on_an_outer_boundary_is_covered(route: Callable[..., Route]) -> None:
    assert codes(route(0, 300)) == (D, S1, C1A)  # the district's west edge
    assert codes(route(4000, 1000)) == (D, None, None)  # its east edge


def test_gap_between_communities_snaps_to_the_nearest(route: Callable[..., Route]) -> None:
    # 40 m north of C1A, 60 m south of C1B/C1C.
    found = route(300, 940)
    assert codes(found) == (D, S1, C1A)
    assert found.snapped_m is not None and 0 < found.snapped_m < SNAP_M
    assert found.snapped_m == pytest.approx(40, abs=0.5)

    found = route(300, 970)  # 70 m from C1A, 30 m from C1B
    assert codes(found) == (D, S1, C1B)
    assert found.snapped_m == pytest.approx(30, abs=0.5)


def test_no_snapping_when_the_snap_distance_is_zero(route: Callable[..., Route]) -> None:
    found = route(300, 940, snap_m=0)
    assert codes(found) == (D, S1, None)
    assert found.snapped_m is None


def test_snap_distance_is_a_limit(route: Callable[..., Route]) -> None:
    # 40 m from C1A: a 30 m snap distance is not enough, a 45 m one is.
    assert codes(route(300, 940, snap_m=30)) == (D, S1, None)
    assert codes(route(300, 940, snap_m=45)) == (D, S1, C1A)


def test_part_of_a_street_far_from_communities_stays_at_the_street(
    route: Callable[..., Route],
) -> None:
    found = route(2900, 1000)  # 600 m east of C2A
    assert codes(found) == (D, S2, None)
    assert found.snapped_m is None
    # 100 m from C2A: snapped.
    assert codes(route(2400, 1000)) == (D, S2, C2A)


def test_a_point_in_no_street_goes_to_the_unrouted_queue(route: Callable[..., Route]) -> None:
    found = route(3800, 1000)  # in D, east of S2, 1.5 km from C2A
    assert codes(found) == (D, None, None)
    assert found.snapped_m is None


def test_a_point_in_no_street_near_a_community_snaps_to_it(
    route: Callable[..., Route],
) -> None:
    # In the strip between S1 and S2: 50 m from C1A, 150 m from C2A.
    found = route(1450, 500)
    assert codes(found) == (D, S1, C1A)
    assert found.snapped_m == pytest.approx(50, abs=0.5)
    assert codes(route(1450, 500, snap_m=0)) == (D, None, None)


@pytest.mark.parametrize(("x", "y"), [(-100, 1000), (2000, 2100), (5000, 1000), (2000, -1)])
def test_a_point_outside_every_district_is_refused(
    route: Callable[..., Route], x: float, y: float
) -> None:
    with pytest.raises(OutsideServiceArea) as refused:
        route(x, y)
    assert refused.value.code == "outside_service_area"


def test_outside_every_district_through_the_api(
    client: TestClient, auth: Auth, layout: None
) -> None:
    lon, lat = lon_lat(-500, 1000)
    response = client.get(
        "/v1/areas/route", params={"lon": lon, "lat": lat}, headers=auth.rider("meituan", "r1")
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "outside_service_area"


# --- the Changning demo ----------------------------------------------------------------


@pytest.fixture
def demo_points(database: Database, baseline: object) -> dict[str, tuple[float, float]]:
    """A point inside every demo street and community, from the stored boundaries."""
    with database.session(write=False) as session:
        return {
            code: (p.x, p.y)
            for code, p in (
                (code, to_shape(boundary).point_on_surface())
                for code, boundary in session.execute(
                    select(Area.code, Area.boundary).where(Area.level != AreaLevel.DISTRICT)
                )
            )
        }


def test_every_demo_street_routes_to_itself(
    database: Database, demo_points: dict[str, tuple[float, float]]
) -> None:
    street = aliased(Area)
    with database.session(write=False) as session:
        parent_of = dict(
            session.execute(
                select(Area.code, street.code)
                .join(street, street.id == Area.parent_id)
                .where(Area.level == AreaLevel.COMMUNITY)
            ).all()
        )
        streets = sorted(code for code in demo_points if code not in parent_of)
        assert len(streets) == 10
        for code in streets:
            lon, lat = demo_points[code]
            found = route_point(session, lon=lon, lat=lat, snap_m=SNAP_M)
            assert found.district.code == "310105"
            assert found.street is not None and found.street.code == code
            assert found.community is not None
            assert parent_of[found.community.code] == code
            assert found.snapped_m is None  # the demo's communities tile their street


def test_every_demo_community_routes_to_itself(
    database: Database,
    demo_points: dict[str, tuple[float, float]],
) -> None:
    with database.session(write=False) as session:
        communities = [code for code in demo_points if len(code) == 12]
        assert len(communities) >= 80
        for code in communities:
            lon, lat = demo_points[code]
            found = route_point(session, lon=lon, lat=lat, snap_m=SNAP_M)
            assert found.community is not None and found.community.code == code
            assert found.street is not None and found.street.code == code[:9]


@pytest.mark.parametrize("community", ["310105005007", "310105102009"])
def test_gcj02_and_bd09_input_land_on_the_same_point(
    client: TestClient,
    auth: Auth,
    demo_points: dict[str, tuple[float, float]],
    community: str,
) -> None:
    wgs = demo_points[community]
    headers = auth.platform("meituan")
    for coord_sys in CoordSys:
        lon, lat = from_wgs84(*wgs, coord_sys)
        response = client.get(
            "/v1/areas/route",
            headers=headers,
            params={"lon": lon, "lat": lat, "coord_sys": coord_sys.value},
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["lon"] == pytest.approx(wgs[0], abs=1e-6)
        assert body["lat"] == pytest.approx(wgs[1], abs=1e-6)
        assert body["community"]["code"] == community
        assert body["street"]["code"] == community[:9]
        assert body["district"] == {"code": "310105", "name": "长宁区"}
        if coord_sys is not CoordSys.WGS84:
            # The offsets are hundreds of metres: the same numbers taken for WGS-84
            # land in another community of the demo.
            misread = client.get(
                "/v1/areas/route", headers=headers, params={"lon": lon, "lat": lat}
            )
            assert misread.status_code == 200, misread.text
            assert misread.json()["community"]["code"] != community


def test_route_needs_a_caller(client: TestClient) -> None:
    response = client.get("/v1/areas/route", params={"lon": 121.4, "lat": 31.2})
    assert response.status_code == 401


@pytest.mark.parametrize(
    "params",
    [
        {"lon": 121.4, "lat": 95},
        {"lon": 190, "lat": 31.2},
        {"lon": "nan", "lat": 31.2},
        {"lon": 121.4},
        {"lon": 121.4, "lat": 31.2, "coord_sys": "mercator"},
    ],
)
def test_route_refuses_bad_coordinates(
    client: TestClient, auth: Auth, params: dict[str, Any]
) -> None:
    response = client.get("/v1/areas/route", params=params, headers=auth.platform("meituan"))
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


# --- the areas in memory ---------------------------------------------------------------


def test_areas_are_read_once_for_each_version_of_them(
    database: Database, layout: None, statements: list[tuple[str, Any]]
) -> None:
    """Routing reads the areas from memory: a route asks the database only whether its
    copy is current (one small read), and reads the areas again once they change."""
    lon, lat = lon_lat(300, 940)  # in the gap: covering and snapping both
    with database.session(write=False) as session:
        route_point(session, lon=lon, lat=lat, snap_m=SNAP_M)
    statements.clear()
    with database.session(write=False) as session:
        found = route_point(session, lon=lon, lat=lat, snap_m=SNAP_M)
    assert found.community is not None and found.community.code == C1A
    assert not [sql for sql, _ in statements if "FROM areas" in sql], statements
    assert [sql for sql, _ in statements if "FROM reference_versions" in sql]

    with database.transaction() as session:  # the gap is filled by a community of its own
        import_areas(
            session,
            {
                "type": "FeatureCollection",
                "features": [area("TR0001001004", "community", S1, rect(0, 900, 1400, 1000))],
            },
        )
    statements.clear()
    with database.session(write=False) as session:
        found = route_point(session, lon=lon, lat=lat, snap_m=SNAP_M)
    assert found.community is not None and found.community.code == "TR0001001004"
    assert found.snapped_m is None
    assert [sql for sql, _ in statements if "FROM areas" in sql]


def test_the_route_of_a_point_is_the_same_in_memory_as_in_the_database(
    database: Database, layout: None
) -> None:
    """Every point of a grid over the layout and around it: the areas covering it by
    the library in memory are those the database's own spatial functions find."""
    from sqlalchemy import select

    from app.db import covers, point
    from app.models import Area
    from app.tickets.reference import current_reference

    with database.session(write=False) as session:
        known = current_reference(session)
        for x in range(-100, 4200, 97):
            for y in range(-100, 2200, 89):
                lon, lat = lon_lat(x, y)
                in_database = set(
                    session.scalars(select(Area.code).where(covers(Area.boundary, point(lon, lat))))
                )
                in_memory = {a.ref.code for a in known.areas.covering(lon, lat)}
                assert in_memory == in_database, (x, y)

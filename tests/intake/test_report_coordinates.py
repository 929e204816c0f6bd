"""Coordinates: GCJ-02 and BD-09 in, WGS-84 stored, answers in the caller's system."""

import json

import pytest
from fastapi.testclient import TestClient

from app.geo.coords import CoordSys, from_wgs84, to_wgs84
from tests.conftest import DATA, Headers
from tests.reporting import BASE_LAT, BASE_LON, report, submit


def test_the_transforms_used_here_match_published_vectors() -> None:
    # So that the tests below do not just check the code against itself.
    vectors = json.loads((DATA / "coords_test_vectors.json").read_text())
    shanghai = next(v for v in vectors["wgs_to_gcj"] if v["name"] == "shanghai")
    (w_lat, w_lon), (g_lat, g_lon) = shanghai["wgs"], shanghai["gcj"]
    assert from_wgs84(w_lon, w_lat, CoordSys.GCJ02) == pytest.approx((g_lon, g_lat), abs=1e-9)
    g = vectors["coordTransform_py_readme_lnglat_input"]
    b = vectors["coordTransform_py_readme_outputs_lnglat"]["gcj02_to_bd09"]
    w = to_wgs84(*g, CoordSys.GCJ02)
    assert from_wgs84(*w, CoordSys.BD09) == pytest.approx(b, abs=1e-9)


@pytest.mark.parametrize("coord_sys", [CoordSys.GCJ02, CoordSys.BD09, CoordSys.WGS84])
def test_input_in_any_coord_sys_lands_on_the_same_wgs84_point(
    client: TestClient, r1: Headers, coord_sys: CoordSys
) -> None:
    lon, lat = from_wgs84(BASE_LON, BASE_LAT, coord_sys)
    if coord_sys is not CoordSys.WGS84:  # the offset is hundreds of metres in Shanghai
        assert abs(lon - BASE_LON) > 0.003
    receipt = submit(
        client,
        r1,
        {"category": "road_damage", "lat": lat, "lon": lon, "coord_sys": coord_sys.value},
    )
    assert abs(receipt["lat"] - BASE_LAT) < 1e-6 and abs(receipt["lon"] - BASE_LON) < 1e-6
    detail = client.get(f"/v1/reports/{receipt['id']}", headers=r1).json()
    assert abs(detail["lat"] - BASE_LAT) < 1e-6 and abs(detail["lon"] - BASE_LON) < 1e-6
    assert detail["area"] == receipt["area"]


def test_the_same_point_in_gcj02_and_bd09_joins_one_ticket(
    client: TestClient, r1: Headers, r2: Headers
) -> None:
    g_lon, g_lat = from_wgs84(BASE_LON, BASE_LAT, CoordSys.GCJ02)
    b_lon, b_lat = from_wgs84(BASE_LON, BASE_LAT, CoordSys.BD09)
    a = submit(
        client, r1, {"category": "ebike_parking", "lat": g_lat, "lon": g_lon, "coord_sys": "gcj02"}
    )
    b = submit(
        client, r2, {"category": "ebike_parking", "lat": b_lat, "lon": b_lon, "coord_sys": "bd09"}
    )
    assert b["outcome"] == "joined_ticket" and b["ticket"]["id"] == a["ticket"]["id"]


def test_nearby_answers_in_the_coord_sys_it_was_asked_in(
    client: TestClient, r1: Headers, r2: Headers
) -> None:
    receipt = submit(client, r1, report())
    g_lon, g_lat = from_wgs84(BASE_LON, BASE_LAT, CoordSys.GCJ02)
    response = client.get(
        "/v1/tickets/nearby",
        headers=r2,
        params={"lat": g_lat, "lon": g_lon, "coord_sys": "gcj02", "radius_m": 50},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["coord_sys"] == "gcj02"
    [item] = body["items"]
    assert item["id"] == receipt["ticket"]["id"]
    assert abs(item["lat"] - g_lat) < 1e-6 and abs(item["lon"] - g_lon) < 1e-6
    assert item["distance_m"] < 0.5
    # The same GCJ-02 numbers taken for WGS-84 are some 500 m away: nothing there.
    wrong = client.get(
        "/v1/tickets/nearby", headers=r2, params={"lat": g_lat, "lon": g_lon, "radius_m": 50}
    ).json()
    assert wrong == {"items": [], "next_cursor": None, "coord_sys": "wgs84"}


# --- idempotency -----------------------------------------------------------------------

"""Through a real HTTP server: what a newcomer sees after the README's run command."""

import httpx
from shapely.geometry import shape

from app.geo.coords import CoordSys, from_wgs84
from app.ops.demo_areas import build_demo_areas


def login(http: httpx.Client, baseline, username: str) -> dict[str, str]:
    response = http.post(
        "/v1/auth/token", data={"username": username, "password": baseline.password(username)}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def test_categories_list_the_seven_defaults(http: httpx.Client) -> None:
    response = http.get("/v1/categories")
    assert response.status_code == 200
    assert [c["code"] for c in response.json()["items"]] == [
        "road_damage",
        "ebike_parking",
        "facility_damage",
        "fire_exit_blocked",
        "illegal_charging",
        "waste",
        "other",
    ]
    assert (
        http.get("/v1/categories", headers={"If-None-Match": response.headers["etag"]}).status_code
        == 304
    )


def test_a_point_in_each_demo_street_routes_to_that_street(http: httpx.Client, baseline) -> None:
    headers = login(http, baseline, "changning")
    streets = [a for a in build_demo_areas() if a.level == "street"]
    assert len(streets) == 10
    for street in streets:
        # The rider's app speaks GCJ-02: send the street's seed as the app would.
        lon, lat = from_wgs84(*street.seed, CoordSys.GCJ02)
        response = http.get(
            "/v1/areas/route",
            headers=headers,
            params={"lat": lat, "lon": lon, "coord_sys": "gcj02"},
        )
        assert response.status_code == 200, response.text
        routed = response.json()
        assert routed["district"]["code"] == "310105"
        assert routed["street"] == {"code": street.code, "name": street.name}
        assert routed["community"]["code"].startswith(street.code)
        assert shape(street.boundary.__geo_interface__).covers(
            shape({"type": "Point", "coordinates": [routed["lon"], routed["lat"]]})
        )


def test_a_point_outside_changning_is_outside_the_service_area(
    http: httpx.Client, baseline
) -> None:
    response = http.get(
        "/v1/areas/route",
        headers=login(http, baseline, "admin"),
        params={"lat": 31.2397, "lon": 121.4998},
    )  # the Bund, Huangpu
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "outside_service_area"


def test_the_loopback_gets_the_metrics_when_no_token_is_set(http: httpx.Client) -> None:
    """A Prometheus beside the service scrapes it on 127.0.0.1 with no token to manage."""
    assert http.get("/metrics").status_code == 200
    assert "schema" in http.get("/readyz").json()

"""Who may call what: every endpoint family against every role, and two tenants side by
side (two streets, two platforms) to show that nobody sees across the fence."""

from collections.abc import Callable
from typing import Any, NamedTuple

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select

from app.db import Database
from app.models import Base
from tests.conftest import Auth
from tests.helpers import DEMO_STREETS, assert_problem, category_body

ROLES = ("platform", "rider", "officer", "district", "admin")
# A point in community 310105002001 (江苏路街道).
INSIDE = {"lat": 31.2234, "lon": 121.4272}
CATEGORY_BODY = category_body(
    "垃圾堆放", "Dumped waste", priority=1, respond_within_h=1, resolve_within_h=2, dedup_radius_m=1
)
EMPTY_IMPORT = {"type": "FeatureCollection", "features": []}
NEW_ADMIN = {"username": "intruder", "role": "admin", "password": "long-enough-1"}


class Endpoint(NamedTuple):
    method: str
    path: str
    roles: frozenset[str]
    json: Any = None
    params: dict[str, Any] | None = None


def endpoint(method: str, path: str, roles: str, **kwargs: Any) -> Endpoint:
    allowed = frozenset(ROLES if roles == "*" else roles.split())
    return Endpoint(method, path, allowed, **kwargs)


ENDPOINTS = [
    endpoint("POST", "/v1/platform/rider-tokens", "platform", json={"rider_id": "r-new"}),
    endpoint("GET", "/v1/platform/riders/rider-1", "platform"),
    endpoint("GET", "/v1/areas/route", "*", params=INSIDE),
    endpoint("GET", "/v1/office/areas", "officer district"),
    endpoint("GET", "/v1/office/areas/310105002", "officer district"),
    endpoint("POST", "/v1/admin/areas:import", "admin", json=EMPTY_IMPORT),
    endpoint("GET", "/v1/admin/areas", "admin"),
    endpoint("GET", "/v1/admin/categories", "admin"),
    endpoint("GET", "/v1/admin/categories/waste", "admin"),
    endpoint("PUT", "/v1/admin/categories/waste", "admin", json=CATEGORY_BODY),
    endpoint("PUT", "/v1/admin/categories/brand_new", "admin", json=CATEGORY_BODY),
    endpoint("POST", "/v1/admin/platforms", "admin", json={"code": "didi", "name": "滴滴"}),
    endpoint("GET", "/v1/admin/platforms", "admin"),
    endpoint("POST", "/v1/admin/platforms/meituan/api-key", "admin"),
    endpoint("POST", "/v1/admin/staff", "admin", json=NEW_ADMIN),
    endpoint("GET", "/v1/admin/staff", "admin"),
]
IDS = [f"{e.method} {e.path}" for e in ENDPOINTS]


def call(client: TestClient, e: Endpoint, headers: dict[str, str] | None = None) -> Response:
    return client.request(e.method, e.path, json=e.json, params=e.params, headers=headers)


def headers_for(auth: Auth, role: str) -> dict[str, str]:
    return {
        "platform": lambda: auth.platform("meituan"),
        "rider": lambda: auth.rider("meituan", "rider-1"),
        "officer": lambda: auth.staff("officer_310105002"),
        "district": lambda: auth.staff("changning"),
        "admin": lambda: auth.staff("admin"),
    }[role]()


def snapshot(database: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the configuration tables (areas by code and name only)."""
    tables = Base.metadata.tables
    with database.session(write=False) as s:
        state = {
            name: sorted(map(tuple, s.execute(select(tables[name]))), key=str)
            for name in ("platforms", "riders", "staff", "categories")
        }
        state["areas"] = sorted(
            map(tuple, s.execute(select(tables["areas"].c.code, tables["areas"].c.name)))
        )
    return state


# --- the role matrix -------------------------------------------------------------------


@pytest.mark.parametrize("e", ENDPOINTS, ids=IDS)
def test_without_a_token_is_401(client: TestClient, database: Database, e: Endpoint) -> None:
    before = snapshot(database)

    response = call(client, e)

    assert_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"
    assert snapshot(database) == before


WRONG_ROLE = [
    pytest.param(e, role, id=f"{role} {e.method} {e.path}")
    for e in ENDPOINTS
    for role in ROLES
    if role not in e.roles
]


@pytest.mark.parametrize(("e", "role"), WRONG_ROLE)
def test_a_wrong_role_is_403_and_changes_nothing(
    client: TestClient,
    auth: Auth,
    database: Database,
    e: Endpoint,
    role: str,
) -> None:
    headers = headers_for(auth, role)
    before = snapshot(database)

    response = call(client, e, headers)

    assert_problem(response, 403, "forbidden")
    assert snapshot(database) == before


RIGHT_ROLE = [
    pytest.param(e, role, id=f"{role} {e.method} {e.path}")
    for e in ENDPOINTS
    for role in ROLES
    if role in e.roles
]


@pytest.mark.parametrize(("e", "role"), RIGHT_ROLE)
def test_the_right_role_gets_through(
    client: TestClient, auth: Auth, e: Endpoint, role: str
) -> None:
    """The control for the 403s: the same requests succeed for the roles they are for."""
    if e.path == "/v1/platform/riders/rider-1":
        auth.rider("meituan", "rider-1")

    response = call(client, e, headers_for(auth, role))

    if e.path == "/v1/admin/areas:import":
        # The empty import is refused for what it is, past the role check.
        assert_problem(response, 422, "invalid_geojson")
    else:
        assert response.status_code in (200, 201), response.text


# --- two streets -----------------------------------------------------------------------


def community_codes(client: TestClient, auth: Auth, street: str) -> set[str]:
    page = client.get(
        "/v1/admin/areas", headers=auth.staff("admin"), params={"parent": street, "limit": 200}
    ).json()
    return {a["code"] for a in page["items"]}


@pytest.mark.parametrize(("own", "other"), [("310105002", "310105001"), ("310105001", "310105002")])
def test_an_officer_sees_its_street_and_nothing_else(
    client: TestClient,
    auth: Auth,
    own: str,
    other: str,
) -> None:
    officer = auth.staff(f"officer_{own}")
    own_communities = community_codes(client, auth, own)
    assert len(own_communities) > 5 and all(c.startswith(own) for c in own_communities)

    layer = client.get("/v1/office/areas", headers=officer)

    assert layer.status_code == 200, layer.text
    collection = layer.json()
    assert collection["type"] == "FeatureCollection"
    features = {f["id"]: f for f in collection["features"]}
    assert set(features) == {own} | own_communities
    assert features[own]["properties"]["level"] == "street"
    assert features[own]["geometry"]["type"] == "MultiPolygon"
    assert {f["properties"]["parent_code"] for c, f in features.items() if c != own} == {own}

    for code in (own, min(own_communities)):
        assert client.get(f"/v1/office/areas/{code}", headers=officer).json()["id"] == code
    missing = assert_problem(
        client.get("/v1/office/areas/310105999", headers=officer), 404, "not_found"
    )
    for code in (other, other + "001", "310105"):
        hidden = assert_problem(
            client.get(f"/v1/office/areas/{code}", headers=officer), 404, "not_found"
        )
        # Indistinguishable from an area that does not exist.
        assert hidden["detail"].replace(code, "310105999") == missing["detail"]


def test_the_district_user_sees_every_street_and_community(
    client: TestClient,
    auth: Auth,
    count_rows: Callable[[str], int],
) -> None:
    district = auth.staff("changning")

    features = client.get("/v1/office/areas", headers=district).json()["features"]

    streets = {f["id"] for f in features if f["properties"]["level"] == "street"}
    assert streets == set(DEMO_STREETS)
    assert len(features) == count_rows("areas")
    for code in ("310105", "310105001", "310105002001", "310105102001"):
        assert client.get(f"/v1/office/areas/{code}", headers=district).status_code == 200


# --- two platforms ---------------------------------------------------------------------


def test_two_platforms_may_have_riders_with_the_same_id(client: TestClient, auth: Auth) -> None:
    meituan, eleme = auth.platform("meituan"), auth.platform("eleme")
    tokens = {
        name: client.post(
            "/v1/platform/rider-tokens",
            headers=key,
            json={"rider_id": "r-42", "display_name": name},
        ).json()
        for name, key in (("meituan", meituan), ("eleme", eleme))
    }
    assert tokens["meituan"]["rider"]["id"] != tokens["eleme"]["rider"]["id"]

    for name, key in (("meituan", meituan), ("eleme", eleme)):
        rider = client.get("/v1/platform/riders/r-42", headers=key).json()
        assert rider["id"] == tokens[name]["rider"]["id"]
        assert rider["display_name"] == name


def test_a_platform_cannot_see_another_platforms_rider(client: TestClient, auth: Auth) -> None:
    meituan, eleme = auth.platform("meituan"), auth.platform("eleme")
    client.post("/v1/platform/rider-tokens", headers=eleme, json={"rider_id": "only-eleme"})

    assert client.get("/v1/platform/riders/only-eleme", headers=eleme).status_code == 200
    hidden = assert_problem(
        client.get("/v1/platform/riders/only-eleme", headers=meituan), 404, "not_found"
    )
    missing = assert_problem(
        client.get("/v1/platform/riders/nobody", headers=meituan), 404, "not_found"
    )
    assert hidden["detail"].replace("only-eleme", "nobody") == missing["detail"]

"""The operator's API: platforms and their keys, staff accounts, and the area listing."""

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app import platforms as platform_service
from app.errors import ValidationFailed
from app.models import Platform
from tests.conftest import Auth, Baseline, bearer
from tests.helpers import DEMO_STREETS, assert_problem, rider_token

CountRows = Callable[[str], int]
# The Changning demo: the district, its 10 streets and 144 communities.
DEMO_AREAS = 155


def error_fields(response: Response) -> set[str]:
    return {e["field"] for e in assert_problem(response, 422, "validation_error")["errors"]}


@pytest.fixture
def admin(auth: Auth) -> dict[str, str]:
    return auth.staff("admin")


RefusedCreate = Callable[[str, str, dict[str, str]], set[str]]


@pytest.fixture
def refused_create(
    client: TestClient, admin: dict[str, str], count_rows: CountRows
) -> RefusedCreate:
    """Posts a body the admin API must refuse, checks that no `table` row was stored, and
    returns the fields the 422 names."""

    def create(path: str, table: str, body: dict[str, str]) -> set[str]:
        before = count_rows(table)
        response = client.post(path, headers=admin, json=body)
        assert count_rows(table) == before
        return error_fields(response)

    return create


# --- platforms -------------------------------------------------------------------------


def test_a_new_platforms_key_works_at_once(
    client: TestClient, admin: dict[str, str], count_rows: CountRows
) -> None:
    platforms = count_rows("platforms")

    response = client.post(
        "/v1/admin/platforms", headers=admin, json={"code": "didi", "name": "滴滴"}
    )

    assert response.status_code == 201, response.text
    created = response.json()
    assert (created["code"], created["name"]) == ("didi", "滴滴")
    assert created["api_key"].startswith("fsk_") and len(created["api_key"]) > 40
    assert count_rows("platforms") == platforms + 1
    token = rider_token(client, bearer(created["api_key"]), "dd-1")
    assert token.status_code == 201, token.text

    listed = client.get("/v1/admin/platforms", headers=admin).json()["items"]
    didi = next(p for p in listed if p["code"] == "didi")
    assert didi["api_key_prefix"] == created["api_key"][:12] and didi["active"] is True
    assert "api_key" not in didi
    assert [p["code"] for p in listed] == sorted(["didi", "eleme", "meituan"])


def test_a_duplicate_platform_code_is_409_and_keeps_the_old_key(
    client: TestClient, admin: dict[str, str], auth: Auth, count_rows: CountRows
) -> None:
    platforms = count_rows("platforms")

    response = client.post(
        "/v1/admin/platforms", headers=admin, json={"code": "meituan", "name": "美团 again"}
    )

    assert_problem(response, 409, "already_exists")
    assert count_rows("platforms") == platforms
    assert rider_token(client, auth.platform("meituan"), "mt-1").status_code == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "Didi", "name": "滴滴"}, "code"),
        ({"code": "d", "name": "滴滴"}, "code"),
        ({"code": "1didi", "name": "滴滴"}, "code"),
        ({"code": "di di", "name": "滴滴"}, "code"),
        ({"code": "d" * 65, "name": "滴滴"}, "code"),
        ({"name": "滴滴"}, "code"),
        ({"code": "didi"}, "name"),
        ({"code": "didi", "name": ""}, "name"),
    ],
)
def test_a_bad_platform_is_422_and_stores_nothing(
    refused_create: RefusedCreate, body: dict[str, str], field: str
) -> None:
    assert field in refused_create("/v1/admin/platforms", "platforms", body)


@pytest.mark.parametrize(
    ("code", "name", "field"),
    [
        ("Didi", "滴滴", "code"),
        ("didi\n", "滴滴", "code"),
        ("didi", "", "name"),
        ("didi", "滴" * 201, "name"),
    ],
)
def test_the_service_checks_platforms_itself(
    session: Session, code: str, name: str, field: str
) -> None:
    """`sentinel platform create` calls the service without the API's schema."""
    with pytest.raises(ValidationFailed) as refused:
        platform_service.create_platform(session, code=code, name=name)

    assert refused.value.errors == [{"field": field, "message": refused.value.detail}]
    assert session.scalar(select(func.count()).select_from(Platform)) == 2


def test_rotating_a_key_replaces_it(client: TestClient, admin: dict[str, str], auth: Auth) -> None:
    old = auth.platform("meituan")

    response = client.post("/v1/admin/platforms/meituan/api-key", headers=admin)

    assert response.status_code == 200, response.text
    rotated = response.json()
    assert rotated["code"] == "meituan" and rotated["api_key"] != old["Authorization"][7:]
    assert client.get("/v1/platform/riders/x", headers=old).status_code == 401
    assert (
        client.get("/v1/platform/riders/x", headers=bearer(rotated["api_key"])).status_code == 404
    )
    listed = client.get("/v1/admin/platforms", headers=admin).json()["items"]
    assert {p["code"]: p["api_key_prefix"] for p in listed}["meituan"] == rotated["api_key"][:12]


def test_rotating_the_key_of_an_unknown_platform_is_404(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert_problem(
        client.post("/v1/admin/platforms/nosuch/api-key", headers=admin), 404, "not_found"
    )


# --- staff -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "area", "probe"),
    [
        ("officer", "310105004", "/v1/office/areas/310105004"),
        ("district", "310105", "/v1/office/areas/310105102"),
        ("admin", None, "/v1/admin/staff"),
    ],
)
@pytest.mark.parametrize("password", [None, "a-chosen-passw0rd"])
def test_new_staff_can_log_in(
    client: TestClient,
    admin: dict[str, str],
    count_rows: CountRows,
    role: str,
    area: str | None,
    probe: str,
    password: str | None,
) -> None:
    staff = count_rows("staff")
    body = {"username": f"new.{role}", "role": role, "area": area, "display_name": "新人"}
    if password is not None:
        body["password"] = password

    response = client.post("/v1/admin/staff", headers=admin, json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert {k: created[k] for k in ("username", "role", "area")} == {
        "username": f"new.{role}",
        "role": role,
        "area": area,
    }
    assert created["password"] == (password or created["password"])
    assert len(created["password"]) >= 10
    assert count_rows("staff") == staff + 1

    login = client.post(
        "/v1/auth/token", data={"username": f"new.{role}", "password": created["password"]}
    )
    assert login.status_code == 200, login.text
    assert (login.json()["role"], login.json()["area"]) == (role, area)
    assert client.get(probe, headers=bearer(login.json()["access_token"])).status_code == 200

    listed = client.get("/v1/admin/staff", headers=admin, params={"limit": 200}).json()["items"]
    row = next(s for s in listed if s["username"] == f"new.{role}")
    assert (row["role"], row["area"], row["active"], row["display_name"]) == (
        role,
        area,
        True,
        "新人",
    )
    assert not {"password", "password_hash"} & row.keys()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "officer", "area": "310105"}, "area"),  # a district, not a street
        ({"role": "officer", "area": "310105002001"}, "area"),  # a community
        ({"role": "officer"}, "area"),
        ({"role": "district", "area": "310105002"}, "area"),
        ({"role": "district"}, "area"),
        ({"role": "admin", "area": "310105"}, "area"),
        ({"role": "officer", "area": "999999999"}, "area"),
        ({"role": "officer", "area": "310105002", "password": "short"}, "password"),
        ({"role": "officer", "area": "310105002", "username": "no spaces"}, "username"),
        ({"role": "officer", "area": "310105002", "username": "ab"}, "username"),
        ({"role": "officer", "area": "310105002", "username": "newbie\n"}, "username"),
        ({"role": "superuser"}, "role"),
    ],
)
def test_bad_staff_is_422_and_stores_nothing(
    refused_create: RefusedCreate, body: dict[str, str], field: str
) -> None:
    assert field in refused_create("/v1/admin/staff", "staff", {"username": "newbie", **body})


def test_a_duplicate_username_is_409_and_leaves_the_account_alone(
    client: TestClient, admin: dict[str, str], baseline: Baseline, count_rows: CountRows
) -> None:
    staff = count_rows("staff")

    response = client.post(
        "/v1/admin/staff",
        headers=admin,
        json={"username": "officer_310105002", "role": "admin", "password": "taken-over-now"},
    )

    assert_problem(response, 409, "already_exists")
    assert count_rows("staff") == staff
    login = client.post(
        "/v1/auth/token",
        data={"username": "officer_310105002", "password": baseline.password("officer_310105002")},
    )
    assert (login.status_code, login.json()["role"]) == (200, "officer")


def test_the_staff_list_holds_the_demo_accounts(client: TestClient, admin: dict[str, str]) -> None:
    items = client.get("/v1/admin/staff", headers=admin).json()["items"]

    crews = [f"crew_{unit}_{code}" for code in DEMO_STREETS for unit in ("chengguan", "roads")]
    assert [s["username"] for s in items] == sorted(
        ["admin", "changning", *(f"officer_{code}" for code in DEMO_STREETS), *crews]
    )
    assert {s["username"]: s["area"] for s in items}["officer_310105002"] == "310105002"


# --- areas -----------------------------------------------------------------------------


def test_area_pages_walk_every_area_once(
    client: TestClient, admin: dict[str, str], count_rows: CountRows
) -> None:
    assert count_rows("areas") == DEMO_AREAS
    codes: list[str] = []
    sizes: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 50} | ({"cursor": cursor} if cursor else {})
        response = client.get("/v1/admin/areas", headers=admin, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        codes += [a["code"] for a in page["items"]]
        sizes.append(len(page["items"]))
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(sizes) < 10, "the cursor does not advance"

    assert sizes == [50, 50, 50, 5]
    assert len(set(codes)) == len(codes) == DEMO_AREAS
    assert codes == sorted(codes)


def test_the_default_page_is_50_and_200_is_the_most(
    client: TestClient, admin: dict[str, str]
) -> None:
    default = client.get("/v1/admin/areas", headers=admin).json()
    everything = client.get("/v1/admin/areas", headers=admin, params={"limit": 200}).json()

    assert len(default["items"]) == 50 and default["next_cursor"]
    assert len(everything["items"]) == DEMO_AREAS and everything["next_cursor"] is None
    for limit in (0, 201, -1):
        response = client.get("/v1/admin/areas", headers=admin, params={"limit": limit})
        assert "limit" in error_fields(response)


def _cursor_of(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda c: c[:-3] + "zzz", id="edited"),
        pytest.param(lambda c: c + "!", id="appended"),
        pytest.param(lambda _c: "not a cursor", id="garbage"),
        pytest.param(lambda _c: _cursor_of({"code": "310105"}), id="json_object"),
        pytest.param(lambda _c: _cursor_of([{"code": "310105"}]), id="list_of_object"),
        pytest.param(lambda _c: _cursor_of([None]), id="list_of_null"),
        pytest.param(lambda _c: _cursor_of([True]), id="list_of_bool"),
        pytest.param(lambda _c: _cursor_of([1]), id="number_for_a_code"),
    ],
)
def test_a_tampered_cursor_is_422(
    client: TestClient, admin: dict[str, str], tamper: Callable[[str], str]
) -> None:
    cursor = client.get("/v1/admin/areas", headers=admin).json()["next_cursor"]

    response = client.get("/v1/admin/areas", headers=admin, params={"cursor": tamper(cursor)})

    assert "cursor" in error_fields(response)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"level": "district"}, ["310105"]),
        ({"level": "street"}, list(DEMO_STREETS)),
        ({"parent": "310105"}, list(DEMO_STREETS)),
        ({"level": "street", "parent": "310105"}, list(DEMO_STREETS)),
        ({"level": "community", "parent": "310105"}, []),
        ({"level": "district", "parent": "310105002"}, []),
    ],
)
def test_area_filters(
    client: TestClient, admin: dict[str, str], params: dict[str, str], expected: list[str]
) -> None:
    page = client.get("/v1/admin/areas", headers=admin, params=params | {"limit": 200}).json()

    assert [a["code"] for a in page["items"]] == expected


def test_the_communities_of_a_street(client: TestClient, admin: dict[str, str]) -> None:
    items = client.get(
        "/v1/admin/areas", headers=admin, params={"parent": "310105002", "limit": 200}
    ).json()["items"]
    communities = client.get(
        "/v1/admin/areas", headers=admin, params={"level": "community", "limit": 200}
    ).json()["items"]

    assert len(items) == 20
    assert {(a["level"], a["parent_code"]) for a in items} == {("community", "310105002")}
    assert [a["code"] for a in items] == [f"310105002{n:03}" for n in range(1, 21)]
    assert len(communities) == DEMO_AREAS - 11
    assert {a["parent_code"] for a in communities} == set(DEMO_STREETS)


def test_bad_area_filters(client: TestClient, admin: dict[str, str]) -> None:
    assert "level" in error_fields(
        client.get("/v1/admin/areas", headers=admin, params={"level": "province"})
    )
    assert_problem(
        client.get("/v1/admin/areas", headers=admin, params={"parent": "999"}), 404, "not_found"
    )

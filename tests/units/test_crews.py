"""The accounts of a unit's crew: made by the admin (a unit, no area), shown with their unit,
signing in, and kept out of what is not theirs."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Auth, Baseline, bearer
from tests.helpers import DEMO_STREETS, assert_problem

CountRows = Callable[[str], int]
JIANGSU = "310105002"


@pytest.fixture
def admin(auth: Auth) -> dict[str, str]:
    return auth.staff("admin")


def test_the_admin_makes_a_crew_account_that_signs_in(
    client: TestClient, admin: dict[str, str], count_rows: CountRows
) -> None:
    staff = count_rows("staff")
    body = {"username": "li.si", "role": "crew", "unit": f"roads_{JIANGSU}", "display_name": "李四"}

    response = client.post("/v1/admin/staff", headers=admin, json=body)

    assert response.status_code == 201, response.text
    created = response.json()
    assert {k: created[k] for k in ("username", "role", "area", "unit", "display_name")} == {
        "username": "li.si",
        "role": "crew",
        "area": None,
        "unit": f"roads_{JIANGSU}",
        "display_name": "李四",
    }
    assert count_rows("staff") == staff + 1
    login = client.post(
        "/v1/auth/token", data={"username": "li.si", "password": created["password"]}
    )
    assert login.status_code == 200, login.text
    assert (login.json()["role"], login.json()["area"]) == ("crew", None)
    listed = client.get("/v1/admin/staff", headers=admin, params={"limit": 200}).json()["items"]
    row = next(s for s in listed if s["username"] == "li.si")
    assert (row["role"], row["area"], row["unit"], row["display_name"]) == (
        "crew",
        None,
        f"roads_{JIANGSU}",
        "李四",
    )
    officer = next(s for s in listed if s["username"] == f"officer_{JIANGSU}")
    assert (officer["unit"], officer["display_name"]) == (None, "江苏路街道工作人员")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"role": "crew"}, "unit"),
        ({"role": "crew", "unit": "no-such-unit"}, "unit"),
        ({"role": "crew", "unit": f"roads_{JIANGSU}", "area": JIANGSU}, "area"),
        ({"role": "officer", "area": JIANGSU, "unit": f"roads_{JIANGSU}"}, "unit"),
        ({"role": "district", "area": "310105", "unit": f"roads_{JIANGSU}"}, "unit"),
        ({"role": "admin", "unit": f"roads_{JIANGSU}"}, "unit"),
        ({"role": "crew", "unit": f"roads_{JIANGSU}", "display_name": "长" * 101}, "display_name"),
    ],
)
def test_a_bad_crew_account_is_422_naming_the_field_and_stores_nothing(
    client: TestClient,
    admin: dict[str, str],
    count_rows: CountRows,
    body: dict[str, Any],
    field: str,
) -> None:
    staff = count_rows("staff")

    response = client.post("/v1/admin/staff", headers=admin, json={"username": "newbie", **body})

    problem = assert_problem(response, 422, "validation_error")
    assert {e["field"] for e in problem["errors"]} == {field}
    assert count_rows("staff") == staff


def test_the_demo_has_a_crew_account_for_each_of_its_units(
    client: TestClient, admin: dict[str, str], baseline: Baseline
) -> None:
    crews = {s["username"]: s for s in baseline.credentials.staff if s["role"] == "crew"}
    units = {f"{kind}_{street}" for street in DEMO_STREETS for kind in ("chengguan", "roads")}

    assert {s["unit"] for s in crews.values()} == units
    assert set(crews) == {f"crew_{unit}" for unit in units}
    assert all(s["area"] is None and len(str(s["password"])) >= 10 for s in crews.values())
    listed = client.get("/v1/admin/staff", headers=admin, params={"limit": 200}).json()["items"]
    assert {s["username"]: s["unit"] for s in listed if s["role"] == "crew"} == {
        name: s["unit"] for name, s in crews.items()
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/admin/staff"),
        ("POST", "/v1/admin/staff"),
        ("PATCH", f"/v1/admin/staff/crew_roads_{JIANGSU}"),
        ("GET", "/v1/admin/units"),
        ("GET", "/v1/admin/categories"),
        ("POST", "/v1/admin/platforms"),
        ("GET", "/v1/office/areas"),
        ("GET", "/v1/office/stats"),
    ],
)
def test_a_crew_member_is_403_on_the_admins_and_offices_routes(
    client: TestClient, baseline: Baseline, count_rows: CountRows, method: str, path: str
) -> None:
    username = f"crew_roads_{JIANGSU}"
    token = client.post(
        "/v1/auth/token", data={"username": username, "password": baseline.password(username)}
    )
    assert token.status_code == 200, token.text
    staff = count_rows("staff")
    body = {"username": "self.made", "role": "admin", "password": "long-enough-1"}

    response = client.request(
        method,
        path,
        headers=bearer(token.json()["access_token"]),
        json=body if method == "POST" else {"active": False} if method == "PATCH" else None,
    )

    assert_problem(response, 403, "forbidden")
    assert count_rows("staff") == staff


def test_the_admin_renames_an_account_and_nothing_else_changes(
    client: TestClient, admin: dict[str, str]
) -> None:
    path = f"/v1/admin/staff/crew_roads_{JIANGSU}"

    renamed = client.patch(path, headers=admin, json={"display_name": "王五"})
    kept = client.patch(path, headers=admin, json={"may_publish_alerts": False})
    cleared = client.patch(path, headers=admin, json={"display_name": None})

    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["display_name"], renamed.json()["unit"]) == ("王五", f"roads_{JIANGSU}")
    assert (kept.json()["display_name"], kept.json()["active"]) == ("王五", True)
    assert cleared.json()["display_name"] is None

"""Responsible units through the API: the admin's edits with every refusal, and the units
each office sees (two streets side by side)."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import Auth
from tests.helpers import DEMO_STREETS, assert_problem

CountRows = Callable[[str], int]
UNIT_TABLES = ("units", "unit_streets", "unit_categories")
JIANGSU, HUAYANG = "310105002", "310105001"
NEW_UNIT = {
    "code": "water-east",
    "name": "自来水东区管线所",
    "kind": "utility",
    "streets": [JIANGSU, HUAYANG],
    "categories": ["facility_damage"],
}


@pytest.fixture
def admin(auth: Auth) -> dict[str, str]:
    return auth.staff("admin")


def error_fields(response: Response) -> set[str]:
    return {e["field"] for e in assert_problem(response, 422, "validation_error")["errors"]}


def rows(count_rows: CountRows) -> dict[str, int]:
    return {table: count_rows(table) for table in UNIT_TABLES}


def test_an_admin_adds_reads_lists_and_changes_a_unit(
    client: TestClient, admin: dict[str, str], count_rows: CountRows
) -> None:
    before = rows(count_rows)

    created = client.post("/v1/admin/units", headers=admin, json=NEW_UNIT)

    assert created.status_code == 201, created.text
    expected = {**NEW_UNIT, "streets": [HUAYANG, JIANGSU], "active": True}
    assert created.json() == expected
    assert rows(count_rows) == {
        "units": before["units"] + 1,
        "unit_streets": before["unit_streets"] + 2,
        "unit_categories": before["unit_categories"] + 1,
    }
    assert client.get("/v1/admin/units/water-east", headers=admin).json() == expected
    listed = client.get("/v1/admin/units", headers=admin, params={"limit": 200}).json()
    assert expected in listed["items"]
    assert [u["code"] for u in listed["items"]] == sorted(u["code"] for u in listed["items"])

    changed = client.patch(
        "/v1/admin/units/water-east",
        headers=admin,
        json={"name": "  自来水管线所  ", "kind": "contractor", "streets": [JIANGSU]},
    )

    assert changed.status_code == 200, changed.text
    assert changed.json() == {
        **expected,
        "name": "自来水管线所",
        "kind": "contractor",
        "streets": [JIANGSU],
    }
    # Categories sent as null: every category; left out: as they were.
    every = client.patch("/v1/admin/units/water-east", headers=admin, json={"categories": None})
    assert every.json()["categories"] is None
    off = client.patch("/v1/admin/units/water-east", headers=admin, json={"active": False})
    assert (off.json()["active"], off.json()["categories"]) == (False, None)
    again = client.patch(
        "/v1/admin/units/water-east", headers=admin, json={"categories": ["waste", "waste"]}
    )
    assert again.json()["categories"] == ["waste"]
    assert client.get("/v1/admin/units/water-east", headers=admin).json() == again.json()
    assert count_rows("unit_streets") == before["unit_streets"] + 1


def test_the_unit_pages_walk_every_unit_once(client: TestClient, admin: dict[str, str]) -> None:
    codes: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/admin/units", headers=admin, params=params).json()
        codes += [u["code"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(codes) == len(set(codes)) == 2 * len(DEMO_STREETS)
    assert codes == sorted(codes)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"code": "Water"}, "code"),  # capitals
        ({"code": "w"}, "code"),  # too short
        ({"code": "9water"}, "code"),  # not from a letter
        ({"code": "w" * 33}, "code"),
        ({"code": "water east"}, "code"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": None}, "name"),
        ({"kind": "school"}, "kind"),
        ({"kind": None}, "kind"),
        ({"streets": []}, "streets"),
        ({"streets": ["999999999"]}, "streets"),  # no such area
        ({"streets": [JIANGSU, "310105"]}, "streets"),  # the district
        ({"streets": ["310105002001"]}, "streets"),  # a community
        ({"streets": JIANGSU}, "streets"),  # not a list
        ({"categories": []}, "categories"),  # null, not empty, means every one
        ({"categories": ["road_damage", "no_such"]}, "categories"),
        ({"active": "maybe"}, "active"),
    ],
)
def test_a_bad_unit_is_422_naming_the_field_and_stores_nothing(
    client: TestClient,
    admin: dict[str, str],
    count_rows: CountRows,
    change: dict[str, Any],
    field: str,
) -> None:
    before = rows(count_rows)

    response = client.post("/v1/admin/units", headers=admin, json={**NEW_UNIT, **change})

    assert error_fields(response) == {field}
    assert rows(count_rows) == before


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " "}, "name"),
        ({"name": None}, "name"),
        ({"kind": "school"}, "kind"),
        ({"kind": None}, "kind"),
        ({"streets": []}, "streets"),
        ({"streets": None}, "streets"),
        ({"streets": [HUAYANG]}, None),  # unchanged when another field is refused
        ({"streets": ["310105"]}, "streets"),
        ({"categories": []}, "categories"),
        ({"categories": ["no_such"]}, "categories"),
        ({"active": None}, "active"),
    ],
)
def test_a_bad_change_is_422_naming_the_field_and_changes_nothing(
    client: TestClient,
    admin: dict[str, str],
    count_rows: CountRows,
    change: dict[str, Any],
    field: str | None,
) -> None:
    path = f"/v1/admin/units/roads_{JIANGSU}"
    unit = client.get(path, headers=admin).json()
    before = rows(count_rows)
    refused = change if field else {**change, "categories": ["no_such"]}

    response = client.patch(path, headers=admin, json={"name": "改了", **refused})

    assert error_fields(response) == {field or "categories"}
    assert client.get(path, headers=admin).json() == unit
    assert rows(count_rows) == before


def test_a_taken_code_is_409_and_leaves_the_unit_alone(
    client: TestClient, admin: dict[str, str], count_rows: CountRows
) -> None:
    path = f"/v1/admin/units/chengguan_{JIANGSU}"
    unit = client.get(path, headers=admin).json()
    before = rows(count_rows)

    response = client.post(
        "/v1/admin/units", headers=admin, json={**NEW_UNIT, "code": f"chengguan_{JIANGSU}"}
    )

    assert_problem(response, 409, "already_exists")
    assert rows(count_rows) == before
    assert client.get(path, headers=admin).json() == unit


def test_an_unknown_unit_is_404(client: TestClient, admin: dict[str, str]) -> None:
    assert_problem(client.get("/v1/admin/units/no-such", headers=admin), 404, "not_found")
    response = client.patch("/v1/admin/units/no-such", headers=admin, json={"active": False})
    assert_problem(response, 404, "not_found")


@pytest.mark.parametrize(
    "username", [f"officer_{JIANGSU}", "changning", f"crew_chengguan_{JIANGSU}"]
)
def test_only_an_admin_manages_units(
    client: TestClient, auth: Auth, count_rows: CountRows, username: str
) -> None:
    headers = auth.staff(username)
    path = f"/v1/admin/units/roads_{JIANGSU}"
    before = rows(count_rows)

    answers = [
        client.get("/v1/admin/units", headers=headers),
        client.post("/v1/admin/units", headers=headers, json=NEW_UNIT),
        client.get(path, headers=headers),
        client.patch(path, headers=headers, json={"active": False}),
    ]

    for response in answers:
        assert_problem(response, 403, "forbidden")
    assert rows(count_rows) == before
    assert client.get(path, headers=auth.staff("admin")).json()["active"] is True


def office_units(client: TestClient, headers: dict[str, str]) -> list[str]:
    response = client.get("/v1/office/units", headers=headers)
    assert response.status_code == 200, response.text
    return [u["code"] for u in response.json()["items"]]


def test_each_office_sees_the_units_serving_its_streets(
    client: TestClient, auth: Auth, admin: dict[str, str]
) -> None:
    shared = client.post("/v1/admin/units", headers=admin, json=NEW_UNIT)
    assert shared.status_code == 201, shared.text
    only_huayang = {**NEW_UNIT, "code": "property-huayang", "kind": "property"}
    client.post("/v1/admin/units", headers=admin, json={**only_huayang, "streets": [HUAYANG]})
    asleep = {**NEW_UNIT, "code": "asleep", "streets": [JIANGSU], "active": False}
    assert client.post("/v1/admin/units", headers=admin, json=asleep).status_code == 201

    jiangsu = office_units(client, auth.staff(f"officer_{JIANGSU}"))
    huayang = office_units(client, auth.staff(f"officer_{HUAYANG}"))
    district = office_units(client, auth.staff("changning"))

    assert jiangsu == [f"chengguan_{JIANGSU}", f"roads_{JIANGSU}", "water-east"]
    assert huayang == [
        f"chengguan_{HUAYANG}",
        "property-huayang",
        f"roads_{HUAYANG}",
        "water-east",
    ]
    demo = [f"{kind}_{s}" for s in DEMO_STREETS for kind in ("chengguan", "roads")]
    assert district == sorted([*demo, "property-huayang", "water-east"])
    item = client.get("/v1/office/units", headers=auth.staff(f"officer_{JIANGSU}")).json()
    assert item["items"][1] == {
        "code": f"roads_{JIANGSU}",
        "name": "江苏路街道道路养护（示例承包商）",
        "kind": "contractor",
        "streets": [JIANGSU],
        "categories": ["facility_damage", "road_damage"],
        "active": True,
    }


def test_a_crew_member_and_the_admin_get_no_office_unit_list(
    client: TestClient, auth: Auth
) -> None:
    for username in (f"crew_roads_{JIANGSU}", "admin"):
        response = client.get("/v1/office/units", headers=auth.staff(username))
        assert_problem(response, 403, "forbidden")

"""Two districts side by side: the Changning demo and Xuhui, imported here through the admin
API (DataV's real outline, one street and one community drawn inside it), each with a
district user and a street officer. Nobody sees or acts across the district line."""

import csv
import io
import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response

from tests.conftest import DATA, Auth, bearer
from tests.helpers import assert_problem

XUHUI, XUHUI_STREET, XUHUI_COMMUNITY = "310104", "310104014", "310104014001"
CHANGNING_STREET = "310105002"
# GCJ-02 points: in street 310105002; in the new community; in Xuhui but 1.5 km from any
# street or community (the district's unrouted queue).
WHERE = {
    "changning": (31.2200, 121.4330),
    "xuhui": (31.1690, 121.4400),
    "unrouted": (31.1400, 121.4360),
}
# Who should see which of those three tickets.
SEES = {
    "changning": {"changning"},
    "officer_310105002": {"changning"},
    "xuhui": {"xuhui", "unrouted"},
    "officer_310104014": {"xuhui"},
}
PASSWORD = "xuhui-password-1"


def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
    return {"type": "Polygon", "coordinates": [ring]}


def feature(
    code: str, name: str, level: str, parent: str | None, geometry: dict[str, Any]
) -> dict[str, Any]:
    return {
        "type": "Feature",
        "geometry": geometry,
        "properties": {"code": code, "name": name, "level": level, "parent_code": parent},
    }


def outline(adcode: int) -> dict[str, Any]:
    datav = json.loads((DATA / "districts_gcj02.geojson").read_text("utf-8"))
    return dict(next(f for f in datav["features"] if f["properties"]["adcode"] == adcode))


@pytest.fixture
def users(client: TestClient, auth: Auth) -> dict[str, dict[str, str]]:
    """Xuhui, its street and community, its two users; with the demo's, all four logged in."""
    admin = auth.staff("admin")
    layout = {
        "type": "FeatureCollection",
        "features": [
            feature(XUHUI, "徐汇区", "district", None, outline(310104)["geometry"]),
            feature(
                XUHUI_STREET, "徐家汇街道", "street", XUHUI, box(121.432, 31.163, 121.447, 31.175)
            ),
            feature(
                XUHUI_COMMUNITY,
                "徐家汇测试社区",
                "community",
                XUHUI_STREET,
                box(121.434, 31.165, 121.445, 31.173),
            ),
        ],
    }
    imported = client.post(
        "/v1/admin/areas:import", headers=admin, json=layout, params={"coord_sys": "gcj02"}
    )
    assert imported.status_code == 200, imported.text
    assert imported.json()["created"] == 3
    headers = {name: auth.staff(name) for name in ("changning", "officer_310105002")}
    for username, role, area in (
        ("xuhui", "district", XUHUI),
        ("officer_310104014", "officer", XUHUI_STREET),
    ):
        created = client.post(
            "/v1/admin/staff",
            headers=admin,
            json={"username": username, "role": role, "area": area, "password": PASSWORD},
        )
        assert created.status_code == 201, created.text
        login = client.post("/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert (login.json()["role"], login.json()["area"]) == (role, area)
        headers[username] = bearer(login.json()["access_token"])
    return headers


@pytest.fixture
def receipts(client: TestClient, auth: Auth, users: object) -> dict[str, dict[str, Any]]:
    """One rider's report at each point of WHERE: name → the 201 receipt."""
    rider = auth.rider("meituan", "r-two-districts")
    found = {}
    for name, (lat, lon) in WHERE.items():
        response = client.post(
            "/v1/reports",
            headers=rider,
            json={"category": "other", "lat": lat, "lon": lon, "coord_sys": "gcj02"},
        )
        assert response.status_code == 201, response.text
        found[name] = response.json()
    return found


@pytest.fixture
def tickets(receipts: dict[str, dict[str, Any]]) -> dict[str, str]:
    return {name: receipt["ticket"]["id"] for name, receipt in receipts.items()}


def codes(area: dict[str, Any]) -> tuple[str | None, ...]:
    return tuple(
        area[level] and area[level]["code"] for level in ("district", "street", "community")
    )


def test_each_report_is_routed_to_its_own_district(receipts: dict[str, dict[str, Any]]) -> None:
    changning = codes(receipts["changning"]["area"])
    assert changning[:2] == ("310105", CHANGNING_STREET) and changning[2]
    assert codes(receipts["xuhui"]["area"]) == (XUHUI, XUHUI_STREET, XUHUI_COMMUNITY)
    assert receipts["xuhui"]["area"]["district"]["name"] == "徐汇区"
    assert codes(receipts["unrouted"]["area"]) == (XUHUI, None, None)
    assert {r["outcome"] for r in receipts.values()} == {"new_ticket"}


def csv_ids(response: Response) -> set[str]:
    assert response.status_code == 200, response.text
    return {row["id"] for row in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))}


@pytest.mark.parametrize("user", SEES)
def test_the_queue_and_the_stats_hold_only_the_callers_tickets(
    client: TestClient, users: dict[str, dict[str, str]], tickets: dict[str, str], user: str
) -> None:
    headers, expected = users[user], {tickets[name] for name in SEES[user]}

    listed = client.get("/v1/office/tickets", headers=headers).json()["items"]
    geojson = client.get("/v1/office/tickets", headers=headers, params={"format": "geojson"})
    stats = client.get("/v1/office/stats", headers=headers).json()

    assert {t["id"] for t in listed} == expected
    assert {f["id"] for f in geojson.json()["features"]} == expected
    assert csv_ids(client.get("/v1/office/tickets.csv", headers=headers)) == expected
    assert stats["total"] == stats["open"] == stats["by_status"]["new"] == len(expected)
    if user == "xuhui":
        assert stats["by_community"] == {XUHUI_COMMUNITY: 1, "unrouted": 1}


@pytest.mark.parametrize("user", SEES)
def test_a_ticket_across_the_line_is_as_unknown_as_a_missing_one(
    client: TestClient, users: dict[str, dict[str, str]], tickets: dict[str, str], user: str
) -> None:
    headers = users[user]
    missing = assert_problem(
        client.get(f"/v1/office/tickets/{uuid.uuid4()}", headers=headers), 404, "not_found"
    )
    for name, ticket in tickets.items():
        detail = client.get(f"/v1/office/tickets/{ticket}", headers=headers)
        comment = client.post(
            f"/v1/office/tickets/{ticket}/actions",
            headers=headers,
            json={"action": "comment", "note": "看一下"},
        )
        accept = client.post(
            f"/v1/office/tickets/{ticket}/actions", headers=headers, json={"action": "accept"}
        )
        if name in SEES[user]:
            assert detail.status_code == comment.status_code == accept.status_code == 200
            assert accept.json()["status"] == "accepted"
            continue
        for response in (detail, comment, accept):
            assert assert_problem(response, 404, "not_found")["detail"] == missing["detail"]
        # The owner's district finds the ticket untouched.
        owner = users["xuhui" if name != "changning" else "changning"]
        seen = client.get(f"/v1/office/tickets/{ticket}", headers=owner).json()
        assert (seen["status"], seen["version"]) == ("new", 1)
        assert [e["type"] for e in seen["events"]] == ["created"]


@pytest.mark.parametrize(
    ("user", "ticket", "to_street"),
    [
        ("changning", "changning", XUHUI_STREET),
        ("officer_310105002", "changning", XUHUI_STREET),
        ("xuhui", "xuhui", CHANGNING_STREET),
        ("xuhui", "unrouted", CHANGNING_STREET),
    ],
)
def test_a_transfer_may_not_cross_the_district_line(
    client: TestClient,
    users: dict[str, dict[str, str]],
    tickets: dict[str, str],
    user: str,
    ticket: str,
    to_street: str,
) -> None:
    url = f"/v1/office/tickets/{tickets[ticket]}"
    before = client.get(url, headers=users[user]).json()

    refused = client.post(
        f"{url}/actions", headers=users[user], json={"action": "transfer", "to_street": to_street}
    )

    body = assert_problem(refused, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["to_street"]
    assert client.get(url, headers=users[user]).json() == before  # same street, version


def test_merging_into_the_other_districts_ticket_is_404(
    client: TestClient, users: dict[str, dict[str, str]], tickets: dict[str, str]
) -> None:
    url = f"/v1/office/tickets/{tickets['changning']}"
    merged = client.post(
        f"{url}/actions",
        headers=users["changning"],
        json={"action": "merge", "into_ticket": tickets["xuhui"]},
    )
    assert_problem(merged, 404, "not_found")
    assert client.get(url, headers=users["changning"]).json()["status"] == "new"


@pytest.mark.parametrize(
    ("user", "params"),
    [
        ("changning", {"street": XUHUI_STREET}),
        ("changning", {"community": XUHUI_COMMUNITY}),
        ("officer_310105002", {"street": XUHUI_STREET}),
        ("xuhui", {"street": CHANGNING_STREET}),
        ("officer_310104014", {"street": CHANGNING_STREET}),
    ],
)
def test_a_filter_naming_the_other_districts_area_is_as_unknown_as_a_missing_one(
    client: TestClient,
    users: dict[str, dict[str, str]],
    tickets: dict[str, str],
    user: str,
    params: dict[str, str],
) -> None:
    field, code = next(iter(params.items()))
    for path in ("/v1/office/tickets", "/v1/office/tickets.csv"):
        outside = client.get(path, headers=users[user], params=params)
        missing = client.get(path, headers=users[user], params={field: "310199999"})
        body = assert_problem(outside, 422, "validation_error")
        assert body["errors"][0]["field"] == field
        assert assert_problem(missing, 422, "validation_error")["detail"] == body["detail"].replace(
            code, "310199999"
        )

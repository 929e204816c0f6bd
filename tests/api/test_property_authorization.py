"""Property-level authorisation: fields a caller may not set — ids, owners, statuses,
versions, times, counters — are ignored wherever a body carries them, never applied."""

from fastapi.testclient import TestClient

from tests.conftest import Auth
from tests.helpers import JIANGSU, category_body, report_at


def test_a_report_cannot_choose_its_rider_ticket_or_outcome(client: TestClient, auth: Auth) -> None:
    other = report_at(client, auth.rider("eleme", "p-0"), JIANGSU, category="waste")
    rider = auth.rider("meituan", "p-1")
    body = {
        "category": "road_damage",
        **JIANGSU,
        "rider_id": "someone-else",
        "ticket_id": other["ticket"]["id"],
        "outcome": "joined_ticket",
        "received_at": "2020-01-01T00:00:00Z",
        "points": 1000,
    }
    response = client.post("/v1/reports", headers=rider, json=body)
    assert response.status_code == 201, response.text
    receipt = response.json()
    assert receipt["ticket"]["id"] != other["ticket"]["id"] and receipt["outcome"] == "new_ticket"
    assert receipt["received_at"] > "2026"
    mine = client.get("/v1/me", headers=rider).json()
    assert mine["rider_id"] == "p-1" and mine["points"] == 0


def test_an_action_cannot_set_the_status_or_version(client: TestClient, auth: Auth) -> None:
    ticket = report_at(client, auth.rider("meituan", "p-2"), JIANGSU)["ticket"]
    office = auth.staff("officer_310105002")
    response = client.post(
        f"/v1/office/tickets/{ticket['id']}/actions",
        headers=office,
        json={
            "action": "accept",
            "status": "closed",
            "version": 99,
            "street_id": 1,
            "report_count": 500,
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "accepted" and body["version"] == 2 and body["report_count"] == 1


def test_an_admin_body_cannot_set_ids_or_times(client: TestClient, auth: Auth) -> None:
    admin = auth.staff("admin")
    put = client.put(
        "/v1/admin/categories/shared_bikes",
        headers=admin,
        json=category_body(
            "共享单车",
            "Shared bikes",
            priority=3,
            respond_within_h=4,
            resolve_within_h=24,
            dedup_radius_m=20,
            id=1,
            code="road_damage",
            updated_at="2000-01-01T00:00:00Z",
            sort_order=-5,
        ),
    )
    assert put.status_code == 201, put.text
    assert put.json()["code"] == "shared_bikes" and put.json()["updated_at"] > "2026"
    road = client.get("/v1/admin/categories/road_damage", headers=admin).json()
    assert road["name"]["zh"] == "道路破损"  # the other category is untouched
    staff = client.post(
        "/v1/admin/staff",
        headers=admin,
        json={
            "username": "new_officer",
            "role": "officer",
            "area": "310105002",
            "active": False,
            "password_hash": "x",
            "id": "00000000-0000-0000-0000-000000000000",
        },
    )
    assert staff.status_code == 201, staff.text
    listed = {
        s["username"]: s
        for s in client.get("/v1/admin/staff?limit=200", headers=admin).json()["items"]
    }
    assert listed["new_officer"]["active"] is True
    assert listed["new_officer"]["id"] != "00000000-0000-0000-0000-000000000000"


def test_a_platform_cannot_give_its_rider_another_platform(client: TestClient, auth: Auth) -> None:
    response = client.post(
        "/v1/platform/rider-tokens",
        headers=auth.platform("meituan"),
        json={"rider_id": "p-3", "platform": "eleme", "platform_id": "x", "pseudonym": "BOSS"},
    )
    assert response.status_code == 201
    rider = client.get("/v1/platform/riders/p-3", headers=auth.platform("meituan")).json()
    assert rider["pseudonym"] != "BOSS"
    assert client.get("/v1/platform/riders/p-3", headers=auth.platform("eleme")).status_code == 404

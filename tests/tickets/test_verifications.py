"""Riders passing by verify a resolution: resolved only, within 200 m, once; false reopens."""

from typing import Any

from fastapi.testclient import TestClient

from app.geo.coords import CoordSys, from_wgs84
from tests.conftest import Auth
from tests.helpers import act, assert_problem

OFFICER = "officer_310105002"
JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
M_PER_DEG_LAT = 111_320


def resolved_ticket(client: TestClient, auth: Auth) -> dict[str, Any]:
    receipt = client.post(
        "/v1/reports",
        headers=auth.rider("meituan", "opener"),
        json={"category": "road_damage", **JIANGSU},
    ).json()
    ticket = receipt["ticket"]["id"]
    act(
        client,
        auth.staff(OFFICER),
        ticket,
        {"action": "accept"},
        {"action": "resolve", "note": "补好了"},
    )
    return {"id": ticket, "lat": receipt["lat"], "lon": receipt["lon"], "report": receipt["id"]}


def verify(
    client: TestClient,
    headers: dict[str, str],
    ticket: dict[str, Any],
    *,
    fixed: bool,
    north_m: float = 10,
    **extra: Any,
) -> Any:
    return client.post(
        f"/v1/tickets/{ticket['id']}/verifications",
        headers=headers,
        json={
            "fixed": fixed,
            "lat": ticket["lat"] + north_m / M_PER_DEG_LAT,
            "lon": ticket["lon"],
            **extra,
        },
    )


def test_fixed_is_recorded_and_shows_in_me(client: TestClient, auth: Auth) -> None:
    ticket = resolved_ticket(client, auth)
    passer = auth.rider("eleme", "passer")
    response = verify(client, passer, ticket, fixed=True, note="路面平整了")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["fixed"] is True and 9 < body["distance_m"] < 11
    assert body["ticket"]["status"] == "resolved"
    assert client.get("/v1/me", headers=passer).json()["verifications"] == 1
    detail = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(OFFICER)).json()
    assert detail["events"][-1]["type"] == "verified"


def test_not_fixed_reopens_and_the_rider_sees_it_in_the_timeline(
    client: TestClient, auth: Auth
) -> None:
    ticket = resolved_ticket(client, auth)
    lon, lat = from_wgs84(ticket["lon"], ticket["lat"], CoordSys.GCJ02)
    response = client.post(
        f"/v1/tickets/{ticket['id']}/verifications",
        headers=auth.rider("eleme", "passer"),
        json={"fixed": False, "lat": lat, "lon": lon, "coord_sys": "gcj02", "note": "还是有坑"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["ticket"]["status"] == "accepted"
    assert response.json()["distance_m"] < 1  # GCJ-02 input converted before measuring
    mine = client.get(
        f"/v1/reports/{ticket['report']}", headers=auth.rider("meituan", "opener")
    ).json()
    assert [t["status"] for t in mine["ticket"]["timeline"]] == [
        "new",
        "accepted",
        "resolved",
        "accepted",
    ]
    detail = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(OFFICER)).json()
    assert detail["events"][-1]["type"] == "reopened"
    assert detail["resolved_at"] is None


def test_refusals_leave_the_ticket_as_it_was(
    client: TestClient, auth: Auth, count_rows: Any
) -> None:
    ticket = resolved_ticket(client, auth)
    passer = auth.rider("eleme", "passer")
    assert_problem(
        verify(client, passer, ticket, fixed=False, north_m=250), 422, "too_far_to_verify"
    )
    assert verify(client, passer, ticket, fixed=True).status_code == 201
    assert_problem(verify(client, passer, ticket, fixed=False), 409, "already_verified")
    assert count_rows("verifications") == 1
    officer = auth.staff(OFFICER)
    assert (
        client.get(f"/v1/office/tickets/{ticket['id']}", headers=officer).json()["status"]
        == "resolved"
    )
    client.post(
        f"/v1/office/tickets/{ticket['id']}/actions", headers=officer, json={"action": "close"}
    )
    assert_problem(
        verify(client, auth.rider("eleme", "late"), ticket, fixed=False), 409, "ticket_not_resolved"
    )
    fresh = client.post(
        "/v1/reports", headers=auth.rider("meituan", "x"), json={"category": "waste", **JIANGSU}
    ).json()["ticket"]
    assert_problem(
        verify(client, passer, {**ticket, "id": fresh["id"]}, fixed=True),
        409,
        "ticket_not_resolved",
    )
    assert_problem(
        verify(
            client, passer, {**ticket, "id": "00000000-0000-4000-8000-000000000000"}, fixed=True
        ),
        404,
        "not_found",
    )
    assert_problem(
        verify(
            client, passer, ticket, fixed=True, media_ids=["00000000-0000-4000-8000-000000000001"]
        ),
        422,
        "unknown_media",
    )
    assert count_rows("verifications") == 1


def test_only_riders_verify(client: TestClient, auth: Auth) -> None:
    ticket = resolved_ticket(client, auth)
    for headers in (auth.staff(OFFICER), auth.platform("meituan")):
        assert_problem(verify(client, headers, ticket, fixed=True), 403, "forbidden")
    assert_problem(verify(client, {}, ticket, fixed=True), 401, "unauthenticated")


def test_internal_notes_stay_out_of_the_riders_timeline(client: TestClient, auth: Auth) -> None:
    opener = auth.rider("meituan", "opener")
    receipt = client.post(
        "/v1/reports", headers=opener, json={"category": "road_damage", **JIANGSU}
    ).json()
    url = f"/v1/office/tickets/{receipt['ticket']['id']}/actions"
    officer = auth.staff(OFFICER)
    client.post(url, headers=officer, json={"action": "accept"})
    client.post(url, headers=officer, json={"action": "comment", "note": "业主难缠"})
    client.post(url, headers=officer, json={"action": "assign", "assignee": "王师傅"})
    mine = client.get(f"/v1/reports/{receipt['id']}", headers=opener)
    assert [t["status"] for t in mine.json()["ticket"]["timeline"]] == ["new", "accepted"]
    assert "业主难缠" not in mine.text and "王师傅" not in mine.text and OFFICER not in mine.text

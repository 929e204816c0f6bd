"""What a rider reads back: my reports, one report's timeline, me, nearby tickets."""

import json
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.models import TicketStatus
from app.models.points import Contribution
from tests.conftest import Auth, Clock, Headers
from tests.helpers import assert_problem
from tests.reporting import forged_cursor, pages, report, set_status, spot, submit


@pytest.mark.parametrize("same_instant", [False, True], ids=["a_second_apart", "same_instant"])
def test_my_reports_newest_first_over_three_pages(
    client: TestClient, clock: Clock, r1: Headers, r2: Headers, same_instant: bool
) -> None:
    mine = []
    for n in range(5):
        if not same_instant:
            clock.advance(seconds=1)
        mine.append(submit(client, r1, report("other", north=n * 10))["id"])
        submit(client, r2, report("other", east=n * 10))
    got = list(pages(client, r1, limit=2))
    assert [len(p["items"]) for p in got] == [2, 2, 1]
    ids = [item["id"] for p in got for item in p["items"]]
    if same_instant:
        assert sorted(ids) == sorted(mine)
    else:
        assert ids == mine[::-1]
    times = [item["received_at"] for p in got for item in p["items"]]
    assert times == sorted(times, reverse=True)


@pytest.mark.parametrize(
    "cursor",
    [
        "!!",
        forged_cursor(["yesterday", str(uuid.uuid4())]),
        forged_cursor(["2026-11-29T08:00:00+00:00", 5]),
        forged_cursor(["2026-11-29T08:00:00+00:00"]),
        forged_cursor(["2026-11-29T08:00:00", str(uuid.uuid4())]),  # no offset
    ],
    ids=["not_base64", "not_a_time", "id_not_a_string", "too_short", "naive_time"],
)
def test_a_bad_cursor_is_422(client: TestClient, r1: Headers, cursor: str) -> None:
    submit(client, r1, report())
    problem = assert_problem(
        client.get("/v1/reports", headers=r1, params={"cursor": cursor}), 422, "validation_error"
    )
    assert problem["errors"] == [{"field": "cursor", "message": "invalid cursor"}]


def test_the_detail_shows_my_report_and_its_public_timeline(
    client: TestClient, clock: Clock, r1: Headers, r2: Headers
) -> None:
    receipt = submit(
        client,
        r1,
        report("waste", accuracy_m=8, description="建筑垃圾", address_hint="愚园路 1号 门口"),
    )
    clock.advance(minutes=5)
    submit(client, r2, report("waste", north=10))
    detail = client.get(f"/v1/reports/{receipt['id']}", headers=r1)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["id"] == receipt["id"] and body["category"] == "waste"
    assert (body["accuracy_m"], body["description"], body["address_hint"]) == (
        8,
        "建筑垃圾",
        "愚园路 1号 门口",
    )
    assert body["ticket"]["id"] == receipt["ticket"]["id"]
    assert body["ticket"]["report_count"] == 2 and body["ticket"]["status"] == "new"
    # A confirmation is not a status change: the timeline shows only "new".
    assert body["ticket"]["timeline"] == [{"status": "new", "at": receipt["received_at"]}]
    assert "rider" not in json.dumps(body["ticket"])

    assert_problem(client.get(f"/v1/reports/{receipt['id']}", headers=r2), 404, "not_found")
    assert_problem(client.get(f"/v1/reports/{uuid.uuid4()}", headers=r1), 404, "not_found")


def test_me_counts_what_my_reports_came_to(
    client: TestClient, auth: Auth, r1: Headers, r2: Headers
) -> None:
    empty = client.get("/v1/me", headers=r1).json()
    assert empty["rider_id"] == "r1" and empty["platform"] == "meituan"
    assert uuid.UUID(empty["id"])
    opened = submit(client, r1, report("road_damage"))
    theirs = submit(client, r2, report("waste", east=100))
    submit(client, r1, report("waste", east=110))
    me = client.get("/v1/me", headers=r1).json()
    assert {k: me[k] for k in Contribution.COUNTERS} == {
        "reports": 2,
        "tickets_opened": 1,
        "joined": 1,
        "accepted": 0,
        "resolved": 0,
        "rejected": 0,
        "verifications": 0,
        "points": 0,
    }
    district = auth.staff("changning")
    for ticket, body in (
        (opened, {"action": "accept"}),
        (opened, {"action": "resolve", "note": "filled"}),
        (theirs, {"action": "reject", "reason": "not_actionable"}),
    ):
        assert (
            client.post(
                f"/v1/office/tickets/{ticket['ticket']['id']}/actions", headers=district, json=body
            ).status_code
            == 200
        )
    me = client.get("/v1/me", headers=r1).json()
    assert (me["accepted"], me["resolved"], me["rejected"]) == (1, 1, 1)
    assert me["points"] == 10 + 5  # opened road damage, accepted and resolved; waste: none
    assert client.get("/v1/me", headers=r2).json()["reports"] == 1


def test_nearby_lists_open_tickets_nearest_first(
    client: TestClient, database: Database, r1: Headers, r2: Headers
) -> None:
    t10 = submit(client, r1, report("road_damage", north=10))
    t50 = submit(client, r1, report("road_damage", north=50))
    t150 = submit(client, r1, report("road_damage", north=150))
    w30 = submit(client, r1, report("waste", east=30))
    closed = submit(client, r1, report("ebike_parking", east=-5))
    submit(client, r1, report("road_damage", north=-300))
    set_status(database, closed["ticket"]["id"], TicketStatus.CLOSED)

    def nearby(**params: Any) -> list[dict[str, Any]]:
        response = client.get("/v1/tickets/nearby", headers=r2, params=spot() | params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    items = nearby()
    assert [i["id"] for i in items] == [t["ticket"]["id"] for t in (t10, w30, t50, t150)]
    assert [i["distance_m"] for i in items] == pytest.approx([10, 30, 50, 150], rel=0.02)
    assert items[1]["category"] == "waste" and items[0]["category"] == "road_damage"
    assert items[0]["ref"] == t10["ticket"]["ref"] and items[0]["status"] == "new"
    assert (items[0]["lat"], items[0]["lon"]) == pytest.approx((t10["lat"], t10["lon"]), abs=1e-9)
    assert [i["id"] for i in nearby(radius_m=60)] == [t["ticket"]["id"] for t in (t10, w30, t50)]
    assert [i["id"] for i in nearby(category="waste")] == [w30["ticket"]["id"]]
    assert [i["id"] for i in nearby(radius_m=1000, limit=2)] == [
        t10["ticket"]["id"],
        w30["ticket"]["id"],
    ]
    assert len(nearby(radius_m=1000)) == 5

    for bad in (
        {"radius_m": 1001},
        {"radius_m": 0},
        {"lat": 91},
        {"lat": "nan"},
        {"coord_sys": "utm"},
    ):
        problem = assert_problem(
            client.get("/v1/tickets/nearby", headers=r2, params=spot() | bad),
            422,
            "validation_error",
        )
        assert next(iter(bad)) in {e["field"] for e in problem["errors"]}


def test_nearby_refuses_an_unknown_category(client: TestClient, r1: Headers) -> None:
    params = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
    assert_problem(
        client.get(
            "/v1/tickets/nearby", headers=r1, params=params | {"category": "potholes_on_mars"}
        ),
        422,
        "unknown_category",
    )
    assert_problem(
        client.get(
            "/v1/tickets/nearby", headers=r1, params=params | {"category": "road\u0000damage"}
        ),
        422,
        "validation_error",
    )
    listed = client.get("/v1/tickets/nearby", headers=r1, params=params).json()
    assert listed["next_cursor"] is None

"""The office's statistics, per scope."""

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.models import utcnow
from tests.conftest import Auth
from tests.helpers import assert_problem

JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
HUAYANG = {"lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"}


def test_stats_count_what_the_scope_holds(client: TestClient, app: FastAPI, auth: Auth) -> None:
    rider = auth.rider("meituan", "stats")
    ids = [
        client.post("/v1/reports", headers=rider, json={"category": c, **JIANGSU}).json()["ticket"][
            "id"
        ]
        for c in ("road_damage", "waste", "fire_exit_blocked")
    ]
    client.post("/v1/reports", headers=rider, json={"category": "waste", **HUAYANG})
    officer = auth.staff("officer_310105002")
    actions = f"/v1/office/tickets/{ids[0]}/actions"
    client.post(actions, headers=officer, json={"action": "accept"})
    client.post(actions, headers=officer, json={"action": "resolve", "note": "ok"})

    stats = client.get("/v1/office/stats", headers=officer).json()
    assert stats["total"] == 3
    assert stats["by_status"] == {"new": 2, "resolved": 1}
    assert stats["by_category"] == {"road_damage": 1, "waste": 1, "fire_exit_blocked": 1}
    assert sum(stats["by_community"].values()) == 3
    assert stats["open"] == 2 and stats["overdue"] == 0
    assert stats["median_hours_to_accept"] is not None
    assert stats["median_hours_to_accept"] < 0.1
    assert stats["resolved_within_sla"] == 1.0
    district = client.get("/v1/office/stats", headers=auth.staff("changning")).json()
    assert district["total"] == 4
    app.state.clock = lambda: utcnow() + timedelta(hours=3)  # fire exits: answer within 2 h
    assert client.get("/v1/office/stats", headers=officer).json()["overdue"] == 1
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert (
        client.get("/v1/office/stats", headers=officer, params={"from": later}).json()["total"] == 0
    )
    assert_problem(
        client.get("/v1/office/stats", headers=auth.platform("meituan")), 403, "forbidden"
    )
    assert_problem(
        client.get("/v1/office/stats", params={"from": "yesterday"}, headers=officer),
        422,
        "validation_error",
    )


def test_medians_and_sla_share_follow_the_clock(
    client: TestClient, app: FastAPI, auth: Auth
) -> None:
    """Four tickets answered after 1, 2, 6 and 10 hours: the median is 4 (an even count);
    three of them fixed after 3, 5 and 30 hours: the median is 5 (an odd count), and only
    the two inside their category's resolve_within_h count as in time."""
    start = utcnow().replace(microsecond=0)
    app.state.clock = lambda: start
    rider = auth.rider("meituan", "medians")
    # Road damage: 120 h to fix; waste: 48 h; e-bikes: 24 h; fire exits: 12 h.
    codes = ("road_damage", "waste", "ebike_parking", "fire_exit_blocked")
    ids = [
        client.post("/v1/reports", headers=rider, json={"category": c, **JIANGSU}).json()["ticket"][
            "id"
        ]
        for c in codes
    ]
    officer = auth.staff("officer_310105002")

    def act(ticket_id: str, hours: float, **body: str) -> None:
        app.state.clock = lambda: start + timedelta(hours=hours)
        response = client.post(
            f"/v1/office/tickets/{ticket_id}/actions", headers=officer, json=body
        )
        assert response.status_code == 200, response.text

    for ticket_id, hours in zip(ids, (1, 2, 6, 10), strict=True):
        act(ticket_id, hours, action="accept")
    for ticket_id, hours in zip(ids[1:], (3, 5, 30), strict=True):
        act(ticket_id, hours, action="resolve", note="done")

    stats = client.get("/v1/office/stats", headers=officer).json()
    assert stats["median_hours_to_accept"] == 4.0
    assert stats["median_hours_to_resolve"] == 5.0
    # waste after 3 h and e-bikes after 5 h are in time; the fire exit after 30 h is not.
    assert stats["resolved_within_sla"] == round(2 / 3, 3)
    assert stats["by_status"] == {"accepted": 1, "resolved": 3}
    assert stats["open"] == 1
    window = {
        "from": (start - timedelta(minutes=1)).isoformat(),
        "to": (start + timedelta(minutes=1)).isoformat(),
    }
    assert client.get("/v1/office/stats", headers=officer, params=window).json()["total"] == 4
    act(ids[0], 40, action="resolve", note="late")
    stats = client.get("/v1/office/stats", headers=officer).json()
    assert stats["median_hours_to_resolve"] == 17.5  # 3, 5, 30, 40
    assert stats["resolved_within_sla"] == 0.75  # road damage after 40 h: in time
    assert stats["open"] == stats["overdue"] == 0

"""The office's statistics, per scope."""

from datetime import timedelta

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.models import utcnow
from tests.conftest import Auth
from tests.helpers import assert_problem

JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
HUAYANG = {"lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"}


def test_stats_count_what_the_scope_holds(client: TestClient, app: FastAPI,
                                          auth: Auth) -> None:
    rider = auth.rider("meituan", "stats")
    ids = [client.post("/v1/reports", headers=rider, json={"category": c, **JIANGSU})
           .json()["ticket"]["id"] for c in ("road_damage", "waste", "fire_exit_blocked")]
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
    assert client.get("/v1/office/stats", headers=officer,
                      params={"from": later}).json()["total"] == 0
    assert_problem(client.get("/v1/office/stats", headers=auth.platform("meituan")),
                   403, "forbidden")
    assert_problem(client.get("/v1/office/stats", params={"from": "yesterday"},
                              headers=officer), 422, "validation_error")

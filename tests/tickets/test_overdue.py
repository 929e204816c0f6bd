"""One overdue rule: a ticket's ``overdue`` field, the queue's ``?overdue=`` filter and the
statistics' count agree, on tickets at every status, just before, at and just after both
deadlines; and a category that would be fixed before it is answered is refused."""

from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from app.db import Database
from app.models import utcnow
from tests.conftest import Auth
from tests.helpers import assert_problem, category_body

JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
# How each status is reached from new (merge: into the ticket left new).
PATHS: dict[str, list[dict[str, Any]]] = {
    "new": [],
    "accepted": [{"action": "accept"}],
    "in_progress": [{"action": "accept"}, {"action": "start"}],
    "resolved": [{"action": "accept"}, {"action": "resolve", "note": "fixed"}],
    "closed": [{"action": "accept"}, {"action": "resolve", "note": "fixed"}, {"action": "close"}],
    "rejected": [{"action": "reject", "reason": "spam"}],
    "duplicate": [{"action": "merge"}],
}


def tickets_at_every_status(client: TestClient, auth: Auth) -> dict[str, dict[str, Any]]:
    officer = auth.staff("officer_310105002")
    made: dict[str, dict[str, Any]] = {}
    for n, (status, actions) in enumerate(PATHS.items()):
        body = {
            "category": "fire_exit_blocked",
            **JIANGSU,
            "lat": JIANGSU["lat"] - n * 120 / 111_320,
        }
        response = client.post("/v1/reports", headers=auth.rider("meituan", f"late-{n}"), json=body)
        assert response.status_code == 201, response.text
        ticket_id = response.json()["ticket"]["id"]
        for action in actions:
            if action["action"] == "merge":
                action = {**action, "into_ticket": made["new"]["id"]}
            answer = client.post(
                f"/v1/office/tickets/{ticket_id}/actions", headers=officer, json=action
            )
            assert answer.status_code == 200, answer.text
        made[status] = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json()
        assert made[status]["status"] == status
    return made


def test_the_field_the_filter_and_the_count_agree_around_both_deadlines(
    client: TestClient, app: FastAPI, auth: Auth
) -> None:
    start = utcnow().replace(microsecond=0)
    app.state.clock = lambda: start
    tickets = tickets_at_every_status(client, auth)
    district = auth.staff("changning")
    respond_by = datetime.fromisoformat(tickets["new"]["respond_by"])
    resolve_by = datetime.fromisoformat(tickets["new"]["resolve_by"])
    assert start < respond_by < resolve_by
    second = timedelta(seconds=1)
    moments = {
        "before either": respond_by - second,
        "at the answer's": respond_by,
        "past the answer's": respond_by + second,
        "at the fix's": resolve_by,
        "past the fix's": resolve_by + second,
    }
    expected = {
        "before either": set(),
        "at the answer's": set(),
        "past the answer's": {"new"},
        "at the fix's": {"new"},
        "past the fix's": {"new", "accepted", "in_progress"},
    }
    ours = {t["id"]: status for status, t in tickets.items()}
    for moment, now in moments.items():
        app.state.clock = lambda now=now: now.astimezone(UTC)
        fields = {
            status
            for status, t in tickets.items()
            if client.get(f"/v1/office/tickets/{t['id']}", headers=district).json()["overdue"]
        }

        def listed(overdue: str) -> set[str]:
            response = client.get(
                "/v1/office/tickets", headers=district, params={"overdue": overdue, "limit": 100}
            )
            assert response.status_code == 200, response.text
            return {ours[t["id"]] for t in response.json()["items"] if t["id"] in ours}

        rows = {
            ours[t["id"]]
            for t in client.get(
                "/v1/office/tickets", headers=district, params={"limit": 100}
            ).json()["items"]
            if t["id"] in ours and t["overdue"]
        }
        counted = client.get("/v1/office/stats", headers=district).json()["overdue"]
        assert fields == expected[moment], moment
        assert listed("true") == fields, moment
        assert listed("false") == set(PATHS) - fields, moment
        assert rows == fields, moment
        assert counted == len(fields), moment


def test_a_category_fixed_before_it_is_answered_is_refused(
    client: TestClient, auth: Auth, database: Database
) -> None:
    admin = auth.staff("admin")
    body = category_body(
        "井盖缺失",
        "Missing manhole cover",
        priority=1,
        respond_within_h=4,
        resolve_within_h=2,
        dedup_radius_m=30,
    )
    problem = assert_problem(
        client.put("/v1/admin/categories/manhole_gap", headers=admin, json=body),
        422,
        "validation_error",
    )
    assert any(e["field"].endswith("resolve_within_h") for e in problem["errors"]), problem
    assert "manhole_gap" not in {c["code"] for c in client.get("/v1/categories").json()["items"]}
    same = client.put(
        "/v1/admin/categories/manhole_gap", headers=admin, json={**body, "resolve_within_h": 4}
    )
    assert same.status_code in (200, 201), same.text
    # The database refuses it too, whoever writes.
    with database.transaction() as session:
        try:
            session.execute(
                text("UPDATE categories SET resolve_within_h = 1 WHERE code = 'manhole_gap'")
            )
            session.flush()
        except IntegrityError as error:
            assert "ck_categories_resolve_after_respond" in str(error)
            session.rollback()
        else:
            raise AssertionError("the database took a category fixed before answered")

"""SLAs in working hours through the API (docs/api.md, "Working time"): a category on the
working clock, a report on the eve of National Day, and the ticket's due times, its
``overdue`` field, the queue's filter, the statistics' count and the SLA sweep agreeing
across the holiday; the admin's calendar (read, set, refused); the readiness warning."""

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db import Database
from app.models import utcnow
from app.tickets import sla
from app.tickets.calendar import calendar_warnings
from tests.conftest import Auth
from tests.helpers import assert_problem, calendar_holding, category_body

CST = ZoneInfo("Asia/Shanghai")
JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
CATEGORY = "fire_exit_blocked"
OPS_TOKEN = "ops-token-for-the-calendar-warning-0123456789"
# One working day to answer, five to fix.
HOURS = {"respond_within_h": 8, "resolve_within_h": 40}
STANDARD = {
    "kind": "event",
    "class_code": "06",
    "class_name": "扩展事件",
    "subclass_code": "0601",
    "subclass_name": "消防通道堵塞",
}
# The category these tests put on the working clock.
ON_WORKING_HOURS = category_body(
    "消防通道堵塞",
    "Blocked fire exit",
    priority=1,
    dedup_radius_m=30,
    sla_clock="working_hours",
    standard=STANDARD,
    **HOURS,
)


@pytest.fixture(autouse=True)
def calendar_of_2026(database: Database) -> None:
    """These tests are about 2026 (National Day, the warning for 2027 from 1 December):
    the calendar holds 2026 and nothing else, whatever year the tests run in."""
    calendar_holding(database, 2026)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=CST)


def on_working_hours(client: TestClient, auth: Auth) -> dict[str, Any]:
    response = client.put(
        f"/v1/admin/categories/{CATEGORY}", headers=auth.staff("admin"), json=ON_WORKING_HOURS
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def report_at(client: TestClient, app: FastAPI, auth: Auth, when: datetime, n: int) -> str:
    app.state.clock = lambda: when.astimezone(UTC)
    body = {"category": CATEGORY, **JIANGSU, "lat": JIANGSU["lat"] - n * 200 / 111_320}
    response = client.post("/v1/reports", headers=auth.rider("meituan", f"wh-{n}"), json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["ticket"]["id"])


def test_a_working_hours_category_is_due_after_the_holiday(
    client: TestClient, app: FastAPI, auth: Auth, database: Database
) -> None:
    category = on_working_hours(client, auth)
    assert category["sla_clock"] == "working_hours" and category["standard"] == STANDARD
    public = {c["code"]: c for c in client.get("/v1/categories").json()["items"]}
    assert public[CATEGORY]["sla_clock"] == "working_hours"
    assert public[CATEGORY]["standard"] == STANDARD

    ticket_id = report_at(client, app, auth, at(2026, 9, 30, 16, 0), 0)
    district = auth.staff("changning")
    ticket = client.get(f"/v1/office/tickets/{ticket_id}", headers=district).json()
    # 1.5 h on the eve, none over 1–7 October, 6.5 h on Thursday 8 October …
    assert datetime.fromisoformat(ticket["respond_by"]) == at(2026, 10, 8, 15, 30)
    # … and 40 h: 8 October, 9 October, the worked Saturday 10 October, Monday, Tuesday.
    assert datetime.fromisoformat(ticket["resolve_by"]) == at(2026, 10, 13, 13, 30)

    for now, overdue in (
        (at(2026, 10, 5, 12, 0), False),  # the holiday: nobody works, nothing is late
        (at(2026, 10, 8, 15, 30), False),
        (at(2026, 10, 8, 15, 31), True),
    ):
        app.state.clock = lambda now=now: now.astimezone(UTC)
        field = client.get(f"/v1/office/tickets/{ticket_id}", headers=district).json()
        listed = client.get(
            "/v1/office/tickets", headers=district, params={"overdue": "true", "limit": 100}
        ).json()["items"]
        counted = client.get("/v1/office/stats", headers=district).json()["overdue"]
        assert field["overdue"] is overdue, now
        assert (ticket_id in {t["id"] for t in listed}) is overdue, now
        assert counted == int(overdue), now
        with database.transaction() as session:
            breaches = sla.record_breaches(session, now.astimezone(UTC))
        assert breaches == int(overdue), now


def test_a_wall_clock_category_keeps_its_hours(
    client: TestClient, app: FastAPI, auth: Auth
) -> None:
    ticket_id = report_at(client, app, auth, at(2026, 9, 30, 16, 0), 1)
    ticket = client.get(f"/v1/office/tickets/{ticket_id}", headers=auth.staff("changning"))
    category = {c["code"]: c for c in client.get("/v1/categories").json()["items"]}[CATEGORY]
    assert category["sla_clock"] == "hours"
    respond_by = datetime.fromisoformat(ticket.json()["respond_by"])
    assert (respond_by - at(2026, 9, 30, 16, 0)).total_seconds() == (
        category["respond_within_h"] * 3600
    )


def test_an_admin_reads_and_sets_a_years_calendar_and_new_tickets_follow_it(
    client: TestClient, app: FastAPI, auth: Auth, database: Database
) -> None:
    admin = auth.staff("admin")
    seeded = client.get("/v1/admin/calendar/2026", headers=admin)
    assert seeded.status_code == 200, seeded.text
    year = seeded.json()
    assert "2026-10-01" in year["holidays"] and "2026-10-10" in year["workdays"]
    assert year["office_hours"] == {"start": "09:00", "end": "17:30"}
    assert year["tz"] == "Asia/Shanghai" and year["source"].startswith("chinesecalendar ")
    assert_problem(client.get("/v1/admin/calendar/2099", headers=admin), 404, "not_found")
    for who in ("officer_310105002", "changning"):
        forbidden = client.get("/v1/admin/calendar/2026", headers=auth.staff(who))
        assert_problem(forbidden, 403, "forbidden")

    # 8 October made a holiday too: the next ticket is due on the 9th.
    on_working_hours(client, auth)
    changed = client.put(
        "/v1/admin/calendar/2026",
        headers=admin,
        json={**_put_only(year), "holidays": [*year["holidays"], "2026-10-08"]},
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["source"] == "admin"
    ticket_id = report_at(client, app, auth, at(2026, 9, 30, 16, 0), 2)
    ticket = client.get(f"/v1/office/tickets/{ticket_id}", headers=auth.staff("changning"))
    assert datetime.fromisoformat(ticket.json()["respond_by"]) == at(2026, 10, 9, 15, 30)

    # The warning for a missing next year, in /readyz's details and as the rule says
    # (at the app's time: the clock the reports above moved comes back to now).
    app.state.clock = utcnow
    with database.session() as session:
        expected = calendar_warnings(session, utcnow())
    app.state.settings = app.state.settings.model_copy(update={"ops_token": OPS_TOKEN})
    ready = client.get("/readyz", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json()
    assert ready["warnings"] == expected
    with database.session() as session:
        assert calendar_warnings(session, datetime(2026, 12, 1, tzinfo=CST)) != []
        assert calendar_warnings(session, datetime(2026, 11, 30, tzinfo=CST)) == []
    nothing = {"holidays": ["2027-01-01"], "workdays": []}
    assert client.put("/v1/admin/calendar/2027", headers=admin, json=nothing).status_code == 200
    with database.session() as session:
        assert calendar_warnings(session, datetime(2026, 12, 1, tzinfo=CST)) == []


def _put_only(year: dict[str, Any]) -> dict[str, Any]:
    """A read's fields that a PUT does not take, removed."""
    return {k: v for k, v in year.items() if k not in ("year", "source", "updated_at")}


def test_a_calendar_that_cannot_be_right_is_refused(client: TestClient, auth: Auth) -> None:
    admin = auth.staff("admin")
    before = client.get("/v1/admin/calendar/2026", headers=admin).json()
    for body, field in (
        ({"holidays": ["2027-01-01"]}, "holidays"),
        ({"holidays": ["2026-10-01"], "workdays": ["2026-10-01"]}, "workdays"),
        ({"holidays": [], "office_hours": {"start": "18:00", "end": "09:00"}}, "office_hours"),
        ({"holidays": [], "office_hours": {"start": "9am", "end": "17:30"}}, "office_hours.start"),
        ({"holidays": [], "tz": "Mars/Olympus"}, "tz"),
        ({"holidays": ["not a date"]}, "holidays.0"),
    ):
        response = client.put("/v1/admin/calendar/2026", headers=admin, json=body)
        problem = assert_problem(response, 422, "validation_error")
        assert field in {e["field"] for e in problem["errors"]}, (body, problem)
    too_early = client.put("/v1/admin/calendar/1999", headers=admin, json={"holidays": []})
    assert_problem(too_early, 422, "validation_error")
    assert client.get("/v1/admin/calendar/2026", headers=admin).json() == before

"""The case's exceptions (docs/api.md, "Dispatch, field crews and the case's
exceptions"): more time asked for and approved or denied by the district (the deadline
moves only on approval), a ticket shelved until a review date (never overdue meanwhile,
back in the queue on the date), the wrong category, the wrong place — each with its
refusals, nothing changed by a refusal."""

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.db import Database
from app.tickets import unshelve_due
from tests.conftest import Auth, Clock
from tests.helpers import HUAYANG, JIANGSU, assert_problem, report_at
from tests.tickets.test_dispatch import OFFICER, OTHER_OFFICER, act, done, make_unit

DISTRICT = "changning"


def when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def accepted(client: TestClient, auth: Auth, rider: str, where: dict[str, Any] = JIANGSU) -> str:
    ticket = str(
        report_at(client, auth.rider("meituan", rider), where, category="waste")["ticket"]["id"]
    )
    done(client, auth.staff(OFFICER if where is JIANGSU else OTHER_OFFICER), ticket, "accept")
    return ticket


def test_more_time_moves_the_deadline_only_when_the_district_approves(
    client: TestClient, auth: Auth
) -> None:
    unit = make_unit(client, auth, "jsl-ext", "310105002")
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    ticket = accepted(client, auth, "ext-1")
    done(client, office, ticket, "dispatch", unit=unit.code)
    before = when(client.get(f"/v1/office/tickets/{ticket}", headers=office).json()["resolve_by"])

    for bad in ({"hours": 0, "reason": "x"}, {"hours": 24}, {"reason": "x"}):
        assert_problem(
            act(client, unit.crew, ticket, "request_extension", **bad), 422, "validation_error"
        )
    asked = done(client, unit.crew, ticket, "request_extension", hours=24, reason="需调沥青")
    assert asked["extension"] == {"hours": 24.0, "reason": "需调沥青", "status": "pending"}
    assert when(asked["resolve_by"]) == before
    again = act(client, office, ticket, "request_extension", hours=8, reason="再延")
    assert_problem(again, 409, "extension_pending")
    assert_problem(act(client, office, ticket, "approve_extension"), 403, "forbidden")
    assert_problem(act(client, unit.crew, ticket, "approve_extension"), 403, "forbidden")

    approved = done(client, district, ticket, "approve_extension")
    assert approved["extension"]["status"] == "approved"
    assert when(approved["resolve_by"]) == before + timedelta(hours=24)
    assert_problem(act(client, district, ticket, "deny_extension"), 409, "no_extension_pending")

    done(client, office, ticket, "request_extension", hours=12, reason="天气")
    denied = done(client, district, ticket, "deny_extension")
    assert denied["extension"]["status"] == "denied"
    assert when(denied["resolve_by"]) == before + timedelta(hours=24)


def test_a_shelved_ticket_is_never_overdue_and_comes_back_on_its_review_date(
    client: TestClient, auth: Auth, clock: Clock, database: Database
) -> None:
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    ticket = accepted(client, auth, "shelf-1")
    review = (clock.now + timedelta(days=30)).date()

    assert_problem(
        act(client, office, ticket, "shelve", reason="待道路大修", review_on=str(review)),
        403,
        "forbidden",
    )
    for bad, field in (
        ({"review_on": str(review)}, "reason"),
        ({"reason": "待道路大修"}, "review_on"),
        (
            {"reason": "待道路大修", "review_on": str(clock.now.date() - timedelta(days=1))},
            "review_on",
        ),
    ):
        refused = act(client, district, ticket, "shelve", **bad)
        assert_problem(refused, 422, "validation_error")
        assert refused.json()["errors"][0]["field"] == field
    shelved = done(client, district, ticket, "shelve", reason="待道路大修", review_on=str(review))
    assert shelved["status"] == "shelved" and shelved["review_on"] == str(review)

    clock.advance(days=20)  # far past the category's deadline
    assert client.get(f"/v1/office/tickets/{ticket}", headers=office).json()["overdue"] is False
    late = client.get("/v1/office/tickets?overdue=true", headers=office).json()["items"]
    assert ticket not in [t["id"] for t in late]
    with database.transaction() as session:
        assert unshelve_due(session, clock.now) == 0

    clock.now = clock.now + timedelta(days=11)
    with database.transaction() as session:
        assert unshelve_due(session, clock.now) == 1
    back = client.get(f"/v1/office/tickets/{ticket}", headers=office).json()
    assert back["status"] == "accepted" and back["review_on"] is None
    assert back["events"][-1]["type"] == "unshelve" and back["events"][-1]["actor"] == "system"


def test_the_wrong_category_is_corrected_with_deadlines_from_the_ticket_s_creation(
    client: TestClient, auth: Auth
) -> None:
    office = auth.staff(OFFICER)
    receipt = report_at(client, auth.rider("meituan", "cat-1"), JIANGSU, category="waste")
    ticket = receipt["ticket"]["id"]
    opened = client.get(f"/v1/office/tickets/{ticket}", headers=office).json()
    categories = {c["code"]: c for c in client.get("/v1/categories").json()["items"]}
    target = next(
        code
        for code, c in categories.items()
        if code != "waste"
        and c["sla_clock"] == "hours"
        and c["resolve_within_h"] != categories["waste"]["resolve_within_h"]
    )

    for bad in (None, "no_such_category", "waste"):
        refused = act(client, office, ticket, "recategorise", category=bad)
        assert_problem(refused, 422, "validation_error")
        assert refused.json()["errors"][0]["field"] == "category"
    changed = done(client, office, ticket, "recategorise", category=target)
    assert changed["category"] == target
    created = when(opened["created_at"])
    assert when(changed["resolve_by"]) == created + timedelta(
        hours=categories[target]["resolve_within_h"]
    )
    assert changed["events"][-1]["type"] == "recategorise"


def test_the_wrong_place_is_corrected_and_another_streets_office_gets_it(
    client: TestClient, auth: Auth
) -> None:
    office, other = auth.staff(OFFICER), auth.staff(OTHER_OFFICER)
    ticket = accepted(client, auth, "place-1")
    assert_problem(
        act(client, office, ticket, "relocate", lat=31.30, lon=121.90), 422, "validation_error"
    )
    moved = done(client, office, ticket, "relocate", **HUAYANG)
    assert moved["status"] == "new"
    assert client.get(f"/v1/office/tickets/{ticket}", headers=office).status_code == 404
    theirs = client.get(f"/v1/office/tickets/{ticket}", headers=other).json()
    assert theirs["area"]["street"]["code"] == "310105001"
    assert abs(theirs["lat"] - HUAYANG["lat"]) < 0.01

"""Street-office actions on a ticket: the action table of the contract, from every status."""

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.models import Ticket
from tests.conftest import Auth
from tests.helpers import assert_problem

OFFICER = "officer_310105002"  # 江苏路街道, where the point below lies
OTHER_OFFICER = "officer_310105001"
JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
STATUSES = [
    "new",
    "accepted",
    "in_progress",
    "dispatched",
    "awaiting_check",
    "shelved",
    "resolved",
    "closed",
    "rejected",
    "duplicate",
]
OPEN = ["new", "accepted", "in_progress", "dispatched", "awaiting_check", "shelved"]

# docs/api.md's action tables, as an officer may take them: action → ({status it may
# start from: status it leads to}).
CONTRACT: dict[str, dict[str, str]] = {
    "accept": {"new": "accepted"},
    "reject": {"new": "rejected", "accepted": "rejected"},
    "assign": {"accepted": "accepted", "in_progress": "in_progress"},
    "start": {"accepted": "in_progress"},
    "resolve": {"accepted": "resolved", "in_progress": "resolved", "dispatched": "resolved"},
    "close": {"resolved": "closed"},
    "reopen": {"resolved": "accepted", "closed": "accepted"},
    "transfer": {"new": "new", "accepted": "new"},
    "merge": {s: "duplicate" for s in OPEN},
    "comment": {s: s for s in STATUSES},
    "set_priority": {s: s for s in OPEN},
    "set_public_summary": {s: s for s in STATUSES},
    "hide_report": {s: s for s in STATUSES},
    "unhide_report": {s: s for s in STATUSES},
    "dispatch": {s: "dispatched" for s in ("accepted", "in_progress", "dispatched")},
    "acknowledge": {"new": "new", "accepted": "accepted"},
    "check_pass": {"awaiting_check": "resolved"},
    "check_fail": {"awaiting_check": "dispatched"},
    "request_extension": {s: s for s in ("accepted", "dispatched", "in_progress")},
    "recategorise": {"new": "new", "accepted": "accepted"},
    "relocate": {"new": "new", "accepted": "accepted"},
}
# The actions that are another role's: an officer gets 403 from every status.
NOT_AN_OFFICERS = [
    "report_done",
    "return",
    "approve_extension",
    "deny_extension",
    "shelve",
    "unshelve",
]


def open_ticket(
    client: TestClient, auth: Auth, category: str = "road_damage", rider: str = "r-office"
) -> str:
    response = client.post(
        "/v1/reports", headers=auth.rider("meituan", rider), json={"category": category, **JIANGSU}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["ticket"]["id"])


def set_status(database: Database, ticket_id: str, status: str) -> None:
    with database.transaction() as session:
        ticket = session.scalar(select(Ticket).where(Ticket.id == uuid.UUID(ticket_id)))
        assert ticket is not None
        ticket.status = status  # type: ignore[assignment]


def body_for(action: str, client: TestClient, auth: Auth, ticket_id: str) -> dict[str, Any]:
    extra: dict[str, Any] = {
        "set_public_summary": {"public_summary": "路面坑洞，已报修"},
        "reject": {"reason": "spam"},
        "assign": {"assignee": "城管中队"},
        "resolve": {"note": "已修复"},
        "reopen": {"note": "又坏了"},
        "comment": {"note": "已联系物业"},
        "transfer": {"to_street": "310105001"},
        "set_priority": {"priority": 1},
        "dispatch": {"unit": "chengguan_310105002"},
        "check_fail": {"note": "仍未修好"},
        "request_extension": {"hours": 24, "reason": "需等材料"},
        "recategorise": {"category": "waste"},
        "relocate": {**JIANGSU, "lat": JIANGSU["lat"] + 0.0002},
    }.get(action, {})
    if action == "merge":
        extra = {"into_ticket": open_ticket(client, auth, category="other", rider="r-into")}
    if action in ("hide_report", "unhide_report"):
        officer = auth.staff(OFFICER)
        ticket = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json()
        extra = {"report_id": ticket["reports"][0]["id"], "reason": "personal_information"}
        if action == "unhide_report":  # a report hidden before, to show again
            hidden = client.post(
                f"/v1/office/tickets/{ticket_id}/actions",
                headers=officer,
                json={"action": "hide_report", **extra},
            )
            assert hidden.status_code == 200, hidden.text
    return {"action": action, **extra}


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", list(CONTRACT))
def test_every_action_from_every_status(
    client: TestClient, auth: Auth, database: Database, action: str, status: str
) -> None:
    officer = auth.staff(OFFICER)
    ticket_id = open_ticket(client, auth)
    set_status(database, ticket_id, status)
    body = body_for(action, client, auth, ticket_id)
    before = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json()

    response = client.post(f"/v1/office/tickets/{ticket_id}/actions", headers=officer, json=body)

    if status in CONTRACT[action]:
        assert response.status_code == 200, response.text
        after = response.json()
        assert after["status"] == CONTRACT[action][status]
        assert after["version"] == before["version"] + 1
        assert after["events"][-1]["type"] == action
        assert after["events"][-1]["actor"] == OFFICER
        assert (after["events"][-1]["from_status"], after["events"][-1]["to_status"]) == (
            status,
            CONTRACT[action][status],
        )
        assert response.headers["etag"] == f'"{after["version"]}"'
    else:
        problem = assert_problem(response, 409, "invalid_transition")
        assert sorted(problem["allowed_actions"]) == sorted(
            a for a, sources in CONTRACT.items() if status in sources
        )
        after = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json()
        assert after == before


@pytest.mark.parametrize("action", NOT_AN_OFFICERS)
def test_the_actions_of_other_roles_are_refused_to_an_officer_from_every_status(
    client: TestClient, auth: Auth, database: Database, action: str
) -> None:
    officer = auth.staff(OFFICER)
    ticket_id = open_ticket(client, auth)
    for status in STATUSES:
        set_status(database, ticket_id, status)
        before = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json()
        refused = client.post(
            f"/v1/office/tickets/{ticket_id}/actions",
            headers=officer,
            json={"action": action, "note": "x", "reason": "other", "hours": 1},
        )
        assert_problem(refused, 403, "forbidden")
        assert client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "reject"}, "reason"),
        ({"action": "reject", "reason": "boring"}, "reason"),
        ({"action": "assign"}, "assignee"),
        ({"action": "resolve"}, "note"),
        ({"action": "comment", "note": ""}, "note"),
        ({"action": "transfer"}, "to_street"),
        ({"action": "transfer", "to_street": "310105002"}, "to_street"),  # its own street
        ({"action": "transfer", "to_street": "310105"}, "to_street"),  # not a street
        ({"action": "merge"}, "into_ticket"),
        ({"action": "set_priority", "priority": 7}, "priority"),
        ({"action": "fly"}, "action"),
        ({"action": "comment", "note": "\u0000"}, "note"),
    ],
)
def test_an_action_without_what_it_needs_is_422_and_changes_nothing(
    client: TestClient, auth: Auth, body: dict[str, Any], field: str
) -> None:
    officer = auth.staff(OFFICER)
    ticket_id = open_ticket(client, auth)
    if body["action"] in ("assign", "resolve"):
        client.post(
            f"/v1/office/tickets/{ticket_id}/actions", headers=officer, json={"action": "accept"}
        )
    before = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json()
    response = client.post(f"/v1/office/tickets/{ticket_id}/actions", headers=officer, json=body)
    problem = assert_problem(response, 422, "validation_error")
    assert field in {e["field"] for e in problem["errors"]}
    assert client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).json() == before


def test_if_match_guards_against_a_stale_version(client: TestClient, auth: Auth) -> None:
    officer = auth.staff(OFFICER)
    ticket_id = open_ticket(client, auth)
    etag = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).headers["etag"]
    url = f"/v1/office/tickets/{ticket_id}/actions"
    assert (
        client.post(
            url, headers=officer | {"If-Match": etag}, json={"action": "accept"}
        ).status_code
        == 200
    )
    stale = client.post(
        url, headers=officer | {"If-Match": etag}, json={"action": "comment", "note": "late"}
    )
    assert_problem(stale, 412, "version_mismatch")
    assert_problem(
        client.post(
            url,
            headers=officer | {"If-Match": "yesterday"},
            json={"action": "comment", "note": "x"},
        ),
        412,
        "version_mismatch",
    )
    fresh = client.get(f"/v1/office/tickets/{ticket_id}", headers=officer).headers["etag"]
    assert (
        client.post(url, headers=officer | {"If-Match": fresh}, json={"action": "start"}).json()[
            "status"
        ]
        == "in_progress"
    )


def test_transfer_hands_the_ticket_over_and_keeps_the_sla_clock(
    client: TestClient, auth: Auth
) -> None:
    officer, other = auth.staff(OFFICER), auth.staff(OTHER_OFFICER)
    ticket_id = open_ticket(client, auth)
    url = f"/v1/office/tickets/{ticket_id}"
    before = client.get(url, headers=officer).json()
    assert client.get(url, headers=other).status_code == 404
    moved = client.post(
        f"{url}/actions", headers=officer, json={"action": "transfer", "to_street": "310105001"}
    ).json()
    assert moved["area"]["street"]["code"] == "310105001" and moved["status"] == "new"
    assert (moved["respond_by"], moved["resolve_by"]) == (
        before["respond_by"],
        before["resolve_by"],
    )
    assert_problem(client.get(url, headers=officer), 404, "not_found")
    assert client.get(url, headers=other).json()["id"] == ticket_id
    assert client.get(url, headers=auth.staff("changning")).status_code == 200


def test_merge_moves_the_reports_to_the_target(client: TestClient, auth: Auth) -> None:
    officer = auth.staff(OFFICER)
    duplicate = open_ticket(client, auth, category="waste", rider="a")
    open_ticket(client, auth, category="waste", rider="b")  # joins: two reports
    target = open_ticket(client, auth, category="other", rider="c")
    merged = client.post(
        f"/v1/office/tickets/{duplicate}/actions",
        headers=officer,
        json={"action": "merge", "into_ticket": target},
    ).json()
    assert merged["status"] == "duplicate"
    into = client.get(f"/v1/office/tickets/{target}", headers=officer).json()
    assert merged["duplicate_of"] == into["ref"]
    assert into["report_count"] == 3 and len(into["reports"]) == 3
    assert into["events"][-1]["type"] == "merged_in"
    assert client.get(f"/v1/office/tickets/{duplicate}", headers=officer).json()["reports"] == []


def test_merge_into_a_ticket_outside_the_scope_is_404(
    client: TestClient, auth: Auth, database: Database
) -> None:
    ticket_id = open_ticket(client, auth)
    elsewhere = client.post(
        "/v1/reports",
        headers=auth.rider("eleme", "r-hy"),
        json={"category": "other", "lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"},
    )
    assert elsewhere.json()["area"]["street"]["code"] == "310105001"
    response = client.post(
        f"/v1/office/tickets/{ticket_id}/actions",
        headers=auth.staff(OFFICER),
        json={"action": "merge", "into_ticket": elsewhere.json()["ticket"]["id"]},
    )
    assert_problem(response, 404, "not_found")


def test_only_office_staff_of_the_ticket_s_scope_may_see_or_act(
    client: TestClient, auth: Auth
) -> None:
    ticket_id = open_ticket(client, auth)
    url = f"/v1/office/tickets/{ticket_id}"
    accept = {"action": "accept"}
    assert_problem(client.get(url), 401, "unauthenticated")
    for headers in (auth.platform("meituan"), auth.rider("meituan", "x"), auth.staff("admin")):
        assert_problem(client.get(url, headers=headers), 403, "forbidden")
        assert_problem(
            client.post(f"{url}/actions", headers=headers, json=accept), 403, "forbidden"
        )
    other = auth.staff(OTHER_OFFICER)
    assert_problem(client.get(url, headers=other), 404, "not_found")
    assert_problem(client.post(f"{url}/actions", headers=other, json=accept), 404, "not_found")
    assert_problem(
        client.get(f"/v1/office/tickets/{uuid.uuid4()}", headers=auth.staff(OFFICER)),
        404,
        "not_found",
    )
    detail = client.get(url, headers=auth.staff(OFFICER)).json()
    # Riders appear as platform and pseudonym only.
    assert set(detail["reports"][0]["rider"]) == {"platform", "pseudonym"}
    assert detail["reports"][0]["rider"]["platform"] == "meituan"

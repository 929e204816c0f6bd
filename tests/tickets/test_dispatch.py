"""Dispatch to the units that fix things (docs/api.md, "Dispatch, field crews and the
case's exceptions"): a ticket's whole life through the API — accept, dispatch, 签收,
start, report done with an after-photo, a failed check (返工), done again, a passed check,
close — with its events, the unit's record and the rider's points; the refusals (wrong
role 403, wrong status 409 with what is allowed, a bad field 422 naming it, nothing
changed); two units in two streets that never see each other's tickets."""

import io
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import select

from app.db import Database
from app.models import Dispatch
from tests.conftest import Auth, Clock, bearer
from tests.helpers import HUAYANG, JIANGSU, assert_problem, report_at

OFFICER = "officer_310105002"  # 江苏路街道
OTHER_OFFICER = "officer_310105001"  # 华阳路街道
DISTRICT = "changning"


@dataclass
class Unit:
    code: str
    crew: dict[str, str]


def photo(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((320, 240), 40 + seed).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def make_unit(client: TestClient, auth: Auth, code: str, street: str, **extra: Any) -> Unit:
    admin = auth.staff("admin")
    made = client.post(
        "/v1/admin/units",
        headers=admin,
        json={
            "code": code,
            "name": f"{code} 中队",
            "kind": "department",
            "streets": [street],
            "categories": None,
            **extra,
        },
    )
    assert made.status_code == 201, made.text
    account = client.post(
        "/v1/admin/staff",
        headers=admin,
        json={
            "username": f"crew_{code}",
            "role": "crew",
            "unit": code,
            "password": "crew-pass-1234",
        },
    )
    assert account.status_code == 201, account.text
    token = client.post(
        "/v1/auth/token", data={"username": f"crew_{code}", "password": "crew-pass-1234"}
    )
    assert token.status_code == 200, token.text
    return Unit(code, bearer(token.json()["access_token"]))


def act(client: TestClient, who: dict[str, str], ticket: str, action: str, **body: Any) -> Any:
    return client.post(
        f"/v1/office/tickets/{ticket}/actions", headers=who, json={"action": action, **body}
    )


def done(client: TestClient, who: dict[str, str], ticket: str, action: str, **body: Any) -> Any:
    answer = act(client, who, ticket, action, **body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def upload(client: TestClient, who: dict[str, str], data: bytes) -> str:
    answer = client.post(
        "/v1/office/media", headers=who, files={"file": ("after.jpg", data, "image/jpeg")}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


@pytest.fixture
def units(client: TestClient, auth: Auth) -> tuple[Unit, Unit]:
    return make_unit(client, auth, "jsl-cg", "310105002"), make_unit(
        client, auth, "hy-cg", "310105001"
    )


def test_a_tickets_whole_life_with_a_unit(
    client: TestClient, auth: Auth, units: tuple[Unit, Unit], database: Database, clock: Clock
) -> None:
    unit, _ = units
    office = auth.staff(OFFICER)
    rider = auth.rider("meituan", "dispatch-1")
    ticket = report_at(client, rider, JIANGSU, category="road_damage")["ticket"]["id"]
    clock.advance(minutes=1)  # each step at a moment of its own: the timeline's order
    done(client, office, ticket, "accept")
    clock.advance(minutes=1)

    dispatched = done(client, office, ticket, "dispatch", unit=unit.code, note="请尽快处置")
    assert dispatched["status"] == "dispatched"
    assert dispatched["unit"]["code"] == unit.code
    assert dispatched["acknowledged_at"] is None

    # The crew sees it (without who reported it), signs for it, starts, reports done.
    seen = client.get(f"/v1/office/tickets/{ticket}", headers=unit.crew)
    assert seen.status_code == 200, seen.text
    assert all(r["rider"] is None for r in seen.json()["reports"])
    assert set(seen.json()["allowed_actions"]) >= {"acknowledge", "start", "return"}
    listed = client.get("/v1/office/tickets", headers=unit.crew).json()["items"]
    assert [t["id"] for t in listed] == [ticket]
    clock.advance(minutes=5)
    assert done(client, unit.crew, ticket, "acknowledge")["acknowledged_at"]
    assert_problem(act(client, unit.crew, ticket, "acknowledge"), 409, "already_acknowledged")
    clock.advance(minutes=30)
    assert done(client, unit.crew, ticket, "start")["status"] == "in_progress"
    clock.advance(hours=2)
    first = upload(client, unit.crew, photo(1))
    reported = done(client, unit.crew, ticket, "report_done", note="已填补", media_ids=[first])
    assert reported["status"] == "awaiting_check"

    # The office's check fails: back to the same unit, to be signed for again.
    clock.advance(minutes=10)
    failed = done(client, office, ticket, "check_fail", note="边缘仍有裂缝")
    assert failed["status"] == "dispatched" and failed["unit"]["code"] == unit.code
    assert failed["acknowledged_at"] is None
    clock.advance(hours=1)
    second = upload(client, unit.crew, photo(2))
    done(client, unit.crew, ticket, "report_done", note="已重新修补", media_ids=[second])
    clock.advance(minutes=10)
    passed = done(client, office, ticket, "check_pass")
    assert passed["status"] == "resolved"
    clock.advance(minutes=10)
    closed = done(client, office, ticket, "close")
    assert closed["status"] == "closed"

    kinds = [e["type"] for e in closed["events"]]
    assert kinds[-8:] == [
        "dispatch",
        "acknowledge",
        "start",
        "report_done",
        "check_fail",
        "report_done",
        "check_pass",
        "close",
    ], kinds
    with database.session() as session:
        record = session.scalars(select(Dispatch)).one()
        assert (record.done_count, record.check_fail_count) == (2, 1)
        assert record.passed_at is not None and record.ended_at is not None
        assert record.acknowledged_at is not None and record.started_at is not None
    # Read-only for the crew now: listed, but nothing more to do.
    after = client.get(f"/v1/office/tickets/{ticket}", headers=unit.crew).json()
    assert after["allowed_actions"] == []
    assert_problem(act(client, unit.crew, ticket, "comment", note="x"), 403, "forbidden")
    # The rider's report counts as resolved (points for a resolution, as before).
    mine = client.get("/v1/me", headers=rider)
    assert mine.status_code == 200 and mine.json()["resolved"] == 1

    # The unit's figures: one dispatched, done in time, one check failed of two reports.
    figures = client.get("/v1/office/stats/units", headers=office)
    assert figures.status_code == 200, figures.text
    row = next(r for r in figures.json() if r["unit"] == unit.code)
    assert (row["dispatched"], row["done"], row["on_time_rate"]) == (1, 1, 1.0)
    assert (row["rework_rate"], row["return_rate"]) == (0.5, 0.0)
    assert row["median_working_hours_to_done"] is not None
    others = client.get("/v1/office/stats/units", headers=auth.staff(OTHER_OFFICER)).json()
    assert unit.code not in [r["unit"] for r in others]
    workbook = client.get("/v1/office/stats/units?format=xlsx", headers=office)
    assert workbook.status_code == 200 and workbook.content[:2] == b"PK"


def test_the_refusals_change_nothing(
    client: TestClient, auth: Auth, units: tuple[Unit, Unit]
) -> None:
    unit, other = units
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    rider = auth.rider("meituan", "dispatch-2")
    ticket = report_at(client, rider, JIANGSU, category="road_damage")["ticket"]["id"]

    # Dispatch needs an accepted ticket, and a unit that serves its street.
    early = act(client, office, ticket, "dispatch", unit=unit.code)
    assert_problem(early, 409, "invalid_transition")
    assert "accept" in early.json()["allowed_actions"]
    done(client, office, ticket, "accept")
    version = client.get(f"/v1/office/tickets/{ticket}", headers=office).json()["version"]
    for wrong in (None, "no-such-unit", other.code):
        refused = act(client, office, ticket, "dispatch", unit=wrong)
        assert_problem(refused, 422, "validation_error")
        assert refused.json()["errors"][0]["field"] == "unit"
    # The crew's steps are the crew's; the office's check is the office's.
    assert_problem(act(client, office, ticket, "report_done", note="x"), 403, "forbidden")
    done(client, office, ticket, "dispatch", unit=unit.code)
    # Dispatched to the unit that holds it already: said, not a second dispatch.
    again = act(client, office, ticket, "dispatch", unit=unit.code)
    assert_problem(again, 422, "validation_error")
    assert again.json()["errors"][0]["field"] == "unit"
    assert_problem(act(client, unit.crew, ticket, "check_pass"), 403, "forbidden")
    assert_problem(act(client, unit.crew, ticket, "dispatch", unit=unit.code), 403, "forbidden")
    # Another street's unit does not see it at all.
    assert client.get(f"/v1/office/tickets/{ticket}", headers=other.crew).status_code == 404
    assert_problem(act(client, other.crew, ticket, "start"), 404, "not_found")
    # Report done needs a note; a return, a reason from the list.
    assert_problem(act(client, unit.crew, ticket, "report_done"), 422, "validation_error")
    bad_return = act(client, unit.crew, ticket, "return", reason="tired")
    assert_problem(bad_return, 422, "validation_error")
    assert bad_return.json()["errors"][0]["field"] == "reason"
    # A check before the work is reported done is the wrong status.
    early_check = act(client, office, ticket, "check_pass")
    assert_problem(early_check, 409, "invalid_transition")
    now = client.get(f"/v1/office/tickets/{ticket}", headers=office).json()
    assert now["status"] == "dispatched" and now["version"] == version + 1

    # The unit hands it back: the office has it again, the unit's record says why.
    returned = done(client, unit.crew, ticket, "return", reason="not_ours", note="属燃气公司")
    assert returned["status"] == "accepted" and returned["unit"] is None
    assert (
        client.get(f"/v1/office/tickets/{ticket}", headers=unit.crew).json()["allowed_actions"]
        == []
    )
    # District staff may dispatch too.
    assert done(client, district, ticket, "dispatch", unit=unit.code)["status"] == "dispatched"


def test_a_category_that_wants_an_after_photo_gets_one(
    client: TestClient, auth: Auth, units: tuple[Unit, Unit]
) -> None:
    unit, _ = units
    admin = auth.staff("admin")
    category = client.get("/v1/admin/categories/road_damage", headers=admin)
    assert category.status_code == 200, category.text
    body = category.json()
    put = {
        key: body[key]
        for key in (
            "name",
            "description",
            "department",
            "priority",
            "respond_within_h",
            "resolve_within_h",
            "sla_clock",
            "standard",
            "dedup_radius_m",
            "dedup_window_h",
            "points",
            "active",
        )
    }
    saved = client.put(
        "/v1/admin/categories/road_damage",
        headers=admin,
        json={**put, "after_photo_required": True},
    )
    assert saved.status_code == 200, saved.text
    office = auth.staff(OFFICER)
    ticket = report_at(client, auth.rider("eleme", "dispatch-3"), JIANGSU, category="road_damage")[
        "ticket"
    ]["id"]
    done(client, office, ticket, "accept")
    done(client, office, ticket, "dispatch", unit=unit.code)

    without = act(client, unit.crew, ticket, "report_done", note="已修")
    assert_problem(without, 422, "validation_error")
    assert without.json()["errors"][0]["field"] == "media_ids"
    # Only the crew member's own uploads count as its photos.
    someone_elses = upload(client, office, photo(3))
    theirs = act(client, unit.crew, ticket, "report_done", note="已修", media_ids=[someone_elses])
    assert_problem(theirs, 422, "unknown_media")
    own = upload(client, unit.crew, photo(4))
    assert (
        done(client, unit.crew, ticket, "report_done", note="已修", media_ids=[own])["status"]
        == "awaiting_check"
    )


def test_two_units_of_two_streets_never_see_each_others_tickets(
    client: TestClient, auth: Auth, units: tuple[Unit, Unit]
) -> None:
    jiangsu_unit, huayang_unit = units
    mine = report_at(client, auth.rider("meituan", "d-4"), JIANGSU, category="road_damage")
    theirs = report_at(client, auth.rider("meituan", "d-5"), HUAYANG, category="road_damage")
    for office, ticket, unit in (
        (auth.staff(OFFICER), mine["ticket"]["id"], jiangsu_unit),
        (auth.staff(OTHER_OFFICER), theirs["ticket"]["id"], huayang_unit),
    ):
        done(client, office, ticket, "accept")
        done(client, office, ticket, "dispatch", unit=unit.code)
    for unit, own, other in (
        (jiangsu_unit, mine, theirs),
        (huayang_unit, theirs, mine),
    ):
        listed = client.get("/v1/office/tickets", headers=unit.crew).json()["items"]
        assert [t["id"] for t in listed] == [own["ticket"]["id"]]
        assert (
            client.get(f"/v1/office/tickets/{other['ticket']['id']}", headers=unit.crew).status_code
            == 404
        )
        csv = client.get("/v1/office/tickets.csv", headers=unit.crew).text
        assert own["ticket"]["ref"] in csv and other["ticket"]["ref"] not in csv


def test_a_units_part_ends_however_the_ticket_leaves_it(
    client: TestClient, auth: Auth, units: tuple[Unit, Unit], database: Database
) -> None:
    unit, _ = units
    office = auth.staff(OFFICER)
    rider = auth.rider("meituan", "dispatch-6")
    ticket = report_at(client, rider, JIANGSU, category="road_damage")["ticket"]["id"]
    done(client, office, ticket, "accept")
    done(client, office, ticket, "dispatch", unit=unit.code)
    done(client, unit.crew, ticket, "request_extension", hours=8, reason="等材料")
    waiting = client.get("/v1/office/tickets?needs_review=true", headers=office).json()
    assert [t["id"] for t in waiting["items"]] == [ticket]
    others = client.get("/v1/office/tickets?needs_review=false", headers=office).json()
    assert ticket not in [t["id"] for t in others["items"]]

    # The office resolves it itself: the unit lets go, the waiting request is dropped.
    resolved = done(client, office, ticket, "resolve", note="街道自行处置")
    assert resolved["unit"] is None and resolved["extension"] is None
    with database.session() as session:
        assert session.scalars(select(Dispatch)).one().ended_at is not None
    # Reopened and started by the office, it is not the old unit's to act on.
    done(client, office, ticket, "reopen", note="又坏了")
    assert done(client, office, ticket, "acknowledge")["acknowledged_at"]
    done(client, office, ticket, "start")
    assert_problem(act(client, unit.crew, ticket, "report_done", note="x"), 403, "forbidden")
    assert (
        client.get(f"/v1/office/tickets/{ticket}", headers=unit.crew).json()["allowed_actions"]
        == []
    )
    mine = client.get(f"/v1/office/tickets?unit={unit.code}", headers=office).json()
    assert mine["items"] == []

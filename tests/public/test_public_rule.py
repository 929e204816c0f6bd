"""The public rule, tried at every status over every public output: Open311's reads (JSON
and XML, the list and each request, the photo), the public page, a ticket's public page,
the map's points and the public photos. A ticket whose first report carries a phone
number, a plate, an ID number, an e-mail address and a photo of a face and a plate."""

import io
import re
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from app.db import Database
from app.media import Box, BoxKind, suggest_boxes
from tests.conftest import Auth
from tests.helpers import HUAYANG, JIANGSU, act, assert_problem, report_at
from tests.public.scene import FACE, PLATE, photo_with_a_face_and_a_plate
from tests.reporting import CountRows

OPEN311 = "/open311/v2"
OFFICER = "officer_310105002"  # 江苏路街道, where JIANGSU lies
OTHER_OFFICER = "officer_310105001"
PERSONAL = ("13812345678", "138 1234 5678", "沪A·12345", "310105199001011234", "li.si@example.com")
WORDS = (
    "井盖旁停着车，车主电话138 1234 5678，车牌沪A·12345，"
    "身份证310105199001011234，邮箱 li.si@example.com"
)
SECRET_ADDRESS = "愚园路100弄 电话 021-62512345"


def everything_public(client: TestClient, ticket: dict[str, Any]) -> str:
    """Every public output that could name the ticket, as one text."""
    texts = []
    for path in (
        f"{OPEN311}/requests.json",
        f"{OPEN311}/requests.xml",
        f"{OPEN311}/requests/{ticket['id']}.json",
        f"{OPEN311}/requests/{ticket['id']}.xml",
        "/public/",
        "/public/?lang=en",
        f"/public/tickets/{ticket['ref']}",
        "/public/map.geojson",
    ):
        response = client.get(path)
        assert response.status_code in (200, 404), (path, response.status_code)
        if response.status_code == 200:  # a 404 names what was asked for, nothing more
            texts.append(response.text)
    return "\n".join(texts)


def is_public(client: TestClient, ticket: dict[str, Any]) -> bool:
    shown = everything_public(client, ticket)
    listed = ticket["id"] in shown, ticket["ref"] in shown
    page = client.get(f"/public/tickets/{ticket['ref']}").status_code == 200
    one = client.get(f"{OPEN311}/requests/{ticket['id']}.json").status_code == 200
    assert listed[0] == listed[1] == page == one, "the public outputs disagree"
    return one


def assert_nothing_personal(client: TestClient, ticket: dict[str, Any]) -> None:
    shown = everything_public(client, ticket)
    for personal in (*PERSONAL, "021-62512345", "62512345"):
        assert personal not in shown, personal


@pytest.fixture
def ticket(client: TestClient, auth: Auth) -> dict[str, Any]:
    rider = auth.rider("meituan", "p-1")
    photo = client.post(
        "/v1/media",
        headers=rider,
        files={"file": ("p.jpg", photo_with_a_face_and_a_plate(), "image/jpeg")},
    )
    assert photo.status_code == 201, photo.text
    body = {
        "category": "road_damage",
        **JIANGSU,
        "description": WORDS,
        "address_hint": SECRET_ADDRESS,
        "media_ids": [photo.json()["id"]],
    }
    receipt = client.post("/v1/reports", headers=rider, json=body)
    assert receipt.status_code == 201, receipt.text
    return {**receipt.json()["ticket"], "media_id": photo.json()["id"], "rider": rider}


def pixels(data: bytes) -> NDArray[np.float64]:
    return np.asarray(Image.open(io.BytesIO(data)).convert("L"), dtype=np.float64)


def detail(region: NDArray[np.float64]) -> NDArray[np.float64]:
    """What a region holds beyond its local means: edges, features, characters."""
    image = Image.fromarray(region.astype(np.uint8))
    smooth = np.asarray(image.filter(ImageFilter.GaussianBlur(3)), dtype=np.float64)
    return region - smooth


def inside(array: NDArray[np.float64], box: Box) -> NDArray[np.float64]:
    return array[box.y : box.y + box.h, box.x : box.x + box.w]


def test_nothing_is_public_before_acceptance_or_after_a_spam_rejection(
    client: TestClient, auth: Auth, ticket: dict[str, Any]
) -> None:
    assert not is_public(client, ticket)
    assert client.get(f"{OPEN311}/requests/{ticket['id']}.json").status_code == 404
    assert client.get(f"/public/tickets/{ticket['ref']}").status_code == 404
    act(client, auth.staff(OFFICER), ticket["id"], {"action": "reject", "reason": "spam"})
    assert not is_public(client, ticket)
    assert_nothing_personal(client, ticket)


@pytest.mark.parametrize(
    "actions",
    [
        [{"action": "accept"}],
        [{"action": "accept"}, {"action": "start"}],
        [{"action": "accept"}, {"action": "resolve", "note": "已修复，联系 13900001111"}],
        [{"action": "accept"}, {"action": "resolve", "note": "已修复"}, {"action": "close"}],
        [{"action": "accept"}, {"action": "reject", "reason": "not_actionable"}],
        [{"action": "accept"}, {"action": "transfer", "to_street": "310105001"}],
    ],
    ids=["accepted", "in_progress", "resolved", "closed", "rejected", "transferred"],
)
def test_once_accepted_the_words_are_masked_at_every_status(
    client: TestClient, auth: Auth, ticket: dict[str, Any], actions: list[dict[str, Any]]
) -> None:
    act(client, auth.staff(OFFICER), ticket["id"], *actions)
    status = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff("changning"))
    public = status.json()["status"] in ("accepted", "in_progress", "resolved", "closed")
    assert is_public(client, ticket) == public
    assert_nothing_personal(client, ticket)
    assert "13900001111" not in everything_public(client, ticket)
    if public:
        shown = client.get(f"{OPEN311}/requests/{ticket['id']}.json").json()[0]
        assert shown["description"].startswith("井盖旁停着车，车主电话***，车牌***")
        assert shown["address"] == "愚园路100弄 电话 ***"
        assert shown["media_url"] is None  # no photo until a clerk publishes one
        page = client.get(f"/public/tickets/{ticket['ref']}").text
        assert "井盖旁停着车" in page and "/public/photos/" not in page


def test_a_photo_is_public_only_as_the_copy_a_clerk_published_with_the_boxes_blurred(
    client: TestClient, auth: Auth, ticket: dict[str, Any], database: Database
) -> None:
    office = auth.staff(OFFICER)
    media_id = ticket["media_id"]
    act(client, office, ticket["id"], {"action": "accept"})

    suggested = client.get(f"/v1/office/media/{media_id}/suggestions", headers=office)
    assert suggested.status_code == 200, suggested.text
    body = suggested.json()
    assert (body["width"], body["height"]) == (1024, 768)
    boxes = {b["kind"]: Box(b["x"], b["y"], b["w"], b["h"]) for b in body["boxes"]}
    assert set(boxes) == {"face", "plate"}, body
    for kind, truth in (("face", FACE), ("plate", PLATE)):
        found = boxes[kind]
        overlap_w = min(found.x + found.w, truth.x + truth.w) - max(found.x, truth.x)
        overlap_h = min(found.y + found.h, truth.y + truth.h) - max(found.y, truth.y)
        assert overlap_w > 0.6 * truth.w and overlap_h > 0.6 * truth.h, (kind, found, truth)

    published = client.put(
        f"/v1/office/media/{media_id}/public",
        headers=office,
        json={"boxes": [{"x": b.x, "y": b.y, "w": b.w, "h": b.h} for b in boxes.values()]},
    )
    assert published.status_code == 200, published.text
    request = client.get(f"{OPEN311}/requests/{ticket['id']}.json").json()[0]
    assert request["media_url"] and media_id in request["media_url"]
    page = client.get(f"/public/tickets/{ticket['ref']}").text
    assert f"/public/photos/{media_id}" in page

    public_copy = client.get(f"/public/photos/{media_id}")
    assert public_copy.status_code == 200 and public_copy.headers["content-type"] == "image/jpeg"
    via_open311 = client.get(request["media_url"])  # relative: testserver is no trusted host
    assert via_open311.status_code == 200 and via_open311.content == public_copy.content
    original = client.get(f"/v1/media/{media_id}", headers=ticket["rider"])
    assert original.status_code == 200 and original.content != public_copy.content

    before, after = pixels(original.content), pixels(public_copy.content)
    assert before.shape == after.shape
    for kind, box in boxes.items():
        was, now = detail(inside(before, box)), detail(inside(after, box))
        correlation = float(np.corrcoef(was.ravel(), now.ravel())[0, 1])
        assert abs(correlation) < 0.1, (kind, correlation)
        assert now.std() < 0.1 * was.std(), (kind, now.std(), was.std())
    again = suggest_boxes(Image.open(io.BytesIO(public_copy.content)))
    assert not [s for s in again if s.kind is BoxKind.FACE], again
    assert not [s for s in again if s.kind is BoxKind.PLATE], again
    # Outside the boxes (and their margins) the copy is the photo, re-encoded.
    corner = Box(0, 0, 200, 100)
    assert np.abs(inside(before, corner) - inside(after, corner)).mean() < 3

    # The rider, the rider's platform and the office still see the original.
    for headers in (ticket["rider"], auth.platform("meituan"), office):
        assert client.get(f"/v1/media/{media_id}", headers=headers).content == original.content

    events = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["events"]
    assert events[-1]["type"] == "photo_published" and events[-1]["actor"] == OFFICER

    # Pages link the copy at its version, which any cache may keep for good; a new copy
    # is a new version, and the old one's URL answers no more.
    versioned = re.search(rf"/public/photos/{media_id}\?v=(\w+)", page)
    assert versioned
    kept = client.get(versioned[0])
    assert "immutable" in kept.headers["cache-control"] and kept.content == public_copy.content
    assert "v=" in request["media_url"]
    client.put(f"/v1/office/media/{media_id}/public", headers=office, json={"boxes": []})
    assert client.get(versioned[0]).status_code == 404
    assert client.get(f"/public/photos/{media_id}").headers["cache-control"] == (
        "public, max-age=300"
    )

    gone = client.delete(f"/v1/office/media/{media_id}/public", headers=office)
    assert gone.status_code == 204
    assert client.get(f"/public/photos/{media_id}").status_code == 404
    assert client.get(f"{OPEN311}/requests/{ticket['id']}.json").json()[0]["media_url"] is None
    events = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["events"]
    assert events[-1]["type"] == "photo_unpublished"
    again_gone = client.delete(f"/v1/office/media/{media_id}/public", headers=office)
    assert_problem(again_gone, 404, "not_found")


def test_a_hidden_report_vanishes_from_every_public_output(
    client: TestClient, auth: Auth, ticket: dict[str, Any]
) -> None:
    office = auth.staff(OFFICER)
    second = report_at(
        client, auth.rider("eleme", "p-2"), JIANGSU, category="road_damage", description="井盖缺失"
    )
    assert second["ticket"]["id"] == ticket["id"]
    act(client, office, ticket["id"], {"action": "accept"})
    client.put(f"/v1/office/media/{ticket['media_id']}/public", headers=office, json={"boxes": []})
    assert "/public/photos/" in client.get(f"/public/tickets/{ticket['ref']}").text
    reports = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["reports"]
    first = reports[0]["id"]

    act(
        client,
        office,
        ticket["id"],
        {"action": "hide_report", "report_id": first, "reason": "personal_information"},
    )
    shown = everything_public(client, ticket)
    assert "井盖旁停着车" not in shown and "愚园路" not in shown
    assert "/public/photos/" not in shown and ticket["media_id"] not in shown
    assert client.get(f"/public/photos/{ticket['media_id']}").status_code == 404
    assert (
        client.get(f"{OPEN311}/requests/{ticket['id']}.json").json()[0]["description"] == "井盖缺失"
    )
    detail_ = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert detail_["reports"][0]["hidden_reason"] == "personal_information"
    assert detail_["reports"][0]["description"] == WORDS  # the office still reads it
    assert detail_["events"][-1]["type"] == "hide_report"

    last = reports[1]["id"]
    act(
        client,
        office,
        ticket["id"],
        {"action": "hide_report", "report_id": last, "reason": "other"},
    )
    assert not is_public(client, ticket)  # every report hidden: nothing left to show
    assert (
        client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["public"] is False
    )

    joined = report_at(
        client, auth.rider("eleme", "p-4"), JIANGSU, category="road_damage", description="又一处"
    )
    assert joined["ticket"]["id"] == ticket["id"]
    assert not is_public(client, ticket)  # a report nobody looked at does not show it again

    act(client, office, ticket["id"], {"action": "unhide_report", "report_id": first})
    assert is_public(client, ticket)
    assert "井盖旁停着车" in client.get(f"/public/tickets/{ticket['ref']}").text


def test_the_public_summary_speaks_instead_of_the_report(
    client: TestClient, auth: Auth, ticket: dict[str, Any]
) -> None:
    office = auth.staff(OFFICER)
    act(client, office, ticket["id"], {"action": "accept"})
    act(
        client,
        office,
        ticket["id"],
        {"action": "set_public_summary", "public_summary": "愚园路井盖破损，已安排维修"},
    )
    shown = client.get(f"{OPEN311}/requests/{ticket['id']}.json").json()[0]
    assert shown["description"] == "愚园路井盖破损，已安排维修"
    assert shown["address"] is None  # the office chose the words, the place's too
    assert "愚园路井盖破损" in client.get(f"/public/tickets/{ticket['ref']}").text
    assert "井盖旁停着车" not in everything_public(client, ticket)
    act(client, office, ticket["id"], {"action": "set_public_summary", "public_summary": ""})
    shown = client.get(f"{OPEN311}/requests/{ticket['id']}.json").json()[0]
    assert shown["description"].startswith("井盖旁停着车，车主电话***")
    events = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["events"]
    assert [e["type"] for e in events[-2:]] == ["set_public_summary", "set_public_summary"]


def test_a_merged_ticket_leaves_the_public_side_and_its_reports_follow(
    client: TestClient, auth: Auth, ticket: dict[str, Any]
) -> None:
    office = auth.staff(OFFICER)
    other = report_at(client, auth.rider("eleme", "p-3"), JIANGSU, north_m=120, category="waste")
    act(client, office, ticket["id"], {"action": "accept"})
    act(client, office, other["ticket"]["id"], {"action": "accept"})
    act(client, office, ticket["id"], {"action": "merge", "into_ticket": other["ticket"]["id"]})
    assert not is_public(client, ticket)
    assert is_public(client, other["ticket"])
    assert_nothing_personal(client, other["ticket"])


def test_moderation_is_for_the_office_of_the_ticket(
    client: TestClient, auth: Auth, ticket: dict[str, Any], count_rows: CountRows
) -> None:
    media_id = ticket["media_id"]
    paths = [
        ("GET", f"/v1/office/media/{media_id}/suggestions", None),
        ("PUT", f"/v1/office/media/{media_id}/public", {"boxes": []}),
        ("DELETE", f"/v1/office/media/{media_id}/public", None),
    ]
    for method, path, body in paths:
        other_street = client.request(method, path, headers=auth.staff(OTHER_OFFICER), json=body)
        assert_problem(other_street, 404, "not_found")
        for caller in (ticket["rider"], auth.platform("meituan"), auth.staff("admin")):
            assert client.request(method, path, headers=caller, json=body).status_code == 403
        assert client.request(method, path, json=body).status_code == 401
    unknown = client.get(
        f"/v1/office/media/{uuid.uuid4()}/suggestions", headers=auth.staff(OFFICER)
    )
    assert_problem(unknown, 404, "not_found")
    assert count_rows("public_photos") == 0


@pytest.mark.parametrize(
    ("boxes", "field"),
    [
        ([{"x": 1000, "y": 0, "w": 100, "h": 10}], "boxes[0]"),
        ([{"x": 0, "y": 700, "w": 10, "h": 100}], "boxes[0]"),
        ([{"x": -1, "y": 0, "w": 10, "h": 10}], "boxes.0.x"),
        ([{"x": 0, "y": 0, "w": 0, "h": 10}], "boxes.0.w"),
        ([{"x": 0, "y": 0, "w": 10, "h": 10}] * 101, "boxes"),
    ],
    ids=["right", "below", "negative", "empty", "too_many"],
)
def test_a_bad_box_is_refused_and_nothing_is_published(
    client: TestClient,
    auth: Auth,
    ticket: dict[str, Any],
    count_rows: CountRows,
    boxes: list[dict[str, int]],
    field: str,
) -> None:
    before = count_rows("ticket_events")
    response = client.put(
        f"/v1/office/media/{ticket['media_id']}/public",
        headers=auth.staff(OFFICER),
        json={"boxes": boxes},
    )
    problem = assert_problem(response, 422, "validation_error")
    assert any(e["field"].startswith(field) for e in problem["errors"]), problem
    assert count_rows("public_photos") == 0 and count_rows("ticket_events") == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "hide_report", "reason": "spam"}, "report_id"),
        ({"action": "hide_report", "report_id": str(uuid.uuid4()), "reason": "other"}, "report_id"),
        ({"action": "hide_report", "report_id": "FIRST", "reason": "because"}, "reason"),
        ({"action": "unhide_report", "report_id": "FIRST"}, "report_id"),
        ({"action": "set_public_summary", "public_summary": "x" * 2001}, "public_summary"),
    ],
    ids=["no_report", "not_its_report", "bad_reason", "not_hidden", "too_long"],
)
def test_bad_public_actions_are_refused_and_change_nothing(
    client: TestClient, auth: Auth, ticket: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    office = auth.staff(OFFICER)
    before = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    if body.get("report_id") == "FIRST":
        body = {**body, "report_id": before["reports"][0]["id"]}
    response = client.post(f"/v1/office/tickets/{ticket['id']}/actions", headers=office, json=body)
    problem = assert_problem(response, 422, "validation_error")
    assert any(field in e["field"] for e in problem["errors"]), problem
    assert client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json() == before


def test_the_public_side_of_two_streets_and_two_platforms_is_one(
    client: TestClient, auth: Auth
) -> None:
    a = report_at(client, auth.rider("meituan", "t-1"), JIANGSU, category="waste", description="甲")
    b = report_at(client, auth.rider("eleme", "t-2"), HUAYANG, category="waste", description="乙")
    act(client, auth.staff(OFFICER), a["ticket"]["id"], {"action": "accept"})
    assert is_public(client, a["ticket"]) and not is_public(client, b["ticket"])
    for secret in ("meituan", "eleme", "t-1", "t-2", OFFICER):
        assert secret not in everything_public(client, a["ticket"])


def test_an_erasure_takes_the_public_copy_and_its_files_too(
    client: TestClient, auth: Auth, ticket: dict[str, Any], count_rows: CountRows, settings: Any
) -> None:
    office = auth.staff(OFFICER)
    act(client, office, ticket["id"], {"action": "accept"})
    copy = client.put(
        f"/v1/office/media/{ticket['media_id']}/public", headers=office, json={"boxes": []}
    )
    assert copy.status_code == 200
    served = client.get(f"/public/photos/{ticket['media_id']}").content
    stored = [p for p in Path(settings.media_url).rglob("*.jpg") if p.read_bytes() == served]
    assert stored, "the public copy is not where the photos are kept"

    erased = client.delete("/v1/platform/riders/p-1", headers=auth.platform("meituan"))
    assert erased.status_code == 204, erased.text
    assert count_rows("public_photos") == 0
    assert client.get(f"/public/photos/{ticket['media_id']}").status_code == 404
    assert not [p for p in stored if p.exists()]
    assert "/public/photos/" not in everything_public(client, ticket)


# Every public GET route, and how the tests above read it.
PUBLIC_READS = {
    "/open311/v2/discovery.{format}": "services only",
    "/open311/v2/services.{format}": "services only",
    "/open311/v2/services/{service_code}.{format}": "services only",
    "/open311/v2/requests.{format}": "everything_public",
    "/open311/v2/requests/{service_request_id}.{format}": "everything_public",
    "/open311/v2/media/{media_id}": "the published copy test",
    "/public/": "everything_public",
    "/public/tickets/{ref}": "everything_public",
    "/public/map.geojson": "everything_public",
    "/public/streets.geojson": "outlines of areas only",
    "/public/photos/{media_id}": "the published copy and hidden report tests",
    "/public/photos/{media_id}/thumbnail": "test_thumbnails_follow_the_rule",
}


def test_every_public_read_is_one_the_tests_cover() -> None:
    from app.console import public_site
    from app.routers import open311

    served = {
        route.path
        for router in (public_site.router, open311.router)
        for route in router.routes
        if "GET" in getattr(route, "methods", ())
    }
    assert served == set(PUBLIC_READS)


def test_thumbnails_follow_the_rule(client: TestClient, auth: Auth, ticket: dict[str, Any]) -> None:
    office = auth.staff(OFFICER)
    path = f"/public/photos/{ticket['media_id']}/thumbnail"
    assert client.get(path).status_code == 404  # new, nothing published
    act(client, office, ticket["id"], {"action": "accept"})
    assert client.get(path).status_code == 404  # public, nothing published
    client.put(f"/v1/office/media/{ticket['media_id']}/public", headers=office, json={"boxes": []})
    shown = client.get(path)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    original = client.get(f"/v1/media/{ticket['media_id']}/thumbnail", headers=office).content
    assert shown.content != original  # the copy's own thumbnail (a blurred one when boxed)
    act(client, office, ticket["id"], {"action": "reject", "reason": "other"})
    assert client.get(path).status_code == 404


def test_a_ticket_speaks_with_the_first_shown_report_that_has_words(
    client: TestClient, auth: Auth
) -> None:
    """The first report said nothing: the public reads the next one's words, and its
    place's words with them; with that one hidden, the one after."""
    office = auth.staff(OFFICER)
    silent = report_at(client, auth.rider("meituan", "w-1"), JIANGSU, category="road_damage")
    ticket = silent["ticket"]
    spoke = []
    for n, words in ((2, "井盖缺失"), (3, "又一处")):
        body = {
            "category": "road_damage",
            **JIANGSU,
            "description": words,
            "address_hint": f"愚园路{n}号",
        }
        response = client.post("/v1/reports", headers=auth.rider("eleme", f"w-{n}"), json=body)
        assert response.status_code == 201, response.text
        assert response.json()["ticket"]["id"] == ticket["id"]
        spoke.append(response.json()["id"])
    act(client, office, ticket["id"], {"action": "accept"})

    def public() -> tuple[str, str]:
        [request] = client.get(f"{OPEN311}/requests/{ticket['id']}.json").json()
        listed = client.get(f"{OPEN311}/requests.json").json()
        assert [r for r in listed if r["service_request_id"] == ticket["id"]] == [request]
        return request["description"], request["address"]

    assert public() == ("井盖缺失", "愚园路2号")
    act(
        client,
        office,
        ticket["id"],
        {"action": "hide_report", "report_id": spoke[0], "reason": "other"},
    )
    assert public() == ("又一处", "愚园路3号")

"""Cursors come back from the client: one the service did not issue is refused as a bad
``cursor`` (422 validation_error; Open311's 400; a console page's notice), never a 500.

Each value of a cursor is checked by the type its column holds: an aware ISO time, a
priority, a UUID, a code; not by whatever a conversion happens to throw."""

import base64
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.tickets import QueueSort
from tests.conftest import Auth, Baseline
from tests.console.conftest import DISTRICT, OFFICER, Clerk
from tests.helpers import JIANGSU, act, assert_problem, report_at

TIME = "2026-03-01T08:00:00+00:00"
ID = "00000000-0000-4000-8000-000000000000"


def crafted(value: Any) -> str:
    """``value`` as the service writes its cursors: JSON, URL-safe base64, unpadded."""
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def raw(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


# Cursors no sort of any endpoint issues: of the wrong shape, or of the right length
# with a value of the wrong type (or out of its range) in some place.
CRAFTED: dict[str, str] = {
    "[0, 0]": "WzAsIDBd",
    "[1,1]": crafted([1, 1]),
    "[1e308,1e308]": crafted([1e308, 1e308]),
    "[-1e308,0]": crafted([-1e308, 0]),
    "[Infinity,NaN]": raw(b"[Infinity,NaN]"),
    "[0.5,0.5,0.5]": crafted([0.5, 0.5, 0.5]),
    '["x","y"]': crafted(["x", "y"]),
    '["x","y","z"]': crafted(["x", "y", "z"]),
    "[true,null]": crafted([True, None]),
    "[false,false,false]": crafted([False, False, False]),
    "[null,null,null]": crafted([None, None, None]),
    "[[1],[2]]": crafted([[1], [2]]),
    "[[],{}]": crafted([[], {}]),
    "[[1],[2],[3]]": crafted([[1], [2], [3]]),
    "[]": crafted([]),
    "[0]": crafted([0]),
    "[0,0,0,0,0]": crafted([0] * 5),
    "{}": crafted({"at": TIME, "id": ID}),
    '"x"': crafted("x"),
    "7": crafted(7),
    "null": crafted(None),
    "[2**63,2**63]": crafted([2**63, 2**63]),
    "[-2**63-1,0,0]": crafted([-(2**63) - 1, 0, 0]),
    "[10**40,time,id]": crafted([10**40, TIME, ID]),
    "[2**63,time,id]": crafted([2**63, TIME, ID]),
    "[99,time,id]": crafted([99, TIME, ID]),
    "[1.0,time,id]": crafted([1.0, TIME, ID]),
    "[true,time,id]": crafted([True, TIME, ID]),
    "[null,time,id]": crafted([None, TIME, ID]),
    '["1",time,id]': crafted(["1", TIME, ID]),
    "[time,time,id]": crafted([TIME, TIME, ID]),
    "[1,0,id]": crafted([1, 0, ID]),
    "[1,time,0]": crafted([1, TIME, 0]),
    "[1,time,1e308]": crafted([1, TIME, 1e308]),
    "[1,naive,id]": crafted([1, "2026-03-01T08:00:00", ID]),
    "[time,0]": crafted([TIME, 0]),
    "[time,1e308]": crafted([TIME, 1e308]),
    "[time,true]": crafted([TIME, True]),
    "[time,null]": crafted([TIME, None]),
    "[time,[id]]": crafted([TIME, [ID]]),
    "[time,x]": crafted([TIME, "x"]),
    "[0,id]": crafted([0, ID]),
    "[1e308,id]": crafted([1e308, ID]),
    "[null,id]": crafted([None, ID]),
    "[id,time]": crafted([ID, TIME]),
    "[date,id]": crafted(["2026-03-01", ID]),
    "[naive,id]": crafted(["2026-03-01T08:00:00", ID]),
    "[year 1 east of UTC,id]": crafted(["0001-01-01T00:00:00+08:00", ID]),
    "[year 9999 west of UTC,id]": crafted(["9999-12-31T23:59:59-05:00", ID]),
    "[NUL,id]": crafted(["\x00", ID]),
    "[NUL]": crafted(["\x00"]),
    "[lone surrogate]": crafted(["\ud800"]),
    "[lone surrogate,id]": crafted(["\ud800", ID]),
    "[time,id,id]": crafted([TIME, ID, ID]),
    "nested 500 deep": raw(b"[" * 500 + b"]" * 500),
    "nested past the parser's depth": raw(b"[" * 10_000 + b"]" * 10_000),
    "not JSON": raw(b"[0, 0"),
    "not UTF-8": raw(b'["\xff\xfe"]'),
    "not base64": "garbage!",
}
CURSORS = pytest.mark.parametrize("cursor", list(CRAFTED.values()), ids=list(CRAFTED))
SORTS = [s.value for s in QueueSort]


def names_the_cursor(body: dict[str, Any]) -> bool:
    return any(e.get("field") == "cursor" for e in body.get("errors", []))


def refused_as_bad_cursor(response: Any, what: str) -> None:
    assert response.status_code != 500, (what, response.text[:300])
    body = assert_problem(response, 422, "validation_error")
    assert names_the_cursor(body), (what, body)


# -- the office's queue, over the API


@pytest.fixture
def queue_tickets(client: TestClient, auth: Auth) -> list[str]:
    """Three tickets in 江苏路 (seen by its office and by the district), by three riders."""
    return [
        report_at(client, auth.rider("meituan", f"c-{i}"), JIANGSU, north_m=-i * 40)["ticket"]["id"]
        for i in range(3)
    ]


@CURSORS
def test_a_crafted_cursor_of_the_queue_is_a_422_for_every_sort_and_user(
    client: TestClient, auth: Auth, queue_tickets: list[str], cursor: str
) -> None:
    for user in (OFFICER, DISTRICT):
        headers = auth.staff(user)
        for sort in SORTS:
            for format in ("json", "geojson"):
                response = client.get(
                    "/v1/office/tickets",
                    headers=headers,
                    params={"cursor": cursor, "sort": sort, "format": format},
                )
                refused_as_bad_cursor(response, (user, sort, format))


def test_an_unknown_sort_is_refused_as_a_sort_whatever_the_cursor(
    client: TestClient, auth: Auth
) -> None:
    for sort in ("-priority", "-due_at", "nonsense"):
        response = client.get(
            "/v1/office/tickets",
            headers=auth.staff(OFFICER),
            params={"cursor": CRAFTED["[0, 0]"], "sort": sort},
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"][0]["field"].endswith("sort"), body


@pytest.mark.parametrize("sort", SORTS)
def test_a_real_cursor_of_the_queue_leads_to_the_next_page(
    client: TestClient, auth: Auth, queue_tickets: list[str], sort: str
) -> None:
    for user in (OFFICER, DISTRICT):
        headers = auth.staff(user)
        seen: list[str] = []
        cursor = None
        for _ in range(len(queue_tickets)):
            params = {"limit": 1, "sort": sort} | ({"cursor": cursor} if cursor else {})
            response = client.get("/v1/office/tickets", headers=headers, params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            seen += [t["id"] for t in page["items"]]
            cursor = page["next_cursor"]
        assert cursor is None and sorted(seen) == sorted(queue_tickets), (user, sort)


# -- the office's queue, on the console


@pytest.fixture
def clerks(app: FastAPI, baseline: Baseline) -> Iterator[list[Clerk]]:
    signed_in = [Clerk(app, baseline, OFFICER), Clerk(app, baseline, DISTRICT)]
    yield signed_in
    for clerk in signed_in:
        clerk.http.close()


@CURSORS
def test_a_crafted_cursor_on_the_console_queue_is_a_notice_not_a_500(
    clerks: list[Clerk], queue_tickets: list[str], cursor: str
) -> None:
    for clerk in clerks:
        for sort in [*SORTS, "-priority"]:
            for partial in (False, True):
                response = clerk.get(
                    "/console/queue",
                    params={"cursor": cursor, "sort": sort, "lang": "en"},
                    headers={"hx-target": "results"} if partial else {},
                )
                what = (clerk.username, sort, partial)
                assert response.status_code < 500, (what, response.text[:300])
                # As a bad filter is: the page, its notice, and no rows.
                assert response.status_code == 200, what
                assert "not one this service issued" in response.text, what


def test_a_real_cursor_on_the_console_queue_shows_the_next_page(
    clerks: list[Clerk], client: TestClient, auth: Auth, queue_tickets: list[str]
) -> None:
    headers = auth.staff(OFFICER)
    for sort in SORTS:
        first = client.get("/v1/office/tickets", headers=headers, params={"limit": 1, "sort": sort})
        cursor = first.json()["next_cursor"]
        page = clerks[0].get("/console/queue", params={"cursor": cursor, "sort": sort, "limit": 1})
        assert page.status_code == 200, sort
        assert "not one this service issued" not in page.text, sort


# -- every other endpoint that takes a cursor


def _lists(auth: Auth) -> list[tuple[str, dict[str, str], dict[str, str]]]:
    """(path, headers, params) of every API list paged by a cursor."""
    admin, platform = auth.staff("admin"), auth.platform("meituan")
    return [
        ("/v1/reports", auth.rider("meituan", "c-1"), {}),
        ("/v1/platform/webhook/deliveries", platform, {}),
        ("/v1/platform/riders/stats", platform, {"sort": "-points"}),
        ("/v1/platform/riders/stats", platform, {"sort": "rider_id"}),
        ("/v1/platform/riders/stats", platform, {"sort": "-rider_id"}),
        ("/v1/admin/areas", admin, {}),
        ("/v1/admin/categories", admin, {}),
        ("/v1/admin/platforms", admin, {}),
        ("/v1/admin/staff", admin, {}),
    ]


@CURSORS
def test_a_crafted_cursor_of_every_other_list_is_a_422(
    client: TestClient, auth: Auth, queue_tickets: list[str], cursor: str
) -> None:
    for path, headers, params in _lists(auth):
        response = client.get(path, headers=headers, params={**params, "cursor": cursor})
        refused_as_bad_cursor(response, (path, params))


@CURSORS
def test_a_crafted_cursor_of_open311_is_its_400(
    client: TestClient, queue_tickets: list[str], cursor: str
) -> None:
    response = client.get("/open311/v2/requests.json", params={"cursor": cursor})
    assert response.status_code == 400, response.text[:300]
    assert "cursor" in response.json()[0]["description"]


@CURSORS
def test_a_crafted_cursor_of_the_public_page_and_the_admin_pages_is_a_422_page(
    app: FastAPI, baseline: Baseline, client: TestClient, queue_tickets: list[str], cursor: str
) -> None:
    public = client.get("/public/", params={"cursor": cursor})
    assert public.status_code == 422, public.text[:300]
    admin = Clerk(app, baseline, "admin")
    try:
        for path in ("/console/admin/staff", "/console/admin/platforms"):
            response = admin.get(path, params={"cursor": cursor})
            assert response.status_code == 422, (path, response.text[:300])
    finally:
        admin.http.close()


def test_real_cursors_of_the_other_lists_lead_to_their_next_pages(
    client: TestClient, auth: Auth, queue_tickets: list[str]
) -> None:
    for path, headers, params in _lists(auth):
        first = client.get(path, headers=headers, params={**params, "limit": 1})
        assert first.status_code == 200, (path, first.text)
        cursor = first.json()["next_cursor"]
        if cursor is None:  # one row or none: no second page to ask for
            continue
        second = client.get(path, headers=headers, params={**params, "limit": 1, "cursor": cursor})
        assert second.status_code == 200, (path, second.text)
        assert second.json()["items"] != first.json()["items"], path
    for ticket in queue_tickets:  # open data: only what an office has taken up
        act(client, auth.staff(OFFICER), ticket, {"action": "accept"})
    first = client.get("/open311/v2/requests.json", params={"page_size": 1})
    following = first.headers["link"].split(">")[0].lstrip("<")
    second = client.get(following)
    assert second.status_code == 200 and second.json() != first.json()
    public = client.get("/public/", params={"cursor": crafted([TIME, str(uuid.uuid4())])})
    assert public.status_code == 200

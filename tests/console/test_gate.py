"""Before a byte of a console request's body is read: the route's body limit, then the
sign-in and the role its page asks for. Tried against a real server too, over a socket
that sends the headers and a little of the body and waits for the answer: an answer
that comes while most of the body is unsent was given without reading it."""

import json
import re
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.console import admin, alerts, auth, channels, gate, moderation, pages, work
from app.db import Database
from app.models import Ticket, TicketStatus
from tests.apps import another_client, http_client
from tests.conftest import Auth, Baseline
from tests.console.conftest import OFFICER, Clerk, csrf_of, report
from tests.console.test_admin_pages import category_form
from tests.helpers import ANSWER_WITHIN_S, JIANGSU, post_partly

IMPORT = "/console/admin/areas"
BIG = 60 * 1024 * 1024  # under the import's 64 MiB: the app-wide limit lets it through
NOT_FOR_YOUR_ROLE = "此页面不属于您的角色"
NO_TOKEN = "无法确认请求来自本控制台页面"
TOO_LARGE = "表单过大"
ANONYMOUS = {"/console/login", "/console/language", "/console/logout"}


@pytest.fixture
def officer_session(app: FastAPI, baseline: Baseline) -> Iterator[dict[str, str]]:
    clerk = Clerk(app, baseline, OFFICER)
    yield {"sentinel_console": clerk.http.cookies["sentinel_console"]}
    clerk.http.close()


def test_an_import_without_a_session_is_refused_before_its_body_is_read(served: str) -> None:
    answer = post_partly(served, IMPORT, declared=BIG)
    assert answer.status == 303
    assert answer.headers["location"] == "/console/login?next=%2Fconsole%2Fadmin%2Fareas"


def test_an_officers_import_is_refused_before_its_body_is_read(
    served: str, officer_session: dict[str, str]
) -> None:
    answer = post_partly(served, IMPORT, declared=BIG, cookies=officer_session)
    assert answer.status == 403 and NOT_FOR_YOUR_ROLE in answer.text


def test_a_crews_photo_is_refused_before_its_body_is_read_without_a_crews_session(
    served: str, officer_session: dict[str, str]
) -> None:
    big = 8 * 1024 * 1024  # within the photo's limit: only the gate stops it
    answer = post_partly(served, "/console/work/photos", declared=big)
    assert answer.status == 303 and answer.headers["location"].startswith("/console/login")
    answer = post_partly(served, "/console/work/photos", declared=big, cookies=officer_session)
    assert answer.status == 403 and NOT_FOR_YOUR_ROLE in answer.text


def test_a_revoked_session_is_no_session_before_the_body_either(
    served: str, officer_session: dict[str, str], auth: Auth, client: TestClient
) -> None:
    assert client.post("/v1/auth/sign-out", headers=auth.staff(OFFICER)).status_code == 204
    answer = post_partly(served, IMPORT, declared=BIG, cookies=officer_session)
    assert answer.status == 303 and answer.headers["location"].startswith("/console/login")


def test_a_big_form_is_refused_before_the_sign_in_and_the_body(
    served: str, officer_session: dict[str, str]
) -> None:
    """Under the app-wide limit (1 MiB), over a form's."""
    form = "application/x-www-form-urlencoded"
    for path, cookies in (
        (f"/console/tickets/{uuid.uuid4()}/actions", officer_session),
        (f"/console/tickets/{uuid.uuid4()}/actions", None),
        ("/console/login", None),
        ("/console/language", None),
    ):
        answer = post_partly(served, path, declared=900 * 1024, content_type=form, cookies=cookies)
        assert answer.status == 413 and TOO_LARGE in answer.text, path


def test_an_admin_still_imports_areas_through_the_server(served: str, baseline: Baseline) -> None:
    square = [[120.0, 30.0], [120.01, 30.0], [120.01, 30.01], [120.0, 30.01], [120.0, 30.0]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "T00011", "name": "测试区", "level": "district"},
                "geometry": {"type": "Polygon", "coordinates": [square]},
            }
        ],
    }
    with http_client(served, timeout=ANSWER_WITHIN_S) as browser:
        sign_in_token = csrf_of(browser.get("/console/login").text)
        signed_in = browser.post(
            "/console/login",
            data={
                "username": "admin",
                "password": baseline.password("admin"),
                "csrf_token": sign_in_token,
            },
        )
        assert signed_in.status_code == 303
        token = csrf_of(browser.get(IMPORT).text)
        imported = browser.post(
            IMPORT,
            data={"csrf_token": token, "coord_sys": "wgs84"},
            files={"file": ("a.geojson", json.dumps(collection).encode(), "application/geo+json")},
        )
    assert imported.status_code == 200 and "T00011" in imported.text


def test_a_form_sent_in_chunks_is_cut_off_at_the_forms_limit(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth, database: Database
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]["id"]
    clerk = Clerk(app, baseline, OFFICER)
    body = f"csrf_token={clerk.csrf}&action=accept&version=1&note=".encode()

    def chunks() -> Iterator[bytes]:
        yield body
        for _ in range(100):
            yield b"x" * 1024

    answer = clerk.http.post(
        f"/console/tickets/{ticket}/actions",
        content=chunks(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code == 413 and TOO_LARGE in answer.text
    with database.session() as session:
        assert session.get(Ticket, uuid.UUID(ticket)).status == TicketStatus.NEW


def test_the_largest_form_a_page_can_post_is_within_the_forms_limit(
    app: FastAPI, baseline: Baseline, client: TestClient
) -> None:
    """A category with every text as long as the page lets it be, in Chinese, as a
    browser encodes it."""
    clerk = Clerk(app, baseline, "admin")
    page = clerk.get("/console/admin/categories").text
    longest = {
        name: "字" * int(size)
        for name, size in re.findall(r'name="(\w+)"[^>]*? maxlength="(\d+)"', page)
        if name in ("name_zh", "name_en", "department", "description")
    }
    assert len(longest) == 4
    form = category_form(**longest)
    assert len(urlencode({"csrf_token": clerk.csrf, **form})) > gate.SIGN_IN_LIMIT
    saved = clerk.post("/console/admin/categories", form)
    assert saved.status_code == 303
    listed = {c["code"]: c for c in client.get("/v1/categories").json()["items"]}
    assert listed["shared_bikes"]["description"] == longest["description"]


def test_htmx_is_sent_to_the_sign_in_page_before_its_body_is_read(app: FastAPI) -> None:
    http = another_client(app, follow_redirects=False)
    answer = http.post(
        f"/console/tickets/{uuid.uuid4()}/actions",
        data={"action": "accept"},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 200
    assert answer.headers["HX-Redirect"].startswith("/console/login?next=")


def _console_posts() -> Iterator[str]:
    for module in (auth, pages, work, channels, moderation, alerts, admin):
        for route in module.router.routes:
            if isinstance(route, APIRoute) and "POST" in route.methods:
                yield re.sub(r"\{[^}]+\}", str(uuid.uuid4()), route.path)


def test_every_console_post_but_the_sign_ins_asks_who_is_signed_in_first(
    app: FastAPI, officer_session: dict[str, str]
) -> None:
    """The gate's rules are the routes' own dependencies: no session is sent to sign in,
    an officer on an admin's page is refused, whatever the route."""
    paths = list(_console_posts())
    assert IMPORT in paths and "/console/bulk" in paths and set(paths) >= ANONYMOUS
    for path in paths:
        nobody = another_client(app, follow_redirects=False).post(path, data={"x": "y"})
        if path in ANONYMOUS:  # through to the CSRF check, which this form fails
            assert nobody.status_code == 403 and NO_TOKEN in nobody.text, path
            continue
        assert nobody.status_code == 303, path
        assert nobody.headers["location"].startswith("/console/login?next="), path
        officer = another_client(app, follow_redirects=False, cookies=officer_session)
        answer = officer.post(path, data={"x": "y"})
        theirs = path.startswith(("/console/admin/", "/console/work/", "/console/channels"))
        refused = NOT_FOR_YOUR_ROLE if theirs else NO_TOKEN
        assert answer.status_code == 403 and refused in answer.text, path

"""CSRF tokens are bound to the session they were issued in: a token minted without a
session, or in another, is refused; signing in issues a new one."""

import uuid
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db import Database
from app.models import Ticket, TicketStatus
from tests.apps import another_client
from tests.conftest import Auth, Baseline
from tests.console.conftest import OFFICER, Clerk, csrf_of, report
from tests.helpers import JIANGSU

REFUSED = "无法确认请求来自本控制台页面"


@pytest.fixture
def clerk(app: FastAPI, baseline: Baseline) -> Iterator[Clerk]:
    c = Clerk(app, baseline, OFFICER)
    yield c
    c.http.close()


@pytest.fixture
def ticket(client: TestClient, auth: Auth) -> str:
    return str(report(client, auth, JIANGSU)["ticket"]["id"])


def status_of(database: Database, ticket: str) -> TicketStatus:
    with database.session() as session:
        found = session.get(Ticket, uuid.UUID(ticket))
        assert found is not None
        return found.status


def accept(http: httpx.Client, ticket: str, token: str, **kwargs: object) -> httpx.Response:
    return http.post(
        f"/console/tickets/{ticket}/actions",
        data={"action": "accept", "version": "1", "csrf_token": token},
        **kwargs,  # type: ignore[arg-type]
    )


def test_a_token_minted_without_a_session_does_not_work_with_a_session(
    app: FastAPI, clerk: Clerk, ticket: str, database: Database
) -> None:
    """Someone who got a cookie and token from the sign-in page, and put that cookie in a
    clerk's browser (a sibling site can), still has no token for the clerk's session."""
    stranger = another_client(app, follow_redirects=False)
    token = csrf_of(stranger.get("/console/login").text)
    planted = stranger.cookies.get("sentinel_csrf")
    assert planted and token
    victim = another_client(app, follow_redirects=False)
    victim.cookies.set("sentinel_csrf", planted, path="/console")
    victim.cookies.set("sentinel_console", clerk.http.cookies["sentinel_console"], path="/console")
    for refused in (
        accept(victim, ticket, token),
        accept(victim, ticket, "", headers={"X-CSRF-Token": token}),
    ):
        assert refused.status_code == 403 and REFUSED in refused.text
    assert status_of(database, ticket) == TicketStatus.NEW
    # A page the clerk's browser loads gives it the token that works.
    fresh = csrf_of(victim.get("/console/queue").text)
    assert accept(victim, ticket, "", headers={"X-CSRF-Token": fresh}).status_code == 303
    assert status_of(database, ticket) == TicketStatus.ACCEPTED


def test_a_token_of_another_clerks_session_is_refused(
    app: FastAPI, baseline: Baseline, clerk: Clerk, ticket: str, database: Database
) -> None:
    other = Clerk(app, baseline, OFFICER)  # the same account, signed in elsewhere
    mixed = another_client(app, follow_redirects=False)
    mixed.cookies.set("sentinel_csrf", other.http.cookies["sentinel_csrf"], path="/console")
    mixed.cookies.set("sentinel_console", clerk.http.cookies["sentinel_console"], path="/console")
    assert accept(mixed, ticket, other.csrf).status_code == 403
    assert status_of(database, ticket) == TicketStatus.NEW


def test_signing_out_and_in_again_retires_the_tokens_of_before(
    app: FastAPI, baseline: Baseline, clerk: Clerk, ticket: str, database: Database
) -> None:
    http = clerk.http
    signed_in_before = clerk.csrf
    assert clerk.post("/console/logout", {}).status_code == 303
    sign_in_page = http.get("/console/login")
    anonymous = csrf_of(sign_in_page.text)
    signed_in = http.post(
        "/console/login",
        data={"username": OFFICER, "password": baseline.password(OFFICER), "csrf_token": anonymous},
    )
    assert signed_in.status_code == 303
    # Signing in sets a CSRF cookie of its own: nothing of before carries over.
    assert any(h.startswith("sentinel_csrf=") for h in signed_in.headers.get_list("set-cookie"))
    for old in (signed_in_before, anonymous):
        refused = accept(http, ticket, old)
        assert refused.status_code == 403 and REFUSED in refused.text
    assert status_of(database, ticket) == TicketStatus.NEW
    fresh = csrf_of(http.get("/console/queue").text)
    assert fresh not in (signed_in_before, anonymous)
    assert accept(http, ticket, fresh).status_code == 303
    assert status_of(database, ticket) == TicketStatus.ACCEPTED

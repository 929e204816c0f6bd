"""Forwarding end to end between two instances of the service on 127.0.0.1: this one
sends a category's accepted tickets to the other's Open311 server; the other resolves
one; this one mirrors the resolution, once. And the other side down for a while."""

import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from app.config import Environment, Settings
from app.db import Database, migrate
from app.main import create_app
from app.models import utcnow
from app.open311 import forwarding
from app.ops.demo import load_demo
from tests.apps import free_port, http_client, serve
from tests.conftest import Auth
from tests.helpers import JIANGSU, forward_new_tickets, report_at

SYSTEM = "市政道路养护系统"


@dataclass
class Department:
    """The other instance: its own database, its own Open311 server."""

    settings: Settings
    database: Database
    api_key: str
    passwords: dict[str, str]
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def staff(self, http: httpx.Client, username: str) -> dict[str, str]:
        token = http.post(
            "/v1/auth/token", data={"username": username, "password": self.passwords[username]}
        ).json()["access_token"]
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def local(settings: Settings) -> Settings:
    """This instance's settings, with private addresses allowed: the department listens
    on 127.0.0.1."""
    return settings.model_copy(update={"allow_private_webhooks": True})


@pytest.fixture
def department(tmp_path: Path, base_settings: Settings) -> Iterator[Department]:
    url = f"sqlite:///{tmp_path / 'department.db'}"
    settings = Settings(
        _env_file=None,
        env=Environment.TEST,
        database_url=url,
        secret_key="department-secret-0123456789-abcdefghij",
        media_url=str(tmp_path / "media"),
        argon2_time_cost=1,
        argon2_memory_kib=64,
        embedded_worker=False,
        log_level="WARNING",
    )
    migrate.upgrade(url)
    database = Database(url)
    with database.transaction() as session:
        credentials = load_demo(session, settings)
    assert credentials is not None
    yield Department(
        settings,
        database,
        next(p["api_key"] for p in credentials.platforms if p["code"] == "meituan"),
        {s["username"]: s["password"] for s in credentials.staff},
        free_port(),
    )
    database.dispose()


def test_a_ticket_goes_to_the_department_and_comes_back_resolved(
    client: TestClient, auth: Auth, local: Settings, database: Database, department: Department
) -> None:
    admin = auth.staff("admin")
    rule = client.post(
        "/v1/admin/forwards",
        headers=admin,
        json={
            "category": "road_damage",
            "name": SYSTEM,
            "endpoint": f"{department.url}/open311/v2",
            "api_key": department.api_key,
            "jurisdiction_id": "310105",
            "service_code": "road_damage",
        },
    )
    assert rule.status_code == 201, rule.text
    assert "api_key" not in rule.json()
    office = auth.staff("officer_310105002")
    ticket = report_at(
        client,
        auth.rider("meituan", "fw-1"),
        JIANGSU,
        category="road_damage",
        description="路面有坑，车主电话 138 1234 5678",
    )["ticket"]
    other = report_at(
        client, auth.rider("meituan", "fw-2"), JIANGSU, north_m=-150, category="waste"
    )
    now = utcnow()
    assert forwarding.forward_due(database, settings=local, now=now) == 0  # not accepted yet
    for t in (ticket["id"], other["ticket"]["id"]):
        client.post(f"/v1/office/tickets/{t}/actions", headers=office, json={"action": "accept"})

    app_b = create_app(department.settings, department.database)
    with serve(app_b, department.port), http_client(department.url) as b:
        assert forwarding.forward_due(database, settings=local, now=now) == 1
        seen = client.get(f"/v1/office/tickets/{ticket['id']}/forwarding", headers=office).json()
        assert seen["state"] == "posted" and seen["system"] == SYSTEM
        external = seen["external_id"]
        assert uuid.UUID(external)
        # Their street office works it in their own system.
        theirs = department.staff(b, "officer_310105002")
        arrived = b.get(f"/v1/office/tickets/{external}", headers=theirs).json()
        assert arrived["status"] == "new" and arrived["category"] == "road_damage"
        # What a department's server may publish: the public's words, masked.
        assert arrived["reports"][0]["description"] == f"[{ticket['ref']}] 路面有坑，车主电话 ***"
        for action in ({"action": "accept"}, {"action": "resolve", "note": "已修补路面"}):
            done = b.post(f"/v1/office/tickets/{external}/actions", headers=theirs, json=action)
            assert done.status_code == 200, done.text

        assert forwarding.forward_due(database, settings=local, now=now) == 0  # not due yet
        later = now + forwarding.POLL_EVERY + timedelta(seconds=1)
        assert forwarding.forward_due(database, settings=local, now=later) == 1
        mirrored = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
        assert mirrored["status"] == "resolved"
        last = mirrored["events"][-1]
        assert last["type"] == "resolve" and last["actor"] == "system"
        assert SYSTEM in last["note"] and "已修补路面" in last["note"]
        assert forwarding.forward_due(database, settings=local, now=later + timedelta(hours=1)) == 0
        events = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["events"]
        assert [e["type"] for e in events].count("resolve") == 1  # mirrored once
        log = client.get(f"/v1/office/tickets/{ticket['id']}/forwarding", headers=office).json()
        assert log["state"] == "closed" and log["external_status"] == "closed"
        assert [a["kind"] for a in reversed(log["attempts"])] == ["post", "poll"]

    assert (
        client.get(
            f"/v1/office/tickets/{other['ticket']['id']}/forwarding", headers=office
        ).status_code
        == 404
    )  # another category: not forwarded
    foreign = auth.staff("officer_310105001")
    assert (
        client.get(f"/v1/office/tickets/{ticket['id']}/forwarding", headers=foreign).status_code
        == 404
    )  # another street's ticket


def test_while_the_department_is_down_the_ticket_waits_and_goes_later(
    client: TestClient, auth: Auth, local: Settings, database: Database, department: Department
) -> None:
    forward_new_tickets(
        client,
        auth,
        category="road_damage",
        name=SYSTEM,
        endpoint=f"{department.url}/open311/v2",
        api_key=department.api_key,
    )
    office = auth.staff("officer_310105002")
    ticket = report_at(client, auth.rider("meituan", "fw-3"), JIANGSU, category="road_damage")[
        "ticket"
    ]
    now = utcnow()
    assert forwarding.forward_due(database, settings=local, now=now) == 1  # refused: down
    log = client.get(f"/v1/office/tickets/{ticket['id']}/forwarding", headers=office).json()
    assert log["state"] == "pending" and log["external_id"] is None
    assert "ConnectError" in log["attempts"][0]["error"]
    # Triage goes on meanwhile.
    accepted = client.post(
        f"/v1/office/tickets/{ticket['id']}/actions", headers=office, json={"action": "accept"}
    )
    assert accepted.status_code == 200
    assert forwarding.forward_due(database, settings=local, now=now) == 0  # backing off

    with serve(create_app(department.settings, department.database), department.port):
        later = now + timedelta(minutes=2)
        assert forwarding.forward_due(database, settings=local, now=later) == 1
    log = client.get(f"/v1/office/tickets/{ticket['id']}/forwarding", headers=office).json()
    assert log["state"] == "posted" and log["external_id"]
    assert [a["error"] is None for a in reversed(log["attempts"])] == [False, True]


def test_a_forwarding_rule_is_checked_and_only_for_admins(client: TestClient, auth: Auth) -> None:
    admin = auth.staff("admin")
    base = {"category": "road_damage", "name": "x", "api_key": "k", "service_code": "s"}
    for endpoint in ("ftp://city.example/open311", "http://user:pw@city.example/", "not a url"):
        refused = client.post(
            "/v1/admin/forwards", headers=admin, json={**base, "endpoint": endpoint}
        )
        assert refused.status_code == 422, endpoint
    assert (
        client.post(
            "/v1/admin/forwards",
            headers=admin,
            json={**base, "endpoint": "https://city.example/open311/v2", "category": "no_such"},
        ).status_code
        == 422
    )
    officer = auth.staff("officer_310105002")
    assert client.get("/v1/admin/forwards", headers=officer).status_code == 403
    assert client.get("/v1/admin/forwards", headers=admin).json() == []


def test_a_department_on_a_private_address_is_refused_unless_allowed(
    client: TestClient, auth: Auth, settings: Settings, database: Database
) -> None:
    forward_new_tickets(
        client, auth, category="waste", name="内网系统", endpoint="http://10.1.2.3/open311/v2"
    )
    office = auth.staff("officer_310105002")
    ticket = report_at(client, auth.rider("meituan", "fw-4"), JIANGSU, category="waste")["ticket"]
    assert not settings.allow_private_webhooks
    assert forwarding.forward_due(database, settings=settings, now=utcnow()) == 1
    log = client.get(f"/v1/office/tickets/{ticket['id']}/forwarding", headers=office).json()
    assert log["state"] == "pending"
    assert log["attempts"][0]["error"].startswith("refused: ")
    assert "not a public address" in log["attempts"][0]["error"]


class OddDepartment:
    """An Open311 server on 127.0.0.1 that answers as it is told: ``post`` is the body
    of every POST's 201, ``requests`` that of every GET; it counts what it is sent."""

    def __init__(self) -> None:
        self.post: Any = [{"service_request_id": "EXT-1"}]
        self.requests: Any = []
        self.posts = 0
        department = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: Any) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                department.posts += 1
                self._answer(201, department.post)

            def do_GET(self) -> None:
                self._answer(200, department.requests)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}/open311/v2"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def odd() -> Iterator[OddDepartment]:
    department = OddDepartment()
    yield department
    department.server.shutdown()


def _rule(client: TestClient, auth: Auth, endpoint: str) -> int:
    return forward_new_tickets(client, auth, category="waste", name="环卫系统", endpoint=endpoint)


def test_a_post_taken_without_a_usable_id_is_never_sent_again(
    client: TestClient, auth: Auth, local: Settings, database: Database, odd: OddDepartment
) -> None:
    odd.post = {"ok": True}  # 201, but no list of an id
    _rule(client, auth, odd.endpoint)
    ticket = report_at(client, auth.rider("meituan", "od-1"), JIANGSU, category="waste")["ticket"]
    now = utcnow()
    assert forwarding.forward_due(database, settings=local, now=now) == 1
    later = now + timedelta(hours=2)
    assert forwarding.forward_due(database, settings=local, now=later) == 0
    assert odd.posts == 1
    log = client.get(
        f"/v1/office/tickets/{ticket['id']}/forwarding", headers=auth.staff("officer_310105002")
    ).json()
    assert log["state"] == "failed" and "no usable id" in log["attempts"][0]["error"]


def test_a_poll_mirrors_only_the_request_it_asked_about(
    client: TestClient, auth: Auth, local: Settings, database: Database, odd: OddDepartment
) -> None:
    _rule(client, auth, odd.endpoint)
    office = auth.staff("officer_310105002")
    ticket = report_at(client, auth.rider("meituan", "od-2"), JIANGSU, category="waste")["ticket"]
    now = utcnow()
    assert forwarding.forward_due(database, settings=local, now=now) == 1
    # A server that ignores the filter and answers its latest requests, another closed.
    odd.requests = [
        {"service_request_id": "EXT-9", "status": "closed", "status_notes": "done"},
        {"service_request_id": "EXT-1", "status": "open"},
    ]
    later = now + forwarding.POLL_EVERY + timedelta(seconds=1)
    assert forwarding.forward_due(database, settings=local, now=later) == 1
    shown = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert shown["status"] == "new"
    odd.requests = [{"service_request_id": "EXT-1", "status": "closed", "status_notes": "清运完毕"}]
    again = later + forwarding.POLL_EVERY + timedelta(seconds=1)
    assert forwarding.forward_due(database, settings=local, now=again) == 1
    shown = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert shown["status"] == "resolved"
    assert [e["type"] for e in shown["events"]][-2:] == ["accept", "resolve"]  # opened: new
    assert "清运完毕" in shown["events"][-1]["note"]


def test_a_stopped_rule_sends_nothing_more(
    client: TestClient, auth: Auth, local: Settings, database: Database, odd: OddDepartment
) -> None:
    rule = _rule(client, auth, odd.endpoint)
    report_at(client, auth.rider("meituan", "od-3"), JIANGSU, category="waste")
    with database.transaction() as session:
        forwarding.queue_due(session, utcnow())  # queued, not yet sent
    stopped = client.delete(f"/v1/admin/forwards/{rule}", headers=auth.staff("admin"))
    assert stopped.status_code == 204
    assert forwarding.forward_due(database, settings=local, now=utcnow()) == 0
    assert odd.posts == 0
    listed = client.get("/v1/admin/forwards", headers=auth.staff("admin")).json()
    assert [r["active"] for r in listed] == [False]

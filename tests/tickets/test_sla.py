"""The worker's SLA sweeps, with the clock moved instead of waited for."""

import threading
import uuid
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import TicketEvent, utcnow
from app.ops.worker import JOBS
from tests.conftest import Auth
from tests.helpers import act

JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
OFFICER = "officer_310105002"


def job(name: str) -> Any:
    return next(j for j in JOBS if j.name == name)


def open_ticket(client: TestClient, auth: Auth, category: str) -> str:
    response = client.post(
        "/v1/reports", headers=auth.rider("meituan", "sla"), json={"category": category, **JIANGSU}
    )
    return str(response.json()["ticket"]["id"])


def events(database: Database, ticket_id: str, kind: str) -> list[TicketEvent]:
    with database.session() as session:
        return list(
            session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == uuid.UUID(ticket_id), TicketEvent.type == kind)
                .order_by(TicketEvent.created_at)
            )
        )


def test_each_missed_deadline_is_recorded_once(
    client: TestClient, auth: Auth, database: Database, settings: Settings
) -> None:
    ticket = open_ticket(client, auth, "ebike_parking")  # answer in 4 h, fix in 24 h
    sweep = job("record_sla_breaches")
    start = utcnow()
    assert sweep.run(database, settings, now=start + timedelta(hours=3)) == 0
    assert sweep.run(database, settings, now=start + timedelta(hours=5)) == 1
    assert sweep.run(database, settings, now=start + timedelta(hours=6)) == 0
    assert [e.data["deadline"] for e in events(database, ticket, "sla_breached")] == ["respond_by"]
    detail = client.get(f"/v1/office/tickets/{ticket}", headers=auth.staff(OFFICER)).json()
    assert detail["overdue"] is False  # the app's clock has not moved
    client.post(
        f"/v1/office/tickets/{ticket}/actions",
        headers=auth.staff(OFFICER),
        json={"action": "accept"},
    )
    assert sweep.run(database, settings, now=start + timedelta(hours=25)) == 1
    assert sweep.run(database, settings, now=start + timedelta(hours=26)) == 0
    assert [e.data["deadline"] for e in events(database, ticket, "sla_breached")] == [
        "respond_by",
        "resolve_by",
    ]


def test_two_workers_never_record_a_breach_twice(
    client: TestClient, auth: Auth, database: Database, settings: Settings
) -> None:
    tickets = [open_ticket(client, auth, "fire_exit_blocked")]
    tickets += [
        str(
            client.post(
                "/v1/reports",
                headers=auth.rider("eleme", f"w{i}"),
                json={"category": "other", **JIANGSU},
            ).json()["ticket"]["id"]
        )
        for i in range(5)
    ]
    later = utcnow() + timedelta(days=30)
    start = threading.Barrier(2)
    done: list[int] = []

    def worker() -> None:
        start.wait()
        done.append(job("record_sla_breaches").run(database, settings, now=later))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Each new ticket breaches both deadlines once: twelve events, split between workers.
    assert sum(done) == 12
    for ticket in tickets:
        assert sorted(e.data["deadline"] for e in events(database, ticket, "sla_breached")) == [
            "resolve_by",
            "respond_by",
        ]


def resolve(client: TestClient, auth: Auth, ticket: str) -> None:
    act(
        client,
        auth.staff(OFFICER),
        ticket,
        {"action": "accept"},
        {"action": "resolve", "note": "done"},
    )


def test_resolved_tickets_close_themselves_unless_disputed(
    client: TestClient, auth: Auth, database: Database, settings: Settings
) -> None:
    undisputed, disputed = (open_ticket(client, auth, c) for c in ("road_damage", "waste"))
    resolve(client, auth, undisputed)
    resolve(client, auth, disputed)
    detail = client.get(f"/v1/office/tickets/{disputed}", headers=auth.staff(OFFICER)).json()
    response = client.post(
        f"/v1/tickets/{disputed}/verifications",
        headers=auth.rider("eleme", "passer"),
        json={"fixed": False, "lat": detail["lat"], "lon": detail["lon"]},
    )
    assert response.json()["ticket"]["status"] == "accepted"

    close = job("close_resolved_tickets")
    resolved_at = datetime.fromisoformat(
        client.get(f"/v1/office/tickets/{undisputed}", headers=auth.staff(OFFICER)).json()[
            "resolved_at"
        ]
    )
    assert close.run(database, settings, now=resolved_at + timedelta(hours=71)) == 0
    assert close.run(database, settings, now=resolved_at + timedelta(hours=73)) == 1
    assert close.run(database, settings, now=resolved_at + timedelta(hours=74)) == 0
    officer = auth.staff(OFFICER)
    closed = client.get(f"/v1/office/tickets/{undisputed}", headers=officer).json()
    assert closed["status"] == "closed" and closed["events"][-1]["type"] == "auto_closed"
    assert (
        client.get(f"/v1/office/tickets/{disputed}", headers=officer).json()["status"] == "accepted"
    )

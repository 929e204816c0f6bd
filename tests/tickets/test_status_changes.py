"""Every path that changes a ticket goes through ``workflow.change``: staff actions, the
worker's auto-close and breach records, riders' verifications. Each leaves the same
trace — the status moved along the graph the actions define, one event from the old
status to the new, the version counted — and a step off the graph is the API's 409."""

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.errors import InvalidTransition
from app.models import Ticket, TicketEvent, TicketStatus, utcnow
from app.ops.worker import JOBS
from app.tickets.workflow import ACTIONS, TRANSITIONS, change
from tests.conftest import Auth

JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}
OFFICER = "officer_310105002"


def open_ticket(client: TestClient, auth: Auth, rider: str = "change") -> str:
    response = client.post(
        "/v1/reports",
        headers=auth.rider("meituan", rider),
        json={"category": "ebike_parking", **JIANGSU},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["ticket"]["id"])


def trace(database: Database, ticket_id: str) -> tuple[str, int, list[tuple[Any, ...]]]:
    with database.session() as session:
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        events = [
            (e.type, e.from_status, e.to_status)
            for e in session.scalars(
                select(TicketEvent)
                .where(TicketEvent.ticket_id == ticket.id)
                .order_by(TicketEvent.created_at, TicketEvent.type)
            )
        ]
        return str(ticket.status), ticket.version, events


def act(client: TestClient, auth: Auth, ticket_id: str, **body: Any) -> None:
    response = client.post(
        f"/v1/office/tickets/{ticket_id}/actions", headers=auth.staff(OFFICER), json=body
    )
    assert response.status_code == 200, response.text


def test_the_graph_is_the_actions_edges() -> None:
    for status in TicketStatus:
        leads_to = {
            target
            for sources, target in ACTIONS.values()
            if status in sources and target not in (None, status)
        }
        assert TRANSITIONS[status] == leads_to
    assert TRANSITIONS[TicketStatus.REJECTED] == TRANSITIONS[TicketStatus.DUPLICATE] == set()


def test_a_step_off_the_graph_is_refused_and_changes_nothing(
    client: TestClient, auth: Auth, database: Database
) -> None:
    ticket_id = open_ticket(client, auth)
    before = trace(database, ticket_id)
    with database.transaction() as session:
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        with pytest.raises(InvalidTransition) as refused:
            change(
                session,
                ticket,
                to=TicketStatus.CLOSED,
                type="close",
                actor_kind="system",
                now=utcnow(),
            )
        assert refused.value.status == 409 and refused.value.code == "invalid_transition"
    assert trace(database, ticket_id) == before


def test_actions_the_clock_and_riders_leave_the_same_trace(
    client: TestClient, auth: Auth, database: Database, settings: Settings
) -> None:
    ticket_id = open_ticket(client, auth)
    status, version, events = trace(database, ticket_id)
    assert (status, version) == ("new", 1)

    act(client, auth, ticket_id, action="accept")
    act(client, auth, ticket_id, action="resolve", note="moved the bikes")
    status, version, events = trace(database, ticket_id)
    assert (status, version) == ("resolved", 3)
    assert events[-1] == ("resolve", "accepted", "resolved")

    # A rider passing by says it is not fixed: reopened, a new version.
    rider = auth.rider("eleme", "passer-by")
    at = client.get(f"/v1/office/tickets/{ticket_id}", headers=auth.staff(OFFICER)).json()
    response = client.post(
        f"/v1/tickets/{ticket_id}/verifications",
        headers=rider,
        json={"fixed": False, "lat": at["lat"], "lon": at["lon"]},
    )
    assert response.status_code == 201, response.text
    status, version, events = trace(database, ticket_id)
    assert (status, version) == ("accepted", 4)
    assert ("reopened", "resolved", "accepted") in events

    # The clock: a breach is noted (no new version), a resolution closes itself.
    breaches = next(j for j in JOBS if j.name == "record_sla_breaches")
    assert breaches.run(database, settings, now=utcnow() + timedelta(hours=25)) >= 1
    status, version, events = trace(database, ticket_id)
    assert version == 4 and ("sla_breached", None, None) in events
    act(client, auth, ticket_id, action="resolve", note="moved them again")
    closer = next(j for j in JOBS if j.name == "close_resolved_tickets")
    assert closer.run(database, settings, now=utcnow() + timedelta(days=30)) == 1
    status, version, events = trace(database, ticket_id)
    assert (status, version) == ("closed", 6)
    assert events[-1] == ("auto_closed", "resolved", "closed")

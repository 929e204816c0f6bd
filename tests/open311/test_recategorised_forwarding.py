"""A ticket's category corrected (docs/api.md, "Dispatch, field crews and the case's
exceptions") is forwarded as its new category's tickets are: to that category's system
(on its rule's trigger), no longer to the old one's if it was not sent yet, and left with
the system it was sent to if it was."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.open311 import forward_due, forwarding
from tests.conftest import Auth, Clock
from tests.e2e.test_open311_forwarding import OddDepartment
from tests.helpers import JIANGSU, forward_new_tickets, report_at
from tests.tickets.test_dispatch import OFFICER, done

WASTE_SYSTEM, ROADS_SYSTEM = "环卫系统", "道路养护系统"


@pytest.fixture
def departments() -> Iterator[tuple[OddDepartment, OddDepartment]]:
    """Two departments' Open311 servers on 127.0.0.1: waste's and roads'."""
    pair = OddDepartment(), OddDepartment()
    yield pair
    for department in pair:
        department.server.shutdown()


def test_a_recategorised_ticket_goes_where_its_new_category_goes(
    client: TestClient,
    auth: Auth,
    settings: Settings,
    database: Database,
    clock: Clock,
    departments: tuple[OddDepartment, OddDepartment],
) -> None:
    local = settings.model_copy(update={"allow_private_webhooks": True})  # 127.0.0.1
    waste, roads = departments
    forward_new_tickets(client, auth, category="waste", name=WASTE_SYSTEM, endpoint=waste.endpoint)
    on_acceptance = client.post(
        "/v1/admin/forwards",
        headers=auth.staff("admin"),
        json={
            "category": "road_damage",
            "name": ROADS_SYSTEM,
            "endpoint": roads.endpoint,
            "api_key": "k",
            "service_code": "road_damage",
            "trigger": "accepted",
        },
    )
    assert on_acceptance.status_code == 201, on_acceptance.text
    office = auth.staff(OFFICER)

    def reported(n: int, category: str) -> str:
        rider = auth.rider("meituan", f"recat-{n}")
        receipt = report_at(client, rider, JIANGSU, north_m=-150 * n, category=category)
        return str(receipt["ticket"]["id"])

    def forwarding_of(ticket: str) -> Any:
        return client.get(f"/v1/office/tickets/{ticket}/forwarding", headers=office)

    sent = reported(0, "waste")
    forward_due(database, settings=local, now=clock.now)
    assert forwarding_of(sent).json()["state"] == "posted" and waste.posts == 1
    found_out = reported(1, "other")  # no system takes these
    done(client, office, found_out, "accept")
    withdrawn, waits = reported(2, "waste"), reported(3, "waste")
    # A sweep well after they were opened: queued, not sent yet.
    with database.transaction() as session:
        assert forwarding.queue_due(session, clock.advance(minutes=10)) == 2
    assert forwarding_of(withdrawn).json()["state"] == "pending"

    clock.advance(minutes=10)
    for ticket, category in (
        (sent, "other"),
        (found_out, "waste"),
        (withdrawn, "other"),
        (waits, "road_damage"),
    ):
        done(client, office, ticket, "recategorise", category=category)
    forward_due(database, settings=local, now=clock.now)

    # Now waste: sent to the waste system, as a waste ticket is when it is opened.
    assert forwarding_of(found_out).json()["system"] == WASTE_SYSTEM
    assert forwarding_of(found_out).json()["state"] == "posted"
    # Waste no more before it was sent: sent nowhere.
    assert forwarding_of(withdrawn).status_code == 404
    # Road damage, whose system takes a ticket once it is accepted: not yet.
    assert forwarding_of(waits).status_code == 404
    assert (waste.posts, roads.posts) == (2, 0)
    # Sent already: stays with the waste system, and is not sent again.
    assert forwarding_of(sent).json()["system"] == WASTE_SYSTEM

    clock.advance(minutes=1)
    done(client, office, waits, "accept")
    forward_due(database, settings=local, now=clock.now)
    assert forwarding_of(waits).json()["system"] == ROADS_SYSTEM
    assert forwarding_of(waits).json()["state"] == "posted"
    assert (waste.posts, roads.posts) == (2, 1)

"""Merging: one ticket per problem, by category, radius, window and status; the ticket
routed and timed."""

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from app.geo.coords import CoordSys, to_wgs84
from app.models import TicketStatus
from tests.conftest import Clock, Headers
from tests.reporting import CountRows, event_types, report, set_status, submit, ticket_row


@pytest.mark.parametrize(
    ("category", "inside", "outside"),
    [("road_damage", 27, 33), ("ebike_parking", 17, 23), ("waste", 37, 43)],
)
def test_same_category_inside_the_radius_joins_and_outside_opens(
    client: TestClient,
    database: Database,
    r1: Headers,
    r2: Headers,
    category: str,
    inside: float,
    outside: float,
) -> None:
    first = submit(client, r1, report(category))
    assert first["outcome"] == "new_ticket"
    assert first["ticket"]["status"] == "new" and first["ticket"]["report_count"] == 1

    joined = submit(client, r2, report(category, north=inside))
    assert joined["outcome"] == "joined_ticket"
    assert joined["ticket"]["id"] == first["ticket"]["id"]
    assert joined["ticket"]["ref"] == first["ticket"]["ref"]
    assert joined["ticket"]["report_count"] == 2
    assert event_types(database, first["ticket"]["id"]) == {"created": 1, "report_joined": 1}

    apart = submit(client, r2, report(category, east=-outside))
    assert apart["outcome"] == "new_ticket"
    assert apart["ticket"]["id"] != first["ticket"]["id"]
    assert ticket_row(database, first["ticket"]["id"]).report_count == 2
    # The first rider sees the ticket grow.
    mine = client.get(f"/v1/reports/{first['id']}", headers=r1).json()
    assert mine["ticket"]["report_count"] == 2 and mine["outcome"] == "new_ticket"


def test_another_category_at_the_same_spot_opens_its_own_ticket(
    client: TestClient, r1: Headers, r2: Headers, count_rows: CountRows
) -> None:
    road = submit(client, r1, report("road_damage"))
    waste = submit(client, r2, report("waste"))
    assert waste["outcome"] == "new_ticket" and waste["ticket"]["id"] != road["ticket"]["id"]
    assert count_rows("tickets") == 2


def test_other_never_merges(
    client: TestClient, r1: Headers, r2: Headers, count_rows: CountRows
) -> None:
    a = submit(client, r1, report("other"))
    b = submit(client, r2, report("other"))
    assert a["outcome"] == b["outcome"] == "new_ticket"
    assert a["ticket"]["id"] != b["ticket"]["id"]
    assert count_rows("tickets") == 2


@pytest.mark.parametrize(
    ("status", "joins"),
    [
        (TicketStatus.ACCEPTED, True),
        (TicketStatus.IN_PROGRESS, True),
        (TicketStatus.RESOLVED, False),
        (TicketStatus.CLOSED, False),
        (TicketStatus.REJECTED, False),
        (TicketStatus.DUPLICATE, False),
    ],
)
def test_only_open_tickets_are_joined(
    client: TestClient,
    database: Database,
    r1: Headers,
    r2: Headers,
    status: TicketStatus,
    joins: bool,
) -> None:
    first = submit(client, r1, report())
    set_status(database, first["ticket"]["id"], status)
    second = submit(client, r2, report(north=5))
    if joins:
        assert second["outcome"] == "joined_ticket"
        assert second["ticket"] == first["ticket"] | {"status": status.value, "report_count": 2}
    else:
        assert second["outcome"] == "new_ticket"
        assert second["ticket"]["id"] != first["ticket"]["id"]
        assert second["ticket"]["status"] == "new"
        assert ticket_row(database, first["ticket"]["id"]).report_count == 1


def test_the_dedup_window_is_respected(
    client: TestClient, clock: Clock, r1: Headers, r2: Headers
) -> None:
    first = submit(client, r1, report())
    clock.advance(hours=71)
    assert submit(client, r2, report(north=3))["ticket"]["id"] == first["ticket"]["id"]
    clock.advance(hours=2)  # 73 h after the ticket was opened
    late = submit(client, r2, report(north=3))
    assert late["outcome"] == "new_ticket" and late["ticket"]["id"] != first["ticket"]["id"]


def test_the_nearest_of_two_candidates_is_joined(
    client: TestClient, r1: Headers, r2: Headers
) -> None:
    west = submit(client, r1, report(east=0))
    east = submit(client, r1, report(east=50))
    assert east["outcome"] == "new_ticket"
    # Both within 30 m of each of these points; each joins the nearer one.
    near_east = submit(client, r2, report(east=28))
    near_west = submit(client, r2, report(east=22))
    assert near_east["ticket"]["id"] == east["ticket"]["id"]
    assert near_west["ticket"]["id"] == west["ticket"]["id"]


@pytest.mark.parametrize(
    ("category", "respond_h", "resolve_h"),
    [
        ("road_damage", 24, 120),
        ("ebike_parking", 4, 24),
        ("fire_exit_blocked", 2, 12),
        ("other", 24, 168),
    ],
)
def test_a_new_ticket_is_due_by_the_category_hours(
    client: TestClient,
    database: Database,
    clock: Clock,
    r1: Headers,
    r2: Headers,
    category: str,
    respond_h: int,
    resolve_h: int,
) -> None:
    opened_at = clock.now
    receipt = submit(client, r1, report(category))
    ticket = ticket_row(database, receipt["ticket"]["id"])
    assert ticket.created_at == opened_at
    assert ticket.respond_by == opened_at + timedelta(hours=respond_h)
    assert ticket.resolve_by == opened_at + timedelta(hours=resolve_h)
    if category != "other":  # a confirmation does not move the due times
        clock.advance(hours=1)
        assert submit(client, r2, report(category))["outcome"] == "joined_ticket"
        again = ticket_row(database, receipt["ticket"]["id"])
        assert (again.respond_by, again.resolve_by) == (ticket.respond_by, ticket.resolve_by)


def test_the_ticket_is_routed_to_the_street_of_the_point(
    client: TestClient, r1: Headers, database: Database
) -> None:
    here = submit(client, r1, report())
    assert here["area"]["district"] == {"code": "310105", "name": "长宁区"}
    assert here["area"]["street"] == {"code": "310105002", "name": "江苏路街道"}
    assert here["area"]["community"]["code"].startswith("310105002")
    lon, lat = to_wgs84(121.4245, 31.2220, CoordSys.GCJ02)
    there = submit(
        client,
        r1,
        {"category": "road_damage", "lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"},
    )
    assert there["area"]["street"]["code"] == "310105001"
    assert (there["lat"], there["lon"]) == pytest.approx((lat, lon), abs=1e-9)


# --- coordinates -----------------------------------------------------------------------

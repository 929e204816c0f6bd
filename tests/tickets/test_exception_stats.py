"""The office's figures of the case's exceptions (docs/api.md, "Dispatch, field crews and
the case's exceptions"): tickets given more time, tickets shelved, and the share of fixes
on time by the deadline before any extension; a shelved ticket past its deadline is open
and shelved, never overdue or late, in the office's figures and in the district's table
of streets."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Auth, Clock
from tests.helpers import JIANGSU, report_at
from tests.tickets.test_case_exceptions import when
from tests.tickets.test_dispatch import DISTRICT, OFFICER, done

STREET = "310105002"  # JIANGSU's


def test_extended_and_shelved_tickets_are_counted_apart(
    client: TestClient, auth: Auth, clock: Clock
) -> None:
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    # Three spots of one street, far enough apart not to be one problem; "waste" is
    # fixed within 48 wall-clock hours.
    extended, on_time, shelved = (
        report_at(
            client, auth.rider("meituan", f"fig-{n}"), JIANGSU, north_m=-150 * n, category="waste"
        )["ticket"]["id"]
        for n in range(3)
    )
    clock.advance(minutes=10)
    for ticket in (extended, on_time, shelved):
        done(client, office, ticket, "accept")
    first_due = when(
        client.get(f"/v1/office/tickets/{extended}", headers=office).json()["resolve_by"]
    )

    clock.advance(hours=1)
    done(client, office, extended, "request_extension", hours=24, reason="需调沥青")
    done(client, district, extended, "approve_extension")
    done(client, office, on_time, "resolve", note="已清运")
    review = (clock.now + timedelta(days=30)).date()
    done(client, district, shelved, "shelve", reason="待道路大修", review_on=str(review))

    clock.advance(hours=60)  # past the 48 hours, within the 72 the extension gave
    fixed = done(client, office, extended, "resolve", note="已清运")
    assert first_due < when(fixed["resolved_at"]) < when(fixed["resolve_by"])
    still = client.get(f"/v1/office/tickets/{shelved}", headers=office).json()
    assert still["status"] == "shelved" and when(still["resolve_by"]) < clock.now

    for who in (office, district):
        figures: dict[str, Any] = client.get("/v1/office/stats", headers=who).json()
        assert {
            k: figures[k]
            for k in (
                "total",
                "open",
                "overdue",
                "shelved_count",
                "extended_count",
                "resolved_within_sla",
                "on_time_resolution_rate",
                "on_time_without_extension_rate",
            )
        } == {
            "total": 3,
            "open": 1,  # the shelved one: not fixed yet
            "overdue": 0,  # and not late
            "shelved_count": 1,
            "extended_count": 1,
            "resolved_within_sla": 1.0,  # both by the deadline each had
            "on_time_resolution_rate": 1.0,  # the shelved one is not on the clock
            "on_time_without_extension_rate": 0.5,  # the extended one was late without it
        }
    row = next(
        r
        for r in client.get("/v1/office/stats/streets", headers=district).json()
        if r["street"] == STREET
    )
    assert (row["open"], row["overdue"], row["on_time_resolution_rate"]) == (1, 0, 1.0)
    late = client.get("/v1/office/tickets", headers=office, params={"overdue": "true"})
    assert late.json()["items"] == []

"""How fast tickets are signed for (签收; docs/api.md, "KPIs: the rules as built"): the
office's first acknowledgement — an officer's or the district's first `acknowledge` or
`accept` — counted in the office's figures and the district's table of streets; a
unit's crew's first acknowledgement of each dispatch in the table of units. A ticket not
signed for counts as a miss once it is more than an hour old, and not before."""

import io
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from app.db import Database
from app.models import Dispatch, Staff, Ticket
from app.tickets import unit_table
from tests.conftest import Auth, Clock
from tests.helpers import JIANGSU, act, report_at
from tests.tickets.test_case_exceptions import when
from tests.tickets.test_dispatch import DISTRICT, OFFICER, OTHER_OFFICER, make_unit

STREET, OTHER_STREET = "310105002", "310105001"  # JIANGSU's, HUAYANG's
FIGURES = ("median_minutes_to_acknowledge", "acknowledged_within_1h_rate")


def _ticket(client: TestClient, auth: Auth, n: int) -> str:
    """A ticket of its own spot of JIANGSU's street (far enough from the others')."""
    rider = auth.rider("meituan", f"ack-{n}")
    return str(
        report_at(client, rider, JIANGSU, north_m=-150 * n, category="waste")["ticket"]["id"]
    )


def _figures(answer: Any) -> dict[str, Any]:
    return {k: answer[k] for k in FIGURES}


def test_the_office_signs_for_its_tickets(
    client: TestClient, auth: Auth, clock: Clock, database: Database
) -> None:
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    opened = clock.now
    signed, accepted, missed = (_ticket(client, auth, n) for n in range(3))

    clock.advance(minutes=20)  # signed for after 20 minutes, accepted later
    act(client, office, signed, {"action": "acknowledge"})
    clock.advance(minutes=10)
    act(client, office, signed, {"action": "accept"})
    clock.advance(minutes=60)  # accepted (which signs for it too) after 90, by the district
    act(client, district, accepted, {"action": "accept"})
    clock.advance(minutes=20)
    young = _ticket(client, auth, 3)  # not signed for, 10 minutes old when counted
    clock.advance(minutes=10)  # 2 hours after the first three: `missed` is a miss

    with database.session() as session:
        kept = dict(session.execute(select(Ticket.id, Ticket.office_acknowledged_at)).all())
    assert {str(k): v for k, v in kept.items()} == {
        signed: opened + timedelta(minutes=20),
        accepted: opened + timedelta(minutes=90),
        missed: None,
        young: None,
    }
    expected = {"median_minutes_to_acknowledge": 55.0, "acknowledged_within_1h_rate": 0.333}
    for who in (office, district):
        answer = client.get("/v1/office/stats", headers=who)
        assert answer.status_code == 200, answer.text
        assert answer.json()["total"] == 4
        assert _figures(answer.json()) == expected
    elsewhere = client.get("/v1/office/stats", headers=auth.staff(OTHER_OFFICER)).json()
    assert _figures(elsewhere) == dict.fromkeys(FIGURES)

    rows = client.get(
        "/v1/office/stats/streets",
        headers=district,
        params={"sort": "-acknowledged_within_1h_rate"},
    )
    assert rows.status_code == 200, rows.text
    by_street = {r["street"]: _figures(r) for r in rows.json()}
    assert by_street[STREET] == expected
    assert by_street[OTHER_STREET] == dict.fromkeys(FIGURES)
    assert rows.json()[0]["street"] == STREET  # the only street with the figure

    # Once the young one is past its hour unsigned, it is a miss too.
    clock.advance(minutes=51)
    later = client.get("/v1/office/stats", headers=office).json()
    assert _figures(later) == {**expected, "acknowledged_within_1h_rate": 0.25}

    # The workbooks carry both, headed in Chinese and English.
    book = load_workbook(
        io.BytesIO(client.get("/v1/office/stats?format=xlsx", headers=office).content)
    )
    summary = {row[0].value: row[1].value for row in book["概况 summary"].iter_rows()}
    assert summary["签收用时中位数（分钟） median minutes to acknowledge"] == 55.0
    assert summary["1小时内签收率 acknowledged within 1 hour"] == 0.25
    table = load_workbook(
        io.BytesIO(client.get("/v1/office/stats/streets?format=xlsx", headers=district).content)
    ).active
    cells = [[c.value for c in row] for row in table.iter_rows()]
    column = cells[0].index("1小时内签收率 acknowledged within 1 hour")
    assert {r[0]: r[column] for r in cells[1:]}[STREET] == 0.25


def test_signed_for_on_the_hour_is_in_time_and_only_the_first_counts(
    client: TestClient, auth: Auth, clock: Clock, database: Database
) -> None:
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    ticket = _ticket(client, auth, 0)
    clock.advance(hours=1)  # exactly on the hour: in time
    act(client, office, ticket, {"action": "acknowledge"}, {"action": "accept"})
    clock.advance(hours=1)
    act(client, office, ticket, {"action": "resolve", "note": "已清运"})
    act(client, district, ticket, {"action": "reopen", "note": "又有了"})
    clock.advance(hours=1)  # signed for again after the reopening: not the office's first
    act(client, office, ticket, {"action": "acknowledge"})

    figures = client.get("/v1/office/stats", headers=office).json()
    assert _figures(figures) == {
        "median_minutes_to_acknowledge": 60.0,
        "acknowledged_within_1h_rate": 1.0,
    }
    with database.session() as session:
        first = session.scalars(select(Ticket.office_acknowledged_at)).one()
    shown = client.get(f"/v1/office/tickets/{ticket}", headers=office).json()
    assert first is not None and first < when(shown["acknowledged_at"])


def test_the_units_sign_for_what_is_dispatched_to_them(
    client: TestClient, auth: Auth, clock: Clock, database: Database
) -> None:
    office = auth.staff(OFFICER)
    quick, slow = (make_unit(client, auth, code, STREET) for code in ("jsl-ack-a", "jsl-ack-b"))
    first, second, third, fourth = (_ticket(client, auth, n) for n in range(4))
    for ticket in (first, second, third, fourth):
        act(client, office, ticket, {"action": "accept"})
    clock.advance(minutes=5)
    dispatched = clock.now
    act(client, office, first, {"action": "dispatch", "unit": quick.code})
    act(client, office, second, {"action": "dispatch", "unit": quick.code})
    act(client, office, third, {"action": "dispatch", "unit": slow.code})

    clock.advance(minutes=15)  # the quick unit signs for one after 15 minutes…
    act(client, quick.crew, first, {"action": "acknowledge"}, {"action": "start"})
    clock.advance(minutes=15)
    act(client, quick.crew, first, {"action": "report_done", "note": "已清运"})
    clock.advance(minutes=5)
    act(client, office, first, {"action": "check_fail", "note": "还有残留"})
    clock.advance(minutes=40)  # …and the other after 75: a miss
    act(client, quick.crew, second, {"action": "acknowledge"})
    clock.advance(minutes=10)  # signed for again after the failed check: not its first
    act(client, quick.crew, first, {"action": "acknowledge"})
    clock.advance(minutes=25)
    act(client, office, fourth, {"action": "dispatch", "unit": slow.code})
    clock.advance(minutes=10)  # the slow unit: one unsigned for 2 hours, one for 10 minutes

    with database.session() as session:
        signed = {str(d.ticket_id): d.acknowledged_at for d in session.scalars(select(Dispatch))}
        assert signed == {
            first: dispatched + timedelta(minutes=15),
            second: dispatched + timedelta(minutes=75),
            third: None,
            fourth: None,
        }
        for username in (OFFICER, DISTRICT):
            staff = session.scalars(select(Staff).where(Staff.username == username)).one()
            rows = unit_table(
                session, staff=staff, dispatched_from=None, dispatched_to=None, now=clock.now
            )
            ours = [r for r in rows if r["unit"] in (quick.code, slow.code)]
            assert [(r["unit"], r["dispatched"], *_figures(r).values()) for r in ours] == [
                (quick.code, 2, 45.0, 0.5),  # ranked first: its work done on time
                (slow.code, 2, None, 0.0),
            ]

    # The API's table has the same medians, and the rates of what was signed for.
    answer = client.get("/v1/office/stats/units", headers=office)
    assert answer.status_code == 200, answer.text
    rows = {r["unit"]: r for r in answer.json()}
    assert _figures(rows[quick.code]) == {
        "median_minutes_to_acknowledge": 45.0,
        "acknowledged_within_1h_rate": 0.5,
    }
    assert rows[slow.code]["median_minutes_to_acknowledge"] is None
    workbook = load_workbook(
        io.BytesIO(client.get("/v1/office/stats/units?format=xlsx", headers=office).content)
    ).active
    cells = [[c.value for c in row] for row in workbook.iter_rows()]
    assert cells[0][0].startswith("单位代码")
    column = cells[0].index("签收用时中位数（分钟） median minutes to acknowledge")
    assert {r[0]: r[column] for r in cells[1:]}[quick.code] == 45.0

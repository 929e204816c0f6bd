"""The district's KPIs (docs/api.md, "KPIs: the rules as built") equal a recount of the
tickets: closure, on-time response and resolution, reopen (rework) rates and the median
working hours, for the district, a street, and each row of the table of streets; the
table ranks by any figure; the Excel workbook holds the same numbers."""

import io
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from app.db import Database
from app.models import CLOCKED_STATUSES, Area, Ticket, TicketStatus
from app.tickets.calendar import load_calendar
from tests.conftest import Auth
from tests.helpers import assert_problem

CST = ZoneInfo("Asia/Shanghai")
STREETS = {  # a point in each of three streets (GCJ-02)
    "310105002": {"lat": 31.2200, "lon": 121.4330},
    "310105001": {"lat": 31.2220, "lon": 121.4245},
    "310105004": {"lat": 31.2050, "lon": 121.4270},
}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class Office:
    def __init__(self, client: TestClient, app: FastAPI, auth: Auth) -> None:
        self.client, self.app, self.auth = client, app, auth
        self.now = datetime(2026, 11, 16, 9, 0, tzinfo=CST)  # a Monday morning
        app.state.clock = lambda: self.now.astimezone(UTC)

    def later(self, **delta: float) -> None:
        self.now += timedelta(**delta)

    def report(self, street: str, n: int, category: str = "waste") -> str:
        where = STREETS[street]
        body = {**where, "lat": where["lat"] - n * 150 / 111_320, "coord_sys": "gcj02"}
        response = self.client.post(
            "/v1/reports",
            headers=self.auth.rider("meituan", f"kpi-{street}-{n}"),
            json={"category": category, **body},
        )
        assert response.status_code == 201, response.text
        return str(response.json()["ticket"]["id"])

    def act(self, ticket: str, action: str, **body: Any) -> None:
        if action == "resolve":
            body.setdefault("note", "已处理")
        if action == "reject":
            body.setdefault("reason", "not_actionable")
        response = self.client.post(
            f"/v1/office/tickets/{ticket}/actions",
            headers=self.auth.staff("changning"),
            json={"action": action, **body},
        )
        assert response.status_code == 200, response.text


@pytest.fixture
def office(client: TestClient, app: FastAPI, auth: Auth) -> Office:
    """Tickets in three streets, each a different life: answered on time and late, fixed
    on time and late, reopened, rejected, merged, new past due, open."""
    o = Office(client, app, auth)
    jiangsu, huayang, xinhua = STREETS
    t = [o.report(jiangsu, n) for n in range(5)] + [o.report(huayang, n) for n in range(3)]
    t += [o.report(xinhua, 0, "ebike_parking")]
    o.later(hours=1)
    o.act(t[0], "accept")  # on time
    o.act(t[1], "accept")
    o.act(t[2], "reject")
    o.act(t[5], "accept")
    o.later(hours=3)
    o.act(t[0], "resolve")  # on time
    o.act(t[3], "merge", into_ticket=t[1])
    o.later(days=3)  # Thursday
    o.act(t[4], "accept")  # late (waste answers within hours)
    o.act(t[1], "resolve")
    o.act(t[1], "reopen", note="又脏了")  # rework
    o.act(t[6], "accept")
    o.act(t[6], "resolve")
    o.later(days=10)
    o.act(t[1], "resolve")  # resolved again, late
    o.act(t[5], "resolve")  # late
    return o


def recount(database: Database, district: str, now: datetime, street: str | None) -> dict:
    """The KPIs counted here, ticket by ticket, from the tickets and their own times."""
    with database.session() as session:
        calendar = load_calendar(session)
        district_id = session.scalar(select(Area.id).where(Area.code == district))
        query = select(Ticket).where(Ticket.district_id == district_id)
        if street is not None:
            street_id = session.scalar(select(Area.id).where(Area.code == street))
            query = query.where(Ticket.street_id == street_id)
        tickets = list(session.scalars(query))
    S = TicketStatus
    resolved = [t for t in tickets if t.status in (S.RESOLVED, S.CLOSED)]
    to_close = [t for t in tickets if t.status not in (S.REJECTED, S.DUPLICATE)]
    answered = [t for t in tickets if t.accepted_at is not None]
    answer_due = answered + [t for t in tickets if t.status == S.NEW and t.respond_by < now]
    fix_due = resolved + [t for t in tickets if t.status in CLOCKED_STATUSES and t.resolve_by < now]
    ever_resolved = [t for t in tickets if t in resolved or t.reopen_count > 0]

    def share(part: int, whole: int) -> float | None:
        return round(part / whole, 3) if whole else None

    def median(values: list[float]) -> float | None:
        return round(statistics.median(values), 2) if values else None

    return {
        "closure_rate": share(len(resolved), len(to_close)),
        "on_time_response_rate": share(
            sum(t.accepted_at <= t.respond_by for t in answered), len(answer_due)
        ),
        "on_time_resolution_rate": share(
            sum(t.resolved_at <= t.resolve_by for t in resolved), len(fix_due)
        ),
        "reopen_rate": share(sum(t.reopen_count > 0 for t in ever_resolved), len(ever_resolved)),
        "median_working_hours_to_respond": median(
            [calendar.between(t.created_at, t.accepted_at) for t in answered]
        ),
        "median_working_hours_to_resolve": median(
            [calendar.between(t.created_at, t.resolved_at) for t in resolved]
        ),
    }


def test_the_kpis_equal_a_recount_of_the_tickets(
    office: Office, client: TestClient, auth: Auth, database: Database
) -> None:
    now = office.now.astimezone(UTC)
    district = client.get("/v1/office/stats", headers=auth.staff("changning")).json()
    expected = recount(database, "310105", now, None)
    # Each KPI the recount names, as the API shows it.
    assert {k: district[k] for k in expected} == expected
    # Not vacuous: every rate is a fraction here, and some are not 1.
    assert None not in expected.values()
    assert 0 < expected["reopen_rate"] < 1 and expected["on_time_resolution_rate"] < 1
    street = client.get("/v1/office/stats", headers=auth.staff("officer_310105002")).json()
    recounted = recount(database, "310105", now, "310105002")
    assert {k: street[k] for k in recounted} == recounted

    rows = client.get("/v1/office/stats/streets", headers=auth.staff("changning")).json()
    assert len(rows) == 10  # every street of the district, with tickets or not
    for row in rows:
        recounted = recount(database, "310105", now, row["street"])
        assert {k: row[k] for k in recounted} == recounted, row["street"]
    by_code = {row["street"]: row for row in rows}
    assert by_code["310105002"]["total"] == 5 and by_code["310105002"]["street_name"]
    assert by_code["310105008"]["total"] == 0 and by_code["310105008"]["closure_rate"] is None


def test_the_table_of_streets_ranks_by_any_figure(
    office: Office, client: TestClient, auth: Auth
) -> None:
    district = auth.staff("changning")
    for sort in (
        "-total",
        "total",
        "-reopen_rate",
        "closure_rate",
        "-median_working_hours_to_resolve",
    ):
        rows = client.get("/v1/office/stats/streets", headers=district, params={"sort": sort})
        assert rows.status_code == 200, rows.text
        name = sort.lstrip("-")
        values = [r[name] for r in rows.json() if r[name] is not None]
        assert values == sorted(values, reverse=sort.startswith("-")), sort
        # Streets without the figure come last.
        present = [r[name] is not None for r in rows.json()]
        assert present == sorted(present, reverse=True), sort
    refused = client.get("/v1/office/stats/streets", headers=district, params={"sort": "name"})
    assert_problem(refused, 422, "validation_error")
    officer = client.get("/v1/office/stats/streets", headers=auth.staff("officer_310105002"))
    assert_problem(officer, 403, "forbidden")


def test_the_months_workbook_holds_the_same_numbers(
    office: Office, client: TestClient, auth: Auth
) -> None:
    district = auth.staff("changning")
    month = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}
    rows = client.get("/v1/office/stats/streets", headers=district, params=month).json()
    workbook = client.get(
        "/v1/office/stats/streets", headers=district, params={**month, "format": "xlsx"}
    )
    assert workbook.status_code == 200
    assert workbook.headers["content-type"] == XLSX
    assert "attachment" in workbook.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    cells = [[c.value for c in row] for row in sheet.iter_rows()]
    heading, body = cells[0], cells[1 : 1 + len(rows)]
    assert heading[0].startswith("街道代码") and "结案率 closure rate" in heading
    assert [r[0] for r in body] == [r["street"] for r in rows]
    column = heading.index("返工率 reopen rate")
    assert [r[column] for r in body] == [r["reopen_rate"] for r in rows]

    stats = client.get("/v1/office/stats", headers=district, params=month).json()
    summary = client.get("/v1/office/stats", headers=district, params={**month, "format": "xlsx"})
    book = load_workbook(io.BytesIO(summary.content))
    figures = {row[0].value: row[1].value for row in book["概况 summary"].iter_rows()}
    assert figures["结案率 closure rate"] == stats["closure_rate"]
    assert figures["工单数 tickets"] == stats["total"]
    by_status = {r[0].value: r[1].value for r in book["按状态 by status"].iter_rows(min_row=2)}
    assert by_status == stats["by_status"]

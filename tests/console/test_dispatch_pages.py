"""The office's ticket page dispatches to a unit, checks the unit's work, and takes the
case's exceptions (docs/api.md, "Dispatch, field crews and the case's exceptions"), each
a form with its fields, in Chinese."""

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Auth, Baseline
from tests.console.conftest import Clerk, report
from tests.helpers import JIANGSU

OFFICER = "officer_310105002"
DISTRICT = "changning"
UNIT = "chengguan_310105002"  # the demo's 城管中队 of 江苏路街道


@pytest.fixture
def clerks(app: FastAPI, baseline: Baseline) -> Iterator[tuple[Clerk, Clerk]]:
    officer, district = Clerk(app, baseline, OFFICER), Clerk(app, baseline, DISTRICT)
    yield officer, district
    officer.http.close()
    district.http.close()


def version_of(page: str) -> str:
    found = re.search(r'name="version" value="(\d+)"', page)
    assert found, page[:500]
    return found[1]


def test_an_officer_dispatches_checks_and_the_district_shelves_from_the_ticket_page(
    clerks: tuple[Clerk, Clerk], client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    officer, district = clerks
    ticket = report(client, auth, JIANGSU)["ticket"]
    path = f"/console/tickets/{ticket['id']}"
    act = f"{path}/actions"

    def post(clerk: Clerk, **form: str) -> None:
        version = version_of(clerk.get(path).text)
        done = clerk.post(act, {"version": version, **form})
        assert done.status_code == 303, done.text[-2000:]

    post(officer, action="accept")
    page = officer.get(path).text
    assert 'name="unit"' in page and "派遣" in page
    assert UNIT in page
    post(officer, action="dispatch", unit=UNIT)
    page = officer.get(path).text
    assert "已派遣" in page and "城管" in page

    # The unit's crew reports the work done (through its API), the office checks it.
    crew = client.post(
        "/v1/auth/token",
        data={"username": f"crew_{UNIT}", "password": baseline.password(f"crew_{UNIT}")},
    )
    assert crew.status_code == 200, crew.text
    headers = {"Authorization": f"Bearer {crew.json()['access_token']}"}
    done = client.post(
        f"/v1/office/tickets/{ticket['id']}/actions",
        headers=headers,
        json={"action": "report_done", "note": "已清理"},
    )
    assert done.status_code == 200, done.text
    page = officer.get(path).text
    assert "待核查" in page and "核查通过" in page and "核查不通过，返工" in page
    post(officer, action="check_fail", note="仍有垃圾")
    assert "已派遣" in officer.get(path).text

    # More time, decided by the district; then shelved until a date.
    post(officer, action="request_extension", hours="24", reason="需等清运车")
    assert "待区级审批" in officer.get(path).text
    post(district, action="approve_extension")
    assert "已批准" in district.get(path).text
    post(district, action="shelve", reason="待道路大修", review_on="2099-01-01")
    page = district.get(path).text
    assert "挂账" in page and "2099-01-01" in page
    post(district, action="unshelve")
    assert 'class="badge status-accepted">已受理' in district.get(path).text

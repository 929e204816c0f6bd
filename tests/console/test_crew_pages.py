"""A unit's crew on the console (docs/api.md, "Dispatch, field crews and the case's
exceptions"): signing in lands on its work list; it sees the tickets dispatched to its
unit and nothing else — not another unit's, not the office's pages, not a rider's name —
and takes its steps from the ticket's card, photos first."""

import re
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.geo import CoordSys, from_wgs84, to_wgs84
from app.ops.demo_reports import photo
from tests.conftest import Auth, Baseline
from tests.console.conftest import Clerk, photo_of, report
from tests.helpers import HUAYANG, JIANGSU, act

OFFICER = "officer_310105002"  # 江苏路街道
OTHER_OFFICER = "officer_310105001"  # 华阳路街道
UNIT = "chengguan_310105002"
ROADS = "roads_310105002"  # the same street's other unit
OTHER_UNIT = "chengguan_310105001"


@pytest.fixture
def crews(app: FastAPI, baseline: Baseline) -> Iterator[dict[str, Clerk]]:
    signed_in = {unit: Clerk(app, baseline, f"crew_{unit}") for unit in (UNIT, ROADS, OTHER_UNIT)}
    yield signed_in
    for crew in signed_in.values():
        crew.http.close()


def dispatched(
    client: TestClient,
    auth: Auth,
    where: dict[str, float | str],
    *,
    office: str,
    unit: str,
    **fields: object,
) -> dict[str, object]:
    """A rider's ticket, accepted by ``office`` and dispatched to ``unit``."""
    ticket = report(client, auth, where, **fields)["ticket"]
    act(
        client,
        auth.staff(office),
        ticket["id"],
        {"action": "accept"},
        {"action": "dispatch", "unit": unit},
    )
    return ticket


def version_of(page: str, action: str) -> str:
    form = re.search(rf'data-action="{action}">(.*?)</form>', page, re.S)
    assert form, f"no form for {action}"
    found = re.search(r'name="version" value="(\d+)"', form[1])
    assert found
    return found[1]


def test_a_crew_member_signs_in_to_its_work_list_and_sees_only_its_units_tickets(
    client: TestClient, auth: Auth, crews: dict[str, Clerk]
) -> None:
    description = "井盖缺失，联系我13812345678"
    ours = dispatched(
        client,
        auth,
        JIANGSU,
        office=OFFICER,
        unit=UNIT,
        description=description,
        media_ids=[photo_of(client, auth, rider="reporter-zhang")],
        rider="reporter-zhang",
    )
    roads = dispatched(
        client, auth, JIANGSU, office=OFFICER, unit=ROADS, category="road_damage", rider="c-2"
    )
    theirs = dispatched(client, auth, HUAYANG, office=OTHER_OFFICER, unit=OTHER_UNIT, rider="c-3")
    never = report(client, auth, JIANGSU, category="waste", rider="c-4")["ticket"]

    crew = crews[UNIT]
    assert crew.response.headers["location"] == "/console/work"
    listing = crew.get("/console/work").text
    assert ours["ref"] in listing and "已派遣" in listing
    for other in (roads, theirs, never):
        assert other["ref"] not in listing
    # Each spot opens in Amap (GCJ-02) and Baidu Maps (BD-09) where it is.
    amap = re.search(r'href="(https://uri\.amap\.com/marker\?[^"]+)"', listing)
    baidu = re.search(r'href="(https://api\.map\.baidu\.com/marker\?[^"]+)"', listing)
    assert amap and baidu
    wgs = to_wgs84(JIANGSU["lon"], JIANGSU["lat"], CoordSys.GCJ02)
    amap_lon, amap_lat = map(
        float, parse_qs(urlsplit(amap[1].replace("&amp;", "&")).query)["position"][0].split(",")
    )
    assert abs(amap_lon - JIANGSU["lon"]) < 1e-5 and abs(amap_lat - JIANGSU["lat"]) < 1e-5
    baidu_query = parse_qs(urlsplit(baidu[1].replace("&amp;", "&")).query)
    assert baidu_query["coord_type"] == ["bd09ll"]
    bd_lat, bd_lon = map(float, baidu_query["location"][0].split(","))
    expected = from_wgs84(*wgs, CoordSys.BD09)
    assert abs(bd_lon - expected[0]) < 1e-5 and abs(bd_lat - expected[1]) < 1e-5

    card = crew.get(f"/console/work/{ours['id']}")
    assert card.status_code == 200
    # The rider's words without the rider's number; never the rider's name or platform.
    assert "井盖缺失" in card.text and "13812345678" not in card.text
    # (a rider id no photo id or ref could contain by chance)
    assert "meituan" not in card.text and "reporter-zhang" not in card.text
    photo_id = re.search(r'src="/console/media/([0-9a-f-]+)/thumbnail"', card.text)
    assert photo_id and crew.get(f"/console/media/{photo_id[1]}/thumbnail").status_code == 200
    assert "签收" in card.text

    # Another unit's ticket, one never dispatched, and the office's pages are not its.
    for other in (roads, theirs, never):
        assert crew.get(f"/console/work/{other['id']}").status_code == 404
    assert crews[ROADS].get(f"/console/media/{photo_id[1]}/thumbnail").status_code == 404
    for office_page in ("/console/queue", f"/console/tickets/{ours['id']}", "/console/dashboard"):
        assert crew.get(office_page).status_code == 403, office_page
    assert crews[ROADS].get(f"/console/work/{roads['id']}").status_code == 200


def test_the_crew_signs_for_starts_and_reports_the_work_done_with_a_photo(
    client: TestClient, auth: Auth, baseline: Baseline, crews: dict[str, Clerk], app: FastAPI
) -> None:
    ticket = dispatched(client, auth, JIANGSU, office=OFFICER, unit=UNIT)
    crew = crews[UNIT]
    path = f"/console/work/{ticket['id']}"

    def step(action: str, **fields: object) -> str:
        version = version_of(crew.get(path).text, action)
        done = crew.post(f"{path}/actions", {"action": action, "version": version, **fields})
        assert done.status_code == 303, done.text[-1500:]
        return crew.get(done.headers["location"]).text

    assert "已签收" in step("acknowledge") or "签收" in crew.get(path).text
    page = step("start")
    assert "处置中" in page and 'data-action="report_done"' in page

    # The photo goes first, as the camera takes it; the step names it.
    sent = crew.http.post(
        "/console/work/photos",
        files={"photo": ("after.jpg", photo(7), "image/jpeg")},
        headers={"X-CSRF-Token": crew.csrf},
    )
    assert sent.status_code == 201, sent.text
    after = sent.json()
    assert crew.get(after["thumbnail"]).status_code == 200
    refused = crew.http.post(
        "/console/work/photos",
        files={"photo": ("after.txt", b"not a photo", "text/plain")},
        headers={"X-CSRF-Token": crew.csrf},
    )
    assert refused.status_code in (415, 422) and refused.json()["code"]

    version = version_of(crew.get(path).text, "report_done")
    empty = crew.post(f"{path}/actions", {"action": "report_done", "version": version})
    assert empty.status_code == 422
    page = step("report_done", note="已补装井盖", media_id=after["id"])
    assert "待核查" in page and after["id"] in page
    assert "没有需要" in page or 'data-action="report_done"' not in page

    # The office sees the photo beside the report's; the rider nothing of the unit.
    officer = Clerk(app, baseline, OFFICER)
    office_page = officer.get(f"/console/tickets/{ticket['id']}").text
    assert "处置前" in office_page and "处置后" in office_page and after["id"] in office_page
    assert officer.get(f"/console/staff-photos/{after['id']}").status_code == 200
    assert crews[ROADS].get(f"/console/staff-photos/{after['id']}").status_code == 404
    officer.http.close()


def test_a_crew_hands_back_a_ticket_that_is_not_its_own(
    client: TestClient, auth: Auth, crews: dict[str, Clerk]
) -> None:
    ticket = dispatched(client, auth, JIANGSU, office=OFFICER, unit=UNIT)
    crew = crews[UNIT]
    path = f"/console/work/{ticket['id']}"
    version = version_of(crew.get(path).text, "return")
    wrong = crew.post(f"{path}/actions", {"action": "return", "version": version, "reason": "nope"})
    assert wrong.status_code == 422
    handed = crew.post(
        f"{path}/actions",
        {"action": "return", "version": version, "reason": "not_ours", "note": "属燃气公司"},
    )
    assert handed.status_code == 303 and handed.headers["location"] == "/console/work?done=return"
    assert ticket["ref"] not in crew.get("/console/work").text
    handled = crew.get("/console/work?show=handled").text
    assert ticket["ref"] in handled
    # Read-only now: the card opens, with no step to take.
    card = crew.get(path).text
    assert 'data-action="' not in card
    assert (
        auth
        and client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(OFFICER)).json()[
            "status"
        ]
        == "accepted"
    )


def test_a_stale_step_changes_nothing_and_says_so(
    client: TestClient, auth: Auth, crews: dict[str, Clerk]
) -> None:
    ticket = dispatched(client, auth, JIANGSU, office=OFFICER, unit=UNIT)
    crew = crews[UNIT]
    path = f"/console/work/{ticket['id']}"
    version = version_of(crew.get(path).text, "start")
    act(client, auth.staff(OFFICER), ticket["id"], {"action": "comment", "note": "注意安全"})
    stale = crew.post(f"{path}/actions", {"action": "start", "version": version})
    assert stale.status_code == 409 and 'id="stale"' in stale.text
    assert "已派遣" in crew.get(path).text


def test_the_dashboard_ranks_the_units_serving_the_street(
    client: TestClient, auth: Auth, app: FastAPI, baseline: Baseline
) -> None:
    office = auth.staff(OFFICER)
    slow = dispatched(client, auth, JIANGSU, office=OFFICER, unit=UNIT)
    quick = dispatched(
        client, auth, JIANGSU, office=OFFICER, unit=ROADS, rider="c-2", category="road_damage"
    )
    crew = auth.staff(f"crew_{ROADS}")
    act(client, crew, quick["id"], {"action": "report_done", "note": "已修复"})
    act(client, office, quick["id"], {"action": "check_pass"})
    act(client, auth.staff(f"crew_{UNIT}"), slow["id"], {"action": "acknowledge"})

    ranked = [row["unit"] for row in client.get("/v1/office/stats/units", headers=office).json()]
    assert ranked == [ROADS, UNIT]  # the street's two, the one with work done on time first
    officer = Clerk(app, baseline, OFFICER)
    page = officer.get("/console/dashboard").text
    officer.http.close()
    rows = re.findall(r'<tr data-unit="([^"]+)">', page)
    assert rows == [ROADS, UNIT]
    assert "返工率" in page and "按期" in page
    district = Clerk(app, baseline, "changning")
    everyone = re.findall(r'<tr data-unit="([^"]+)">', district.get("/console/dashboard").text)
    district.http.close()
    assert everyone[:2] == [ROADS, UNIT] and OTHER_UNIT in everyone


def test_the_dashboard_counts_the_extended_and_the_shelved_apart(
    client: TestClient, auth: Auth, app: FastAPI, baseline: Baseline
) -> None:
    office, district = auth.staff(OFFICER), auth.staff("changning")
    extended = dispatched(client, auth, JIANGSU, office=OFFICER, unit=UNIT)
    act(
        client,
        auth.staff(f"crew_{UNIT}"),
        extended["id"],
        {"action": "request_extension", "hours": 24, "reason": "等材料"},
    )
    act(client, district, extended["id"], {"action": "approve_extension"})
    shelved = dispatched(
        client, auth, JIANGSU, office=OFFICER, unit=ROADS, rider="c-2", category="road_damage"
    )
    act(
        client,
        district,
        shelved["id"],
        {"action": "shelve", "reason": "待大修", "review_on": "2099-01-01"},
    )
    officer = Clerk(app, baseline, OFFICER)
    page = officer.get("/console/dashboard").text
    officer.http.close()
    assert re.search(r'id="kpi-extended">1<', page) and re.search(r'id="kpi-shelved">1<', page)
    assert "挂账" in page and "未经延期按期办结率" in page
    assert client.get("/v1/office/stats", headers=office).json()["shelved_count"] == 1


def test_a_photo_id_that_is_none_is_said_and_nothing_is_done(
    client: TestClient, auth: Auth, crews: dict[str, Clerk]
) -> None:
    ticket = dispatched(client, auth, JIANGSU, office=OFFICER, unit=UNIT)
    crew = crews[UNIT]
    path = f"/console/work/{ticket['id']}"
    version = version_of(crew.get(path).text, "report_done")
    refused = crew.post(
        f"{path}/actions",
        {"action": "report_done", "version": version, "note": "已修", "media_id": "not-an-id"},
    )
    assert refused.status_code == 422 and "a photo was not sent whole" in refused.text
    assert "已派遣" in crew.get(path).text

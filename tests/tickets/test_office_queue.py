"""The office's queue: scope, filters, sorts, stable keyset pages, GeoJSON and CSV."""

import csv
import io
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.models import utcnow
from tests.conftest import Auth
from tests.helpers import HUAYANG, JIANGSU, assert_problem, report_at


def report(
    client: TestClient,
    auth: Auth,
    where: dict[str, Any],
    *,
    rider: str = "q-1",
    **fields: Any,
) -> dict[str, Any]:
    return dict(report_at(client, auth.rider("meituan", rider), where, **fields)["ticket"])


def test_each_office_sees_its_own_street_and_the_district_sees_both(
    client: TestClient, auth: Auth
) -> None:
    mine = {report(client, auth, JIANGSU, north_m=-i * 50)["id"] for i in range(3)}
    theirs = {report(client, auth, HUAYANG, north_m=-i * 50)["id"] for i in range(2)}

    def ids(user: str) -> set[str]:
        return {
            t["id"]
            for t in client.get("/v1/office/tickets", headers=auth.staff(user)).json()["items"]
        }

    assert ids("officer_310105002") == mine
    assert ids("officer_310105001") == theirs
    assert ids("changning") == mine | theirs
    assert_problem(
        client.get("/v1/office/tickets", headers=auth.rider("meituan", "x")), 403, "forbidden"
    )
    assert_problem(client.get("/v1/office/tickets"), 401, "unauthenticated")


def test_pages_are_stable_while_reports_arrive(client: TestClient, auth: Auth) -> None:
    officer = auth.staff("officer_310105002")
    created = [report(client, auth, JIANGSU, north_m=-i * 30)["id"] for i in range(7)]
    first = client.get("/v1/office/tickets", headers=officer, params={"limit": 3}).json()
    report(client, auth, JIANGSU, north_m=-300)  # a newer ticket arrives meanwhile
    seen = [t["id"] for t in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get(
            "/v1/office/tickets", headers=officer, params={"limit": 3, "cursor": cursor}
        ).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert seen == list(reversed(created))  # newest first, none twice, none skipped
    assert_problem(
        client.get("/v1/office/tickets", headers=officer, params={"cursor": "garbage"}),
        422,
        "validation_error",
    )


def test_filters_and_sorts(client: TestClient, app: FastAPI, auth: Auth) -> None:
    officer = auth.staff("officer_310105002")
    road = report(client, auth, JIANGSU, category="road_damage", north_m=0)
    fire = report(client, auth, JIANGSU, category="fire_exit_blocked", north_m=-200)
    waste = report(client, auth, JIANGSU, category="waste", north_m=-400)
    client.post(
        f"/v1/office/tickets/{road['id']}/actions", headers=officer, json={"action": "accept"}
    )

    def ids(**params: Any) -> list[str]:
        response = client.get("/v1/office/tickets", headers=officer, params=params)
        assert response.status_code == 200, response.text
        return [t["id"] for t in response.json()["items"]]

    assert ids(status="accepted") == [road["id"]]
    assert set(ids(status=["new", "accepted"])) == {road["id"], fire["id"], waste["id"]}
    assert ids(category="waste") == [waste["id"]]
    assert ids(sort="priority")[0] == fire["id"]  # fire exits are priority 1
    assert ids(sort="created_at") == [road["id"], fire["id"], waste["id"]]
    # Fire exits must be answered within 2 h, the rest within 4 h or more.
    assert ids(sort="due_at")[0] == fire["id"]
    assert ids(overdue="true") == []
    app.state.clock = lambda: utcnow() + timedelta(hours=3)
    assert ids(overdue="true") == [fire["id"]]
    at = client.get(f"/v1/office/tickets/{road['id']}", headers=officer).json()
    box = f"{at['lon'] - 0.0005},{at['lat'] - 0.0005},{at['lon'] + 0.0005},{at['lat'] + 0.0005}"
    assert ids(bbox=box) == [road["id"]]  # the others lie 200 and 400 m south
    assert ids(created_from=(utcnow() + timedelta(hours=1)).isoformat()) == []
    assert_problem(
        client.get("/v1/office/tickets", headers=officer, params={"bbox": "1,2,3"}),
        422,
        "validation_error",
    )
    assert_problem(
        client.get("/v1/office/tickets", headers=officer, params={"status": "lost"}),
        422,
        "validation_error",
    )


def test_geojson_is_a_feature_collection_of_lon_lat_points(client: TestClient, auth: Auth) -> None:
    officer = auth.staff("officer_310105002")
    report(client, auth, JIANGSU)
    for response in (
        client.get("/v1/office/tickets", headers=officer, params={"format": "geojson"}),
        client.get("/v1/office/tickets", headers=officer | {"Accept": "application/geo+json"}),
    ):
        assert response.headers["content-type"].startswith("application/geo+json")
        collection = response.json()
        assert collection["type"] == "FeatureCollection"
        feature = collection["features"][0]
        lon, lat = feature["geometry"]["coordinates"]
        assert feature["geometry"]["type"] == "Point"
        assert 121.3 < lon < 121.5 and 31.1 < lat < 31.3  # RFC 7946: longitude first
        assert feature["properties"]["street"] == "310105002"


def test_csv_opens_in_excel_with_its_chinese_text(client: TestClient, auth: Auth) -> None:
    officer = auth.staff("officer_310105002")
    report(client, auth, JIANGSU, category="waste", description="垃圾堆放在消防通道")
    response = client.get("/v1/office/tickets.csv", headers=officer)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 1 and rows[0]["category"] == "waste"
    assert rows[0]["street"] == "310105002"
    other = client.get("/v1/office/tickets.csv", headers=auth.staff("officer_310105001"))
    assert len(list(csv.DictReader(io.StringIO(other.content.decode("utf-8-sig"))))) == 0


def test_csv_cells_that_a_spreadsheet_would_run_are_written_as_text(
    client: TestClient, auth: Auth
) -> None:
    officer = auth.staff("officer_310105002")
    ticket = report(client, auth, JIANGSU)
    client.post(
        f"/v1/office/tickets/{ticket['id']}/actions", headers=officer, json={"action": "accept"}
    )
    formula = '=HYPERLINK("http://evil.example","点我")'
    client.post(
        f"/v1/office/tickets/{ticket['id']}/actions",
        headers=officer,
        json={"action": "assign", "assignee": formula},
    )
    response = client.get("/v1/office/tickets.csv", headers=officer)
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0]["assignee"] == "'" + formula
    assert float(rows[0]["lon"]) > 121  # numbers stay numbers

"""The admin's console pages: categories, staff, platforms and the area import, checked
as the API checks them and stored by the same services."""

import json
import re

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Auth, Baseline
from tests.console.conftest import Clerk
from tests.reporting import CountRows


def category_form(**changes: str) -> dict[str, str]:
    form = {
        "code": "shared_bikes",
        "name_zh": "共享单车堆积",
        "name_en": "Piled-up shared bikes",
        "priority": "3",
        "respond_within_h": "4",
        "resolve_within_h": "24",
        "dedup_radius_m": "25",
        "dedup_window_h": "48",
        "points_open": "8",
        "points_confirm": "2",
        "points_resolve": "4",
        "points_verify": "2",
        "active": "1",
    }
    return form | changes


def test_an_admin_creates_and_edits_a_category(
    app: FastAPI, baseline: Baseline, client: TestClient
) -> None:
    admin = Clerk(app, baseline, "admin")
    created = admin.post("/console/admin/categories", category_form())
    assert created.status_code == 303
    page = admin.get(created.headers["location"]).text
    assert "已保存 shared_bikes" in page and "共享单车堆积" in page
    listed = {c["code"]: c for c in client.get("/v1/categories").json()["items"]}
    assert listed["shared_bikes"]["respond_within_h"] == 4

    admin.post("/console/admin/categories", category_form(active="", resolve_within_h="36"))
    assert "shared_bikes" not in {c["code"] for c in client.get("/v1/categories").json()["items"]}


def test_a_category_that_wants_the_fix_before_the_answer_is_refused(
    app: FastAPI, baseline: Baseline, count_rows: CountRows
) -> None:
    admin = Clerk(app, baseline, "admin")
    before = count_rows("categories")
    refused = admin.post(
        "/console/admin/categories", category_form(respond_within_h="48", resolve_within_h="24")
    )
    assert refused.status_code == 422
    assert "resolve_within_h" in refused.text and "未保存" in refused.text
    bad_code = admin.post("/console/admin/categories", category_form(code="Bad Code"))
    assert bad_code.status_code == 422
    assert count_rows("categories") == before


def test_an_admin_creates_staff_and_the_password_is_shown_once(
    app: FastAPI, baseline: Baseline, client: TestClient
) -> None:
    admin = Clerk(app, baseline, "admin")
    page = admin.post(
        "/console/admin/staff",
        {"username": "officer_new", "role": "officer", "area": "310105002", "display_name": "新人"},
    )
    assert page.status_code == 200
    password = re.search(r'<code id="new-password">([^<]+)</code>', page.text)
    assert password
    signed_in = client.post(
        "/v1/auth/token", data={"username": "officer_new", "password": password[1]}
    )
    assert signed_in.status_code == 200 and signed_in.json()["area"] == "310105002"
    assert 'id="new-password"' not in admin.get("/console/admin/staff").text
    twice = admin.post(
        "/console/admin/staff", {"username": "officer_new", "role": "officer", "area": "310105002"}
    )
    assert twice.status_code == 422


def test_an_admin_makes_a_crew_account_for_an_active_unit(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth, count_rows: CountRows
) -> None:
    admin = Clerk(app, baseline, "admin")
    closed = client.post(
        "/v1/admin/units",
        headers=auth.staff("admin"),
        json={
            "code": "gone_unit",
            "name": "已撤销中队",
            "kind": "department",
            "streets": ["310105001"],
            "active": False,
        },
    )
    assert closed.status_code == 201, closed.text
    form = admin.get("/console/admin/staff").text
    assert '<option value="crew">' in form
    offered = re.findall(r'<option value="([^"]*)">', form.split('id="s-unit"')[1])
    assert "roads_310105001" in offered and "gone_unit" not in offered

    before = count_rows("staff")
    for fields, field in (
        ({"role": "crew"}, "unit"),
        ({"role": "crew", "unit": "no_such_unit"}, "unit"),
        ({"role": "officer", "area": "310105001", "unit": "roads_310105001"}, "unit"),
    ):
        refused = admin.post("/console/admin/staff", {"username": "crew_new", **fields})
        assert refused.status_code == 422
        assert f"<li>{field}: " in refused.text
    assert count_rows("staff") == before

    page = admin.post(
        "/console/admin/staff",
        {"username": "crew_new", "role": "crew", "unit": "roads_310105001", "display_name": "王五"},
    )
    assert page.status_code == 200
    password = re.search(r'<code id="new-password">([^<]+)</code>', page.text)
    assert password
    signed_in = client.post(
        "/v1/auth/token", data={"username": "crew_new", "password": password[1]}
    )
    assert signed_in.status_code == 200 and signed_in.json()["role"] == "crew"
    row = next(r for r in page.text.split("<tr>") if "<td>crew_new</td>" in r)
    assert "<td>roads_310105001</td>" in row


def test_an_admin_registers_a_platform_and_rotates_its_key(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    admin = Clerk(app, baseline, "admin")
    page = admin.post("/console/admin/platforms", {"code": "didi", "name": "滴滴"})
    key = re.search(r'<code id="new-key">([^<]+)</code>', page.text)
    assert key
    headers = {"Authorization": f"Bearer {key[1]}"}
    assert (
        client.post(
            "/v1/platform/rider-tokens", headers=headers, json={"rider_id": "x"}
        ).status_code
        == 201
    )
    rotated = admin.post("/console/admin/platforms/didi/api-key", {})
    new_key = re.search(r'<code id="new-key">([^<]+)</code>', rotated.text)
    assert new_key and new_key[1] != key[1]
    assert (
        client.post(
            "/v1/platform/rider-tokens", headers=headers, json={"rider_id": "x"}
        ).status_code
        == 401
    )
    refused = admin.post("/console/admin/platforms", {"code": "Not A Code", "name": "x"})
    assert refused.status_code == 422


def test_an_admin_imports_areas_and_sees_the_report(
    app: FastAPI, baseline: Baseline, count_rows: CountRows
) -> None:
    admin = Clerk(app, baseline, "admin")
    square = [[120.0, 30.0], [120.01, 30.0], [120.01, 30.01], [120.0, 30.01], [120.0, 30.0]]
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {"code": "T00009", "name": "测试区", "level": "district"},
                "geometry": {"type": "Polygon", "coordinates": [square]},
            }
        ],
    }
    imported = admin.http.post(
        "/console/admin/areas",
        data={"csrf_token": admin.csrf, "coord_sys": "wgs84"},
        files={"file": ("areas.geojson", json.dumps(collection).encode(), "application/geo+json")},
    )
    assert imported.status_code == 200
    assert "已导入 1 个区域：新增 1" in imported.text and "T00009" in imported.text
    before = count_rows("areas")
    broken = admin.http.post(
        "/console/admin/areas",
        data={"csrf_token": admin.csrf},
        files={"file": ("areas.geojson", b"{not json", "application/geo+json")},
    )
    assert broken.status_code == 422 and "未导入任何区域" in broken.text
    assert count_rows("areas") == before

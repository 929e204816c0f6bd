"""The national classification (GB/T 30428.2) on every surface: the category API, the
office's CSV, Open311's ``group`` and ``keywords``; set and refused through the admin API
(docs/classification.md)."""

import csv
import io
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Auth
from tests.helpers import assert_problem, category_body

# The seven defaults as docs/classification.md maps them: kind, class, subclass.
DEFAULTS = {
    "road_damage": "component 02 道路交通 / 0201 道路",
    "ebike_parking": "event 05 街面秩序 / 0506 非机动车乱停放",
    "facility_damage": "component 01 公用设施 / 0101 井盖",
    "fire_exit_blocked": "event 06 扩展事件 / 0601 消防通道堵塞",
    "illegal_charging": "event 06 扩展事件 / 0602 电动车违规充电",
    "waste": "event 01 市容环境 / 0102 暴露垃圾",
    "other": "event 06 扩展事件 / 0699 其他",
}
JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}


def standard(code: str) -> dict[str, str]:
    """The category API's ``standard`` of the default ``code``, read from its line above."""
    kind, classification = DEFAULTS[code].split(" ", 1)
    of_class, of_subclass = classification.split(" / ")
    class_code, class_name = of_class.split()
    subclass_code, subclass_name = of_subclass.split()
    return {
        "kind": kind,
        "class_code": class_code,
        "class_name": class_name,
        "subclass_code": subclass_code,
        "subclass_name": subclass_name,
    }


def test_the_defaults_carry_their_classification_in_the_category_api(client: TestClient) -> None:
    listed = {c["code"]: c for c in client.get("/v1/categories").json()["items"]}
    assert {code: listed[code]["standard"] for code in DEFAULTS} == {
        code: standard(code) for code in DEFAULTS
    }


def test_the_office_csv_names_each_tickets_classification(client: TestClient, auth: Auth) -> None:
    rider = auth.rider("meituan", "class-1")
    response = client.post(
        "/v1/reports", headers=rider, json={"category": "ebike_parking", **JIANGSU}
    )
    assert response.status_code == 201, response.text
    ref = response.json()["ticket"]["ref"]
    exported = client.get("/v1/office/tickets.csv", headers=auth.staff("officer_310105002"))
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.text.lstrip("\ufeff"))))
    row = next(r for r in rows if r["ref"] == ref)
    parking = standard("ebike_parking")
    assert {field: row[f"standard_{field}"] for field in parking} == parking


def test_open311_groups_services_by_class_and_lists_the_codes_as_keywords(
    client: TestClient,
) -> None:
    services = {s["service_code"]: s for s in client.get("/open311/v2/services.json").json()}
    parking = services["ebike_parking"]
    assert parking["group"] == "事件·街面秩序"
    assert parking["keywords"].split(",")[1:] == ["05", "街面秩序", "0506", "非机动车乱停放"]
    assert services["facility_damage"]["group"] == "部件·公用设施"
    xml = client.get("/open311/v2/services.xml").text
    assert "<group>事件·街面秩序</group>" in xml


def put(client: TestClient, auth: Auth, code: str, **more: Any) -> Any:
    return client.put(
        f"/v1/admin/categories/{code}",
        headers=auth.staff("admin"),
        json=category_body(
            "暴露垃圾",
            "Exposed waste",
            priority=2,
            respond_within_h=4,
            resolve_within_h=24,
            dedup_radius_m=30,
            **more,
        ),
    )


def test_an_admin_sets_changes_and_clears_a_classification(client: TestClient, auth: Auth) -> None:
    mine = {**standard("waste"), "subclass_code": "0103", "subclass_name": "积存垃圾渣土"}
    assert put(client, auth, "waste", standard=mine).json()["standard"] == mine
    services = {s["service_code"]: s for s in client.get("/open311/v2/services.json").json()}
    assert "积存垃圾渣土" in services["waste"]["keywords"]
    cleared = put(client, auth, "waste", department="环卫所")
    assert cleared.json()["standard"] is None
    services = {s["service_code"]: s for s in client.get("/open311/v2/services.json").json()}
    assert services["waste"]["group"] == "环卫所"  # no class: the department, as before


def test_a_classification_that_cannot_be_is_refused(client: TestClient, auth: Auth) -> None:
    before = client.get("/v1/admin/categories/waste", headers=auth.staff("admin")).json()
    for wrong, field in (
        ({"subclass_code": "0506"}, "standard.subclass_code"),  # not within class 01
        ({"kind": "incident"}, "standard.kind"),
        ({"class_code": "1"}, "standard.class_code"),
        ({"class_name": ""}, "standard.class_name"),
    ):
        response = put(client, auth, "waste", standard={**standard("waste"), **wrong})
        problem = assert_problem(response, 422, "validation_error")
        assert field in {e["field"] for e in problem["errors"]}, (wrong, problem)
    assert client.get("/v1/admin/categories/waste", headers=auth.staff("admin")).json() == before

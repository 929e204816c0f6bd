"""The public category list (what the rider app shows) and the admin's edits to it."""

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Auth
from tests.helpers import assert_problem, category_body

# The table in docs/api.md, "Categories": code → (zh, dedup_radius_m, respond_within_h,
# resolve_within_h), in the order the app shows them.
DEFAULTS = {
    "road_damage": ("道路破损", 30, 24, 120),
    "ebike_parking": ("电动车乱停放", 20, 4, 24),
    "facility_damage": ("公共设施损坏 (井盖、路灯、护栏)", 25, 24, 72),
    "fire_exit_blocked": ("消防通道堵塞", 30, 2, 12),
    "illegal_charging": ("飞线充电", 20, 4, 24),
    "waste": ("垃圾堆放", 40, 12, 48),
    "other": ("其他", 0, 24, 168),
}
WASTE = {
    "name": {"zh": "垃圾堆放", "en": "Dumped waste"},
    "description": "Piles of rubbish.",
    "department": "绿化市容",
    "priority": 2,
    "respond_within_h": 6,
    "resolve_within_h": 36,
    "dedup_radius_m": 55,
    "dedup_window_h": 48,
    "points": {"open": 12, "confirm": 3, "resolve": 6, "verify": 4},
    "active": True,
}


def public(client: TestClient) -> dict[str, dict[str, Any]]:
    response = client.get("/v1/categories")
    assert response.status_code == 200, response.text
    return {c["code"]: c for c in response.json()["items"]}


@pytest.fixture
def admin(auth: Auth) -> dict[str, str]:
    return auth.staff("admin")


def test_the_seven_defaults_are_listed_as_documented(client: TestClient) -> None:
    response = client.get("/v1/categories")

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["next_cursor"] is None
    assert [c["code"] for c in body["items"]] == list(DEFAULTS)
    for c in body["items"]:
        zh, dedup_radius_m, respond_within_h, resolve_within_h = DEFAULTS[c["code"]]
        assert c["name"]["zh"] == zh and c["name"]["en"]
        assert (c["dedup_radius_m"], c["respond_within_h"], c["resolve_within_h"]) == (
            dedup_radius_m,
            respond_within_h,
            resolve_within_h,
        ), c["code"]
        assert c["dedup_window_h"] == 72
        assert c["priority"] in (1, 2, 3)
        assert c["points"] == {"open": 10, "confirm": 2, "resolve": 5, "verify": 3}
        assert "active" not in c and "updated_at" not in c


def test_if_none_match_with_the_etag_is_304(client: TestClient) -> None:
    first = client.get("/v1/categories")
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    assert client.get("/v1/categories").headers["etag"] == etag

    for sent in (etag, f'"stale", {etag}', f"W/{etag}", "*"):
        again = client.get("/v1/categories", headers={"If-None-Match": sent})
        assert again.status_code == 304, sent
        assert again.content == b""
        assert again.headers["etag"] == etag

    stale = client.get("/v1/categories", headers={"If-None-Match": '"stale"'})
    assert stale.status_code == 200 and stale.json() == first.json()


def test_an_admin_edit_changes_the_etag_and_the_list(
    client: TestClient, admin: dict[str, str]
) -> None:
    etag = client.get("/v1/categories").headers["etag"]

    response = client.put("/v1/admin/categories/waste", headers=admin, json=WASTE)

    assert response.status_code == 200, response.text
    assert response.json()["dedup_radius_m"] == 55 and response.json()["active"] is True
    changed = client.get("/v1/categories", headers={"If-None-Match": etag})
    assert changed.status_code == 200
    assert changed.headers["etag"] != etag
    waste = {c["code"]: c for c in changed.json()["items"]}["waste"]
    assert {k: waste[k] for k in WASTE if k != "active"} == {
        k: v for k, v in WASTE.items() if k != "active"
    }
    assert (
        client.get("/v1/admin/categories/waste", headers=admin).json()["points"] == WASTE["points"]
    )


def test_a_put_replaces_the_whole_category(client: TestClient, admin: dict[str, str]) -> None:
    minimal = category_body(
        "垃圾", "Waste", priority=3, respond_within_h=12, resolve_within_h=48, dedup_radius_m=40
    )
    client.put("/v1/admin/categories/waste", headers=admin, json=WASTE)

    response = client.put("/v1/admin/categories/waste", headers=admin, json=minimal)

    assert response.status_code == 200, response.text
    waste = public(client)["waste"]
    assert (waste["description"], waste["department"], waste["dedup_window_h"]) == ("", "", 72)
    assert waste["points"] == {"open": 10, "confirm": 2, "resolve": 5, "verify": 3}


def test_a_put_of_a_new_code_creates_it(
    client: TestClient, admin: dict[str, str], count_rows: Callable[[str], int]
) -> None:
    categories = count_rows("categories")
    body = WASTE | {"name": {"zh": "共享单车乱停放", "en": "Shared bikes"}}

    response = client.put("/v1/admin/categories/shared_bikes", headers=admin, json=body)

    assert response.status_code == 201, response.text
    assert response.json()["code"] == "shared_bikes"
    assert count_rows("categories") == categories + 1
    listed = public(client)
    assert list(listed)[:7] == list(DEFAULTS)
    assert listed["shared_bikes"]["name"]["zh"] == "共享单车乱停放"
    again = client.put("/v1/admin/categories/shared_bikes", headers=admin, json=body)
    assert again.status_code == 200
    assert count_rows("categories") == categories + 1


def test_an_inactive_category_is_hidden_from_riders_only(
    client: TestClient, admin: dict[str, str]
) -> None:
    zh, dedup_radius_m, respond_within_h, resolve_within_h = DEFAULTS["road_damage"]
    body = category_body(
        zh,
        "Road damage",
        priority=2,
        active=False,
        respond_within_h=respond_within_h,
        resolve_within_h=resolve_within_h,
        dedup_radius_m=dedup_radius_m,
    )

    response = client.put("/v1/admin/categories/road_damage", headers=admin, json=body)

    assert response.status_code == 200, response.text
    assert list(public(client)) == [c for c in DEFAULTS if c != "road_damage"]
    listed = client.get("/v1/admin/categories", headers=admin).json()["items"]
    assert {c["code"]: c["active"] for c in listed}["road_damage"] is False
    assert len(listed) == 7
    assert client.get("/v1/admin/categories/road_damage", headers=admin).json()["active"] is False

    client.put("/v1/admin/categories/road_damage", headers=admin, json=body | {"active": True})
    assert list(public(client)) == list(DEFAULTS)


def _without(field: str) -> dict[str, Any]:
    return {k: v for k, v in WASTE.items() if k != field}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (WASTE | {"priority": 7}, "priority"),
        (WASTE | {"priority": 0}, "priority"),
        (WASTE | {"dedup_radius_m": -1}, "dedup_radius_m"),
        (WASTE | {"respond_within_h": 0}, "respond_within_h"),
        (WASTE | {"resolve_within_h": "soon"}, "resolve_within_h"),
        (_without("name"), "name"),
        (_without("priority"), "priority"),
        (WASTE | {"name": {"zh": "垃圾"}}, "name.en"),
        (WASTE | {"points": {"open": 1}}, "points.confirm"),
        (WASTE | {"name": {"zh": "", "en": "Waste"}}, "name.zh"),
        (WASTE | {"name": {"zh": "垃" * 201, "en": "Waste"}}, "name.zh"),
        (WASTE | {"points": WASTE["points"] | {"open": 10**10}}, "points.open"),
        (WASTE | {"points": WASTE["points"] | {"verify": -3}}, "points.verify"),
    ],
)
@pytest.mark.parametrize("code", ["waste", "brand_new"])
def test_an_invalid_put_is_422_and_changes_nothing(
    client: TestClient,
    admin: dict[str, str],
    count_rows: Callable[[str], int],
    code: str,
    body: dict[str, Any],
    field: str,
) -> None:
    before = client.get("/v1/admin/categories", headers=admin).json()
    etag = client.get("/v1/categories").headers["etag"]

    response = client.put(f"/v1/admin/categories/{code}", headers=admin, json=body)

    problem = assert_problem(response, 422, "validation_error")
    assert field in {e["field"] for e in problem["errors"]}
    assert client.get("/v1/admin/categories", headers=admin).json() == before
    assert client.get("/v1/categories", headers={"If-None-Match": etag}).status_code == 304
    assert count_rows("categories") == len(DEFAULTS)


@pytest.mark.parametrize("code", ["Road_Damage", "x", "has-dash", "9lives"])
def test_a_put_to_a_bad_code_is_422(
    client: TestClient, admin: dict[str, str], count_rows: Callable[[str], int], code: str
) -> None:
    response = client.put(f"/v1/admin/categories/{code}", headers=admin, json=WASTE)

    assert "code" in {
        e["field"] for e in assert_problem(response, 422, "validation_error")["errors"]
    }
    assert count_rows("categories") == len(DEFAULTS)


def test_an_unknown_category_is_404_for_the_admin(
    client: TestClient, admin: dict[str, str]
) -> None:
    assert_problem(client.get("/v1/admin/categories/nosuch", headers=admin), 404, "not_found")

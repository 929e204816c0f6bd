"""The public page at /public/: the list with its filters, each ticket's page, the map's
points, the streets' figures, both languages, caching, and the switch that turns it off."""

import threading
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import Database
from tests.conftest import Auth, Clock
from tests.helpers import HUAYANG, JIANGSU, act, report_at

OFFICER = "officer_310105002"
HUAYANG_OFFICER = "officer_310105001"


def opened(
    client: TestClient, auth: Auth, rider: str, where: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    return report_at(client, auth.rider("meituan", rider), where, **extra)["ticket"]


@pytest.fixture
def three(client: TestClient, auth: Auth, clock: Clock) -> dict[str, dict[str, Any]]:
    """In 江苏路: one accepted, one fixed a day and a half after its report; in 华阳路:
    one still new."""
    accepted = opened(client, auth, "g-1", JIANGSU, category="waste", description="垃圾")
    fixed = opened(
        client, auth, "g-2", JIANGSU, north_m=300, category="road_damage", description="坑"
    )
    new = opened(client, auth, "g-3", HUAYANG, category="waste", description="新的")
    office = auth.staff(OFFICER)
    act(client, office, accepted["id"], {"action": "accept"})
    act(client, office, fixed["id"], {"action": "accept"})
    clock.advance(hours=36)
    act(client, office, fixed["id"], {"action": "resolve", "note": "已补"})
    return {"accepted": accepted, "fixed": fixed, "new": new}


def refs(html: str, *tickets: dict[str, Any]) -> set[str]:
    return {t["ref"] for t in tickets if f"/public/tickets/{t['ref']}" in html}


def test_the_list_filters_and_shows_only_public_tickets(
    client: TestClient, three: dict[str, dict[str, Any]]
) -> None:
    every = three.values()
    assert refs(client.get("/public/").text, *every) == {
        three["accepted"]["ref"],
        three["fixed"]["ref"],
    }
    assert refs(client.get("/public/?status=fixed").text, *every) == {three["fixed"]["ref"]}
    assert refs(client.get("/public/?status=accepted").text, *every) == {three["accepted"]["ref"]}
    assert refs(client.get("/public/?category=waste").text, *every) == {three["accepted"]["ref"]}
    assert refs(client.get("/public/?street=310105001").text, *every) == set()
    assert refs(client.get("/public/?street=310105002").text, *every) == {
        three["accepted"]["ref"],
        three["fixed"]["ref"],
    }
    for bad in ("status=new", "status=rejected", "category=nope", "street=nope", "cursor=xyz"):
        response = client.get(f"/public/?{bad}")
        assert response.status_code == 422, bad
        assert not refs(response.text, *every)


def test_the_map_has_the_filtered_points_inside_the_box(
    client: TestClient, three: dict[str, dict[str, Any]]
) -> None:
    points = client.get("/public/map.geojson").json()["features"]
    assert {f["properties"]["ref"] for f in points} == {
        three["accepted"]["ref"],
        three["fixed"]["ref"],
    }
    assert {f["properties"]["status"] for f in points} == {"accepted", "resolved"}
    for f in points:  # about ten metres: where the problem is, not where a rider stood
        assert all(round(c, 4) == c for c in f["geometry"]["coordinates"])
    fixed = client.get("/public/map.geojson?status=fixed").json()["features"]
    assert [f["properties"]["ref"] for f in fixed] == [three["fixed"]["ref"]]
    far = client.get("/public/map.geojson?bbox=121.0,31.0,121.1,31.1").json()["features"]
    assert far == []
    assert client.get("/public/map.geojson?bbox=1,2,3").status_code == 422
    streets = client.get("/public/streets.geojson").json()["features"]
    assert len(streets) == 10 and {"code", "name"} <= set(streets[0]["properties"])


def test_the_streets_figures_count_what_residents_ask(
    client: TestClient, three: dict[str, dict[str, Any]]
) -> None:
    html = client.get("/public/?lang=en").text
    row = html.split("/public/?street=310105002", 1)[1].split("</tr>", 1)[0]
    cells = [c.split("<", 1)[0] for c in row.split("<td>")[1:]]
    assert cells == ["2", "1", "1.5"]  # reported, fixed, median days to fix
    huayang = html.split("/public/?street=310105001", 1)[1].split("</tr>", 1)[0]
    assert [c.split("<", 1)[0] for c in huayang.split("<td>")[1:]] == ["0", "0", "—"]


def test_a_tickets_page_in_both_languages(
    client: TestClient, three: dict[str, dict[str, Any]]
) -> None:
    ref = three["fixed"]["ref"]
    chinese = client.get(f"/public/tickets/{ref}")
    assert chinese.status_code == 200 and 'lang="zh-CN"' in chinese.text
    assert "道路破损" in chinese.text and "江苏路街道" in chinese.text
    assert "已补" in chinese.text.split("街道办事处说明", 1)[1]  # the office's reply
    english = client.get(f"/public/tickets/{ref}?lang=en")
    assert 'lang="en"' in english.text and "Fixed" in english.text
    by_header = client.get(f"/public/tickets/{ref}", headers={"Accept-Language": "en-US,en"})
    assert 'lang="en"' in by_header.text
    assert client.get(f"/public/tickets/{ref.lower()}").status_code == 200
    for unknown in (three["new"]["ref"], "NOPE", "X" * 40):
        assert client.get(f"/public/tickets/{unknown}").status_code == 404


def test_pages_are_cacheable_and_safe_to_share(
    client: TestClient, three: dict[str, dict[str, Any]]
) -> None:
    first = client.get("/public/")
    assert first.headers["cache-control"] == "public, max-age=60"
    assert "Accept-Language" in first.headers["vary"]
    assert "set-cookie" not in first.headers
    assert "default-src 'self'" in first.headers["content-security-policy"]
    again = client.get("/public/", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    english = client.get("/public/?lang=en", headers={"If-None-Match": first.headers["etag"]})
    assert english.status_code == 200  # another page, another tag


def test_the_page_follows_the_clock_window(
    client: TestClient, three: dict[str, dict[str, Any]], clock: Clock
) -> None:
    clock.advance(days=91)
    html = client.get("/public/").text
    assert not refs(html, *three.values())
    assert client.get(f"/public/tickets/{three['fixed']['ref']}").status_code == 200  # still public


def test_the_public_page_can_be_turned_off(
    client: TestClient, app: Any, three: dict[str, dict[str, Any]]
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"public_page": False})
    for path in ("/public/", f"/public/tickets/{three['fixed']['ref']}", "/public/map.geojson"):
        assert client.get(path).status_code == 404, path


def test_figures_are_kept_and_counted_again_in_the_background(
    client: TestClient, auth: Auth, database: Database, clock: Clock
) -> None:
    from app import public

    with database.session() as session:
        first = public.street_figures(session, now=clock(), max_age_s=0.3)
        assert public.street_figures(session, now=clock(), max_age_s=0.3) is first
        assert public.street_figures(session, now=clock(), max_age_s=0) is not first
    ticket = opened(client, auth, "g-9", JIANGSU, category="waste")
    act(client, auth.staff(OFFICER), ticket["id"], {"action": "accept"})
    time.sleep(0.35)  # the figures' age passes (an age, not a wait for something to happen)
    with database.session() as session:
        stale = public.street_figures(session, now=clock(), max_age_s=0.3)
    assert stale is first  # answered at once, as they were; counted anew meanwhile
    for thread in threading.enumerate():
        if thread.name == "figures":
            thread.join(timeout=30)
    with database.session() as session:
        fresh = public.street_figures(session, now=clock(), max_age_s=60)
    assert fresh is not first
    jiangsu = {f.code: f for f in fresh}["310105002"]
    assert jiangsu.reported == {f.code: f for f in first}["310105002"].reported + 1

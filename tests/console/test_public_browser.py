"""The public page and photo moderation in a real browser: the page in both languages at
a desk's width and a phone's, nothing loaded from outside; a clerk drawing boxes on a
photo, publishing the blurred copy, and hiding a report."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Auth, Baseline
from tests.console.conftest import OFFICER, shot, sign_in
from tests.helpers import JIANGSU, act, report_at
from tests.public.scene import photo_with_a_face_and_a_plate

pytestmark = pytest.mark.browser


def photo(client: TestClient, auth: Auth, rider: str) -> str:
    response = client.post(
        "/v1/media",
        headers=auth.rider("meituan", rider),
        files={"file": ("p.jpg", photo_with_a_face_and_a_plate(), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


@pytest.fixture
def published(client: TestClient, auth: Auth) -> dict[str, Any]:
    """Two public tickets: one accepted whose words carry a phone number, one fixed with
    its photo published blurred."""
    office = auth.staff(OFFICER)
    words = report_at(
        client,
        auth.rider("meituan", "w-1"),
        JIANGSU,
        category="waste",
        description="垃圾堆在门口，物业电话 13912345678",
    )["ticket"]
    media_id = photo(client, auth, "w-2")
    fixed = report_at(
        client,
        auth.rider("meituan", "w-2"),
        JIANGSU,
        north_m=300,
        category="road_damage",
        media_ids=[media_id],
    )["ticket"]
    act(client, office, words["id"], {"action": "accept"})
    act(client, office, fixed["id"], {"action": "accept"}, {"action": "resolve", "note": "已补"})
    response = client.put(
        f"/v1/office/media/{media_id}/public",
        headers=office,
        json={"boxes": [{"x": 270, "y": 150, "w": 110, "h": 130}]},
    )
    assert response.status_code == 200, response.text
    return {"words": words, "fixed": fixed, "media_id": media_id}


@pytest.mark.browser_smoke
@pytest.mark.parametrize(
    ("locale", "width"), [("zh-CN", 1280), ("zh-CN", 390), ("en", 1280), ("en", 390)]
)
def test_the_public_page_in_both_languages_at_a_desk_and_on_a_phone(
    new_page: Any, published: dict[str, Any], locale: str, width: int
) -> None:
    page = new_page(locale=locale, width=width, height=900)
    page.goto("/public/")
    page.wait_for_selector('#map[data-loaded="2"]')
    assert page.locator("html").get_attribute("lang") == locale
    heading = page.get_by_role("heading", level=1)
    assert re.search(
        "上报与处置" if locale == "zh-CN" else "Reported and fixed", heading.inner_text()
    )
    listed = page.locator("ol.tickets li")
    assert listed.count() == 2
    assert "***" in page.locator("ol.tickets").inner_text() and "13912345678" not in page.content()
    assert page.locator(".leaflet-interactive").count() >= 2  # streets and points drawn
    overflow = page.evaluate("document.scrollingElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page is {overflow}px wider than the window"
    shot(page, f"public-{locale}-{width}")

    page.locator(f'a[href^="/public/tickets/{published["fixed"]["ref"]}"]').first.click()
    page.wait_for_load_state("networkidle")
    image = page.locator(".photos img")
    assert image.count() == 1
    assert page.evaluate("document.querySelector('.photos img').naturalWidth") > 0
    assert "已补" in page.content()
    shot(page, f"public-ticket-{locale}-{width}")

    other = "English" if locale == "zh-CN" else "中文"
    page.get_by_role("link", name=other).click()
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == ("en" if locale == "zh-CN" else "zh-CN")


def test_a_clerk_draws_a_box_publishes_the_blurred_copy_and_hides_a_report(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    media_id = photo(client, auth, "m-1")
    ticket = report_at(
        client,
        auth.rider("meituan", "m-1"),
        JIANGSU,
        category="road_damage",
        description="路口井盖缺失，电话 13700001111",
        media_ids=[media_id],
    )["ticket"]
    act(client, auth.staff(OFFICER), ticket["id"], {"action": "accept"})
    sign_in(page, baseline, OFFICER, then=f"/console/tickets/{ticket['id']}")
    assert "路口井盖缺失，电话 ***" in page.locator(".public-preview").inner_text()

    page.get_by_role("link", name="模糊后公开…").click()
    page.wait_for_load_state("networkidle")
    boxes = page.locator("#boxes-stage .box")
    assert boxes.count() == 2  # the face and the plate, suggested
    assert page.locator('#box-list input[name="box"]:checked').count() == 2
    stage = page.locator("#boxes-stage img").bounding_box()
    page.mouse.move(stage["x"] + 20, stage["y"] + 20)
    page.mouse.down()
    page.mouse.move(stage["x"] + 80, stage["y"] + 60, steps=5)
    page.mouse.up()
    assert page.locator('#box-list input[name="box"]:checked').count() == 3
    shot(page, "moderation-zh")
    page.get_by_role("button", name="公开模糊后的照片").click()
    page.wait_for_load_state("networkidle")
    assert "模糊后的照片已公开。" in page.locator(".notice").inner_text()
    assert page.locator(".badge.published").count() >= 1
    public = client.get(f"/public/photos/{media_id}")
    assert public.status_code == 200

    page.get_by_role("button", name="对公众隐藏").click()
    page.wait_for_load_state("networkidle")
    assert "上报已对公众隐藏。" in page.locator(".notice").inner_text()
    assert client.get(f"/public/tickets/{ticket['ref']}").status_code == 404
    assert client.get(f"/public/photos/{media_id}").status_code == 404
    shot(page, "ticket-public-side-zh")

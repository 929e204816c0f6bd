"""A ticket's whole life between a street office and a unit's crew, in a real browser:
the officer at a desk, the crew on a phone 390 px wide, taking the after-photo with the
page's camera input — accept, dispatch, sign for, start, report done, check failed,
report done again, check passed, close — and what the rider then sees."""

import io
import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import expect

from tests.conftest import Auth, Baseline
from tests.console.conftest import OFFICER, photo_of, report, shot, sign_in
from tests.helpers import JIANGSU

UNIT = "roads_310105002"  # the demo's road-maintenance contractor of 江苏路街道
PHONE = {"width": 390, "height": 844}


def needs_an_after_photo(client: TestClient, auth: Auth, category: str) -> None:
    admin = auth.staff("admin")
    body = client.get(f"/v1/admin/categories/{category}", headers=admin).json()
    put = {k: v for k, v in body.items() if k not in ("code", "created_at", "updated_at")}
    saved = client.put(
        f"/v1/admin/categories/{category}",
        headers=admin,
        json={**put, "after_photo_required": True},
    )
    assert saved.status_code == 200, saved.text


def camera_shot(shade: int) -> dict[str, Any]:
    """A photo as a phone's camera hands it to the page: a large JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (3000, 2000), (shade, 120, 90)).save(out, "JPEG", quality=90)
    return {"name": "IMG_0001.jpg", "mimeType": "image/jpeg", "buffer": out.getvalue()}


def act(page: Any, button: str, **fields: str) -> None:
    """Fills an office form's fields (by label) and presses its button."""
    form = page.locator("form.action").filter(
        has=page.get_by_role("button", name=button, exact=True)
    )
    for label, value in fields.items():
        control = form.get_by_label(label)
        if control.evaluate("e => e.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    form.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state("domcontentloaded")


def fits_the_phone(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1


def report_the_work_done(crew: Any, note: str, shade: int) -> None:
    form = crew.locator("form[data-action='report_done']")
    form.get_by_label("处置内容").fill(note)
    form.locator("input[type=file][capture=environment]").set_input_files(camera_shot(shade))
    taken = form.locator(".taken img")
    expect(taken).to_have_count(1)
    crew.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=taken.element_handle()
    )
    expect(form.locator("input[name=media_id]")).to_have_count(1)
    form.get_by_role("button", name="处置完毕").click()
    crew.wait_for_load_state("domcontentloaded")
    expect(crew.locator(".notice")).to_contain_text("等待街道核查")


@pytest.mark.browser_smoke
def test_a_tickets_whole_life_between_the_office_and_a_crew_on_its_phone(
    new_page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    needs_an_after_photo(client, auth, "road_damage")
    receipt = report(
        client,
        auth,
        JIANGSU,
        category="road_damage",
        description="人行道砖块松动，电话13912345678",
        media_ids=[photo_of(client, auth)],
    )
    ticket = receipt["ticket"]

    office = new_page()
    sign_in(office, baseline, OFFICER)
    office.goto(f"/console/tickets/{ticket['id']}")
    act(office, "受理")
    act(office, "派遣至处置单位", 处置单位=UNIT)
    expect(office.locator(".ticket-head")).to_contain_text("已派遣")

    # The crew signs in on its phone and lands on its work list.
    crew = new_page(**PHONE)
    sign_in(crew, baseline, f"crew_{UNIT}")
    expect(crew).to_have_url(re.compile("/console/work$"))
    card = crew.locator(".work-card", has_text=ticket["ref"])
    expect(card).to_contain_text("道路破损")
    expect(card.get_by_role("link", name="在高德地图中打开")).to_have_attribute(
        "href", re.compile(r"^https://uri\.amap\.com/marker\?position=121\.43")
    )
    fits_the_phone(crew)
    shot(crew, "crew-work-list-zh")

    card.locator("a.work-card-link").click()
    expect(crew.locator(".work-detail")).to_contain_text("人行道砖块松动")
    expect(crew.locator(".work-detail")).not_to_contain_text("13912345678")
    crew.get_by_role("button", name="签收").click()
    expect(crew.locator(".notice")).to_contain_text("已签收")
    crew.get_by_role("button", name="开始处置").click()
    expect(crew.locator("h1 .badge")).to_have_text("处置中")
    report_the_work_done(crew, "已更换松动砖块", 40)
    expect(crew.locator("h1 .badge")).to_have_text("待核查")
    fits_the_phone(crew)
    shot(crew, "crew-ticket-reported-zh")

    # The office checks the work against the report's photo, and finds it wanting.
    office.reload()
    pair = office.locator(".before-after")
    for side in (".before img", ".after img"):
        image = pair.locator(side).first
        office.wait_for_function(
            "img => img.complete && img.naturalWidth > 0", arg=image.element_handle()
        )
    shot(office, "office-before-after-zh")
    act(office, "核查不通过，返工", 备注="砖块仍有松动")
    expect(office.locator(".ticket-head")).to_contain_text("已派遣")

    # Back on the crew's list; the crew redoes the work and reports it again.
    crew.goto("/console/work")
    crew.locator(".work-card", has_text=ticket["ref"]).locator("a.work-card-link").click()
    expect(crew.locator(".events")).to_contain_text("砖块仍有松动")
    report_the_work_done(crew, "已重新铺设并压实", 200)

    office.reload()
    expect(office.locator(".before-after .after img")).to_have_count(1)  # the redone work's
    act(office, "核查通过")
    expect(office.locator(".ticket-head")).to_contain_text("已办结")
    act(office, "结案")
    expect(office.locator(".ticket-head")).to_contain_text("已结案")

    # The crew's card is read-only in what it handled; the rider sees the work's photo.
    crew.goto("/console/work?show=handled")
    expect(crew.locator(".work-card", has_text=ticket["ref"])).to_be_visible()
    rider = auth.rider("meituan", "c-1")
    seen = client.get(f"/v1/reports/{receipt['id']}", headers=rider).json()["ticket"]
    assert seen["status"] == "closed"
    assert len(seen["after_photos"]) == 1  # the redone work's, not the work found wanting
    photo = client.get(seen["after_photos"][0]["url"], headers=rider)
    assert photo.status_code == 200 and photo.headers["content-type"].startswith("image/")

    events = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(OFFICER)).json()[
        "events"
    ]
    steps = [e["type"] for e in events if e["type"] not in ("report_received",)]
    assert steps[-9:] == [
        "accept",
        "dispatch",
        "acknowledge",
        "start",
        "report_done",
        "check_fail",
        "report_done",
        "check_pass",
        "close",
    ], steps
    units = client.get("/v1/office/stats/units", headers=auth.staff(OFFICER)).json()
    ours = next(u for u in units if u["unit"] == UNIT)
    assert ours["dispatched"] == 1 and ours["done"] == 1
    assert ours["rework_rate"] == pytest.approx(0.5)

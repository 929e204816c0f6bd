"""The console in a real browser: what a street office does with it, end to end."""

import io
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image
from playwright.sync_api import expect

from app.config import Settings
from app.db import Database
from app.geo.coords import CoordSys, from_wgs84
from app.main import create_app
from tests.apps import serve
from tests.conftest import Auth, Baseline
from tests.console.conftest import (
    DISTRICT,
    OFFICER,
    photo_of,
    report,
    shot,
    sign_in,
)
from tests.helpers import HUAYANG, JIANGSU


@pytest.mark.browser_smoke
def test_an_officer_works_a_ticket_from_the_map_to_resolved(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    photo = photo_of(client, auth)
    mine = report(
        client, auth, JIANGSU, category="road_damage", description="路面塌陷", media_ids=[photo]
    )
    theirs = report(client, auth, HUAYANG, category="waste", rider="c-2")

    sign_in(page, baseline, OFFICER)
    expect(page).to_have_url(re.compile("/console/queue"))
    rows = page.locator("table.queue tbody tr[data-ticket]")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(mine["ticket"]["ref"])
    expect(rows.first).to_contain_text("道路破损")
    expect(page.locator("body")).not_to_contain_text(theirs["ticket"]["ref"])
    expect(page.locator("#map")).to_have_attribute("data-tickets-loaded", "1")
    expect(page.locator("#map")).to_have_attribute("data-areas-loaded", re.compile(r"^[1-9]"))
    shot(page, "queue-zh")

    page.locator("#map path.leaflet-interactive[fill='#1c7ed6']").first.click()
    expect(page).to_have_url(re.compile(f"/console/tickets/{mine['ticket']['id']}"))
    expect(page.locator(".reports")).to_contain_text("路面塌陷")
    thumbnail = page.locator(".photos img").first
    expect(thumbnail).to_be_visible()
    # The photo's bytes arrive and decode (a broken image is complete with no width).
    page.wait_for_function(
        "img => img.complete && img.naturalWidth > 0", arg=thumbnail.element_handle()
    )
    shot(page, "ticket-zh")

    page.get_by_role("button", name="受理", exact=True).click()
    expect(page.locator(".notice")).to_have_text("已受理。")
    page.get_by_label("备注").first.fill("已派人修补")
    page.get_by_role("button", name="办结", exact=True).click()
    expect(page.locator(".notice")).to_have_text("已办结。")
    expect(page.locator(".ticket-head .badge")).to_have_text("已办结")

    rider = auth.rider("meituan", "c-1")
    seen = client.get(f"/v1/reports/{mine['id']}", headers=rider).json()
    assert seen["ticket"]["status"] == "resolved"
    assert [entry["status"] for entry in seen["ticket"]["timeline"]][-2:] == [
        "accepted",
        "resolved",
    ]


def ticket_page(page: Any, ticket_id: str) -> None:
    page.goto(f"/console/tickets/{ticket_id}")


def act(page: Any, button: str, **fields: str | re.Pattern[str]) -> None:
    """Fills the fields of the action's form (by label; a select's option by its text or
    a pattern of it) and presses its button."""
    form = page.locator("form.action").filter(
        has=page.get_by_role("button", name=button, exact=True)
    )
    for label, value in fields.items():
        control = form.get_by_label(label)
        if control.evaluate("e => e.tagName") == "SELECT":
            texts = control.locator("option").all_inner_texts()
            chosen = [
                t
                for t in texts
                if (value.search(t) if isinstance(value, re.Pattern) else t == value)
            ]
            assert len(chosen) == 1, (label, value, texts)
            control.select_option(label=chosen[0])
        else:
            assert isinstance(value, str)
            control.fill(value)
    form.get_by_role("button", name=button, exact=True).click()
    page.wait_for_load_state("domcontentloaded")


def test_every_action_through_the_page(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    worked = report(client, auth, JIANGSU, category="road_damage")["ticket"]
    refused = report(client, auth, JIANGSU, north_m=-100, rider="c-2", category="waste")["ticket"]
    moved = report(client, auth, JIANGSU, north_m=-200, rider="c-3", category="other")["ticket"]
    # 50 m apart: two tickets (e-bikes merge within 20 m), each the other's candidate.
    kept = report(client, auth, JIANGSU, north_m=-300, rider="c-4", category="ebike_parking")
    twin = report(client, auth, JIANGSU, north_m=-250, rider="c-5", category="ebike_parking")
    assert kept["ticket"]["id"] != twin["ticket"]["id"]
    sign_in(page, baseline, OFFICER)

    ticket_page(page, worked["id"])
    steps = [
        ("受理", {}, "已受理。", "已受理"),
        ("派遣", {"处置人（个人或班组）": "道路养护一班"}, "已派遣。", "已受理"),
        ("开始处置", {}, "已开始处置。", "处置中"),
        ("设置优先级", {"优先级": "高"}, "已设置优先级。", "处置中"),
        ("添加备注", {"备注 (内部)": "需要封闭半幅"}, "已添加备注。", "处置中"),
        ("办结", {"备注": "已修补"}, "已办结。", "已办结"),
        ("结案", {}, "已结案。", "已结案"),
        ("重新打开", {"备注": "骑手反映又坏了"}, "已重新打开。", "已受理"),
    ]
    for button, fields, notice, status in steps:
        act(page, button, **fields)
        expect(page.locator(".notice")).to_have_text(notice)
        expect(page.locator(".ticket-head .badge")).to_have_text(status)
    expect(page.locator(".ticket-head")).to_contain_text("道路养护一班")
    expect(page.locator(".ticket-head")).to_contain_text("优先级: 高")
    timeline = page.locator(".timeline tbody tr")
    expect(timeline).to_have_count(9)
    expect(timeline.nth(5)).to_contain_text("需要封闭半幅")
    expect(timeline.nth(6)).to_contain_text(OFFICER)
    expect(timeline.nth(6)).to_contain_text("处置中 → 已办结")

    ticket_page(page, refused["id"])
    act(page, "不予受理", 原因="不属本单位职责")
    expect(page.locator(".ticket-head .badge")).to_have_text("不予受理")
    expect(page.locator(".facts")).to_contain_text("不属本单位职责")

    ticket_page(page, kept["ticket"]["id"])
    act(page, "受理")
    ticket_page(page, twin["ticket"]["id"])
    act(page, "合并", **{"重复于（附近未办结的工单）": re.compile(kept["ticket"]["ref"])})
    expect(page.locator(".ticket-head .badge")).to_have_text("重复")
    expect(page.locator(".facts")).to_contain_text(kept["ticket"]["ref"])

    ticket_page(page, moved["id"])
    act(page, "转派", 转至街道="华阳路街道")
    expect(page).to_have_url(re.compile(r"/console/queue\?done=transfer"))
    expect(page.locator(".notice")).to_have_text("已转派。")
    expect(page.locator("table.queue")).not_to_contain_text(moved["ref"])
    other = auth.staff("officer_310105001")
    assert client.get(f"/v1/office/tickets/{moved['id']}", headers=other).json()["status"] == "new"


@pytest.mark.browser_smoke
def test_two_clerks_on_one_ticket_never_overwrite_each_other(
    new_page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    officer, district = new_page(), new_page()
    sign_in(officer, baseline, OFFICER)
    sign_in(district, baseline, DISTRICT)
    ticket_page(officer, ticket["id"])
    ticket_page(district, ticket["id"])

    act(district, "受理")
    expect(district.locator(".notice")).to_have_text("已受理。")
    act(officer, "不予受理", 原因="无效信息")

    conflict = officer.locator("#stale")
    expect(conflict).to_contain_text("您查看期间此工单已被修改，本次操作未执行。")
    expect(conflict).to_contain_text(DISTRICT)
    expect(conflict).to_contain_text("受理")
    expect(officer.locator(".ticket-head .badge")).to_have_text("已受理")  # the page is fresh
    shown = auth.staff(OFFICER)
    detail = client.get(f"/v1/office/tickets/{ticket['id']}", headers=shown).json()
    assert detail["status"] == "accepted" and detail["reject_reason"] is None
    act(officer, "开始处置")  # acting again on what is shown now goes through
    expect(officer.locator(".notice")).to_have_text("已开始处置。")


def test_bulk_actions_act_on_each_checked_ticket_and_say_what_failed(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    tickets = [
        report(client, auth, JIANGSU, north_m=-i * 60, rider=f"b-{i}")["ticket"] for i in range(3)
    ]
    act_on = auth.staff(OFFICER)
    client.post(
        f"/v1/office/tickets/{tickets[2]['id']}/actions", headers=act_on, json={"action": "accept"}
    )
    sign_in(page, baseline, OFFICER)
    for ticket in tickets:
        page.get_by_label(f"勾选 {ticket['ref']}").check()
    page.locator("#bulk-action").select_option("accept")
    page.get_by_role("button", name="应用于勾选项").click()
    expect(page.locator("h1")).to_contain_text("完成 2 / 3")
    failed = page.locator("tr.failed")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text(tickets[2]["ref"])
    statuses = [
        client.get(f"/v1/office/tickets/{t['id']}", headers=act_on).json()["status"]
        for t in tickets
    ]
    assert statuses == ["accepted", "accepted", "accepted"]
    events = client.get(f"/v1/office/tickets/{tickets[0]['id']}", headers=act_on).json()["events"]
    assert [e["type"] for e in events] == ["created", "accept"]

    page.get_by_role("link", name="返回工单列表").click()
    for ticket in tickets[:2]:
        page.get_by_label(f"勾选 {ticket['ref']}").check()
    page.locator("#bulk-action").select_option("assign")
    page.get_by_label("处置人", exact=True).fill("绿化一班")
    page.get_by_role("button", name="应用于勾选项").click()
    expect(page.locator("h1")).to_contain_text("完成 2 / 2")
    assigned = [
        client.get(f"/v1/office/tickets/{t['id']}", headers=act_on).json()["assignee"]
        for t in tickets
    ]
    assert assigned == ["绿化一班", "绿化一班", None]


@pytest.mark.browser_smoke
def test_the_language_switch_is_remembered_and_english_is_whole(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    ticket = report(
        client, auth, JIANGSU, category="illegal_charging", media_ids=[photo_of(client, auth)]
    )
    sign_in(page, baseline, OFFICER)
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("link", name="Queue")).to_be_visible()
    expect(page.locator("table.queue")).to_contain_text("Illegal charging")
    expect(page.locator("table.queue")).to_contain_text("New")
    shot(page, "queue-en")
    page.reload()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    ticket_page(page, ticket["ticket"]["id"])
    expect(page.get_by_role("button", name="Accept", exact=True)).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("受理")
    shot(page, "ticket-en")
    page.goto("/console/dashboard")
    expect(page.locator("h1")).to_have_text("Dashboard")
    shot(page, "dashboard-en")
    page.get_by_role("button", name="中文").click()
    expect(page.locator("h1")).to_have_text("统计")
    shot(page, "dashboard-zh")


def test_the_queue_is_worked_from_the_keyboard(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    older = report(client, auth, JIANGSU, north_m=-100, rider="k-1")["ticket"]
    newer = report(client, auth, JIANGSU, rider="k-2")["ticket"]
    sign_in(page, baseline, OFFICER)
    page.keyboard.press("j")
    page.keyboard.press("j")
    expect(page.locator("tr.selected")).to_contain_text(older["ref"])
    page.keyboard.press("k")
    expect(page.locator("tr.selected")).to_contain_text(newer["ref"])
    page.keyboard.press("a")
    expect(page.locator(f"tr[data-ticket='{newer['id']}'] .badge")).to_have_text("已受理")
    page.keyboard.press("/")
    expect(page.locator("#f-q")).to_be_focused()
    page.locator("#f-q").press("Escape")
    page.locator("body").click(position={"x": 5, "y": 700})
    page.keyboard.press("?")
    expect(page.locator("#keys")).to_be_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/console/tickets/{older['id']}"))


@pytest.mark.browser_smoke
def test_the_district_sees_every_street_and_narrows_the_list_to_the_map(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    here = report(client, auth, JIANGSU, category="waste")["ticket"]
    there = report(client, auth, HUAYANG, rider="d-2", category="waste")["ticket"]
    sign_in(page, baseline, DISTRICT)
    rows = page.locator("table.queue tbody tr[data-ticket]")
    expect(rows).to_have_count(2)
    expect(page.locator("#map")).to_have_attribute("data-tickets-loaded", "2")
    expect(page.locator(".area-label").first).to_be_visible()
    expect(page.get_by_label("仅看未分派街道的")).to_be_visible()
    shot(page, "queue-district-zh")

    spot = client.get(f"/v1/office/tickets/{here['id']}", headers=auth.staff(DISTRICT)).json()
    page.evaluate(
        "([lat, lon]) => window.sentinelMap.map.setView([lat, lon], 18, { animate: false })",
        [spot["lat"], spot["lon"]],
    )
    page.get_by_role("button", name="列表只显示地图范围内的工单").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(here["ref"])
    expect(page).to_have_url(re.compile(r"bbox=121\."))
    page.go_back()
    expect(rows).to_have_count(2)
    assert there["ref"] in page.locator("table.queue").inner_text()


def test_it_works_at_a_phones_width(
    new_page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    page = new_page(width=390, height=844)
    sign_in(page, baseline, OFFICER)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    expect(page.locator("#map")).to_be_visible()
    page.get_by_role("link", name=ticket["ref"]).click()
    expect(page.get_by_role("button", name="受理", exact=True)).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    shot(page, "ticket-phone-zh")


def test_signing_out_in_the_browser(page: Any, baseline: Baseline) -> None:
    sign_in(page, baseline, OFFICER)
    page.get_by_role("button", name="退出登录").click()
    expect(page).to_have_url(re.compile("/console/login$"))
    page.goto("/console/queue")
    expect(page).to_have_url(re.compile(r"/console/login\?next="))


def test_a_wrong_password_is_said_in_the_browser(page: Any) -> None:
    page.goto("/console/")
    page.get_by_label("用户名").fill(OFFICER)
    page.get_by_label("密码").fill("not the password")
    page.get_by_role("button", name="登录", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text("用户名或密码错误。")
    expect(page.get_by_label("用户名")).to_have_value(OFFICER)


class TileServer:
    """Map tiles on 127.0.0.1: one grey PNG for every tile, and the paths asked for."""

    def __init__(self) -> None:
        buffer = io.BytesIO()
        Image.new("RGB", (256, 256), (230, 230, 225)).save(buffer, "PNG")
        tile, asked = buffer.getvalue(), []
        self.asked: list[str] = asked

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                asked.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(tile)))
                self.end_headers()
                self.wfile.write(tile)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/{{z}}/{{x}}/{{y}}.png"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.mark.parametrize("datum", ["wgs84", "gcj02"])
def test_on_gcj02_tiles_every_overlay_is_shifted_to_land_on_the_same_spot(
    datum: str,
    browser: Any,
    settings: Settings,
    database: Database,
    client: TestClient,
    auth: Auth,
    baseline: Baseline,
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    detail = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(OFFICER)).json()
    lon, lat = detail["lon"], detail["lat"]  # WGS-84, as stored
    expected = from_wgs84(lon, lat, CoordSys.GCJ02) if datum == "gcj02" else (lon, lat)
    tiles = TileServer()
    with_tiles = settings.model_copy(
        update={
            "console_tiles_url": tiles.url,
            "console_tiles_attribution": "test tiles",
            "console_tiles_datum": datum,
        }
    )
    try:
        with serve(create_app(with_tiles, database)) as url:
            context = browser.new_context(base_url=url, locale="zh-CN")
            page = context.new_page()
            sign_in(page, baseline, OFFICER)
            expect(page.locator("#map")).to_have_attribute("data-tickets-loaded", "1")
            marker = page.evaluate(
                "() => { const m = window.sentinelMap.tickets.getLayers()[0].getLatLng();"
                " return [m.lng, m.lat]; }"
            )
            assert marker == pytest.approx(expected, abs=1e-6)
            ticket_page(page, ticket["id"])
            spot = page.evaluate(
                "() => { const m = window.sentinelSpot.marker.getLatLng(); return [m.lng, m.lat]; }"
            )
            assert spot == pytest.approx(expected, abs=1e-6)
            expect(page.locator(".leaflet-control-attribution")).to_contain_text("test tiles")
            context.close()
    finally:
        tiles.close()
    assert tiles.asked, "the base map asked for no tile"
    if datum == "gcj02":  # the shift around Shanghai is several hundred metres
        assert abs(expected[0] - lon) > 0.003


UNLABELLED = """() => Array.from(document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button"))
  .filter(e => e.offsetParent !== null || e.closest("dialog[open]"))
  .filter(e => e.tagName === "BUTTON"
    ? !(e.innerText.trim() || e.getAttribute("aria-label"))
    : !(e.labels && e.labels.length) && !e.getAttribute("aria-label"))
  .map(e => e.outerHTML.slice(0, 120))"""


def test_every_field_is_labelled_and_every_button_says_what_it_does(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline
) -> None:
    photo = photo_of(client, auth)
    ticket = report(client, auth, JIANGSU, media_ids=[photo])["ticket"]
    sign_in(page, baseline, OFFICER)
    pages = ["/console/queue", f"/console/tickets/{ticket['id']}", "/console/dashboard"]
    for path in pages:
        page.goto(path)
        assert page.evaluate(UNLABELLED) == [], path
    page.goto(f"/console/tickets/{ticket['id']}")
    page.locator("a.photo").first.click()
    lightbox = page.locator("#lightbox")
    expect(lightbox).to_be_visible()
    page.wait_for_function("() => document.querySelector('#lightbox img').naturalWidth === 640")
    page.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    page.reload()
    page.keyboard.press("Tab")  # the first stop is the way past the header
    assert page.evaluate("() => document.activeElement.className") == "skip"


def test_the_admin_works_in_the_browser(page: Any, baseline: Baseline) -> None:
    sign_in(page, baseline, "admin")
    expect(page).to_have_url(re.compile("/console/admin/categories"))
    expect(page.locator("table")).to_contain_text("road_damage")
    for path in ("/console/admin/staff", "/console/admin/platforms", "/console/admin/areas"):
        page.goto(path)
        assert page.evaluate(UNLABELLED) == [], path
    page.goto("/console/admin/platforms")
    page.get_by_label("代码").fill("didi")
    page.get_by_label("名称").fill("滴滴")
    page.get_by_role("button", name="创建").click()
    expect(page.locator("#new-key")).to_have_text(re.compile(r"^\S{20,}$"))
    page.reload()
    expect(page.locator("#new-key")).to_have_count(0)
    expect(page.locator("table")).to_contain_text("didi")


def test_a_page_of_another_origin_cannot_act_for_a_signed_in_clerk(
    page: Any, client: TestClient, auth: Auth, baseline: Baseline, console_url: str
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    sign_in(page, baseline, OFFICER)
    forged = (
        f'<form id="f" method="post" action="{console_url}/console/tickets/{ticket["id"]}/actions">'
        '<input name="action" value="reject"><input name="reason" value="spam">'
        '<input name="version" value="1"></form>'
    ).encode()

    class Evil(BaseHTTPRequestHandler):  # another origin: the same host, another port
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(forged)

        def log_message(self, *args: object) -> None:
            pass

    evil = ThreadingHTTPServer(("127.0.0.1", 0), Evil)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    try:
        page.goto(f"http://127.0.0.1:{evil.server_port}/")
        with page.expect_navigation():
            page.evaluate("() => document.getElementById('f').submit()")
        expect(page.locator("h1")).to_have_text("无权访问")
    finally:
        evil.shutdown()
    shown = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(OFFICER)).json()
    assert shown["status"] == "new" and shown["version"] == 1

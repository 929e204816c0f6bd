"""A district user adds its street's WeCom group robot on the channels' page, in a real
browser — first with the URL pasted short of its key, which the page refuses beside the
field — presses the test button and sees the message arrive (the receiver of
tests/notify got it); the page in English says the same."""

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import Baseline
from tests.console.conftest import DISTRICT, shot, sign_in
from tests.notify import conftest as notify_fixtures
from tests.notify.receivers import Receivers

# The receivers on 127.0.0.1, the SMTP server and the settings that let channels reach
# them, as tests/notify has them.
mailbox, receivers, settings = (
    notify_fixtures.mailbox,
    notify_fixtures.receivers,
    notify_fixtures.settings,
)


@pytest.mark.browser_smoke
def test_a_district_adds_a_wecom_robot_and_its_test_message_arrives(
    new_page: Any,
    baseline: Baseline,
    receivers: Receivers,
) -> None:
    page = new_page()
    sign_in(page, baseline, DISTRICT)
    page.get_by_role("navigation", name="主菜单").get_by_role("link", name="通知渠道").click()
    expect(page.get_by_role("heading", name="通知渠道", exact=True)).to_be_visible()
    expect(page.locator("table.channels")).to_contain_text("还没有渠道")

    # The robot's URL pasted without its key: said beside the field, nothing kept.
    url = receivers.urls()["wecom"]
    new = page.locator("#new-channel")
    new.get_by_label("代码").fill("jiangsu-wecom")
    expect(new.get_by_label("类型")).to_have_value("wecom")
    new.get_by_label("地址", exact=True).fill(url.split("?")[0])
    new.get_by_label("所属").select_option(label="江苏路街道")
    new.get_by_label("工单提级督办").check()
    new.get_by_label("已超时").uncheck()
    new.get_by_role("button", name="添加渠道").click()
    page.wait_for_load_state("domcontentloaded")
    expect(page.locator("#new-problems")).to_contain_text("未保存任何内容")
    expect(page.locator("#new-url-error")).to_contain_text("key=")
    expect(page.locator("table.channels")).to_contain_text("还没有渠道")
    shot(page, "channels-refused-zh")

    new = page.locator("#new-channel")
    expect(new.get_by_label("所属")).to_have_value("area:310105002")
    expect(new.get_by_label("工单提级督办")).to_be_checked()
    new.get_by_label("地址", exact=True).fill(url)
    shot(page, "channels-new-zh")
    new.get_by_role("button", name="添加渠道").click()
    page.wait_for_load_state("domcontentloaded")

    assert page.url.endswith("/console/channels/jiangsu-wecom?saved=1")
    expect(page.locator(".notice")).to_contain_text("已保存 jiangsu-wecom")
    expect(page.locator("#channel-state")).to_contain_text("正常")
    expect(page.locator(".channel-facts")).to_contain_text("key=weco…")
    expect(page.locator(".channel-facts")).not_to_contain_text("wecom-key-123456")
    page.get_by_role("button", name="发送测试消息").click()
    page.wait_for_load_state("domcontentloaded")
    expect(page.locator("#test-result")).to_contain_text("测试消息已送达（应答 200）")
    expect(page.locator("table.deliveries tbody tr")).to_have_count(1)
    expect(page.locator("table.deliveries tbody tr")).to_contain_text("已送达")
    (got,) = receivers.of("wecom")
    assert "流动哨兵测试消息" in got.body["markdown"]["content"]
    assert got.query["key"] == "wecom-key-123456" and receivers.refused == []
    shot(page, "channel-tested-zh")

    page.get_by_role("button", name="English").click()
    page.wait_for_load_state("domcontentloaded")
    page.get_by_role("link", name="Channels", exact=True).first.click()
    row = page.locator("#channel-jiangsu-wecom")
    expect(row).to_contain_text("Jiangsu Road Subdistrict")
    expect(row).to_contain_text("WeCom group robot")
    expect(row).to_contain_text(re.compile(r"Working\s*· last sent"))
    expect(row).to_contain_text("A ticket escalated (提级督办)")
    expect(row).not_to_contain_text("Deadline missed")
    shot(page, "channels-en")

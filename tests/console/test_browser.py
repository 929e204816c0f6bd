"""The console in a real browser: what a street office does with it, end to end."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from tests.conftest import Auth, Baseline
from tests.console.conftest import (
    HUAYANG,
    JIANGSU,
    OFFICER,
    photo_of,
    report,
    shot,
    sign_in,
)


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
    assert page.evaluate("img => img.naturalWidth", thumbnail.element_handle()) > 0
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

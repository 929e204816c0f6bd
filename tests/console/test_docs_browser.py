"""The interactive API docs in a real browser, with every request outside 127.0.0.1
refused (the console's route guard): /docs loads, lists the operations and opens one."""

from typing import Any

import pytest
from playwright.sync_api import expect


@pytest.mark.browser_smoke
def test_swagger_ui_lists_and_opens_the_operations_with_nothing_from_outside(page: Any) -> None:
    page.goto("/docs")
    operation = page.locator(".opblock-post").filter(
        has=page.locator(".opblock-summary-path[data-path='/v1/reports']")
    )
    expect(operation).to_be_visible(timeout=20_000)
    open311 = page.locator(".opblock-summary-path[data-path='/open311/v2/requests.{format}']")
    expect(open311.first).to_be_visible()
    operation.locator(".opblock-summary").click()
    expect(operation.locator(".opblock-body")).to_be_visible()
    expect(operation).to_contain_text("Idempotency-Key")
    icon = page.evaluate("() => document.querySelector('link[rel*=icon]').href")
    assert icon.startswith("http://127.0.0.1") and icon.endswith("favicon-32x32.png")


def test_there_is_no_redoc(page: Any) -> None:
    """Dropped: ReDoc's bundle loads its logo from its own CDN."""
    assert page.goto("/redoc").status == 404

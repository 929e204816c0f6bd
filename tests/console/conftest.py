"""The console's fixtures: a real server on 127.0.0.1, Debian's Chromium driven by
Playwright, and a guard that fails any test whose page asks for anything elsewhere.

The browser set runs in full on SpatiaLite; on PostGIS only the tests marked
``browser_smoke`` run (the pages are the same code over either database)."""

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.db import Database
from tests.apps import another_client
from tests.conftest import Auth, Baseline
from tests.helpers import report_at

CHROMIUM = os.environ.get("SENTINEL_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("SENTINEL_ARTIFACTS", "test-artifacts")) / "console"
OFFICER = "officer_310105002"  # 江苏路街道
OTHER_OFFICER = "officer_310105001"  # 华阳路街道
DISTRICT = "changning"


@pytest.fixture
def console_url(served: str) -> str:
    """The whole app, served by uvicorn on 127.0.0.1, over the test database."""
    return served


# Per module: while Playwright runs, its event loop holds the main thread, and tests
# after it that run one of their own (asyncio.run) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: apt-get install chromium fonts-wqy-microhei "
            "(scripts/test does it when it may)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@dataclass
class Guard:
    """What the pages asked for outside 127.0.0.1, and the errors their scripts threw."""

    foreign: list[str] = field(default_factory=list)
    script_errors: list[str] = field(default_factory=list)


@pytest.fixture(autouse=True)
def _browser_set_on_postgis(request: pytest.FixtureRequest, database: Database) -> None:
    if (
        "page" in request.fixturenames
        and not database.is_sqlite
        and request.node.get_closest_marker("browser_smoke") is None
    ):
        pytest.skip("the browser set runs in full on SpatiaLite; PostGIS runs its smoke set")


@pytest.fixture
def new_page(browser: Any, console_url: str) -> Iterator[Callable[..., Any]]:
    """Pages in fresh browser contexts (one per clerk), each under the guard."""
    contexts = []
    guards = []

    def open_page(locale: str = "zh-CN", width: int = 1280, height: int = 800) -> Any:
        context = browser.new_context(
            base_url=console_url,
            locale=locale,
            viewport={"width": width, "height": height},
            timezone_id="Asia/Shanghai",
        )
        guard = Guard()

        def route(route: Any) -> None:
            host = urlsplit(route.request.url).hostname
            if host != "127.0.0.1":
                guard.foreign.append(route.request.url)
                route.abort()
            else:
                route.continue_()

        context.route("**/*", route)
        page = context.new_page()
        page.on("pageerror", lambda error: guard.script_errors.append(str(error)))
        # What the Content-Security-Policy refused (an inline style, a foreign script).
        page.on(
            "console",
            lambda message: (
                guard.script_errors.append(message.text)
                if "Content Security Policy" in message.text or "Refused to" in message.text
                else None
            ),
        )
        page.set_default_timeout(20_000)
        contexts.append(context)
        guards.append(guard)
        return page

    yield open_page
    for context in contexts:
        context.close()
    for guard in guards:
        assert guard.foreign == [], f"pages asked for something outside 127.0.0.1: {guard.foreign}"
        assert guard.script_errors == [], f"the pages' scripts failed: {guard.script_errors}"


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


def sign_in(page: Any, baseline: Baseline, username: str, *, then: str = "/console/") -> None:
    page.goto(then)
    page.get_by_label(re.compile("用户名|Username")).fill(username)
    page.get_by_label(re.compile("密码|Password")).fill(baseline.password(username))
    page.get_by_role("button", name=re.compile("^(登录|Sign in)$")).click()
    page.wait_for_load_state("networkidle")


def shot(page: Any, name: str) -> Path:
    """A screenshot kept as a test artifact."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def report(
    client: TestClient, auth: Auth, where: dict[str, Any], *, rider: str = "c-1", **fields: Any
) -> dict[str, Any]:
    """A rider's report through the API; its receipt."""
    return report_at(client, auth.rider("meituan", rider), where, **fields)


def photo_of(client: TestClient, auth: Auth, rider: str = "c-1") -> str:
    from app.ops.demo_reports import photo

    response = client.post(
        "/v1/media",
        headers=auth.rider("meituan", rider),
        files={"file": ("photo.jpg", photo(1), "image/jpeg")},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page carries no CSRF token"
    return match[1]


class Clerk:
    """A browser's worth of cookies on the console, signed in as ``username``."""

    def __init__(self, app: FastAPI, baseline: Baseline, username: str, **options: Any) -> None:
        self.http = another_client(app, follow_redirects=False, **options)
        self.username = username
        page = self.http.get("/console/login")
        self.csrf = csrf_of(page.text)
        self.response = self.http.post(
            "/console/login",
            data={
                "username": username,
                "password": baseline.password(username),
                "csrf_token": self.csrf,
            },
        )
        if self.response.status_code == 303:  # the token of the session's pages
            self.csrf = csrf_of(self.http.get(self.response.headers["location"]).text)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any], **kwargs: Any) -> httpx.Response:
        """A form posted from one of the console's pages (with its CSRF token)."""
        return self.http.post(path, data={"csrf_token": self.csrf, **data}, **kwargs)

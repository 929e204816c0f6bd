"""A platform's webhook through the API: set, read, remove, refuse, and who may see what."""

import socket
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import Webhook, utcnow
from app.ops.worker import JOBS
from app.platforms import outbox
from tests.conftest import Auth
from tests.helpers import assert_problem, emit_event, fake_dns

PUBLIC_URL = "https://93.184.215.14/hooks/sentinel"  # an IP literal: resolves offline
DELIVER = next(j for j in JOBS if j.name == "deliver_webhooks")


@pytest.fixture(autouse=True)
def _dns(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(
        monkeypatch,
        {
            "hooks.meituan.example": ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"],
            "hooks.eleme.example": ["93.184.215.15"],
            "loopback.example": ["127.0.0.1"],
            "half-private.example": ["93.184.215.14", "10.1.2.3"],
            "nowhere.example": [],
        },
    )


def allow_private(app: FastAPI, settings: Settings) -> None:
    app.state.settings = settings.model_copy(update={"allow_private_webhooks": True})


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: every delivery fails to connect."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stored(database: Database) -> dict[str, tuple[str, str]]:
    """Every stored webhook: platform id → (url, secret)."""
    with database.session(write=False) as session:
        return {str(w.platform_id): (w.url, w.secret) for w in session.scalars(select(Webhook))}


def test_a_platform_sets_reads_replaces_and_removes_its_webhook(
    client: TestClient, auth: Auth, database: Database
) -> None:
    meituan = auth.platform("meituan")
    assert_problem(client.get("/v1/platform/webhook", headers=meituan), 404, "not_found")

    first = client.put("/v1/platform/webhook", headers=meituan, json={"url": PUBLIC_URL})
    assert first.status_code == 200, first.text
    assert first.json()["url"] == PUBLIC_URL
    assert first.json()["secret"].startswith("whsec_") and len(first.json()["secret"]) > 40
    assert client.get("/v1/platform/webhook", headers=meituan).json() == {"url": PUBLIC_URL}

    second = client.put(
        "/v1/platform/webhook", headers=meituan, json={"url": "https://hooks.meituan.example/v2"}
    )
    assert second.status_code == 200, second.text
    assert second.json()["secret"] != first.json()["secret"]  # a new secret each time
    assert list(stored(database).values()) == [
        ("https://hooks.meituan.example/v2", second.json()["secret"])
    ]

    assert client.delete("/v1/platform/webhook", headers=meituan).status_code == 204
    assert stored(database) == {}
    assert_problem(client.get("/v1/platform/webhook", headers=meituan), 404, "not_found")
    assert client.delete("/v1/platform/webhook", headers=meituan).status_code == 204


REFUSED = [
    "ftp://hooks.meituan.example/x",
    "file:///etc/passwd",
    "hooks.meituan.example/no-scheme",
    "http:///no-host",
    "https://user:password@hooks.meituan.example/",
    "http://hooks meituan.example/",
    "http://127.0.0.1:8080/hook",
    "http://localhost/hook",
    "http://LOCALHOST./hook",
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0.0.0.0/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # the cloud's metadata service
    "http://224.0.0.1/hook",
    "http://240.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[fe80::1]/hook",
    "http://[fd00::1]/hook",
    "http://loopback.example/hook",
    "http://half-private.example/hook",  # one private address is enough
    "http://nowhere.example/hook",
]


@pytest.mark.parametrize("url", REFUSED)
def test_urls_that_are_not_public_http_are_refused_and_nothing_changes(
    client: TestClient, auth: Auth, database: Database, url: str
) -> None:
    meituan = auth.platform("meituan")
    client.put("/v1/platform/webhook", headers=meituan, json={"url": PUBLIC_URL})
    before = stored(database)

    response = client.put("/v1/platform/webhook", headers=meituan, json={"url": url})

    body = assert_problem(response, 422, "webhook_url_refused")
    assert body["errors"][0]["field"] == "url"
    assert stored(database) == before


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": ""},
        {"url": "https://h.example/" + "a" * 2048},
        {"url": "https://h.example/\x00"},
    ],
)
def test_a_malformed_body_is_refused(
    client: TestClient, auth: Auth, count_rows: Callable[[str], int], body: Any
) -> None:
    response = client.put("/v1/platform/webhook", headers=auth.platform("meituan"), json=body)
    assert_problem(response, 422, "validation_error")
    assert count_rows("webhooks") == 0


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://[::1]/hook",
        "http://loopback.example/hook",
        "http://nowhere.example/hook",
    ],
)
def test_private_urls_are_accepted_when_allowed(
    client: TestClient, auth: Auth, app: FastAPI, settings: Settings, url: str
) -> None:
    allow_private(app, settings)
    response = client.put(
        "/v1/platform/webhook", headers=auth.platform("meituan"), json={"url": url}
    )
    assert response.status_code == 200, response.text
    assert response.json()["url"] == url


ENDPOINTS = [
    ("PUT", "/v1/platform/webhook", {"url": PUBLIC_URL}),
    ("GET", "/v1/platform/webhook", None),
    ("DELETE", "/v1/platform/webhook", None),
    ("GET", "/v1/platform/webhook/deliveries", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
@pytest.mark.parametrize("who", [None, "rider", "officer_310105002", "changning", "admin"])
def test_only_a_platform_may_touch_webhooks(
    client: TestClient,
    auth: Auth,
    database: Database,
    method: str,
    path: str,
    body: Any,
    who: str | None,
) -> None:
    client.put("/v1/platform/webhook", headers=auth.platform("meituan"), json={"url": PUBLIC_URL})
    before = stored(database)
    headers = (
        None if who is None else auth.rider("meituan", "r-1") if who == "rider" else auth.staff(who)
    )

    response = client.request(method, path, headers=headers, json=body)

    if who is None:
        assert_problem(response, 401, "unauthenticated")
    else:
        assert_problem(response, 403, "forbidden")
    assert stored(database) == before


def fail_one_delivery(
    client: TestClient,
    auth: Auth,
    app: FastAPI,
    settings: Settings,
    database: Database,
    platform: str,
    **data: Any,
) -> None:
    """``platform`` points its webhook at a closed port; one event fails to go there."""
    allow_private(app, settings)
    client.put(
        "/v1/platform/webhook",
        headers=auth.platform(platform),
        json={"url": f"http://127.0.0.1:{closed_port()}/{platform}"},
    )
    emit_event(database, platform, now=utcnow(), data=data)


def test_two_platforms_never_see_or_change_each_others_webhook(
    client: TestClient, auth: Auth, app: FastAPI, settings: Settings, database: Database
) -> None:
    meituan, eleme = auth.platform("meituan"), auth.platform("eleme")
    fail_one_delivery(client, auth, app, settings, database, "meituan", report_id="m-1")
    assert DELIVER.run(database, app.state.settings, now=utcnow()) == 1
    meituan_hook = stored(database)

    assert_problem(client.get("/v1/platform/webhook", headers=eleme), 404, "not_found")
    assert client.get("/v1/platform/webhook/deliveries", headers=eleme).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert client.delete("/v1/platform/webhook", headers=eleme).status_code == 204
    assert stored(database) == meituan_hook

    fail_one_delivery(client, auth, app, settings, database, "eleme", report_id="e-1")
    assert DELIVER.run(database, app.state.settings, now=utcnow()) == 1
    hooks = stored(database)
    assert len(hooks) == 2 and meituan_hook.items() <= hooks.items()
    assert client.get("/v1/platform/webhook", headers=meituan).json()["url"].endswith("/meituan")
    for platform, headers in (("meituan", meituan), ("eleme", eleme)):
        [delivery] = client.get("/v1/platform/webhook/deliveries", headers=headers).json()["items"]
        assert delivery["url"].endswith(f"/{platform}")


def test_deliveries_are_listed_newest_first_a_page_at_a_time(
    client: TestClient, auth: Auth, app: FastAPI, settings: Settings, database: Database
) -> None:
    meituan = auth.platform("meituan")
    fail_one_delivery(client, auth, app, settings, database, "meituan", report_id="m-1")
    start = utcnow()
    DELIVER.run(database, app.state.settings, now=start)
    emit_event(
        database,
        "meituan",
        now=start + timedelta(seconds=40),
        data={"report_id": "m-2"},
        type=outbox.EventType.POINTS_AWARDED,
    )
    # m-1's second attempt (due within 30 s of the first) and m-2's first, together.
    assert DELIVER.run(database, app.state.settings, now=start + timedelta(minutes=1)) == 2

    first = client.get("/v1/platform/webhook/deliveries", headers=meituan, params={"limit": 2})
    assert first.status_code == 200, first.text
    page = first.json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    rest = client.get(
        "/v1/platform/webhook/deliveries",
        headers=meituan,
        params={"limit": 2, "cursor": page["next_cursor"]},
    ).json()
    items = page["items"] + rest["items"]
    assert rest["next_cursor"] is None
    times = [i["attempted_at"] for i in items]
    assert times == sorted(times, reverse=True)
    assert {(i["type"], i["attempt"]) for i in items} == {
        ("report.updated", 1),
        ("report.updated", 2),
        ("points.awarded", 1),
    }
    for item in items:
        assert item["status_code"] is None and item["error"].startswith("ConnectError")
        assert item["duration_ms"] >= 0 and item["url"].endswith("/meituan")

    bad = client.get(
        "/v1/platform/webhook/deliveries", headers=meituan, params={"cursor": "not-a-cursor"}
    )
    assert_problem(bad, 422, "validation_error")

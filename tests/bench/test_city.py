"""The city bench's builder (bench/city.py), on a small map at a tiny scale: what it
writes is what the app and its worker would have written, and the app serves it.
PostGIS only (the builder is PostgreSQL's: COPY and set-based SQL)."""

import os
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url

import bench.city as city
from app.config import Environment, Settings
from app.db import Database
from app.main import create_app

pytestmark = pytest.mark.skipif(
    not os.environ.get("SENTINEL_TEST_DATABASE_URL"), reason="the city is built on PostGIS"
)


@pytest.fixture
def small_city(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, dict]]:
    """A city of one street per district and ten communities each, 2,000 tickets."""
    base = os.environ["SENTINEL_TEST_DATABASE_URL"]
    url = (
        make_url(base)
        .set(database=f"sentinel_city_{uuid.uuid4().hex[:10]}")
        .render_as_string(hide_password=False)
    )
    monkeypatch.setattr(
        city, "DISTRICTS", {k: (*v[:2], 1, v[3]) for k, v in city.DISTRICTS.items()}
    )
    monkeypatch.setattr(city, "COMMUNITIES", 160)
    monkeypatch.setattr(city, "UNITS", 60)
    monkeypatch.setattr(city, "OFFICE_STAFF", 60)
    try:
        yield url, city.build(pg_url=url, scale=0.002, seed=3)
    finally:
        city.drop_database(url)


def test_a_small_city_keeps_the_apps_rules_and_is_served(small_city: tuple[str, dict]) -> None:
    url, summary = small_city
    counts, statuses = summary["counts"], summary["tickets_by_status"]
    assert counts["tickets"] == 2000
    assert abs(counts["reports"] - 10_000) < 100
    open_ = sum(
        n for status, n in statuses.items() if status not in ("closed", "resolved", "rejected")
    )
    assert open_ == 40
    assert statuses["closed"] > 1500 and counts["points_ledger"] > counts["reports"]
    assert city.check(url) == []

    officer = next(s for s in summary["staff"] if s["role"] == "officer")
    settings = Settings(
        _env_file=None,
        env=Environment.TEST,
        database_url=url,
        secret_key="test-secret-key-that-is-long-enough-0123456789",
        embedded_worker=False,
    )
    database = Database(url)
    try:
        with TestClient(create_app(settings, database)) as client:
            token = client.post(
                "/v1/auth/token",
                data={"username": officer["username"], "password": summary["password"]},
            ).json()["access_token"]
            staff = {"Authorization": f"Bearer {token}"}
            queue = client.get("/v1/office/tickets", headers=staff, params={"limit": 50})
            assert queue.status_code == 200 and queue.json()["items"]
            ticket = queue.json()["items"][0]["id"]
            assert client.get(f"/v1/office/tickets/{ticket}", headers=staff).status_code == 200
            stats = client.get("/v1/office/stats", headers=staff).json()
            street = next(s for s in summary["streets"] if s["code"] == officer["area"])
            assert stats["open"] == street["open_tickets"] and stats["total"] > stats["open"]
            platform = {"Authorization": f"Bearer {summary['platforms'][0]['api_key']}"}
            riders = client.get("/v1/platform/riders/stats", headers=platform).json()["items"]
            assert riders and riders[0]["reports"] > 0
            assert client.get("/open311/v2/requests.json").status_code == 200
            assert client.get("/public/").status_code == 200
    finally:
        database.dispose()

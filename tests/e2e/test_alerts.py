"""An area alert's life through a live server and the platforms' webhook receivers on
127.0.0.1 (docs/webhooks.md, "Area alerts"): published to every platform with its area as
GeoJSON, grown on its schedule, a rider's sighting seen at once by the district, closed
and told to all; who may publish; the missing person's photos and sightings deleted a set
time after the close; every step audited."""

import io
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from PIL import Image
from shapely.geometry import Point, shape
from sqlalchemy import func, select

from app.config import Settings
from app.db import Database
from app.geo.coords import CoordSys, to_wgs84
from app.media import media_store
from app.media.service import sweep_orphans
from app.models import AlertEvent, AlertSighting, Media, utcnow
from app.ops.worker import JOBS
from tests.conftest import MEDIA_BACKENDS, Auth, either_media_backend
from tests.e2e.test_webhook_delivery import Receiver, receiver, set_hook, verify  # noqa: F401

DELIVER = next(j for j in JOBS if j.name == "deliver_webhooks")
GROW = next(j for j in JOBS if j.name == "grow_and_expire_alerts")
PURGE = next(j for j in JOBS if j.name == "purge_closed_alerts")
JIANGSU_GCJ = (121.4330, 31.2200)
M_LAT = 1 / 111_320
# A ring that crosses itself: not a polygon.
BOW_TIE = [[121.40, 31.20], [121.45, 31.23], [121.40, 31.23], [121.45, 31.20], [121.40, 31.20]]


@pytest.fixture(params=MEDIA_BACKENDS)
def media_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    return either_media_backend(request)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(
        update={"allow_private_webhooks": True, "rider_sightings_per_hour": 2}
    )


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise((400, 300), 30 + seed).convert("RGB").save(buffer, "JPEG")
    return buffer.getvalue()


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def north_of_centre(metres: float) -> dict[str, float]:
    lon, lat = to_wgs84(*JIANGSU_GCJ, CoordSys.GCJ02)
    return {"lat": lat + metres * M_LAT, "lon": lon}


def events(database: Database) -> list[str]:
    with database.session() as session:
        return list(session.scalars(select(AlertEvent.type).order_by(AlertEvent.created_at)))


# The photos' blobs are written by the real clock: on a clock moved back they would
# seem newer than now, and be spared by the delete.
@pytest.mark.wall_clock(ahead_is_fine=True)
def test_an_alerts_life_through_the_platforms_webhooks(
    http: httpx.Client,
    auth: Auth,
    database: Database,
    settings: Settings,
    receiver: Receiver,  # noqa: F811
) -> None:
    secrets = {
        p: set_hook(http, auth, p, f"{receiver.url}/hooks/{p}") for p in ("meituan", "eleme")
    }
    district = auth.staff("changning")
    photo = ok(
        http.post(
            "/v1/office/alerts/photos",
            headers=district,
            files={"file": ("p.jpg", jpeg(1), "image/jpeg")},
        ),
        201,
    )
    published = ok(
        http.post(
            "/v1/office/alerts",
            headers=district,
            json={
                "kind": "missing_person",
                "title": "寻找走失老人",
                "description": "男，78岁，身高170cm，灰色外套；见到请报告并拨打110，勿追赶",
                "media_ids": [photo["id"]],
                "area": {
                    "center": {"lon": JIANGSU_GCJ[0], "lat": JIANGSU_GCJ[1]},
                    "radius_m": 2000,
                },
                "coord_sys": "gcj02",
                "expires_at": (utcnow() + timedelta(days=2)).isoformat(),
                "growth": [{"after_min": 60, "radius_m": 5000}],
            },
        ),
        201,
    )
    alert_id = published["id"]
    assert published["status"] == "active" and published["radius_m"] == 2000
    assert published["growth"] == [
        {"after_min": 0, "radius_m": 2000},
        {"after_min": 60, "radius_m": 5000},
    ]

    # Published: every platform is told, signed, with the area as GeoJSON.
    now = utcnow()
    assert DELIVER.run(database, settings, now=now) == 2
    told = {r.path.rsplit("/", 1)[-1]: r for r in receiver.requests}
    assert set(told) == {"meituan", "eleme"}
    for platform, request in told.items():
        assert verify(secrets[platform], request.body, request.headers["X-Sentinel-Signature"])
        assert request.event["type"] == "alert.published"
        area = shape(request.event["data"]["area"])
        assert area.geom_type == "Polygon"
        assert area.contains(Point(north_of_centre(1500)["lon"], north_of_centre(1500)["lat"]))
        assert not area.contains(Point(north_of_centre(3000)["lon"], north_of_centre(3000)["lat"]))
    # Riders inside see it (and its photo); riders outside do not, yet.
    rider = auth.rider("meituan", "sentinel-1")
    inside = ok(http.get("/v1/alerts/active", headers=rider, params=north_of_centre(1500)))
    assert [a["id"] for a in inside["items"]] == [alert_id]
    assert ok(http.get("/v1/alerts/active", headers=rider, params=north_of_centre(3000))) == {
        "items": []
    }
    shown = http.get(inside["items"][0]["photos"][0], headers=rider)
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    assert (
        http.get(inside["items"][0]["photos"][0], headers=auth.platform("eleme")).status_code == 200
    )

    # An hour on, the schedule grows the area: alert.updated to every platform.
    assert GROW.run(database, settings, now=now + timedelta(minutes=30)) == 0
    assert GROW.run(database, settings, now=now + timedelta(minutes=61)) == 1
    assert DELIVER.run(database, settings, now=now + timedelta(minutes=61)) == 2
    grown = [r for r in receiver.requests if r.event["type"] == "alert.updated"]
    assert len(grown) == 2 and all(r.event["data"]["radius_m"] == 5000 for r in grown)
    assert shape(grown[0].event["data"]["area"]).contains(
        Point(north_of_centre(3000)["lon"], north_of_centre(3000)["lat"])
    )

    # A sighting, with a photo: the district sees it at once.
    picture = ok(
        http.post("/v1/media", headers=rider, files={"file": ("s.jpg", jpeg(2), "image/jpeg")}), 201
    )
    sighting = ok(
        http.post(
            f"/v1/alerts/{alert_id}/sightings",
            headers=rider,
            json={
                **north_of_centre(800),
                "note": "在便利店门口，往西走了",
                "media_ids": [picture["id"]],
            },
        ),
        201,
    )
    seen = ok(http.get(f"/v1/office/alerts/{alert_id}", headers=district))
    assert [s["id"] for s in seen["sightings"]] == [sighting["id"]]
    assert seen["sightings"][0]["note"] == "在便利店门口，往西走了"
    assert seen["sightings"][0]["rider"]["platform"] == "meituan"
    assert "rider_id" not in seen["sightings"][0]["rider"]
    assert http.get(seen["sightings"][0]["photos"][0], headers=district).status_code == 200
    # Sightings are rate-limited (two an hour here).
    ok(http.post(f"/v1/alerts/{alert_id}/sightings", headers=rider, json=north_of_centre(900)), 201)
    limited = http.post(
        f"/v1/alerts/{alert_id}/sightings", headers=rider, json=north_of_centre(900)
    )
    assert limited.status_code == 429 and limited.headers["Retry-After"]
    # Nothing the platforms were told names a rider or a sighting.
    for request in receiver.requests:
        assert b"sentinel-1" not in request.body and "sighting" not in request.event["data"]

    # The daily sweep of orphan blobs keeps the alert's photo and the sighting's.
    assert sweep_orphans(database, media_store(settings), older_than=utcnow() + timedelta(1)) == 0

    # Closed: told to every platform; gone for riders.
    closed = ok(
        http.post(
            f"/v1/office/alerts/{alert_id}/close",
            headers=district,
            json={"outcome": "found", "note": "已找到，平安"},
        )
    )
    assert closed["status"] == "closed" and closed["outcome"] == "found"
    assert DELIVER.run(database, settings, now=utcnow()) == 2
    ended = [r for r in receiver.requests if r.event["type"] == "alert.closed"]
    assert {r.path.rsplit("/", 1)[-1] for r in ended} == {"meituan", "eleme"}
    assert all(r.event["data"]["outcome"] == "found" for r in ended)
    assert ok(http.get("/v1/alerts/active", headers=rider, params=north_of_centre(100))) == {
        "items": []
    }
    assert http.get(inside["items"][0]["photos"][0], headers=rider).status_code == 404
    late = http.post(f"/v1/alerts/{alert_id}/sightings", headers=rider, json=north_of_centre(1))
    assert late.status_code == 404
    again = http.post(
        f"/v1/office/alerts/{alert_id}/close", headers=district, json={"outcome": "found"}
    )
    assert again.status_code == 409

    # A platform sees only its own deliveries.
    deliveries = ok(http.get("/v1/platform/webhook/deliveries", headers=auth.platform("eleme")))
    assert len(deliveries["items"]) == 3  # published, updated, closed: eleme's own

    # A set time after the close, the missing person's photos, words and sightings go.
    store = media_store(settings)
    blobs_before = {b.key for b in store.blobs()}
    closed_at = datetime.fromisoformat(closed["closed_at"])
    assert PURGE.run(database, settings, now=closed_at + timedelta(days=6)) == 0
    assert PURGE.run(database, settings, now=closed_at + timedelta(days=7, minutes=1)) == 1
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(AlertSighting)) == 0
        assert session.get(Media, uuid.UUID(picture["id"])) is None
    after = ok(http.get(f"/v1/office/alerts/{alert_id}", headers=district))
    assert after["description"] is None and after["sightings"] == [] and after["photos"] == []
    assert after["purged_at"] is not None and after["outcome"] == "found"
    blobs_after = {b.key for b in store.blobs()}
    assert (
        len(blobs_before - blobs_after) == 4
    )  # the alert's photo and the sighting's, each with a thumbnail
    steps = ["published", "grown", "sighting", "sighting", "closed", "purged"]
    assert sorted(events(database)) == sorted(steps)


def test_who_may_publish_and_see_an_alert(
    http: httpx.Client, auth: Auth, database: Database
) -> None:
    body = {
        "kind": "hazard",
        "title": "路面塌陷，请绕行",
        "area": {"area_code": "310105002"},
        "expires_at": (utcnow() + timedelta(hours=6)).isoformat(),
    }
    officer = auth.staff("officer_310105002")
    refused = http.post("/v1/office/alerts", headers=officer, json=body)
    assert refused.status_code == 403
    assert (
        http.post("/v1/office/alerts", headers=auth.rider("meituan", "x"), json=body).status_code
        == 403
    )
    assert (
        http.post("/v1/office/alerts", headers=auth.platform("meituan"), json=body).status_code
        == 403
    )
    # An admin lets the officer publish.
    granted = http.patch(
        "/v1/admin/staff/officer_310105002",
        headers=auth.staff("admin"),
        json={"may_publish_alerts": True},
    )
    assert granted.status_code == 200 and granted.json()["may_publish_alerts"] is True
    alert = ok(http.post("/v1/office/alerts", headers=officer, json=body), 201)
    # Its area is the street's boundary; the district and its officers read it.
    assert alert["area_code"] == "310105002" and alert["area"]["type"] in (
        "Polygon",
        "MultiPolygon",
    )
    listed = ok(http.get("/v1/office/alerts", headers=auth.staff("changning")))
    assert [a["id"] for a in listed] == [alert["id"]]
    # Refusals name what is wrong, and leave nothing.
    for wrong, field in (
        ({"area": {"area_code": "310104001"}}, "area.area_code"),  # another district
        ({"area": {"center": {"lat": 31.24, "lon": 121.50}, "radius_m": 500}}, "area.center"),
        ({"area": {}}, "area"),
        ({"expires_at": (utcnow() - timedelta(hours=1)).isoformat()}, "expires_at"),
        ({"expires_at": (utcnow() + timedelta(days=40)).isoformat()}, "expires_at"),
        ({"growth": [{"after_min": 60, "radius_m": 5000}]}, "growth"),  # not a circle
        ({"kind": "riot"}, "kind"),
        ({"media_ids": ["9b2f0c5e-0000-4000-8000-000000000000"]}, "media_ids"),
        (
            {"area": {"geometry": {"type": "Polygon", "coordinates": [BOW_TIE]}}},
            "area.geometry",
        ),
    ):
        response = http.post(
            "/v1/office/alerts", headers=auth.staff("changning"), json={**body, **wrong}
        )
        assert response.status_code == 422, (wrong, response.text)
        fields = {e["field"] for e in response.json().get("errors", [])}
        assert any(f.startswith(field) for f in fields), (wrong, fields)
    assert len(ok(http.get("/v1/office/alerts", headers=auth.staff("changning")))) == 1
    assert events(database) == ["published"]

"""A rider's access and erasure requests (docs/privacy.md), through a live server, with
the platform's webhook receiver on 127.0.0.1: the export holds everything held about the
rider and its photo links work with the platform's key; after the erasure the rider's
tokens fail, their export and stats are 404, their photos and words are gone, every
statistic is what it was, and their platform id is in no table, log line or webhook sent
after. Run on both photo stores."""

import json
import logging
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.media import media_store
from app.models import Media, OutboxEvent, Report, Rider, utcnow
from app.ops.worker import JOBS
from tests.conftest import MEDIA_BACKENDS, Auth, either_media_backend
from tests.e2e.test_webhook_delivery import Receiver, receiver, set_hook  # noqa: F401
from tests.helpers import window_around_now
from tests.privacy.test_privacy_purge import everything_stored
from tests.reporting import png, report

DELIVER = next(j for j in JOBS if j.name == "deliver_webhooks")
# Not only ASCII: stored JSON may escape it (\u9a91\u624b), and the erasure must find it.
SUBJECT = "mt-骑手-erasable-0042"


def names_subject(body: bytes) -> bool:
    return SUBJECT.encode() in body or json.dumps(SUBJECT)[1:-1].encode() in body


OFFICER = "officer_310105002"


@pytest.fixture(params=MEDIA_BACKENDS)
def media_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    return either_media_backend(request)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"allow_private_webhooks": True})


def ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def upload(http: httpx.Client, rider: dict[str, str], data: bytes) -> str:
    response = http.post("/v1/media", headers=rider, files={"file": ("p.png", data, "image/png")})
    return str(ok(response, 201)["id"])


def act(http: httpx.Client, staff: dict[str, str], ticket: str, action: str) -> None:
    body = {"action": action, **({"note": "已处理"} if action == "resolve" else {})}
    ok(http.post(f"/v1/office/tickets/{ticket}/actions", headers=staff, json=body))


def statistics(http: httpx.Client, auth: Auth, window: str) -> dict[str, Any]:
    meituan = auth.platform("meituan")
    return {
        "district": ok(http.get("/v1/office/stats", headers=auth.staff("changning"))),
        "street": ok(http.get("/v1/office/stats", headers=auth.staff(OFFICER))),
        "by_street": ok(
            http.get(f"/v1/platform/summary?group_by=street&{window}", headers=meituan)
        ),
        "by_category": ok(
            http.get(f"/v1/platform/summary?group_by=category&{window}", headers=meituan)
        ),
    }


@pytest.fixture
def subject(http: httpx.Client, auth: Auth, receiver: Receiver) -> dict[str, Any]:  # noqa: F811
    """A rider with two reports (photos, words), a verification and points, on a
    platform with a webhook."""
    set_hook(http, auth, "meituan", f"{receiver.url}/hooks")
    token = ok(
        http.post(
            "/v1/platform/rider-tokens",
            headers=auth.platform("meituan"),
            json={"rider_id": SUBJECT, "display_name": "张三 13800001234"},
        ),
        201,
    )
    rider = {"Authorization": f"Bearer {token['token']}"}
    photos = [upload(http, rider, png((n * 40, 90, 90))) for n in range(3)]
    first = ok(
        http.post(
            "/v1/reports",
            headers=rider,
            json=report(
                description="我家楼下，每天8点出门", address_hint="3号楼", media_ids=photos[:2]
            ),
        ),
        201,
    )
    second = ok(
        http.post("/v1/reports", headers=rider, json=report("waste", description="垃圾")), 201
    )
    officer = auth.staff(OFFICER)
    act(http, officer, first["ticket"]["id"], "accept")
    # A ticket someone else reported, resolved; the subject verifies it with a photo.
    other = auth.rider("eleme", "someone-else")
    theirs = ok(http.post("/v1/reports", headers=other, json=report("fire_exit_blocked")), 201)
    act(http, officer, theirs["ticket"]["id"], "accept")
    act(http, officer, theirs["ticket"]["id"], "resolve")
    ok(
        http.post(
            f"/v1/tickets/{theirs['ticket']['id']}/verifications",
            headers=rider,
            json={**report(east=10), "fixed": True, "note": "修好了", "media_ids": [photos[2]]},
        ),
        201,
    )
    return {"rider": rider, "photos": photos, "tickets": [first["ticket"], second["ticket"]]}


def test_a_rider_export_holds_everything_held_and_its_links_work(
    http: httpx.Client, auth: Auth, subject: dict[str, Any]
) -> None:
    meituan = auth.platform("meituan")
    response = http.get(f"/v1/platform/riders/{SUBJECT}/export", headers=meituan)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.headers["cache-control"] == "no-store"
    export = response.json()
    assert export["rider"]["rider_id"] == SUBJECT
    assert export["rider"]["display_name"] == "张三 13800001234"
    assert export["rider"]["platform"] == "meituan"
    reports = export["reports"]
    assert [r["ticket_ref"] for r in reports] == [t["ref"] for t in subject["tickets"]]
    assert reports[0]["description"] == "我家楼下，每天8点出门"
    assert reports[0]["address_hint"] == "3号楼"
    assert reports[0]["lat"] == pytest.approx(report()["lat"], abs=1e-6)
    assert reports[0]["photos"] == [f"/v1/media/{p}" for p in subject["photos"][:2]]
    assert [v["note"] for v in export["verifications"]] == ["修好了"]
    assert {p["id"] for p in export["photos"]} == set(subject["photos"])
    me = ok(http.get("/v1/me", headers=subject["rider"]))
    assert (
        export["totals"]["points"]
        == me["points"]
        == sum(line["points"] for line in export["points_ledger"])
    )
    assert export["totals"]["reports"] == 2 and export["totals"]["verifications"] == 1
    # The links work with the platform's key, and give what the rider gets.
    for link in reports[0]["photos"]:
        assert (
            http.get(link, headers=meituan).content
            == http.get(link, headers=subject["rider"]).content
        )
    # Another platform can neither export this rider nor fetch their photos.
    eleme = auth.platform("eleme")
    assert http.get(f"/v1/platform/riders/{SUBJECT}/export", headers=eleme).status_code == 404
    assert http.get(reports[0]["photos"][0], headers=eleme).status_code == 404
    assert http.get(f"/v1/platform/riders/{SUBJECT}/export").status_code == 401


# The photos' blobs are written by the real clock: on a clock moved back they would
# seem newer than now, and be spared by the delete.
@pytest.mark.wall_clock(ahead_is_fine=True)
def test_an_erased_rider_is_gone_everywhere_and_no_statistic_changes(
    http: httpx.Client,
    auth: Auth,
    database: Database,
    settings: Settings,
    subject: dict[str, Any],
    receiver: Receiver,  # noqa: F811
    capfd: pytest.CaptureFixture[str],
    count_rows: Any,
) -> None:
    meituan = auth.platform("meituan")
    assert DELIVER.run(database, settings, now=utcnow()) > 0  # the events so far, delivered
    assert any(names_subject(r.body) for r in receiver.requests)
    # Events naming the rider, still waiting to be sent when the erasure comes.
    act(http, auth.staff(OFFICER), subject["tickets"][0]["id"], "resolve")
    with database.session() as session:
        waiting = session.scalars(select(OutboxEvent).where(OutboxEvent.state == "pending"))
        assert any(SUBJECT in json.dumps(e.data, ensure_ascii=False) for e in waiting)
    sent_before = len(receiver.requests)
    window = window_around_now()
    before = statistics(http, auth, window)
    assert before["by_street"]["items"], "the window holds the rider's reports"
    store = media_store(settings)
    blobs_before = {b.key for b in store.blobs()}
    with database.session() as session:
        rider_uuid = session.scalar(select(Rider.id).where(Rider.external_id == SUBJECT))
        media_before = session.scalar(select(Media.id).where(Media.rider_id == rider_uuid))
    assert media_before is not None
    assert SUBJECT in everything_stored(database)
    tables = ("tickets", "reports", "verifications", "media", "points_ledger", "riders")
    rows_before = {table: count_rows(table) for table in tables}

    # Another platform cannot erase this rider.
    eleme = auth.platform("eleme")
    assert http.delete(f"/v1/platform/riders/{SUBJECT}", headers=eleme).status_code == 404
    erased = http.delete(f"/v1/platform/riders/{SUBJECT}", headers=meituan)
    assert erased.status_code == 204
    # The office's numbers and the platform's totals are what they were; the rows are
    # the same but for the rider's three photos.
    assert statistics(http, auth, window) == before
    assert {t: count_rows(t) for t in tables} == {**rows_before, "media": rows_before["media"] - 3}

    logging.getLogger("sentinel.access").setLevel(logging.INFO)
    try:
        capfd.readouterr()
        # The rider's token stops working at once, for reads and for reports.
        assert http.get("/v1/me", headers=subject["rider"]).status_code == 401
        assert http.post("/v1/reports", headers=subject["rider"], json=report()).status_code == 401
        for path in ("", "/export", "/stats"):
            url = f"/v1/platform/riders/{SUBJECT}{path}"
            assert http.get(url, headers=meituan).status_code == 404
        assert http.delete(f"/v1/platform/riders/{SUBJECT}", headers=meituan).status_code == 404
        # A path below the riders' that matches no route (a typo) is not logged as sent.
        assert (
            http.get(f"/v1/platform/riders/{SUBJECT}/exports", headers=meituan).status_code == 404
        )
        # A new event on a ticket the rider reported, and those waiting: sent now.
        act(http, auth.staff(OFFICER), subject["tickets"][0]["id"], "close")
        assert DELIVER.run(database, settings, now=utcnow()) > 0
        logged = capfd.readouterr().err
    finally:
        logging.getLogger("sentinel.access").setLevel(logging.WARNING)
    assert "/v1/platform/riders/{rider_id}/export" in logged  # the access log was written
    assert SUBJECT not in logged
    after = receiver.requests[sent_before:]
    assert after and not any(names_subject(r.body) for r in after)

    # Nothing held names the rider: no table, no photo.
    stored = everything_stored(database)
    assert SUBJECT not in stored and "张三" not in stored and "13800001234" not in stored
    assert "我家楼下" not in stored and "修好了" not in stored
    with database.session() as session:
        assert session.scalar(select(Media.id).where(Media.rider_id == rider_uuid)) is None
        descriptions = set(
            session.scalars(select(Report.description).where(Report.rider_id == rider_uuid))
        )
        assert descriptions == {None}
    blobs_after = {b.key for b in store.blobs()}
    assert len(blobs_before - blobs_after) == 6 and not blobs_after - blobs_before
    for photo in subject["photos"]:
        assert http.get(f"/v1/media/{photo}", headers=meituan).status_code == 404
    # The same rider id later is a new rider, with nothing of the old one.
    token = ok(
        http.post("/v1/platform/rider-tokens", headers=meituan, json={"rider_id": SUBJECT}), 201
    )
    me = ok(http.get("/v1/me", headers={"Authorization": f"Bearer {token['token']}"}))
    assert me["points"] == 0 and me["reports"] == 0
    assert uuid.UUID(token["rider"]["id"]) != rider_uuid

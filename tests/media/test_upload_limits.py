"""A rider's share of photos (docs/api.md, "Rider API"; docs/security.md, API4): so many
an hour and a day, refused with when to try again; and photos nobody used swept within
hours, not kept until the retention purge."""

import uuid
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.media import media_store
from app.media.service import media_keys
from app.models import JobMark, Media
from app.privacy import sweep_unused_photos
from tests.conftest import Auth, Clock, Headers
from tests.helpers import assert_problem, post_partly
from tests.reporting import CountRows, png, report, submit, upload

OFFICER = "officer_310105002"


def send(client: TestClient, rider: Headers, data: bytes) -> Any:
    return client.post("/v1/media", headers=rider, files={"file": ("p.png", data, "image/png")})


def test_a_riders_photos_of_an_hour_are_limited_and_the_limit_lifts_as_they_age(
    client: TestClient,
    settings: Settings,
    clock: Clock,
    r1: Headers,
    r2: Headers,
    count_rows: CountRows,
) -> None:
    settings.rider_photos_per_hour = 3
    first = png((1, 1, 1))
    upload(client, r1, first)
    clock.advance(minutes=10)
    upload(client, r1, png((2, 2, 2)))
    clock.advance(minutes=10)
    upload(client, r1, png((3, 3, 3)))
    clock.advance(minutes=10)

    refused = send(client, r1, png((4, 4, 4)))

    assert_problem(refused, 429, "upload_rate_limited")
    # The first photo of the hour leaves it 30 minutes from now.
    assert refused.headers["retry-after"] == str(30 * 60)
    assert refused.json()["retry_after"] == 30 * 60
    assert count_rows("media") == 3
    # The same bytes again are the photo stored before, not a new one; another rider has
    # a share of their own.
    assert send(client, r1, first).status_code == 200
    assert send(client, r2, png((4, 4, 4))).status_code == 201

    clock.advance(minutes=31)
    assert send(client, r1, png((4, 4, 4))).status_code == 201


def test_a_riders_photos_of_a_day_are_limited_too(
    client: TestClient, settings: Settings, clock: Clock, r1: Headers
) -> None:
    settings.rider_photos_per_day = 4
    for n in range(4):
        upload(client, r1, png((n, 9, 9)))
        clock.advance(hours=2)

    refused = send(client, r1, png((9, 9, 9)))

    assert_problem(refused, 429, "upload_rate_limited")
    assert refused.headers["retry-after"] == str(16 * 3600)  # the first is 8 hours old
    clock.advance(hours=16)
    assert send(client, r1, png((9, 9, 9))).status_code == 201


def test_every_photo_sent_to_be_decoded_counts_whatever_became_of_it(
    client: TestClient, settings: Settings, r1: Headers, count_rows: CountRows
) -> None:
    settings.rider_photos_per_hour = 2
    for n in range(2):
        refused = send(client, r1, png((6, 6, 6))[:40] + bytes([n]))  # cut short
        assert refused.status_code == 415, refused.text

    assert_problem(send(client, r1, png((7, 7, 7))), 429, "upload_rate_limited")
    assert count_rows("media") == 0


def test_a_report_may_not_name_a_photo_uploaded_too_long_ago(
    client: TestClient, settings: Settings, clock: Clock, r1: Headers, count_rows: CountRows
) -> None:
    photo = upload(client, r1, png((5, 5, 5)))
    clock.advance(hours=settings.unused_photo_hours, minutes=1)

    refused = client.post("/v1/reports", headers=r1, json=report(media_ids=[photo]))

    assert_problem(refused, 422, "unknown_media")
    assert "too long ago" in refused.json()["detail"]
    assert count_rows("reports") == 0
    # Uploaded again, the same bytes are the same photo, which may be used again.
    again = send(client, r1, png((5, 5, 5)))
    assert again.status_code == 200 and again.json()["id"] == photo
    submit(client, r1, report(media_ids=[photo]))


def photos(database: Database) -> set[str]:
    with database.session() as session:
        return {str(m) for m in session.scalars(select(Media.id))}


def test_photos_nobody_used_are_swept_within_hours_from_where_the_last_sweep_stopped(
    client: TestClient,
    auth: Auth,
    settings: Settings,
    database: Database,
    clock: Clock,
    r1: Headers,
) -> None:
    store = media_store(settings)
    keeper = auth.rider("eleme", "keeper")
    start = clock.now
    used = upload(client, r1, png((10, 10, 10)))
    unused = upload(client, r1, png((20, 20, 20)))
    revived = upload(client, r1, png((25, 25, 25)))
    seen = upload(client, keeper, png((30, 30, 30)))
    ticket = submit(client, r1, report(media_ids=[used]))["ticket"]["id"]
    officer = auth.staff(OFFICER)
    for action in ("accept", "resolve"):
        acted = client.post(
            f"/v1/office/tickets/{ticket}/actions",
            headers=officer,
            json={"action": action, "note": "已修复"},
        )
        assert acted.status_code == 200, acted.text
    verified = client.post(
        f"/v1/tickets/{ticket}/verifications",
        headers=keeper,
        json={**report(east=20), "fixed": True, "media_ids": [seen]},
    )
    assert verified.status_code == 201, verified.text
    unused_blobs = set(_keys(database, unused))

    # Within the hours a photo may be used, and the few minutes after: kept.
    hours = settings.unused_photo_hours
    assert (
        sweep_unused_photos(
            database, store, now=start + timedelta(hours=hours, minutes=5), settings=settings
        )
        == 0
    )
    assert unused in photos(database)
    # Sent again by a rider whose report failed: usable for as long as a new upload.
    clock.now = start + timedelta(hours=hours, minutes=8)
    assert send(client, r1, png((25, 25, 25))).json()["id"] == revived

    swept = sweep_unused_photos(
        database, store, now=start + timedelta(hours=hours, minutes=11), settings=settings
    )

    assert swept == 1
    assert photos(database) == {used, seen, revived}
    assert not unused_blobs & {b.key for b in store.blobs()}
    assert client.get(f"/v1/media/{unused}", headers=r1).status_code == 404
    with database.session() as session:
        # Where the sweep stopped: the last photo it looked at (all were sent at the start).
        mark = session.get_one(JobMark, "unused_photos")
        assert mark.at == start

    # The next run starts at its mark: the photos sent (or sent again) since are looked
    # at, once old.
    clock.now = start + timedelta(hours=hours, minutes=20)
    later = upload(client, r1, png((40, 40, 40)))
    assert sweep_unused_photos(database, store, now=clock.now, settings=settings) == 0
    assert later in photos(database)
    assert (
        sweep_unused_photos(
            database, store, now=clock.now + timedelta(hours=hours, minutes=11), settings=settings
        )
        == 2
    )
    assert photos(database) == {used, seen}

    # A photo behind the mark (as if it had been there before) is never looked at
    # again: each run looks at what came since, not at every photo.
    with database.transaction() as session:
        like = session.get_one(Media, uuid.UUID(used))
        behind = Media(
            rider_id=like.rider_id,
            upload_sha256="0" * 64,
            sha256=like.sha256,
            thumbnail_sha256=like.thumbnail_sha256,
            content_type=like.content_type,
            width=like.width,
            height=like.height,
            bytes=like.bytes,
            created_at=start - timedelta(hours=1),
        )
        session.add(behind)
    assert (
        sweep_unused_photos(database, store, now=clock.now + timedelta(days=30), settings=settings)
        == 0
    )
    assert str(behind.id) in photos(database)


def _keys(database: Database, media_id: str) -> list[str]:
    with database.session() as session:
        return list(media_keys(session.get_one(Media, uuid.UUID(media_id))))


def test_a_strangers_upload_is_refused_before_its_body_is_read(served: str) -> None:
    answer = post_partly(served, "/v1/media", declared=8 * 1024 * 1024)
    assert answer.status == 401 and '"unauthenticated"' in answer.text
    forged = post_partly(
        served, "/v1/media", declared=8 * 1024 * 1024, headers={"Authorization": "Bearer x.y.z"}
    )
    assert forged.status == 401

"""The photo store on S3-compatible object storage, and what both stores share: the sweep
of orphans (docs/operations.md, "Photos").

The object store is moto's standalone server in its own process on 127.0.0.1; what is in
the bucket is read back with a client of the test's own, not through the service.
"""

import io
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.media import media_store
from app.media.service import remove_if_idle, sweep_orphans
from app.media.store import blob_key
from tests.apps import free_port
from tests.conftest import MEDIA_BACKENDS, Auth, Baseline, either_media_backend
from tests.helpers import assert_problem
from tests.object_store import ObjectStoreServer


def jpeg(seed: int, size: tuple[int, int] = (64, 48)) -> bytes:
    buffer = io.BytesIO()
    Image.effect_noise(size, 40 + seed).convert("RGB").save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def upload(client: TestClient, rider: dict[str, str], data: bytes) -> Any:
    return client.post("/v1/media", headers=rider, files={"file": ("p.jpg", data, "image/jpeg")})


@pytest.fixture
def media_backend(photo_bucket: dict[str, Any]) -> dict[str, Any]:
    return photo_bucket


def bucket_and_prefix(settings: Settings) -> tuple[str, str]:
    parts = urlsplit(settings.media_url)
    return parts.netloc, parts.path.strip("/")


def test_photos_are_objects_named_by_their_content_below_the_prefix(
    client: TestClient, auth: Auth, settings: Settings, object_store: ObjectStoreServer
) -> None:
    rider = auth.rider("meituan", "s3-1")
    response = upload(client, rider, jpeg(1, (800, 600)))
    assert response.status_code == 201, response.text
    body = response.json()

    bucket, prefix = bucket_and_prefix(settings)
    objects = object_store.objects(bucket)
    assert len(objects) == 2  # the photo and its thumbnail
    assert f"{prefix}/{blob_key(body['sha256'], 'jpg')}" in objects
    assert all(key.startswith(f"{prefix}/") for key in objects)
    stored = object_store.client().get_object(
        Bucket=bucket, Key=f"{prefix}/{blob_key(body['sha256'], 'jpg')}"
    )
    assert stored["ContentType"] == "image/jpeg"
    content = stored["Body"].read()

    served = client.get(f"/v1/media/{body['id']}", headers=rider)
    assert served.status_code == 200
    assert served.content == content
    assert served.headers["content-length"] == str(len(content))
    assert served.headers["cache-control"] == "private, max-age=86400"
    # No redirect to the store: its URL would outlive the access check.
    assert "location" not in served.headers
    # Someone else is refused before any byte is read from the store.
    other = client.get(f"/v1/media/{body['id']}", headers=auth.rider("meituan", "s3-2"))
    assert_problem(other, 404, "not_found")


def test_an_unreachable_store_is_a_503_to_retry_and_leaves_no_row(
    app: FastAPI, client: TestClient, auth: Auth, count_rows: Any
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={
            "media_url": "s3://photos/sentinel",
            "s3_endpoint_url": f"http://127.0.0.1:{free_port()}",
        }
    )
    rider = auth.rider("meituan", "s3-down")
    before = count_rows("media")

    response = upload(client, rider, jpeg(2))

    assert_problem(response, 503, "media_store_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert count_rows("media") == before


def test_a_missing_bucket_is_a_503_not_a_server_error(
    app: FastAPI, client: TestClient, auth: Auth, object_store: ObjectStoreServer
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"media_url": "s3://no-such-bucket/x", "s3_endpoint_url": object_store.endpoint_url}
    )
    response = upload(client, auth.rider("meituan", "s3-nobucket"), jpeg(3))
    assert_problem(response, 503, "media_store_unavailable")


# --- the sweep of orphans, on both stores ----------------------------------------------


@pytest.fixture(params=MEDIA_BACKENDS)
def either_store(request: pytest.FixtureRequest) -> dict[str, Any]:
    return either_media_backend(request)


@pytest.mark.wall_clock
def test_the_sweep_removes_old_blobs_no_photo_names_and_keeps_the_rest(
    base_settings: Settings,
    either_store: dict[str, Any],
    database: Database,
    baseline: Baseline,
) -> None:
    settings = base_settings.model_copy(update=either_store)
    store = media_store(settings)
    orphan, young = blob_key("a" * 64, "jpg"), blob_key("b" * 64, "jpg")
    store.put(orphan, b"left by a crash", "image/jpeg")
    with TestClient(_app(settings, database)) as client:
        rider = Auth(client, baseline).rider("meituan", "sweep")
        kept = upload(client, rider, jpeg(4, (640, 480))).json()
    kept_keys = {blob_key(kept["sha256"], "jpg")}
    # S3 keeps a write's time to the second: the cutoff is the next whole second, after
    # every write so far and before the young one (written 50 ms on: a file's time comes
    # from a clock that may lag the one Python reads by a few milliseconds).
    cutoff = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((cutoff - datetime.now(UTC)).total_seconds() + 0.05)
    store.put(young, b"a transaction still running", "image/jpeg")
    if settings.media_url.startswith("/"):
        # A temporary file of a write cut off by a crash is an orphan too.
        stray = Path(settings.media_url) / "aa" / "aa" / ".incoming-x"
        stray.write_bytes(b"half")
        os.utime(stray, (cutoff.timestamp() - 10, cutoff.timestamp() - 10))

    removed = sweep_orphans(database, store, older_than=cutoff)

    names = {stored.key for stored in store.blobs()}
    assert orphan not in names
    assert young in names
    assert kept_keys <= names and len(names) == 3  # the photo, its thumbnail, the young one
    assert removed == (2 if settings.media_url.startswith("/") else 1)
    assert sweep_orphans(database, store, older_than=cutoff) == 0


def _app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database)


def test_the_thumbnail_comes_from_the_bucket_and_a_lost_object_is_a_404(
    client: TestClient, auth: Auth, settings: Settings, object_store: ObjectStoreServer
) -> None:
    rider = auth.rider("meituan", "s3-routes")
    media = upload(client, rider, jpeg(5, (640, 480))).json()
    thumbnail = client.get(f"/v1/media/{media['id']}/thumbnail", headers=rider)
    assert thumbnail.status_code == 200
    with Image.open(io.BytesIO(thumbnail.content)) as image:
        assert image.size == (320, 240)
    bucket, prefix = bucket_and_prefix(settings)
    object_store.client().delete_object(
        Bucket=bucket, Key=f"{prefix}/{blob_key(media['sha256'], 'jpg')}"
    )
    gone = client.get(f"/v1/media/{media['id']}", headers=rider)
    assert_problem(gone, 404, "not_found")


@pytest.mark.wall_clock
def test_a_delete_spares_a_blob_written_within_the_grace_period(
    base_settings: Settings, either_store: dict[str, Any]
) -> None:
    """Another upload of the same bytes may be about to commit: its fresh write keeps the
    blob from the delete of an older photo with those bytes (the sweep takes it later)."""
    settings = base_settings.model_copy(update={**either_store, "media_delete_grace_s": 3600})
    store = media_store(settings)
    key = blob_key("c" * 64, "jpg")
    store.put(key, b"just written again", "image/jpeg")
    remove_if_idle(store, [key])
    assert store.exists(key)
    if settings.media_url.startswith("/"):
        path = Path(settings.media_url) / key
        two_hours_ago = time.time() - 7200
        os.utime(path, (two_hours_ago, two_hours_ago))
        remove_if_idle(store, [key])
        assert not store.exists(key)

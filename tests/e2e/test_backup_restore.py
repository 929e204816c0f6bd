"""``sentinel backup`` while a real ``sentinel serve`` takes a burst of reports, then
``sentinel restore`` into a fresh database and photo store: every report acknowledged
before the backup began is there, with its photo (docs/operations.md, "Backup and
restore")."""

import io
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, make_url, select, text

from app.config import Settings
from app.db import Database
from app.media.store import DirectoryStore, blob_key
from app.models import Media, Report, ReportMedia
from tests.apps import http_client
from tests.conftest import Auth
from tests.e2e.processes import SENTINEL, ServerProcess, environment
from tests.reporting import report

pytestmark = pytest.mark.processes


def photo(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (seed % 256, 80, 160)).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def fresh_database_url(database: Database, tmp_path: Path) -> Iterator[str]:
    """An empty database to restore into: a new SQLite file, or a new PostgreSQL one."""
    if database.is_sqlite:
        yield f"sqlite:///{tmp_path / 'restored' / 'sentinel.db'}"
        return
    name = f"sentinel_restored_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        make_url(database.url).set(database="postgres"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(database.url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def sentinel(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SENTINEL, *args],
        env={**environment(settings), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_a_backup_during_a_burst_restores_every_report_acknowledged_before_it(
    settings: Settings,
    database: Database,
    auth: Auth,
    tmp_path: Path,
    fresh_database_url: str,
) -> None:
    settings = settings.model_copy(
        update={
            "rider_reports_per_hour": 10_000,
            "rider_photos_per_hour": 10_000,
            "rider_photos_per_day": 10_000,
        }
    )
    server = ServerProcess(settings, tmp_path).start()
    riders = [auth.rider("meituan" if n % 2 else "eleme", f"burst-{n}") for n in range(4)]
    acknowledged: list[tuple[float, str]] = []
    stop = threading.Event()

    def burst(n: int) -> None:
        with http_client(server.url, timeout=30) as http:
            for i in range(10_000):
                if stop.is_set():
                    return
                media = http.post(
                    "/v1/media",
                    headers=riders[n],
                    files={"file": ("p.png", photo(n * 1000 + i), "image/png")},
                )
                assert media.status_code == 201, media.text
                body = report(
                    ("road_damage", "waste", "ebike_parking", "other")[n],
                    north=(i % 40) * 300 - 6000,
                    east=n * 300,
                    media_ids=[media.json()["id"]],
                )
                sent = http.post("/v1/reports", headers=riders[n], json=body)
                if sent.status_code == 201:
                    acknowledged.append((time.monotonic(), sent.json()["id"]))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(4)]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(acknowledged) < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        began = time.monotonic()
        backed_up = sentinel(settings, "backup", str(tmp_path / "backup"), "--json")
        ended = time.monotonic()
        # The burst goes on after the backup too.
        while not any(at > ended for at, _ in acknowledged) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        server.stop()
    assert backed_up.returncode == 0, backed_up.stderr
    before = {rid for at, rid in acknowledged if at < began}
    during = [rid for at, rid in acknowledged if began <= at < ended]
    assert len(before) >= 20 and during, (len(before), len(during))

    restored_media = tmp_path / "restored-media"

    def restore() -> subprocess.CompletedProcess[str]:
        return sentinel(
            settings,
            "restore",
            str(tmp_path / "backup"),
            SENTINEL_DATABASE_URL=fresh_database_url,
            SENTINEL_MEDIA_URL=str(restored_media),
        )

    restored = restore()
    assert restored.returncode == 0, restored.stderr

    copy = Database(fresh_database_url)
    try:
        with copy.session() as session:
            stored = set(map(str, session.scalars(select(Report.id))))
            missing = before - stored
            assert not missing, f"{len(missing)} acknowledged reports missing"
            photos = session.execute(
                select(Media.sha256, Media.thumbnail_sha256)
                .join(ReportMedia, ReportMedia.media_id == Media.id)
                .where(ReportMedia.report_id.in_([uuid.UUID(r) for r in before]))
            ).all()
        store = DirectoryStore(restored_media)
        assert len(photos) == len(before)
        for sha256, thumbnail in photos:
            assert store.exists(blob_key(sha256, "png")) and store.exists(
                blob_key(thumbnail, "jpg")
            )
    finally:
        copy.dispose()
    # A restore never writes over a database.
    again = restore()
    assert again.returncode == 1 and "restore into a new database" in again.stderr


def test_without_pg_dump_the_backup_says_exactly_what_to_run(
    settings: Settings, database: Database, tmp_path: Path
) -> None:
    if database.is_sqlite:
        pytest.skip("PostgreSQL is backed up with pg_dump")
    done = sentinel(settings, "backup", str(tmp_path / "b"), PATH="/nonexistent")
    assert done.returncode == 1
    assert "pg_dump is not installed here" in done.stderr
    assert "pg_dump --format=custom --no-owner" in done.stderr
    assert "postgresql://" in done.stderr and "+psycopg" not in done.stderr


def test_a_backup_refuses_a_directory_that_is_not_empty(
    settings: Settings, baseline: object, tmp_path: Path
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "keep.txt").write_text("mine")
    done = sentinel(settings, "backup", str(tmp_path / "b"))
    assert done.returncode == 1 and "is not empty" in done.stderr
    assert (tmp_path / "b" / "keep.txt").read_text() == "mine"

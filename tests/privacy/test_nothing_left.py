"""An erasure and a purge leave nothing to recover in the embedded database's files
(docs/privacy.md, "What stays on disk"): not in the database file's free pages or unused
cell space, not in its write-ahead log. The bytes of ``sentinel.db`` and
``sentinel.db-wal`` are read as a copy of them would be, and searched for the rider's
id, name and words.

SQLite only: PostgreSQL keeps dead rows until VACUUM, which no request waits for."""

import hashlib
import json
import logging
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import make_url, select

from app.config import Settings
from app.db import Database, forget_freed_pages
from app.media import media_store
from app.models import Media, Report, Rider, utcnow
from app.privacy import purge
from tests.conftest import Auth, Headers
from tests.reporting import png, report, submit, upload

RIDER_ID = "rider-zx9q7"
DISPLAY_NAME = "骑手小紫 Zx9q7-Name"
DESCRIPTION = "紫色长颈鹿 violet-giraffe-7731"
ADDRESS_HINT = "橙色斑马 orange-zebra-4410"
NOTE = "蓝色企鹅 blue-penguin-5206"
OFFICER = "officer_310105002"
RETENTION = 180


def forms(text: str) -> list[bytes]:
    """``text`` as SQLite might hold it: UTF-8 (this database's encoding), UTF-16 (were
    it another's), and inside stored JSON with its non-ASCII characters escaped."""
    escaped = json.dumps(text)[1:-1]
    return [
        text.encode(),
        text.encode("utf-16-le"),
        text.encode("utf-16-be"),
        *([escaped.encode()] if escaped != text else []),
    ]


@pytest.fixture
def files(database: Database) -> list[Path]:
    """The database file and its write-ahead log, as the app writes them."""
    if not database.is_sqlite:
        pytest.skip(
            "SQLite only: PostgreSQL keeps dead tuples until (auto)vacuum, and WAL "
            "segments until recycled (docs/privacy.md)"
        )
    name = make_url(database.url).database
    assert name
    path = Path(name)
    assert path.is_file()
    return [path, Path(f"{path}-wal")]


def found(files: list[Path], *texts: str) -> dict[str, list[str]]:
    """Which of ``texts`` each file holds, in any of their :func:`forms`."""
    held = {}
    for path in files:
        content = path.read_bytes() if path.exists() else b""
        hits = [t for t in texts if any(form in content for form in forms(t))]
        if hits:
            held[path.name] = hits
    return held


def everything_found(files: list[Path], *texts: str) -> set[str]:
    return {t for hits in found(files, *texts).values() for t in hits}


def act(client: TestClient, officer: Headers, ticket: str, action: str, **body: str) -> None:
    response = client.post(
        f"/v1/office/tickets/{ticket}/actions", headers=officer, json={"action": action, **body}
    )
    assert response.status_code == 200, response.text


def test_an_erased_rider_leaves_nothing_in_the_database_files(
    client: TestClient, auth: Auth, database: Database, files: list[Path]
) -> None:
    meituan = auth.platform("meituan")
    issued = client.post(
        "/v1/platform/rider-tokens",
        headers=meituan,
        json={"rider_id": RIDER_ID, "display_name": DISPLAY_NAME},
    )
    assert issued.status_code == 201, issued.text
    rider = {"Authorization": f"Bearer {issued.json()['token']}"}
    photo = png((91, 17, 203))
    first = submit(
        client,
        rider,
        report(
            description=DESCRIPTION,
            address_hint=ADDRESS_HINT,
            media_ids=[upload(client, rider, photo)],
        ),
    )
    submit(client, rider, report("waste", north=400, description=DESCRIPTION))
    # A ticket another rider reported, resolved; the rider verifies it with a note.
    other = auth.rider("eleme", "someone-else")
    theirs = submit(client, other, report("fire_exit_blocked", east=300))["ticket"]["id"]
    officer = auth.staff(OFFICER)
    act(client, officer, first["ticket"]["id"], "accept")
    act(client, officer, theirs, "accept")
    act(client, officer, theirs, "resolve", note="已处理")
    verified = client.post(
        f"/v1/tickets/{theirs}/verifications",
        headers=rider,
        json={**report(east=310), "fixed": True, "note": NOTE},
    )
    assert verified.status_code == 201, verified.text
    # The photo's row: the hashes of the bytes sent, of the photo and of its thumbnail.
    with database.session() as session:
        hashes = session.execute(
            select(Media.upload_sha256, Media.sha256, Media.thumbnail_sha256)
            .join(Rider, Rider.id == Media.rider_id)
            .where(Rider.external_id == RIDER_ID)
        ).one()
    assert hashes[0] == hashlib.sha256(photo).hexdigest()
    secrets = (RIDER_ID, DISPLAY_NAME, DESCRIPTION, ADDRESS_HINT, NOTE, *hashes)
    # The search finds them while they are held.
    assert everything_found(files, *secrets) == set(secrets)

    erased = client.delete(f"/v1/platform/riders/{RIDER_ID}", headers=meituan)

    assert erased.status_code == 204, erased.text
    assert found(files, *secrets) == {}
    assert files[1].stat().st_size == 0  # the log, truncated
    assert client.get(f"/v1/platform/riders/{RIDER_ID}", headers=meituan).status_code == 404


# The photos' blobs are written by the real clock: on a clock moved back they would
# seem newer than now, and be spared by the delete.
@pytest.mark.wall_clock(ahead_is_fine=True)
def test_a_purge_leaves_no_word_of_a_closed_ticket_in_the_database_files(
    client: TestClient, auth: Auth, settings: Settings, database: Database, files: list[Path]
) -> None:
    rider = auth.rider("meituan", "purged-zx9q7")
    ticket = submit(
        client,
        rider,
        report(
            description=DESCRIPTION,
            address_hint=ADDRESS_HINT,
            media_ids=[upload(client, rider, png((7, 201, 33)))],
        ),
    )["ticket"]["id"]
    officer = auth.staff(OFFICER)
    for action, body in (("accept", {}), ("resolve", {"note": "已修复"}), ("close", {})):
        act(client, officer, ticket, action, **body)
    assert everything_found(files, DESCRIPTION, ADDRESS_HINT) == {DESCRIPTION, ADDRESS_HINT}
    # The moment of the purge: the retention period and an hour after the ticket closed.
    later = utcnow() + timedelta(days=RETENTION, hours=1)

    purged = purge(database, media_store(settings), now=later, days=RETENTION)

    assert purged.tickets == 1 and purged.reports == 1
    with database.session() as session:
        report_of = select(Report.description).where(Report.ticket_id == uuid.UUID(ticket))
        assert session.scalars(report_of).all() == [None]
    assert found(files, DESCRIPTION, ADDRESS_HINT) == {}
    assert files[1].stat().st_size == 0


def test_a_reader_on_an_older_snapshot_delays_the_checkpoint_not_the_erasure(
    client: TestClient,
    auth: Auth,
    database: Database,
    files: list[Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    meituan = auth.platform("meituan")
    rider = auth.rider("meituan", RIDER_ID)
    submit(client, rider, report(description=DESCRIPTION))
    with database.session() as reader:
        # A read under way (an export being streamed, say), begun before the erasure.
        assert reader.scalar(select(Rider.id).where(Rider.external_id == RIDER_ID))
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="app.db"):
            erased = client.delete(f"/v1/platform/riders/{RIDER_ID}", headers=meituan)
        waited = time.monotonic() - started
        assert erased.status_code == 204, erased.text
        # The erasure stands; the checkpoint gave up after its two seconds, and said so.
        assert 2 <= waited < 10
        assert "could not be checkpointed" in caplog.text
        assert RIDER_ID not in caplog.text
        assert "sentinel.db-wal" in found(files, RIDER_ID, DESCRIPTION)
        # Still on its snapshot: the rider as they were.
        assert reader.scalar(select(Rider.id).where(Rider.external_id == RIDER_ID))
    # Once the reader has gone, the next checkpoint finishes the work.
    assert forget_freed_pages(database)
    assert found(files, RIDER_ID, DESCRIPTION) == {}

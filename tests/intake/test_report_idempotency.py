"""Idempotency: a retry gets the first response, a key is the rider's, kept 24 hours."""

from datetime import UTC, datetime

from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.ops.worker import JOBS
from tests.conftest import Clock, Headers
from tests.reporting import CountRows, assert_refused, post, report, stored, submit


def test_a_replay_gets_the_first_response_and_stores_nothing(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    first = post(client, r1, report(description="pothole"), key="offline-1")
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    before = stored(count_rows)
    again = post(client, r1, report(description="pothole"), key="offline-1")
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert stored(count_rows) == before
    assert before["reports"] == 1 and before["idempotency_records"] == 1


def test_the_same_key_with_another_body_is_422_reused(
    client: TestClient, r1: Headers, count_rows: CountRows
) -> None:
    first = submit(client, r1, report(), key="k")
    assert_refused(
        count_rows,
        lambda: post(client, r1, report(north=5), key="k"),
        422,
        "idempotency_key_reused",
        None,
    )
    assert_refused(
        count_rows,
        lambda: post(client, r1, report(description="changed"), key="k"),
        422,
        "idempotency_key_reused",
        None,
    )
    # The original body still replays.
    assert post(client, r1, report(), key="k").json() == first


def test_keys_are_scoped_per_rider(
    client: TestClient, r1: Headers, r2: Headers, count_rows: CountRows
) -> None:
    mine = submit(client, r1, report(), key="shared-key")
    theirs = post(client, r2, report(), key="shared-key")
    assert theirs.status_code == 201 and "idempotent-replayed" not in theirs.headers
    assert theirs.json()["id"] != mine["id"]
    assert theirs.json()["outcome"] == "joined_ticket"
    assert count_rows("reports") == 2 and count_rows("idempotency_records") == 2


def test_keys_are_kept_24_h_and_purged_by_the_worker(
    client: TestClient,
    database: Database,
    settings: Settings,
    clock: Clock,
    r1: Headers,
    count_rows: CountRows,
) -> None:
    purge = next(job for job in JOBS if job.name == "purge_idempotency_records")
    first = submit(client, r1, report("other"), key="kept")

    clock.advance(hours=25)
    assert purge.run(database, settings, now=clock.now) == 0
    assert count_rows("idempotency_records") == 1
    replay = post(client, r1, report("other"), key="kept")
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first

    clock.advance(hours=24)  # 49 h
    assert purge.run(database, settings, now=clock.now) == 1
    assert count_rows("idempotency_records") == 0
    # Forgotten: the same key is a new report now.
    fresh = submit(client, r1, report("other"), key="kept")
    assert fresh["id"] != first["id"]
    assert count_rows("reports") == 2


# --- batch -----------------------------------------------------------------------------


def test_the_same_instant_in_another_offset_is_the_same_body(
    client: TestClient, r1: Headers, clock: Clock
) -> None:
    clock.now = datetime(2026, 11, 29, 1, 0, tzinfo=UTC)  # the report is 45 minutes old
    first = post(client, r1, report(observed_at="2026-11-29T08:15:00+08:00"), key="tz")
    again = post(client, r1, report(observed_at="2026-11-29T00:15:00Z"), key="tz")
    assert first.status_code == 201
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"

"""The retention purge (docs/privacy.md, "How long"): tickets that ended more than
SENTINEL_RETENTION_DAYS ago lose their reports' and verifications' photos, free text and
exact points; open tickets keep everything; every statistic is the same before and after.
Run on both photo stores."""

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from app.cli import cli
from app.config import Settings, get_settings
from app.db import Database, lat_of, lon_of
from app.media import media_store
from app.models import Base, Media, Report, ReportMedia, Ticket, Verification, utcnow
from app.ops.worker import JOBS
from app.privacy import service as privacy
from tests.conftest import MEDIA_BACKENDS, Auth, either_media_backend
from tests.helpers import window_around_now
from tests.reporting import png, report, submit, upload

OFFICER = "officer_310105002"
DISTRICT = "changning"
RETENTION = 180


@pytest.fixture(params=MEDIA_BACKENDS)
def media_backend(request: pytest.FixtureRequest) -> dict[str, Any]:
    return either_media_backend(request)


def act(client: TestClient, officer: dict[str, str], ticket: str, action: str, **body: Any) -> None:
    response = client.post(
        f"/v1/office/tickets/{ticket}/actions", headers=officer, json={"action": action, **body}
    )
    assert response.status_code == 200, response.text


def statistics(client: TestClient, auth: Auth, window: str) -> dict[str, Any]:
    """Every number the service publishes, to every audience (the platform's over
    ``window``)."""
    district, officer = auth.staff(DISTRICT), auth.staff(OFFICER)
    numbers = {}
    for name, path, headers in (
        ("district", "/v1/office/stats", district),
        ("street", "/v1/office/stats", officer),
        (
            "platform_summary",
            f"/v1/platform/summary?group_by=street&{window}",
            auth.platform("meituan"),
        ),
        ("platform_riders", "/v1/platform/riders/stats", auth.platform("meituan")),
        ("rider", "/v1/platform/riders/keeper/stats", auth.platform("meituan")),
        ("open311", "/open311/v2/requests.json?status=open,closed", {}),
    ):
        response = client.get(path, headers=headers)
        assert response.status_code == 200, (path, response.text)
        numbers[name] = response.json()
    # Open311's descriptions and media of purged tickets go; its counts and states stay.
    numbers["open311"] = sorted(
        (r["service_request_id"], r["status"], r["lat"], r["long"]) for r in numbers["open311"]
    )
    return numbers


def everything_stored(database: Database) -> str:
    """Every value of every row of every table, as text."""
    with database.session() as session:
        return "\n".join(
            repr(tuple(row))
            for table in Base.metadata.sorted_tables
            for row in session.execute(text(f"SELECT * FROM {table.name}"))
        )


def on_grid(value: float) -> bool:
    """A coarsened coordinate is the centre of a grid cell."""
    return abs((value / privacy.GRID_DEGREES) % 1 - 0.5) < 1e-6


@pytest.fixture
def tickets(client: TestClient, auth: Auth) -> dict[str, str]:
    """A closed ticket with photos and a verification, a rejected one, an open one that
    uses a photo also used by the closed one, and a photo never used."""
    rider, keeper = auth.rider("meituan", "purged"), auth.rider("meituan", "keeper")
    officer = auth.staff(OFFICER)
    photos = [upload(client, rider, png((10 * n, 40, 40))) for n in range(4)]
    closed = submit(
        client,
        rider,
        report(
            description="门口有坑，我每天11点送餐经过",
            address_hint="12号楼",
            media_ids=photos[:2],
        ),
    )
    rejected = submit(client, rider, report("ebike_parking", description="门口"))
    open_ = submit(
        client,
        rider,
        report("fire_exit_blocked", description="还没修", media_ids=photos[1:3]),
    )
    closed_id, rejected_id = closed["ticket"]["id"], rejected["ticket"]["id"]
    act(client, officer, closed_id, "accept")
    act(client, officer, closed_id, "resolve", note="已修复")
    keeper_photo = upload(client, keeper, png((1, 2, 3)))
    verified = client.post(
        f"/v1/tickets/{closed_id}/verifications",
        headers=keeper,
        json={**report(east=20), "fixed": True, "note": "修好了", "media_ids": [keeper_photo]},
    )
    assert verified.status_code == 201, verified.text
    if verified.json()["ticket"]["status"] == "resolved":
        act(client, officer, closed_id, "close")
    act(client, officer, rejected_id, "reject", reason="not_actionable")
    return {
        "closed": closed_id,
        "rejected": rejected_id,
        "open": open_["ticket"]["id"],
        "closed_only_photo": photos[0],
        "shared_photo": photos[1],
        "open_only_photo": photos[2],
        "unused_photo": photos[3],
        "verification_photo": keeper_photo,
    }


def reports_of(database: Database, ticket_id: str) -> list[dict[str, Any]]:
    with database.session() as session:
        rows = session.execute(
            select(
                Report.description,
                Report.address_hint,
                Report.input_lat,
                Report.input_lon,
                lon_of(Report.location).label("lon"),
                lat_of(Report.location).label("lat"),
            ).where(Report.ticket_id == uuid.UUID(ticket_id))
        ).all()
        return [dict(r._mapping) for r in rows]


def photo_ids(count_rows: Any, database: Database) -> set[str]:
    with database.session() as session:
        return {str(i) for i in session.scalars(select(Media.id))}


# The photos' blobs are written by the real clock: on a clock moved back they would
# seem newer than now, and be spared by the delete.
@pytest.mark.wall_clock(ahead_is_fine=True)
def test_purge_clears_what_retention_no_longer_allows_and_no_statistic_changes(
    client: TestClient,
    auth: Auth,
    settings: Settings,
    database: Database,
    tickets: dict[str, str],
    count_rows: Any,
) -> None:
    store = media_store(settings)
    window = window_around_now()
    before = statistics(client, auth, window)
    assert before["platform_summary"]["items"], "the window holds the tickets of the test"
    rows_before = {t: count_rows(t) for t in ("tickets", "reports", "verifications", "media")}
    blobs_before = {b.key for b in store.blobs()}
    open_before = reports_of(database, tickets["open"])
    later = utcnow() + timedelta(days=RETENTION, hours=1)

    # Not yet: the tickets ended less than the retention period ago.
    assert privacy.purge(database, store, now=utcnow(), days=RETENTION) == privacy.Purged()
    dry = privacy.purge(database, store, now=later, days=RETENTION, dry_run=True)
    assert (dry.tickets, dry.reports, dry.verifications) == (2, 2, 1)
    assert {b.key for b in store.blobs()} == blobs_before
    assert reports_of(database, tickets["closed"])[0]["description"] is not None

    purged = privacy.purge(database, store, now=later, days=RETENTION)

    assert (purged.tickets, purged.reports, purged.verifications) == (2, 2, 1)
    # The closed ticket's own photo and the verification's go; the photo the open ticket
    # shares stays; the photo never used, uploaded over 180 days "ago", goes.
    assert purged.photos == 2 and purged.unused_photos == 1
    remaining = photo_ids(count_rows, database)
    assert remaining == {tickets["shared_photo"], tickets["open_only_photo"]}
    for ended in ("closed", "rejected"):
        for row in reports_of(database, tickets[ended]):
            assert row["description"] is None and row["address_hint"] is None
            assert on_grid(row["lon"]) and on_grid(row["lat"])
            assert (row["input_lon"], row["input_lat"]) == (row["lon"], row["lat"])
    with database.session() as session:
        verification = session.scalars(select(Verification)).one()
        assert verification.note is None and verification.media_ids is None
        purged_at = session.scalar(
            select(Ticket.purged_at).where(Ticket.id == uuid.UUID(tickets["closed"]))
        )
        assert purged_at is not None
    assert reports_of(database, tickets["open"]) == open_before
    # Rows: the same tickets, reports and verifications; three photos fewer. Blobs: the
    # purged photos' (each a photo and a thumbnail) are gone from the store.
    assert {t: count_rows(t) for t in rows_before} == {
        **rows_before,
        "media": rows_before["media"] - 3,
    }
    blobs_after = {b.key for b in store.blobs()}
    assert blobs_after < blobs_before and len(blobs_before) - len(blobs_after) == 6
    # The rider's read of a purged photo is a 404; the shared one still loads.
    rider = auth.rider("meituan", "purged")
    assert client.get(f"/v1/media/{tickets['closed_only_photo']}", headers=rider).status_code == 404
    assert client.get(f"/v1/media/{tickets['shared_photo']}", headers=rider).status_code == 200

    assert statistics(client, auth, window) == before
    # The riders' words are nowhere any more (the verification's note was in its event).
    stored = everything_stored(database)
    for words in ("门口有坑", "12号楼", "修好了", "门口"):
        assert words not in stored
    assert "还没修" in stored  # the open ticket's
    # Again: nothing left to do.
    assert privacy.purge(database, store, now=later, days=RETENTION) == privacy.Purged()

    # The closed ticket's report let go of the photo it shared with the open one; once
    # that one has ended and its time has passed too, the photo goes.
    with database.session() as session:
        links = session.scalars(
            select(ReportMedia.media_id)
            .join(Report, Report.id == ReportMedia.report_id)
            .where(Report.ticket_id == uuid.UUID(tickets["closed"]))
        ).all()
        assert links == []
    act(client, auth.staff(OFFICER), tickets["open"], "reject", reason="not_actionable")
    last = privacy.purge(database, store, now=later + timedelta(days=1), days=RETENTION)
    assert (last.tickets, last.photos) == (1, 2)
    assert photo_ids(count_rows, database) == set()


def test_the_worker_purges_daily_with_the_configured_retention(
    settings: Settings, database: Database, tickets: dict[str, str]
) -> None:
    job = next(j for j in JOBS if j.name == "purge_personal_information")
    assert job.every_s == 86400
    short = settings.model_copy(update={"retention_days": 30})
    assert job.run(database, short, now=utcnow() + timedelta(days=29)) == 0
    # Two tickets ended, and one photo was never used.
    assert job.run(database, short, now=utcnow() + timedelta(days=31)) == 3
    assert reports_of(database, tickets["closed"])[0]["description"] is None


def test_a_reopened_ticket_is_purged_again_once_it_ends_again(
    client: TestClient, auth: Auth, settings: Settings, database: Database, tickets: dict[str, str]
) -> None:
    store = media_store(settings)
    later = utcnow() + timedelta(days=RETENTION, hours=1)
    privacy.purge(database, store, now=later, days=RETENTION)
    officer = auth.staff(OFFICER)
    act(client, officer, tickets["closed"], "reopen", note="又坏了")
    with database.session() as session:
        ticket = session.get(Ticket, uuid.UUID(tickets["closed"]))
        assert ticket is not None and ticket.purged_at is None
    # Open again: never purged, whatever its age.
    again = privacy.purge(database, store, now=later + timedelta(days=400), days=RETENTION)
    assert again.tickets == 0


def test_the_purge_command_reports_a_dry_run_and_then_purges(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,
    database: Database,
    tickets: dict[str, str],
) -> None:
    for name, value in {
        "SENTINEL_DATABASE_URL": settings.database_url,
        "SENTINEL_ENV": "test",
        "SENTINEL_SECRET_KEY": settings.secret_key,
        "SENTINEL_MEDIA_URL": settings.media_url,
        "SENTINEL_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        # --older-than 0 is refused; the tickets ended today, so a day's retention keeps them.
        assert runner.invoke(cli, ["privacy", "purge", "--older-than", "0"]).exit_code != 0
        kept = runner.invoke(cli, ["privacy", "purge", "--older-than", "1", "--json"])
        assert kept.exit_code == 0, kept.output
        assert json.loads(kept.stdout)["tickets"] == 0
        with database.transaction() as session:  # they ended two days ago
            for ticket in session.scalars(select(Ticket)):
                if ticket.closed_at is not None:
                    ticket.closed_at -= timedelta(days=2)
                ticket.updated_at -= timedelta(days=2)
        dry = runner.invoke(cli, ["privacy", "purge", "--older-than", "1", "--dry-run", "--json"])
        assert json.loads(dry.stdout) | {"photos": 0} == {
            "older_than_days": 1,
            "dry_run": True,
            "tickets": 2,
            "reports": 2,
            "verifications": 1,
            "photos": 0,
            "unused_photos": 0,
        }
        done = runner.invoke(cli, ["privacy", "purge", "--older-than", "1"])
        assert done.exit_code == 0, done.output
        assert done.stdout.startswith("purged 2 tickets ended over 1 days ago: 2 reports")
    finally:
        get_settings.cache_clear()


def test_events_stay_append_only_but_for_clearing_a_note(
    client: TestClient, auth: Auth, database: Database, tickets: dict[str, str]
) -> None:
    for change in ("note = NULL, type = 'x'", "note = 'other words'", "created_at = created_at"):
        with pytest.raises(DBAPIError), database.transaction() as session:
            session.execute(text(f"UPDATE ticket_events SET {change} WHERE note IS NOT NULL"))
    with database.transaction() as session:
        cleared = session.execute(
            text("UPDATE ticket_events SET note = NULL WHERE note IS NOT NULL")
        ).rowcount
    assert cleared > 0

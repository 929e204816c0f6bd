"""Photos staff show with an action (docs/api.md, "Dispatch, field crews and the case's
exceptions"): POST /v1/office/media as riders upload theirs, who sees them (two streets
and two units side by side), the photos an action may show, the sweeps that must keep
them or take them, and the rider who sees the work done once the ticket is resolved."""

import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database, begin_writes
from app.errors import UnknownMedia
from app.main import create_app
from app.media import attach_photos, media_store, sweep_orphans
from app.media.service import media_keys
from app.models import (
    Dispatch,
    JobMark,
    Staff,
    StaffPhoto,
    StaffRole,
    TicketEvent,
    Unit,
    UnitKind,
)
from app.privacy import sweep_unused_photos
from app.security import TokenKind, issue_token
from tests.conftest import Auth, Baseline, Clock, bearer
from tests.helpers import HUAYANG, JIANGSU, act, assert_problem, post_partly, report_at
from tests.media.test_media import SMALL_CAP_MB, encode, noise, picture
from tests.reporting import CountRows, Headers, png, upload

OFFICE_MEDIA = "/v1/office/media"
OFFICER = "officer_310105002"  # 江苏路街道, where JIANGSU lies
NEIGHBOUR = "officer_310105001"  # 华阳路街道, where HUAYANG lies
DISTRICT = "changning"


def send(client: TestClient, headers: Headers, data: bytes) -> Any:
    return client.post(
        OFFICE_MEDIA, headers=headers, files={"file": ("after.png", data, "image/png")}
    )


def staff_upload(client: TestClient, headers: Headers, data: bytes) -> str:
    response = send(client, headers, data)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def crew(
    database: Database, settings: Settings, *, unit: str, tickets: Sequence[str] = ()
) -> Headers:
    """A unit's crew member, signed in, with ``tickets`` dispatched to the unit."""
    now = datetime.now(UTC)
    with database.transaction() as session:
        begin_writes(session)
        made = Unit(code=unit, name=f"{unit} 养护队", kind=UnitKind.CONTRACTOR)
        session.add(made)
        session.flush()
        member = Staff(
            username=f"crew_{unit}",
            role=StaffRole.CREW,
            unit_id=made.id,
            password_hash="-",
            active=True,
        )
        session.add(member)
        for ticket in tickets:
            session.add(
                Dispatch(
                    ticket_id=uuid.UUID(ticket), unit_id=made.id, dispatched_at=now, due_at=now
                )
            )
        session.flush()
        member_id = member.id
    issued = issue_token(
        kind=TokenKind.STAFF, subject=member_id, ttl=timedelta(hours=1), settings=settings
    )
    return bearer(issued.token)


def show(
    database: Database,
    settings: Settings,
    *,
    ticket_id: str,
    action: str,
    username: str,
    photos: Sequence[str],
    now: datetime,
) -> None:
    """Show ``photos`` with the ticket's last ``action``, as the workflow does with an
    action's ``media_ids``."""
    with database.transaction() as session:
        event = session.scalars(
            select(TicketEvent)
            .where(TicketEvent.ticket_id == uuid.UUID(ticket_id), TicketEvent.type == action)
            .order_by(TicketEvent.created_at.desc())
            .limit(1)
        ).one()
        staff = session.scalars(select(Staff).where(Staff.username == username)).one()
        attach_photos(
            session,
            event=event,
            staff=staff,
            media_ids=[uuid.UUID(p) for p in photos],
            now=now,
            settings=settings,
        )


def sees(client: TestClient, headers: Headers, photo: str) -> bool:
    """Whether ``headers`` get the photo and its thumbnail (else both are 404)."""
    whole = client.get(f"{OFFICE_MEDIA}/{photo}", headers=headers)
    small = client.get(f"{OFFICE_MEDIA}/{photo}/thumbnail", headers=headers)
    assert {whole.status_code, small.status_code} <= {200, 404}, (whole.text, small.text)
    assert whole.status_code == small.status_code
    if whole.status_code == 200:
        assert whole.headers["content-type"] == "image/png"
        assert small.headers["content-type"] == "image/jpeg"
    return whole.status_code == 200


# --- the upload ------------------------------------------------------------------------


def test_staff_upload_a_photo_as_riders_do_and_the_same_bytes_again_are_the_same_photo(
    client: TestClient, auth: Auth, database: Database, settings: Settings, count_rows: CountRows
) -> None:
    officer, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    data = png((10, 200, 10))

    first = send(client, officer, data)

    assert first.status_code == 201, first.text
    body = first.json()
    assert set(body) == {"id", "content_type", "width", "height", "bytes", "sha256"}
    assert (body["content_type"], body["width"], body["height"]) == ("image/png", 8, 8)
    again = send(client, officer, data)
    assert again.status_code == 200 and again.json() == body
    # Another member of staff's upload of the same bytes is a photo of their own.
    theirs = send(client, district, data)
    assert theirs.status_code == 201 and theirs.json()["id"] != body["id"]
    assert count_rows("staff_photos") == 2 and count_rows("media") == 0
    with database.session() as session:
        photo = session.get_one(StaffPhoto, uuid.UUID(body["id"]))
        assert photo.sha256 == body["sha256"] and photo.bytes == body["bytes"]
        assert {b.key for b in media_store(settings).blobs()} >= set(media_keys(photo))
    assert sees(client, officer, body["id"])


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("nobody", 401, "unauthenticated"),
        ("bad token", 401, "unauthenticated"),
        ("rider", 403, "forbidden"),
        ("platform", 403, "forbidden"),
        ("admin", 403, "forbidden"),
    ],
)
def test_only_case_workers_may_upload(
    client: TestClient,
    auth: Auth,
    settings: Settings,
    count_rows: CountRows,
    who: str,
    status: int,
    code: str,
) -> None:
    headers = {
        "nobody": lambda: {},
        "bad token": lambda: {"Authorization": "Bearer nope"},
        "rider": lambda: auth.rider("meituan", "r1"),
        "platform": lambda: auth.platform("meituan"),
        "admin": lambda: auth.staff("admin"),
    }[who]()

    assert_problem(send(client, headers, png()), status, code)
    assert count_rows("staff_photos") == 0
    assert list(media_store(settings).blobs()) == []


def test_a_strangers_upload_is_refused_before_its_body_is_read(served: str) -> None:
    answer = post_partly(served, OFFICE_MEDIA, declared=900 * 1024)
    assert answer.status == 401 and '"unauthenticated"' in answer.text
    forged = post_partly(
        served, OFFICE_MEDIA, declared=900 * 1024, headers={"Authorization": "Bearer x.y.z"}
    )
    assert forged.status == 401


def test_a_phones_photo_of_a_few_megabytes_is_accepted(
    client: TestClient, auth: Auth, settings: Settings
) -> None:
    data = encode(noise((700, 700)), "PNG", compress_level=1)
    assert 1024 * 1024 < len(data) < settings.max_upload_mb * 1024 * 1024
    assert send(client, auth.staff(OFFICER), data).status_code == 201


@pytest.mark.parametrize(
    ("data", "status", "code"),
    [
        (b"the road is mended\n", 415, "unsupported_media_type"),
        (encode(picture((64, 48)), "BMP"), 415, "unsupported_media_type"),
        (encode(noise((160, 120)), "PNG")[:2000], 422, "invalid_image"),
    ],
    ids=["text", "bmp", "truncated png"],
)
def test_what_is_no_photo_is_refused_as_riders_are_and_leaves_nothing(
    client: TestClient,
    auth: Auth,
    settings: Settings,
    count_rows: CountRows,
    data: bytes,
    status: int,
    code: str,
) -> None:
    assert_problem(send(client, auth.staff(OFFICER), data), status, code)
    assert count_rows("staff_photos") == 0
    assert list(media_store(settings).blobs()) == []


@pytest.fixture
def capped(settings: Settings, database: Database, baseline: Baseline) -> Iterator[TestClient]:
    settings.max_upload_mb = SMALL_CAP_MB
    with TestClient(create_app(settings, database), raise_server_exceptions=False) as c:
        yield c


def test_an_upload_over_the_size_cap_or_without_a_file_is_refused(
    capped: TestClient, settings: Settings, baseline: Baseline, count_rows: CountRows
) -> None:
    signed_in = capped.post(
        "/v1/auth/token", data={"username": OFFICER, "password": baseline.password(OFFICER)}
    )
    officer = bearer(signed_in.json()["access_token"])
    big = encode(noise((190, 190)), "PNG", compress_level=1)
    assert len(big) > SMALL_CAP_MB * 1024 * 1024

    assert_problem(send(capped, officer, big), 413, "payload_too_large")
    missing = capped.post(OFFICE_MEDIA, headers=officer, data={"photo": "none"})
    body = assert_problem(missing, 422, "validation_error")
    assert [e["field"] for e in body["errors"]] == ["file"]
    assert count_rows("staff_photos") == 0
    assert list(media_store(settings).blobs()) == []


# --- who sees a staff photo ------------------------------------------------------------


def test_a_staff_photo_is_seen_by_its_uploader_and_by_who_holds_a_ticket_showing_it(
    client: TestClient,
    auth: Auth,
    database: Database,
    settings: Settings,
    clock: Clock,
    r1: Headers,
) -> None:
    officer, neighbour, district = auth.staff(OFFICER), auth.staff(NEIGHBOUR), auth.staff(DISTRICT)
    here = report_at(client, r1, JIANGSU)["ticket"]["id"]
    there = report_at(client, r1, HUAYANG)["ticket"]["id"]
    act(client, officer, here, {"action": "accept"})
    act(client, neighbour, there, {"action": "accept"})
    ours = crew(database, settings, unit="t_road_a", tickets=[here])
    others = crew(database, settings, unit="t_road_b", tickets=[there])
    mine = staff_upload(client, officer, png((1, 100, 1)))
    theirs = staff_upload(client, neighbour, png((2, 100, 2)))
    by_crew = staff_upload(client, ours, png((3, 100, 3)))

    # Shown with nothing yet: the uploader's alone.
    assert sees(client, officer, mine) and sees(client, ours, by_crew)
    assert not any(sees(client, h, mine) for h in (district, neighbour, ours, others))
    assert not sees(client, officer, by_crew)

    show(
        database,
        settings,
        ticket_id=here,
        action="accept",
        username=OFFICER,
        photos=[mine],
        now=clock.now,
    )
    show(
        database,
        settings,
        ticket_id=there,
        action="accept",
        username=NEIGHBOUR,
        photos=[theirs],
        now=clock.now,
    )

    # Shown on a ticket: whoever holds that ticket, and no one else.
    assert sees(client, district, mine) and sees(client, ours, mine)
    assert not sees(client, neighbour, mine) and not sees(client, others, mine)
    assert sees(client, district, theirs) and sees(client, others, theirs)
    assert not sees(client, officer, theirs) and not sees(client, ours, theirs)
    # Riders, platforms and the operator are not case workers.
    for headers in (r1, auth.platform("meituan"), auth.staff("admin")):
        assert_problem(client.get(f"{OFFICE_MEDIA}/{mine}", headers=headers), 403, "forbidden")
    assert_problem(client.get(f"{OFFICE_MEDIA}/{mine}"), 401, "unauthenticated")
    # A rider's photo is not a staff photo: the office reads it at /v1/media.
    rider_photo = upload(client, r1, png((4, 100, 4)))
    assert not sees(client, officer, rider_photo)
    assert not sees(client, officer, str(uuid.uuid4()))


def test_the_office_ticket_shows_each_actions_photos(
    client: TestClient,
    auth: Auth,
    database: Database,
    settings: Settings,
    clock: Clock,
    r1: Headers,
) -> None:
    officer = auth.staff(OFFICER)
    ticket = report_at(client, r1, JIANGSU)["ticket"]["id"]
    act(client, officer, ticket, {"action": "accept"}, {"action": "resolve", "note": "已修复"})
    after = [staff_upload(client, officer, png((n, 50, 50))) for n in (1, 2)]
    show(
        database,
        settings,
        ticket_id=ticket,
        action="resolve",
        username=OFFICER,
        photos=[after[1], after[0], after[1]],
        now=clock.now,
    )

    detail = client.get(f"/v1/office/tickets/{ticket}", headers=officer).json()

    photos = {e["type"]: e["photos"] for e in detail["events"]}
    assert photos["accept"] == []
    assert photos["resolve"] == [
        {"id": p, "url": f"{OFFICE_MEDIA}/{p}", "thumbnail_url": f"{OFFICE_MEDIA}/{p}/thumbnail"}
        for p in (after[1], after[0])  # in the order given, each once
    ]
    assert client.get(photos["resolve"][0]["url"], headers=officer).status_code == 200


# --- what an action may show -----------------------------------------------------------


def test_an_action_shows_only_photos_its_actor_uploaded_lately(
    client: TestClient,
    auth: Auth,
    database: Database,
    settings: Settings,
    clock: Clock,
    r1: Headers,
    count_rows: CountRows,
) -> None:
    officer = auth.staff(OFFICER)
    ticket = report_at(client, r1, JIANGSU)["ticket"]["id"]
    act(client, officer, ticket, {"action": "accept"})
    old = staff_upload(client, officer, png((9, 9, 1)))
    clock.advance(hours=settings.unused_photo_hours, minutes=1)
    mine = staff_upload(client, officer, png((9, 9, 2)))
    districts = staff_upload(client, auth.staff(DISTRICT), png((9, 9, 3)))
    riders = upload(client, r1, png((9, 9, 4)))
    unknown = str(uuid.uuid4())

    for refused in (districts, old, unknown, riders):
        with pytest.raises(UnknownMedia) as caught:
            show(
                database,
                settings,
                ticket_id=ticket,
                action="accept",
                username=OFFICER,
                photos=[mine, refused],
                now=clock.now,
            )
        problem = caught.value.to_problem()
        assert (problem["status"], problem["code"]) == (422, "unknown_media")
        assert problem["errors"] == [{"field": "media_ids", "message": f"unknown: {refused}"}]
    assert count_rows("event_photos") == 0

    # Uploaded again, an old photo is usable again (the same bytes: the same photo).
    assert send(client, officer, png((9, 9, 1))).json()["id"] == old
    show(
        database,
        settings,
        ticket_id=ticket,
        action="accept",
        username=OFFICER,
        photos=[mine, old],
        now=clock.now,
    )
    assert count_rows("event_photos") == 2


# --- the sweeps ------------------------------------------------------------------------


def test_the_orphan_sweep_keeps_the_files_of_staff_photos(
    client: TestClient, auth: Auth, database: Database, settings: Settings
) -> None:
    store = media_store(settings)
    photo = staff_upload(client, auth.staff(OFFICER), png((70, 80, 90)))
    with database.session() as session:
        keys = set(media_keys(session.get_one(StaffPhoto, uuid.UUID(photo))))

    # Every blob is "old": each is kept only if a photo row names it.
    sweep_orphans(database, store, older_than=datetime.now(UTC) + timedelta(days=1))

    assert keys <= {b.key for b in store.blobs()}
    assert sees(client, auth.staff(OFFICER), photo)


def test_staff_photos_no_action_showed_are_swept_and_those_shown_kept(
    client: TestClient,
    auth: Auth,
    database: Database,
    settings: Settings,
    clock: Clock,
    r1: Headers,
) -> None:
    store = media_store(settings)
    officer = auth.staff(OFFICER)
    start = clock.now
    ticket = report_at(client, r1, JIANGSU)["ticket"]["id"]
    act(client, officer, ticket, {"action": "accept"})
    shown = staff_upload(client, officer, png((11, 22, 33)))
    unshown = staff_upload(client, officer, png((44, 55, 66)))
    show(
        database,
        settings,
        ticket_id=ticket,
        action="accept",
        username=OFFICER,
        photos=[shown],
        now=clock.now,
    )
    with database.session() as session:
        unshown_keys = set(media_keys(session.get_one(StaffPhoto, uuid.UUID(unshown))))
    hours = settings.unused_photo_hours

    at = start + timedelta(hours=hours, minutes=5)
    assert sweep_unused_photos(database, store, now=at, settings=settings) == 0
    swept = sweep_unused_photos(
        database, store, now=start + timedelta(hours=hours, minutes=11), settings=settings
    )

    assert swept == 1
    with database.session() as session:
        assert {str(i) for i in session.scalars(select(StaffPhoto.id))} == {shown}
        assert session.get_one(JobMark, "unused_staff_photos").at == start
    assert not unshown_keys & {b.key for b in store.blobs()}
    assert sees(client, officer, shown) and not sees(client, officer, unshown)


# --- what the rider sees ---------------------------------------------------------------


def test_the_rider_sees_the_work_done_once_the_ticket_is_resolved(
    client: TestClient,
    auth: Auth,
    database: Database,
    settings: Settings,
    clock: Clock,
    r1: Headers,
    r2: Headers,
) -> None:
    officer = auth.staff(OFFICER)
    before = upload(client, r1, png((200, 0, 0)))
    sent = report_at(client, r1, JIANGSU, media_ids=[before])
    report, ticket = sent["id"], sent["ticket"]["id"]
    mine = f"/v1/reports/{report}"
    act(client, officer, ticket, {"action": "accept"})
    on_accept = staff_upload(client, officer, png((0, 200, 0)))
    first = staff_upload(client, officer, png((0, 0, 200)))
    show(
        database,
        settings,
        ticket_id=ticket,
        action="accept",
        username=OFFICER,
        photos=[on_accept],
        now=clock.now,
    )

    def after_photos() -> list[dict[str, str]]:
        read = client.get(mine, headers=r1)
        assert read.status_code == 200, read.text
        listed = client.get("/v1/reports", headers=r1).json()["items"]
        assert [r["ticket"]["after_photos"] for r in listed if r["id"] == report] == [
            read.json()["ticket"]["after_photos"]
        ]
        for name in (OFFICER, "工作人员", "uploaded_by"):
            assert name not in read.text
        return list(read.json()["ticket"]["after_photos"])

    def fetch(photo: str, headers: Headers = r1, *, small: bool = False) -> int:
        url = f"{mine}/photos/{photo}" + ("/thumbnail" if small else "")
        return client.get(url, headers=headers).status_code

    # Not resolved: nothing to show, nothing to fetch.
    assert after_photos() == []
    assert fetch(on_accept) == 404

    clock.advance(minutes=30)
    act(client, officer, ticket, {"action": "resolve", "note": "已修复"})
    show(
        database,
        settings,
        ticket_id=ticket,
        action="resolve",
        username=OFFICER,
        photos=[first],
        now=clock.now,
    )

    assert after_photos() == [
        {
            "id": first,
            "url": f"{mine}/photos/{first}",
            "thumbnail_url": f"{mine}/photos/{first}/thumbnail",
        }
    ]
    got = client.get(f"{mine}/photos/{first}", headers=r1)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.content == client.get(f"{OFFICE_MEDIA}/{first}", headers=officer).content
    assert fetch(first, small=True) == 200
    # Only the work done, only to the report's rider, only through the rider's report.
    assert fetch(on_accept) == 404
    assert fetch(first, r2) == 404
    assert fetch(str(uuid.uuid4())) == 404
    assert client.get(f"/v1/reports/{uuid.uuid4()}/photos/{first}", headers=r1).status_code == 404
    assert_problem(client.get(f"{mine}/photos/{first}", headers=officer), 403, "forbidden")

    # Reopened: the work shown was not the fix; resolved again, the new work is shown.
    clock.advance(minutes=30)
    act(client, officer, ticket, {"action": "reopen", "note": "又坏了"})
    assert after_photos() == [] and fetch(first) == 404
    clock.advance(minutes=30)
    second = staff_upload(client, officer, png((0, 0, 100)))
    act(client, officer, ticket, {"action": "resolve", "note": "重新修复"})
    show(
        database,
        settings,
        ticket_id=ticket,
        action="resolve",
        username=OFFICER,
        photos=[second],
        now=clock.now,
    )
    assert [p["id"] for p in after_photos()] == [second]
    assert fetch(second) == 200 and fetch(first) == 404

"""A unit's crew reads the riders' photos of the tickets dispatched to its unit, and no
other: not another unit's, not one of its street's tickets never dispatched to it."""

from fastapi.testclient import TestClient

from app.config import Settings
from tests.conftest import Auth, Headers
from tests.media.test_media import (
    POINT_HUAYANG,
    POINT_JIANGSU,
    assert_refused,
    assert_sees,
    encode,
    picture,
    report,
    stored_bytes,
    upload,
)
from tests.tickets.test_dispatch import OFFICER, OTHER_OFFICER, done, make_unit


def photo_of_a_report(
    client: TestClient, rider: Headers, settings: Settings, *, point: dict[str, float], n: int
) -> tuple[str, str, bytes]:
    """(ticket id, photo id, the stored photo) of a new report with a photo of its own."""
    uploaded = upload(client, rider, encode(picture((64 + n, 48)), "PNG"), "p.png", "image/png")
    assert uploaded.status_code == 201, uploaded.text
    media_id = uploaded.json()["id"]
    ticket = report(client, rider, point, [media_id])["ticket"]["id"]
    return ticket, media_id, stored_bytes(settings, uploaded.json())


def test_a_crew_reads_the_photos_of_its_unit_s_tickets_only(
    client: TestClient, auth: Auth, settings: Settings
) -> None:
    jiangsu_unit = make_unit(client, auth, "jsl-photo", "310105002")
    huayang_unit = make_unit(client, auth, "hy-photo", "310105001")
    rider = auth.rider("meituan", "crew-photos")
    south = {**POINT_JIANGSU, "lat": POINT_JIANGSU["lat"] - 150 / 111_320}  # same street
    ours, our_photo, our_bytes = photo_of_a_report(
        client, rider, settings, point=POINT_JIANGSU, n=1
    )
    theirs, their_photo, their_bytes = photo_of_a_report(
        client, rider, settings, point=POINT_HUAYANG, n=2
    )
    kept, kept_photo, _ = photo_of_a_report(client, rider, settings, point=south, n=3)
    for ticket, officer, unit in (
        (ours, OFFICER, jiangsu_unit),
        (theirs, OTHER_OFFICER, huayang_unit),
    ):
        office = auth.staff(officer)
        done(client, office, ticket, "accept")
        done(client, office, ticket, "dispatch", unit=unit.code)
    done(client, auth.staff(OFFICER), kept, "accept")

    assert_sees(client, jiangsu_unit.crew, our_photo, our_bytes)
    assert_refused(client, jiangsu_unit.crew, their_photo, 404, "not_found")
    assert_refused(client, jiangsu_unit.crew, kept_photo, 404, "not_found")
    # Side by side: the other unit's crew, the other way round.
    assert_sees(client, huayang_unit.crew, their_photo, their_bytes)
    assert_refused(client, huayang_unit.crew, our_photo, 404, "not_found")

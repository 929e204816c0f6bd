"""Photo moderation in the console, over HTTP: the page of a photo of a ticket in scope,
a bad box refused by name with the boxes kept, what was drawn before offered again, the
ticket page's public panel, and another street's clerk kept out."""

import re
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import Auth, Baseline
from tests.console.conftest import OFFICER, OTHER_OFFICER, Clerk
from tests.helpers import JIANGSU, act, report_at
from tests.public.scene import photo_with_a_face_and_a_plate
from tests.reporting import CountRows


def ticket_with_photo(client: TestClient, auth: Auth) -> dict[str, Any]:
    rider = auth.rider("meituan", "mod-1")
    media = client.post(
        "/v1/media",
        headers=rider,
        files={"file": ("p.jpg", photo_with_a_face_and_a_plate(), "image/jpeg")},
    ).json()["id"]
    ticket = report_at(
        client, rider, JIANGSU, category="road_damage", description="井盖", media_ids=[media]
    )["ticket"]
    act(client, auth.staff(OFFICER), ticket["id"], {"action": "accept"})
    return {**ticket, "media_id": media}


def checked(html: str) -> list[str]:
    return re.findall(r'name="box" value="([\d,]+)" checked', html)


def test_a_clerk_publishes_and_what_was_drawn_comes_back(
    app: FastAPI, client: TestClient, auth: Auth, baseline: Baseline, count_rows: CountRows
) -> None:
    ticket = ticket_with_photo(client, auth)
    clerk = Clerk(app, baseline, OFFICER)
    page = clerk.get(f"/console/media/{ticket['media_id']}/public")
    assert page.status_code == 200
    suggested = checked(page.text)
    assert len(suggested) == 2  # the face and the plate

    drawn = "10,10,40,30"
    done = clerk.post(f"/console/media/{ticket['media_id']}/public", {"box": [*suggested, drawn]})
    assert done.status_code == 303 and "done=photo_published" in done.headers["location"]
    assert count_rows("public_photos") == 1
    again = clerk.get(f"/console/media/{ticket['media_id']}/public")
    assert set(checked(again.text)) == {*suggested, drawn}  # the drawn box is offered again
    assert "已公开" in again.text

    panel = clerk.get(f"/console/tickets/{ticket['id']}").text
    assert "公众可见内容" in panel and f"/public/tickets/{ticket['ref']}" in panel

    withdrawn = clerk.post(f"/console/media/{ticket['media_id']}/unpublish", {})
    assert withdrawn.status_code == 303
    assert count_rows("public_photos") == 0


def test_a_bad_box_is_refused_by_name_and_the_boxes_are_kept(
    app: FastAPI, client: TestClient, auth: Auth, baseline: Baseline, count_rows: CountRows
) -> None:
    ticket = ticket_with_photo(client, auth)
    clerk = Clerk(app, baseline, OFFICER)
    path = f"/console/media/{ticket['media_id']}/public"
    for boxes, field in (
        (["10,10,40,30", "nan,0,10,10"], "box[1]"),
        (["10,10,50"], "box[0]"),
        (["1e309,0,1,1"], "box[0]"),
        (["1000,700,100,100"], "boxes[0]"),  # past the photo's edge
    ):
        refused = clerk.post(path, {"box": boxes})
        assert refused.status_code == 422, boxes
        assert field in refused.text and "未公开" in refused.text
        assert count_rows("public_photos") == 0
    kept = clerk.post(path, {"box": ["10,10,40,30", "1000,700,100,100"]})
    assert {"10,10,40,30", "1000,700,100,100"} <= set(checked(kept.text))


def test_another_streets_clerk_cannot_see_or_publish_the_photo(
    app: FastAPI, client: TestClient, auth: Auth, baseline: Baseline, count_rows: CountRows
) -> None:
    ticket = ticket_with_photo(client, auth)
    other = Clerk(app, baseline, OTHER_OFFICER)
    path = f"/console/media/{ticket['media_id']}/public"
    assert other.get(path).status_code == 404
    assert other.post(path, {"box": []}).status_code == 404
    assert other.post(f"/console/media/{ticket['media_id']}/unpublish", {}).status_code == 404
    assert count_rows("public_photos") == 0
    without_token = Clerk(app, baseline, OFFICER).http.post(path, data={"box": []})
    assert without_token.status_code == 403

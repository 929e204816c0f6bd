"""A reporter rates the fix (docs/api.md, "Talking with the reporter": the feedback
route, as far as escalation needs it): once, within the days after the resolution; a
rating of 2 or lower marks the ticket dissatisfied, escalates it, and the district's
channel hears of it; the comment is the rider's, exported and erased with its words."""

from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import Auth
from tests.helpers import JIANGSU, act, assert_problem
from tests.notify.conftest import DISTRICT_CODE, MORNING, OFFICER, Day
from tests.notify.receivers import Receivers


def reported(client: TestClient, auth: Auth, rider: str) -> dict[str, Any]:
    answer = client.post(
        "/v1/reports",
        headers=auth.rider("meituan", rider),
        json={"category": "ebike_parking", **JIANGSU},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def rate(client: TestClient, auth: Auth, rider: str, report_id: str, **body: Any) -> Any:
    return client.post(
        f"/v1/reports/{report_id}/feedback", headers=auth.rider("meituan", rider), json=body
    )


def test_a_low_rating_escalates_and_the_district_hears_it(
    day: Day, client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    created = client.post(
        "/v1/admin/channels",
        headers=auth.staff("admin"),
        json={
            "code": "district-ding",
            "kind": "dingtalk",
            "url": receivers.urls()["dingtalk"],
            "secret": "SECding-secret",
            "owner": {"area": DISTRICT_CODE},
            "events": ["feedback.negative", "ticket.escalated"],
        },
    )
    assert created.status_code == 201, created.text
    first, second = reported(client, auth, "rater-1"), reported(client, auth, "rater-2")
    ticket = first["ticket"]
    assert second["ticket"]["id"] == ticket["id"]  # the same spot: one ticket
    office = auth.staff(OFFICER)

    early = rate(client, auth, "rater-1", first["id"], rating=5)
    assert_problem(early, 409, "feedback_closed")
    act(client, office, ticket["id"], {"action": "accept"}, {"action": "resolve", "note": "已清理"})
    day.later(hours=2)

    assert_problem(rate(client, auth, "rater-1", first["id"], rating=6), 422, "validation_error")
    assert_problem(rate(client, auth, "rater-2", first["id"], rating=3), 404, "not_found")
    good = rate(client, auth, "rater-1", first["id"], rating=5, comment="很快")
    assert good.status_code == 201 and good.json()["rating"] == 5
    assert_problem(rate(client, auth, "rater-1", first["id"], rating=1), 409, "feedback_closed")
    seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert seen["dissatisfied"] is False and seen["escalated"] is False
    assert day.tell() == 0  # a good rating tells nobody

    bad = rate(
        client, auth, "rater-2", second["id"], rating=1, comment="车又停回来了，打我13911112222"
    )
    assert bad.status_code == 201, bad.text
    seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert seen["dissatisfied"] is True and seen["escalated"] is True
    listed = client.get("/v1/office/tickets?dissatisfied=true", headers=office).json()["items"]
    assert [t["id"] for t in listed] == [ticket["id"]]
    assert day.tell() == 2
    texts = [r.body["markdown"]["text"] for r in receivers.of("dingtalk")]
    negative = next(t for t in texts if t.startswith("### 反映人评价"))
    assert f"反映人评价 1 分（满分 5）：{ticket['ref']}" in negative
    assert "车又停回来了，打我＊＊＊" in negative and "13911112222" not in negative
    assert "rater-2" not in negative
    assert any("提级督办" in t and "反映人评价不满意" in t for t in texts)


def test_a_fix_is_rated_within_its_days(day: Day, client: TestClient, auth: Auth) -> None:
    first = reported(client, auth, "late-1")
    ticket = first["ticket"]
    act(
        client,
        auth.staff(OFFICER),
        ticket["id"],
        {"action": "accept"},
        {"action": "resolve", "note": "已清理"},
    )
    day.at(MORNING + timedelta(days=7, minutes=1))
    assert_problem(rate(client, auth, "late-1", first["id"], rating=4), 409, "feedback_closed")


def test_the_comment_is_the_riders_exported_and_erased_with_its_words(
    day: Day, client: TestClient, auth: Auth
) -> None:
    first = reported(client, auth, "words-1")
    act(
        client,
        auth.staff(OFFICER),
        first["ticket"]["id"],
        {"action": "accept"},
        {"action": "resolve", "note": "已清理"},
    )
    assert (
        rate(client, auth, "words-1", first["id"], rating=4, comment="谢谢师傅").status_code == 201
    )
    platform = auth.platform("meituan")
    exported = client.get("/v1/platform/riders/words-1/export", headers=platform).json()
    assert exported["ratings"][0]["rating"] == 4
    assert exported["ratings"][0]["comment"] == "谢谢师傅"
    assert client.delete("/v1/platform/riders/words-1", headers=platform).status_code == 204
    events = client.get(
        f"/v1/office/tickets/{first['ticket']['id']}", headers=auth.staff(OFFICER)
    ).json()["events"]
    rated = next(e for e in events if e["type"] == "rated")
    assert rated["note"] is None

"""What else the channels hear: a unit's group its new work (with what the problem is,
the reporter's number masked), the district an extension asked for and a rider's
sighting for its alert, the street a reopening — and the district's weekly digest."""

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.models import utcnow
from tests.conftest import Auth
from tests.helpers import JIANGSU, act
from tests.notify.conftest import (
    DISTRICT,
    DISTRICT_CODE,
    MORNING,
    OFFICER,
    PUBLIC_URL,
    STREET,
    TZ,
    Day,
)
from tests.notify.receivers import Receivers

UNIT = "roads_310105002"


def add(client: TestClient, auth: Auth, **channel: Any) -> None:
    created = client.post("/v1/admin/channels", headers=auth.staff("admin"), json=channel)
    assert created.status_code == 201, created.text


def test_a_unit_hears_of_its_work_the_district_of_extensions_the_street_of_reopenings(
    day: Day, client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    urls = receivers.urls()
    add(
        client,
        auth,
        code="roads-feishu",
        kind="feishu",
        url=urls["feishu"],
        secret="feishu-secret",
        owner={"unit": UNIT},
        events=["ticket.dispatched"],
    )
    add(
        client,
        auth,
        code="district-ding",
        kind="dingtalk",
        url=urls["dingtalk"],
        secret="SECding-secret",
        owner={"area": DISTRICT_CODE},
        events=["extension.requested"],
        lang="en",
    )
    add(
        client,
        auth,
        code="street-wecom",
        kind="wecom",
        url=urls["wecom"],
        owner={"area": STREET},
        events=["ticket.reopened"],
    )
    ticket = client.post(
        "/v1/reports",
        headers=auth.rider("meituan", "events-1"),
        json={"category": "road_damage", "description": "路面坑洞，联系13900002222"} | JIANGSU,
    ).json()["ticket"]
    office = auth.staff(OFFICER)
    act(client, office, ticket["id"], {"action": "accept"}, {"action": "dispatch", "unit": UNIT})
    assert day.tell() == 1
    (work,) = receivers.of("feishu")
    post = work.body["content"]["post"]["zh_cn"]
    words = str(post["content"])
    assert post["title"].startswith("已派遣至江苏路街道道路养护") and ticket["ref"] in post["title"]
    assert "路面坑洞，联系***" in words and "13900002222" not in words
    links = [i for row in post["content"] for i in row if i["tag"] == "a"]
    assert links[0]["href"] == f"{PUBLIC_URL}/console/work/{ticket['id']}"  # the crew's page

    crew = auth.staff(f"crew_{UNIT}")
    act(
        client, crew, ticket["id"], {"action": "request_extension", "hours": 24, "reason": "等沥青"}
    )
    assert day.tell() == 1
    (asked,) = receivers.of("dingtalk")
    text = asked.body["markdown"]["text"]
    assert f"More time asked for: {ticket['ref']} Road damage" in text
    assert "Asks for 24 hours more: 等沥青" in text

    # Resolved by the office, then reopened: the street hears; twice: escalated.
    district = auth.staff(DISTRICT)
    act(client, district, ticket["id"], {"action": "deny_extension"})
    for n in (1, 2):
        act(
            client,
            office,
            ticket["id"],
            {"action": "resolve", "note": "已修补"},
            {"action": "reopen", "note": f"又坏了 {n}"},
        )
    assert day.tell() == 2
    assert all(f"重新打开：{ticket['ref']}" in r.text for r in receivers.of("wecom"))
    seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert seen["escalated"] is True
    escalations = [e for e in seen["events"] if e["type"] == "escalated"]
    assert len(escalations) == 1
    assert receivers.refused == []


def test_the_district_hears_a_riders_sighting_at_once(
    day: Day, client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    day.at(utcnow().astimezone(TZ).replace(hour=23))  # at night: a sighting is not held
    add(
        client,
        auth,
        code="district-wecom",
        kind="wecom",
        url=receivers.urls()["wecom"],
        owner={"area": DISTRICT_CODE},
        events=["alert.sighting"],
    )
    district = auth.staff(DISTRICT)
    published = client.post(
        "/v1/office/alerts",
        headers=district,
        json={
            "kind": "missing_person",
            "title": "寻找走失老人",
            "description": "男，78岁，灰色外套",
            "area": {"center": {"lon": JIANGSU["lon"], "lat": JIANGSU["lat"]}, "radius_m": 2000},
            "coord_sys": "gcj02",
            "expires_at": (day.now + timedelta(days=2)).isoformat(),
        },
    )
    assert published.status_code == 201, published.text
    alert = published.json()
    sighting = client.post(
        f"/v1/alerts/{alert['id']}/sightings",
        headers=auth.rider("meituan", "sees-1"),
        json={**JIANGSU, "note": "在便利店门口"},
    )
    assert sighting.status_code == 201, sighting.text
    assert day.tell() == 1
    (told,) = receivers.of("wecom")
    content = told.body["markdown"]["content"]
    assert "骑手线索：寻找走失老人" in content
    assert f"({PUBLIC_URL}/console/alerts/{alert['id']})" in content
    assert "sees-1" not in content and "便利店" not in content  # no rider, no rider's words
    assert day.tell() == 0


def test_the_weekly_digest_on_monday_morning(
    day: Day, client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    add(
        client,
        auth,
        code="district-wecom",
        kind="wecom",
        url=receivers.urls()["wecom"],
        owner={"area": DISTRICT_CODE},
        events=["digest.weekly"],
    )
    day.at(datetime(2026, 12, 2, 11, 0, tzinfo=TZ))  # the Wednesday before
    client.post(
        "/v1/reports",
        headers=auth.rider("meituan", "week-1"),
        json={"category": "waste", **JIANGSU},
    )
    day.at(datetime(2026, 12, 7, 8, 59, tzinfo=TZ))
    assert day.run("notify_events")["notify_events"] == 0
    day.at(datetime(2026, 12, 7, 9, 0, 5, tzinfo=TZ))
    assert day.run("notify_events")["notify_events"] == 1
    assert day.run("deliver_notifications")["deliver_notifications"] == 1
    (digest,) = receivers.of("wecom")
    content = digest.body["markdown"]["content"]
    assert "每周工单简报 2026-11-30 至 2026-12-06" in content and "新增：1" in content
    day.later(hours=2)
    assert day.run("notify_events")["notify_events"] == 0
    assert MORNING  # (the day's other tests start there)


def test_riders_words_reach_a_group_as_words_and_a_crew_masked(
    day: Day, client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    add(
        client,
        auth,
        code="street-wecom",
        kind="wecom",
        url=receivers.urls()["wecom"],
        owner={"area": STREET},
        events=["ticket.new"],
    )
    answer = client.post(
        "/v1/reports",
        headers=auth.rider("meituan", "words-2"),
        json={
            "category": "road_damage",
            "description": "坑 [点我领奖](http://evil.example) "
            "![](http://tracker.example/p.gif)\n# 标题",
            "address_hint": "3号楼 张三 13800001234",
            **JIANGSU,
        },
    )
    assert answer.status_code == 201, answer.text
    ticket = answer.json()["ticket"]
    assert day.tell() == 1
    content = receivers.of("wecom")[0].body["markdown"]["content"]
    assert "](http://evil" not in content and "![" not in content and "\n# " not in content
    assert "点我领奖" in content and "13800001234" not in content
    assert "3号楼 张三 ＊＊＊" in content  # masked, the mask itself as words
    # The unit's crew reads the riders' words with their numbers masked, in the API too.
    act(
        client,
        auth.staff(OFFICER),
        ticket["id"],
        {"action": "accept"},
        {"action": "dispatch", "unit": UNIT},
    )
    seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(f"crew_{UNIT}"))
    (report,) = seen.json()["reports"]
    assert report["address_hint"] == "3号楼 张三 ***" and report["rider"] is None
    office_seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=auth.staff(OFFICER))
    assert office_seen.json()["reports"][0]["address_hint"] == "3号楼 张三 13800001234"


def test_a_ticket_transferred_is_news_in_the_street_it_goes_to(
    day: Day, client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    base = receivers.urls()["wecom"].split("?")[0]
    for code, street in (("jiangsu", STREET), ("huayang", "310105001")):
        add(
            client,
            auth,
            code=code,
            kind="wecom",
            url=f"{base}?key={code}-key",
            owner={"area": street},
            events=["ticket.new"],
        )
    answer = client.post(
        "/v1/reports",
        headers=auth.rider("meituan", "moved-1"),
        json={"category": "waste", **JIANGSU},
    )
    ticket = answer.json()["ticket"]
    assert day.tell() == 1
    act(
        client,
        auth.staff(DISTRICT),
        ticket["id"],
        {"action": "transfer", "to_street": "310105001"},
    )
    assert day.tell() == 1
    heard = [(r.query["key"], ticket["ref"] in r.text) for r in receivers.of("wecom")]
    assert heard == [("jiangsu-key", True), ("huayang-key", True)]
    assert "华阳路街道" in receivers.of("wecom")[-1].text

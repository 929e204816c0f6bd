"""A street's day as its channels hear it, the clock moved by the test: a new ticket,
the warning at three quarters of its time, the breach, the escalation to the district,
a message held in the night and sent when the office opens, the morning digest on a
working day and none on a holiday, a burst of a hundred tickets as a handful of
messages, and a receiver down for an hour that then gets everything, once."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.db import Database
from app.models import ChannelDelivery, Notification
from tests.conftest import Auth
from tests.helpers import JIANGSU, act
from tests.notify.conftest import (
    DISTRICT,
    DISTRICT_CODE,
    MORNING,
    OFFICER,
    OPS_TOKEN,
    PUBLIC_URL,
    STREET,
    TZ,
    Day,
    Mailbox,
)
from tests.notify.receivers import Receivers

HOLIDAY = datetime(2026, 10, 1, 8, 31, tzinfo=TZ)  # China's National Day


@pytest.fixture
def channels(client: TestClient, auth: Auth, receivers: Receivers) -> dict[str, str]:
    """The street's WeCom group, the district's DingTalk group and mailbox, the road
    contractor's Feishu group and a webhook of the street."""
    admin, urls = auth.staff("admin"), receivers.urls()
    made = [
        {
            "code": "jiangsu-wecom",
            "kind": "wecom",
            "url": urls["wecom"],
            "owner": {"area": STREET},
            "events": ["ticket.new", "sla.warning", "sla.breached"],
        },
        {
            "code": "changning-ding",
            "kind": "dingtalk",
            "url": urls["dingtalk"],
            "secret": "SECding-secret",
            "owner": {"area": DISTRICT_CODE},
            "events": ["ticket.escalated", "extension.requested"],
        },
        {
            "code": "changning-mail",
            "kind": "email",
            "url": "mailto:duty@changning.example",
            "owner": {"area": DISTRICT_CODE},
            "events": ["ticket.escalated"],
        },
        {
            "code": "roads-feishu",
            "kind": "feishu",
            "url": urls["feishu"],
            "secret": "feishu-secret",
            "owner": {"unit": "roads_310105002"},
            "events": ["ticket.dispatched", "sla.warning"],
        },
        {
            "code": "jiangsu-hook",
            "kind": "webhook",
            "url": urls["webhook"],
            "secret": "hook-secret",
            "owner": {"area": STREET},
            "events": ["ticket.new"],
            "categories": ["road_damage"],
        },
    ]
    for channel in made:
        created = client.post("/v1/admin/channels", headers=admin, json=channel)
        assert created.status_code == 201, created.text
    return {c["code"]: c["kind"] for c in made}


def report(
    client: TestClient, auth: Auth, rider: str, category: str, **where: Any
) -> dict[str, Any]:
    place = {**JIANGSU, **where}
    answer = client.post(
        "/v1/reports",
        headers=auth.rider("meituan", rider),
        json={"category": category, "description": "门口电动车堵住了，我电话13900001111", **place},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["ticket"]


def test_a_tickets_day_warned_breached_escalated(
    day: Day,
    client: TestClient,
    auth: Auth,
    channels: dict[str, str],
    receivers: Receivers,
    mailbox: tuple[Mailbox, int],
) -> None:
    ticket = report(client, auth, "day-1", "ebike_parking")  # answer within 4 h, fix 24 h
    assert day.tell() == 1
    (new,) = receivers.of("wecom")
    content = new.body["markdown"]["content"]
    assert f"新工单 {ticket['ref']}" in content and "电动车乱停放" in content
    assert "江苏路街道" in content and "时限：2026-12-09 14:00" in content
    assert f"({PUBLIC_URL}/console/tickets/{ticket['id']})" in content
    assert "13900001111" not in content and "day-1" not in content  # no rider, no words
    assert receivers.of("webhook") == []  # it wants road damage only

    # Three hours in: three quarters of the four gone.
    day.at(MORNING + timedelta(hours=2, minutes=59)).run("keep_deadline_marks")
    assert day.tell() == 0
    day.at(MORNING + timedelta(hours=3, minutes=1)).run("keep_deadline_marks")
    assert day.tell() == 1
    assert f"即将超时：{ticket['ref']}" in receivers.of("wecom")[-1].text
    # The breach, once.
    day.at(MORNING + timedelta(hours=4, minutes=1)).run(
        "record_sla_breaches", "keep_deadline_marks"
    )
    assert day.tell() == 1
    assert f"已超时：{ticket['ref']}" in receivers.of("wecom")[-1].text
    day.later(minutes=5).run("record_sla_breaches", "keep_deadline_marks")
    assert day.tell() == 0

    # Late by more than half its four hours: escalated to the district.
    day.at(MORNING + timedelta(hours=6, minutes=1)).run("keep_deadline_marks")
    assert day.tell() == 2  # the district's DingTalk group and its mailbox
    (escalated,) = receivers.of("dingtalk")
    assert f"提级督办：{ticket['ref']}" in escalated.body["markdown"]["text"]
    assert escalated.query["sign"] and len(escalated.query["timestamp"]) == 13  # signed, ms
    box, _ = mailbox
    assert [m["Subject"] for m in box.messages] == [f"提级督办：{ticket['ref']} 电动车乱停放"]
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert seen["escalated"] is True
    assert [e["type"] for e in seen["events"]][-3:] == ["sla_warning", "sla_breached", "escalated"]
    queue = client.get("/v1/office/tickets?escalated=true", headers=district).json()["items"]
    assert [t["id"] for t in queue] == [ticket["id"]]
    assert client.get("/v1/office/stats", headers=district).json()["escalated_count"] == 1
    # The district lifts it, with a note; an officer may not.
    refused = client.post(
        f"/v1/office/tickets/{ticket['id']}/actions",
        headers=office,
        json={"action": "deescalate", "note": "已督办"},
    )
    assert refused.status_code == 403
    act(client, district, ticket["id"], {"action": "deescalate", "note": "已电话督办"})
    assert (
        client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["escalated"]
        is False
    )
    assert receivers.refused == []


def test_the_night_holds_what_can_wait_and_sends_what_cannot(
    day: Day, client: TestClient, auth: Auth, channels: dict[str, str], receivers: Receivers
) -> None:
    night = datetime(2026, 12, 9, 21, 0, tzinfo=TZ)
    day.at(night)
    parked = report(client, auth, "night-1", "ebike_parking")
    blocked = report(client, auth, "night-2", "fire_exit_blocked")  # priority 1
    assert day.tell() == 1
    (urgent,) = receivers.of("wecom")
    assert blocked["ref"] in urgent.text and parked["ref"] not in urgent.text
    day.at(datetime(2026, 12, 10, 8, 59, tzinfo=TZ))
    assert day.run("deliver_notifications")["deliver_notifications"] == 0
    # The office opens at 09:00 (the working calendar's office hours).
    day.at(datetime(2026, 12, 10, 9, 0, 1, tzinfo=TZ))
    assert day.run("deliver_notifications")["deliver_notifications"] == 1
    assert parked["ref"] in receivers.of("wecom")[-1].text


def test_the_morning_digest_on_working_days_and_none_on_a_holiday(
    day: Day, client: TestClient, auth: Auth, channels: dict[str, str], receivers: Receivers
) -> None:
    admin = auth.staff("admin")
    for code, events in (
        ("jiangsu-wecom", ["ticket.new", "digest.daily"]),
        ("changning-ding", ["ticket.escalated", "digest.daily"]),
    ):
        wanted = client.patch(f"/v1/admin/channels/{code}", headers=admin, json={"events": events})
        assert wanted.status_code == 200, wanted.text
    day.at(datetime(2026, 12, 8, 15, 0, tzinfo=TZ))
    for rider in ("d-1", "d-2"):
        report(client, auth, rider, "ebike_parking", lat=31.2200 + (0.001 if rider == "d-2" else 0))
    day.tell()
    before = len(receivers.of("wecom"))
    day.at(datetime(2026, 12, 9, 8, 29, tzinfo=TZ))
    assert day.run("notify_events")["notify_events"] == 0
    day.at(datetime(2026, 12, 9, 8, 30, 5, tzinfo=TZ))
    assert day.run("notify_events")["notify_events"] == 2  # the street's and the district's
    assert day.run("deliver_notifications")["deliver_notifications"] == 2
    digest = receivers.of("wecom")[before:]
    assert len(digest) == 1
    text = digest[0].body["markdown"]["content"]
    assert (
        "每日工单简报 2026-12-09" in text and "上次简报以来新增：2" in text and "已超时：2" in text
    )
    assert "江苏路街道" in text
    assert "每日工单简报" in receivers.of("dingtalk")[-1].body["markdown"]["text"]
    day.later(hours=3)
    assert day.run("notify_events")["notify_events"] == 0  # once a day
    day.at(HOLIDAY)
    assert day.run("notify_events")["notify_events"] == 0


def test_a_burst_of_a_hundred_tickets_is_a_handful_of_messages(
    day: Day,
    client: TestClient,
    auth: Auth,
    channels: dict[str, str],
    receivers: Receivers,
    database: Database,
) -> None:
    for i in range(100):  # a hundred spots 30 m apart, in the street
        spot = {"lat": 31.2185 + (i // 10) * 0.0003, "lon": 121.4315 + (i % 10) * 0.0003}
        report(client, auth, f"burst-{i}", "ebike_parking", **spot)
    day.later(seconds=61).run("notify_events")
    sent = day.run("deliver_notifications")["deliver_notifications"]
    messages = receivers.of("wecom")
    assert sent == len(messages) <= 5
    # The rest, as one (the messages are sent side by side: any may arrive last).
    assert sum("96 条工单消息" in m.text for m in messages) == 1
    with database.session() as session:
        states = dict(
            session.execute(
                select(Notification.state, func.count()).group_by(Notification.state)
            ).all()
        )
    assert states == {"sent": 4, "merged": 96}
    # The bucket refills one message per 3 s: the next ticket waits for it.
    report(client, auth, "burst-late", "ebike_parking", lat=31.2182, lon=121.4312)
    assert day.tell() == 1


def test_a_receiver_down_for_an_hour_gets_everything_once_it_is_back(
    day: Day, client: TestClient, auth: Auth, channels: dict[str, str], receivers: Receivers
) -> None:
    receivers.down = True
    ticket = report(client, auth, "down-1", "ebike_parking")
    day.tell()
    assert receivers.of("wecom") == []
    for _ in range(12):  # an hour of the worker trying every five minutes
        day.later(minutes=5).run("deliver_notifications")
    read = client.get("/v1/admin/channels/jiangsu-wecom", headers=auth.staff("admin")).json()
    assert read["dead"] is True and "503" in read["last_error"]
    ready = client.get("/readyz", headers={"Authorization": f"Bearer {OPS_TOKEN}"}).json()
    assert any("jiangsu-wecom" in warning for warning in ready["warnings"]), ready
    receivers.down = False
    for _ in range(3):
        day.later(hours=1).run("deliver_notifications")
    delivered = receivers.of("wecom")
    assert len(delivered) == 1 and ticket["ref"] in delivered[0].text
    read = client.get("/v1/admin/channels/jiangsu-wecom", headers=auth.staff("admin")).json()
    assert read["dead"] is False and read["failing_since"] is None


def test_a_shelved_tickets_clock_is_paused_so_it_comes_back_neither_late_nor_escalated(
    day: Day, client: TestClient, auth: Auth, channels: dict[str, str], receivers: Receivers
) -> None:
    ticket = report(client, auth, "shelf-1", "ebike_parking")  # the fix within 24 h
    office, district = auth.staff(OFFICER), auth.staff(DISTRICT)
    act(client, office, ticket["id"], {"action": "accept"})
    due = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()["resolve_by"]
    day.later(hours=2)
    act(
        client,
        district,
        ticket["id"],
        {"action": "shelve", "reason": "待道路大修", "review_on": "2026-12-20"},
    )
    day.later(days=5)
    act(client, district, ticket["id"], {"action": "unshelve"})
    seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    moved = datetime.fromisoformat(seen["resolve_by"]) - datetime.fromisoformat(due)
    assert moved == timedelta(days=5)
    assert seen["overdue"] is False
    day.later(minutes=5).run("keep_deadline_marks")
    day.tell()
    seen = client.get(f"/v1/office/tickets/{ticket['id']}", headers=office).json()
    assert seen["escalated"] is False
    assert not [r for r in receivers.of("dingtalk") if "提级督办" in r.text]


def test_what_was_sent_is_kept_a_week(
    day: Day, client: TestClient, auth: Auth, channels: dict[str, str], database: Database
) -> None:
    report(client, auth, "kept-1", "ebike_parking")
    assert day.tell() == 1
    day.later(days=6).run("purge_notification_history")
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 1
    day.later(days=2).run("purge_notification_history")
    with database.session() as session:
        assert session.scalar(select(func.count()).select_from(Notification)) == 0
        assert session.scalar(select(func.count()).select_from(ChannelDelivery)) == 0

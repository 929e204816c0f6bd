"""The channels' pages (/console/channels) and the escalation on the office's pages.

Channels: admins keep every one and district staff their district's, through the same
domain functions as the API, against the receivers of tests/notify on 127.0.0.1; a
secret and a robot's key are never shown again; a refusal is said beside the field it
names and nothing is kept; officers and crews get the console's 403 page, refused by
the gate before the body is read. Escalation: the 督办 badge on the queue's row and the
ticket's head, the queue's filter, the district's form to lift it, the dashboard's tile."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from babel.messages.pofile import read_po
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.console import i18n, labels
from app.models import ChannelKind, NotifyEvent
from tests.conftest import Auth, Baseline, Clock
from tests.console.conftest import OFFICER, Clerk, report
from tests.helpers import JIANGSU, act
from tests.notify import conftest as notify_fixtures
from tests.notify.receivers import Receivers

# The receivers on 127.0.0.1, the SMTP server and the settings that let channels reach
# them, as tests/notify has them.
mailbox, receivers, settings = (
    notify_fixtures.mailbox,
    notify_fixtures.receivers,
    notify_fixtures.settings,
)

DISTRICT = "changning"
CREW = "crew_roads_310105002"
STREET = "310105002"  # 江苏路街道
UNIT = "roads_310105001"  # serves 华阳路街道, in Changning
XUHUI, XUHUI_STREET = "310104", "310104014"
NOT_FOR_YOUR_ROLE = "此页面不属于您的角色"
NOT_FOUND = "您的辖区内没有这项内容"


@pytest.fixture
def clerks(app: FastAPI, baseline: Baseline) -> Iterator[dict[str, Clerk]]:
    signed_in = {name: Clerk(app, baseline, name) for name in ("admin", DISTRICT)}
    yield signed_in
    for clerk in signed_in.values():
        clerk.http.close()


def form(code: str, url: str, **fields: Any) -> dict[str, Any]:
    """A channel's form as the page posts it (the code only for a new one)."""
    return {
        "code": code,
        "kind": "wecom",
        "url": url,
        "owner": f"area:{STREET}",
        "lang": "zh",
        "events": ["ticket.new", "sla.breached"],
        "quiet_hours": "1",
        "active": "1",
        **fields,
    }


def channels_of(client: TestClient, auth: Auth) -> dict[str, dict[str, Any]]:
    listed = client.get("/v1/admin/channels", headers=auth.staff("admin")).json()["items"]
    return {c["code"]: c for c in listed}


def test_an_admin_adds_tests_changes_and_deletes_a_channel(
    clerks: dict[str, Clerk], client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    admin = clerks["admin"]
    page = admin.get("/console/channels")
    assert page.status_code == 200 and 'href="/console/channels"' in page.text
    assert f'value="area:{STREET}"' in page.text and f'value="unit:{UNIT}"' in page.text
    url = receivers.urls()["dingtalk"]
    added = admin.post(
        "/console/channels",
        form("jiangsu-ding", url, kind="dingtalk", secret="SECding-secret"),
    )
    assert added.status_code == 303, added.text
    assert added.headers["location"] == "/console/channels/jiangsu-ding?saved=1"
    kept = channels_of(client, auth)["jiangsu-ding"]
    assert (kept["kind"], kept["owner"], kept["has_secret"]) == (
        "dingtalk",
        {"area": STREET, "unit": None},
        True,
    )
    assert kept["events"] == ["sla.breached", "ticket.new"] and kept["quiet_hours"]

    page = admin.get("/console/channels/jiangsu-ding?saved=1")
    assert page.status_code == 200 and "已保存 jiangsu-ding" in page.text
    assert "SECding-secret" not in page.text and "ding-token-123456" not in page.text
    assert "江苏路街道" in page.text and "钉钉群机器人" in page.text
    assert "尚未发送" in page.text  # an empty log

    tested = admin.post("/console/channels/jiangsu-ding/test", {})
    assert tested.status_code == 200
    assert re.search(r'id="test-result">测试消息已送达（应答 200）', tested.text), tested.text
    (got,) = receivers.of("dingtalk")
    assert "流动哨兵测试消息" in got.text and got.query["sign"]
    assert tested.text.count('<tr class="delivered">') == 1 and "测试消息" in tested.text

    # Changed with the URL and the secret left blank: both stay.
    changed = admin.post(
        "/console/channels/jiangsu-ding",
        {
            **form("", "", kind="dingtalk", lang="en", min_priority="1"),
            "events": ["ticket.escalated"],
            "categories": ["road_damage", "ebike_parking"],
        },
    )
    assert changed.status_code == 303, changed.text
    kept = channels_of(client, auth)["jiangsu-ding"]
    assert kept["lang"] == "en" and kept["events"] == ["ticket.escalated"]
    assert kept["categories"] == ["ebike_parking", "road_damage"] and kept["min_priority"] == 1
    assert kept["has_secret"] and kept["url"].startswith(url.split("?")[0])
    again = admin.post("/console/channels/jiangsu-ding/test", {})
    assert 'id="test-result">测试消息已送达' in again.text  # signed with the kept secret
    assert again.text.count('<tr class="delivered">') == 2 and receivers.refused == []

    deleted = admin.post("/console/channels/jiangsu-ding/delete", {"sure": "1"})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/console/channels?deleted=jiangsu-ding"
    assert channels_of(client, auth) == {}
    after = admin.get(deleted.headers["location"])
    assert "已删除渠道 jiangsu-ding" in after.text and 'id="channel-jiangsu-ding"' not in after.text
    assert admin.get("/console/channels/jiangsu-ding").status_code == 404


def test_a_test_message_that_does_not_arrive_says_why_and_the_channel_fails_then_dies(
    clerks: dict[str, Clerk], receivers: Receivers, clock: Clock
) -> None:
    district = clerks[DISTRICT]
    assert district.post(
        "/console/channels", form("jiangsu", receivers.urls()["wecom"])
    ).is_redirect
    receivers.down = True
    tested = district.post("/console/channels/jiangsu/test", {})
    assert tested.status_code == 200
    said = re.search(r'id="test-result">测试消息未送达：([^<]*)<', tested.text)
    assert said and "503" in said[1], tested.text
    assert tested.text.count('<tr class="not-delivered">') == 1
    listed = district.get("/console/channels").text
    row = re.search(r'<tr id="channel-jiangsu" data-state="(\w+)">(.*?)</tr>', listed, re.S)
    assert row and row[1] == "failing" and "起发送失败" in row[2] and "503" in row[2]

    clock.advance(hours=1, minutes=1)
    listed = district.get("/console/channels").text
    row = re.search(r'<tr id="channel-jiangsu" data-state="(\w+)">(.*?)</tr>', listed, re.S)
    assert row and row[1] == "dead" and "已失效" in row[2]

    receivers.down = False
    tested = district.post("/console/channels/jiangsu/test", {})
    assert 'id="test-result">测试消息已送达' in tested.text
    assert 'data-state="well"' in district.get("/console/channels").text


@pytest.mark.parametrize(
    ("fields", "field", "status"),
    [
        ({"url": "http://127.0.0.1:9/cgi-bin/webhook/send"}, "url", 422),  # no key=
        ({"kind": "dingtalk"}, "url", 422),  # a WeCom URL under DingTalk
        ({"events": []}, "events", 422),
        ({"code": "Not A Code"}, "code", 422),
        ({"kind": "email", "url": "mailto:duty@jiangsu.example", "secret": "s"}, "secret", 422),
        ({"owner": f"area:{XUHUI}"}, "owner", 422),  # not the district's
        ({"owner": "somewhere"}, "owner", 422),
        ({"min_priority": "9"}, "min_priority", 422),
        ({"categories": ["no_such_category"]}, "categories", 422),
        ({"code": "taken"}, "code", 409),
    ],
)
def test_a_refusal_is_said_beside_its_field_and_nothing_is_kept(
    clerks: dict[str, Clerk],
    client: TestClient,
    auth: Auth,
    receivers: Receivers,
    fields: dict[str, Any],
    field: str,
    status: int,
) -> None:
    district = clerks[DISTRICT]
    assert district.post("/console/channels", form("taken", receivers.urls()["wecom"])).is_redirect
    sent = {**form("refused", receivers.urls()["wecom"]), **fields}
    refused = district.post("/console/channels", sent)
    assert refused.status_code == status, refused.text
    assert 'id="new-problems"' in refused.text and "未保存任何内容" in refused.text
    assert re.search(rf'<p class="field-error" id="new-{field}-error">[^<]+</p>', refused.text)
    assert f'aria-errormessage="new-{field}-error"' in refused.text or field == "events"
    # The form comes back as it was filled in, the secret excepted.
    assert f'value="{sent["code"]}"' in refused.text
    assert 'name="secret" type="password"' in refused.text and 'value="s"' not in refused.text
    assert set(channels_of(client, auth)) == {"taken"}


def test_a_refused_change_keeps_the_channel_as_it_was(
    clerks: dict[str, Clerk], client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    admin = clerks["admin"]
    assert admin.post("/console/channels", form("jiangsu", receivers.urls()["wecom"])).is_redirect
    before = channels_of(client, auth)["jiangsu"]
    refused = admin.post(
        "/console/channels/jiangsu",
        {**form("", "ftp://example.com/x", lang="en"), "events": ["ticket.eaten"]},
    )
    assert refused.status_code == 422
    assert re.search(r'<p class="field-error" id="edit-url-error">[^<]+</p>', refused.text)
    assert 'value="ftp://example.com/x"' in refused.text  # as typed, to correct
    assert channels_of(client, auth)["jiangsu"] == before


def xuhui(client: TestClient, auth: Auth) -> None:
    """A second district beside Changning, with a street, imported by the admin."""

    def box(west: float, south: float, east: float, north: float) -> dict[str, Any]:
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        return {"type": "Polygon", "coordinates": [ring]}

    def feature(code: str, name: str, level: str, parent: str | None, geometry: Any) -> Any:
        properties = {"code": code, "name": name, "level": level, "parent_code": parent}
        return {"type": "Feature", "geometry": geometry, "properties": properties}

    layout = {
        "type": "FeatureCollection",
        "features": [
            feature(XUHUI, "徐汇区", "district", None, box(121.40, 31.10, 121.48, 31.16)),
            feature(XUHUI_STREET, "徐家汇街道", "street", XUHUI, box(121.43, 31.12, 121.45, 31.15)),
        ],
    }
    imported = client.post(
        "/v1/admin/areas:import",
        headers=auth.staff("admin"),
        json=layout,
        params={"coord_sys": "gcj02"},
    )
    assert imported.status_code == 200, imported.text


def test_a_district_keeps_its_own_districts_channels_and_no_other(
    clerks: dict[str, Clerk], client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    xuhui(client, auth)
    admin, district = clerks["admin"], clerks[DISTRICT]
    theirs = form("xuhui-mail", "mailto:duty@xuhui.example", kind="email", owner=f"area:{XUHUI}")
    assert admin.post("/console/channels", theirs).is_redirect
    page = admin.get("/console/channels").text
    assert f'value="area:{XUHUI}"' in page and f'value="area:{XUHUI_STREET}"' in page

    unit = form("roads", receivers.urls()["wecom"], owner=f"unit:{UNIT}")
    assert district.post("/console/channels", unit).is_redirect
    page = district.get("/console/channels")
    assert 'id="channel-roads"' in page.text and "xuhui-mail" not in page.text
    assert 'value="area:310105"' in page.text and f'value="unit:{UNIT}"' in page.text
    assert f'value="area:{XUHUI}"' not in page.text and XUHUI_STREET not in page.text
    for path, data in (
        ("/console/channels/xuhui-mail", None),
        ("/console/channels/xuhui-mail", form("", "", kind="email", owner=f"area:{XUHUI}")),
        ("/console/channels/xuhui-mail/test", {}),
        ("/console/channels/xuhui-mail/delete", {"sure": "1"}),
    ):
        answer = district.get(path) if data is None else district.post(path, data)
        assert answer.status_code == 404 and NOT_FOUND in answer.text, path
    assert set(channels_of(client, auth)) == {"roads", "xuhui-mail"}
    assert channels_of(client, auth)["xuhui-mail"]["owner"] == {"area": XUHUI, "unit": None}


@pytest.mark.parametrize("username", [OFFICER, CREW])
def test_officers_and_crews_get_the_not_for_your_role_page(
    app: FastAPI, baseline: Baseline, username: str
) -> None:
    clerk = Clerk(app, baseline, username)
    home = clerk.get("/console/work" if username == CREW else "/console/queue")
    assert home.status_code == 200 and 'href="/console/channels"' not in home.text
    for path in ("/console/channels", "/console/channels/any"):
        answer = clerk.get(path)
        assert answer.status_code == 403 and NOT_FOR_YOUR_ROLE in answer.text, path
    for path in (
        "/console/channels",
        "/console/channels/any",
        "/console/channels/any/test",
        "/console/channels/any/delete",
    ):
        # The gate's answer, not the CSRF check's: the role is asked before the body is
        # read (and its token with it).
        answer = clerk.http.post(path, data={"x": "y"})
        assert answer.status_code == 403 and NOT_FOR_YOUR_ROLE in answer.text, path
    clerk.http.close()


def test_the_district_and_the_admin_have_the_channels_in_their_menu(
    clerks: dict[str, Clerk],
) -> None:
    for name, home in (("admin", "/console/admin/categories"), (DISTRICT, "/console/queue")):
        page = clerks[name].get(home).text
        assert '<a href="/console/channels">通知渠道</a>' in page, name


def test_every_kind_and_event_has_words_in_both_languages_and_the_catalog_is_whole() -> None:
    chinese = i18n.messages("zh_CN")
    for enum, words in ((ChannelKind, labels.CHANNEL_KINDS), (NotifyEvent, labels.NOTIFY_EVENTS)):
        assert set(words) == set(enum)
        for member in enum:
            assert chinese.get(words[member]), f"{enum.__name__}.{member.name} untranslated"
    assert chinese.get(labels.TEST_MESSAGE)
    with (i18n.CATALOGS / "zh_CN" / "LC_MESSAGES" / "console.po").open("rb") as f:
        catalog = read_po(f, locale="zh_CN")
    missing = [m.id for m in catalog if m.id and (not m.string or m.fuzzy)]
    assert missing == []


# -- escalation on the office's pages


def escalated_ticket(client: TestClient, auth: Auth, rider: str) -> str:
    """A ticket reopened twice, which escalates it (提级督办)."""
    ticket = str(report(client, auth, JIANGSU, rider=rider)["ticket"]["id"])
    office = auth.staff(OFFICER)
    resolve = {"action": "resolve", "note": "已清理"}
    reopen = {"action": "reopen", "note": "居民反映仍在"}
    act(client, office, ticket, {"action": "accept"}, resolve, reopen, resolve, reopen)
    seen = client.get(f"/v1/office/tickets/{ticket}", headers=office).json()
    assert seen["escalated"] is True
    return ticket


def badge_of(html: str, ticket: str) -> bool:
    row = re.search(rf'<tr data-ticket="{ticket}".*?</tr>', html, re.S)
    assert row, f"no row of {ticket}"
    return 'class="badge escalated"' in row[0]


def test_the_queue_marks_and_filters_the_escalated_tickets(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    escalated = escalated_ticket(client, auth, "e-1")
    plain = str(report(client, auth, JIANGSU, rider="e-2")["ticket"]["id"])
    for name in (OFFICER, DISTRICT):
        clerk = Clerk(app, baseline, name)
        queue = clerk.get("/console/queue").text
        assert badge_of(queue, escalated) and not badge_of(queue, plain)
        assert 'title="已提级至区：超时过久、两次重新打开或评价差">督办</span>' in queue
        assert 'name="escalated" value="1" >' in queue  # the filter, unchecked
        only = clerk.get("/console/queue?escalated=1").text
        assert 'name="escalated" value="1" checked' in only
        assert re.findall(r'<tr data-ticket="([^"]+)"', only) == [escalated]
        clerk.http.close()


def test_the_district_lifts_an_escalation_with_a_note_from_the_ticket_page(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    ticket = escalated_ticket(client, auth, "e-3")
    plain = str(report(client, auth, JIANGSU, rider="e-4")["ticket"]["id"])
    officer, district = Clerk(app, baseline, OFFICER), Clerk(app, baseline, DISTRICT)
    page = officer.get(f"/console/tickets/{ticket}").text
    head = re.search(r'<div class="ticket-head">.*?</div>', page, re.S)
    assert head and 'class="badge escalated"' in head[0]
    assert 'data-action="deescalate"' not in page  # the district's to lift
    assert 'data-action="deescalate"' not in district.get(f"/console/tickets/{plain}").text
    assert district.get("/console/dashboard").text.count('id="kpi-escalated">1<') == 1

    page = district.get(f"/console/tickets/{ticket}").text
    lift = re.search(r'<form [^>]*data-action="deescalate">.*?</form>', page, re.S)
    assert lift, "no form to lift the escalation"
    assert '<textarea id="note-deescalate" name="note" required' in lift[0]
    assert "解除督办</button>" in lift[0]
    version = re.search(r'name="version" value="(\d+)"', lift[0])
    assert version

    without_note = district.post(
        f"/console/tickets/{ticket}/actions",
        {"action": "deescalate", "version": version[1], "note": " "},
    )
    assert without_note.status_code == 422
    assert client.get(f"/v1/office/tickets/{ticket}", headers=auth.staff(DISTRICT)).json()[
        "escalated"
    ]
    lifted = district.post(
        f"/console/tickets/{ticket}/actions",
        {"action": "deescalate", "version": version[1], "note": "已电话督办，街道承诺今日处理"},
    )
    assert lifted.status_code == 303, lifted.text
    page = district.get(lifted.headers["location"]).text
    assert "已解除督办。" in page and "已电话督办，街道承诺今日处理" in page
    head = re.search(r'<div class="ticket-head">.*?</div>', page, re.S)
    assert head and 'class="badge escalated"' not in head[0]
    assert 'data-action="deescalate"' not in page
    assert 'id="kpi-escalated">0<' in district.get("/console/dashboard").text
    officer.http.close()
    district.http.close()

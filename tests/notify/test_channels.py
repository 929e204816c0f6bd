"""Channels through the API (docs/api.md, "Notifications and escalation"): admins keep
every one, district staff their district's; each kind's URL is checked against its
shape, secrets are never read back, a test message arrives, and every attempt is in
the channel's log."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.config import Settings
from app.errors import ValidationFailed
from app.models import Staff
from app.notify import ChannelInput, Owner, create_channel
from tests.conftest import Auth
from tests.helpers import assert_problem
from tests.notify.conftest import Mailbox
from tests.notify.receivers import Receivers

JIANGSU = "310105002"
DISTRICT = "changning"


def body(code: str, kind: str, url: str, **fields: Any) -> dict[str, Any]:
    return {
        "code": code,
        "kind": kind,
        "url": url,
        "owner": {"area": JIANGSU},
        "events": ["ticket.new", "sla.breached"],
        **fields,
    }


def test_each_kind_is_kept_its_secret_never_read_back_and_a_test_message_arrives(
    client: TestClient, auth: Auth, receivers: Receivers, mailbox: tuple[Mailbox, int]
) -> None:
    admin = auth.staff("admin")
    urls = receivers.urls()
    made = {
        "wecom": body("jiangsu-wecom", "wecom", urls["wecom"]),
        "dingtalk": body("jiangsu-ding", "dingtalk", urls["dingtalk"], secret="SECding-secret"),
        "feishu": body(
            "jiangsu-feishu", "feishu", urls["feishu"], secret="feishu-secret", lang="en"
        ),
        "webhook": body("jiangsu-hook", "webhook", urls["webhook"], secret="hook-secret"),
        "email": body("jiangsu-mail", "email", "mailto:duty@jiangsu.example,chief@jiangsu.example"),
    }
    for kind, sent in made.items():
        created = client.post("/v1/admin/channels", headers=admin, json=sent)
        assert created.status_code == 201, created.text
        read = created.json()
        assert read["kind"] == kind and read["owner"] == {"area": JIANGSU, "unit": None}
        assert "secret" not in read and read["has_secret"] == bool(sent.get("secret"))
        assert "wecom-key-123456" not in read["url"] and "ding-token-123456" not in read["url"]
        assert "feishu-token-123456" not in read["url"]
        tested = client.post(f"/v1/admin/channels/{sent['code']}/test", headers=admin)
        assert tested.status_code == 200, tested.text
        assert tested.json()["delivered"] is True, (kind, tested.json())

    assert receivers.refused == []
    for kind in ("wecom", "dingtalk", "feishu", "webhook"):
        (got,) = receivers.of(kind)
        assert ("流动哨兵测试消息" if kind != "feishu" else "A test message") in got.text
    box, _port = mailbox
    (mail,) = box.messages
    assert mail["Subject"] == "流动哨兵测试消息"
    assert set(box.envelopes[0].rcpt_tos) == {"duty@jiangsu.example", "chief@jiangsu.example"}
    parts = {part.get_content_type() for part in mail.walk()}
    assert {"text/plain", "text/html"} <= parts

    log = client.get("/v1/admin/channels/jiangsu-ding/deliveries", headers=admin).json()
    assert [(d["delivered"], d["events"], d["status_code"]) for d in log["items"]] == [
        (True, ["test"], 200)
    ]
    listed = [c["code"] for c in client.get("/v1/admin/channels", headers=admin).json()["items"]]
    assert listed == sorted(made[k]["code"] for k in made)


def test_a_wrong_secret_is_said_in_the_log_and_the_channel(
    client: TestClient, auth: Auth, receivers: Receivers
) -> None:
    admin = auth.staff("admin")
    sent = body("ding-wrong", "dingtalk", receivers.urls()["dingtalk"], secret="SECnot-it")
    assert client.post("/v1/admin/channels", headers=admin, json=sent).status_code == 201
    tested = client.post("/v1/admin/channels/ding-wrong/test", headers=admin).json()
    assert tested["delivered"] is False and "310000" in tested["error"]
    read = client.get("/v1/admin/channels/ding-wrong", headers=admin).json()
    assert read["failing_since"] is not None and "310000" in read["last_error"]
    # Corrected: the next message goes through, and the channel is well again.
    fixed = client.patch(
        "/v1/admin/channels/ding-wrong", headers=admin, json={"secret": "SECding-secret"}
    )
    assert fixed.status_code == 200 and fixed.json()["failing_since"] is None
    assert client.post("/v1/admin/channels/ding-wrong/test", headers=admin).json()["delivered"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "sms"}, "kind"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "http://127.0.0.1:9/cgi-bin/webhook/send"}, "url"),  # WeCom's URL has its key
        ({"kind": "dingtalk"}, "url"),  # a WeCom URL under another kind
        ({"kind": "email", "url": "mailto:not-an-address"}, "url"),
        ({"events": ["ticket.new", "ticket.eaten"]}, "events"),
        ({"events": []}, "events"),
        ({"owner": {"area": "999999999"}}, "owner"),
        ({"owner": {"area": JIANGSU, "unit": "roads_310105002"}}, "owner"),
        ({"categories": ["no_such_category"]}, "categories"),
        ({"min_priority": 4}, "min_priority"),
        ({"lang": "fr"}, "lang"),
        ({"code": "Bad Code"}, "code"),
    ],
)
def test_a_wrong_field_is_a_422_naming_it_and_nothing_is_kept(
    client: TestClient, auth: Auth, receivers: Receivers, change: dict[str, Any], field: str
) -> None:
    admin = auth.staff("admin")
    sent = {**body("refused", "wecom", receivers.urls()["wecom"]), **change}
    refused = client.post("/v1/admin/channels", headers=admin, json=sent)
    problem = assert_problem(refused, 422, "validation_error")
    assert problem["errors"][0]["field"] == field, problem
    assert client.get("/v1/admin/channels", headers=admin).json()["items"] == []


def test_a_private_host_is_refused_unless_the_operator_allows_it(
    session: Session, base_settings: Settings
) -> None:
    admin = session.query(Staff).filter_by(username="admin").one()
    assert not base_settings.allow_private_webhooks
    for url in (
        "http://127.0.0.1/cgi-bin/webhook/send?key=k",
        "http://10.1.2.3/cgi-bin/webhook/send?key=k",
        "http://[::1]/cgi-bin/webhook/send?key=k",
    ):
        with pytest.raises(ValidationFailed) as refused:
            create_channel(
                session,
                admin,
                data=ChannelInput(
                    code="private",
                    kind="wecom",
                    url=url,
                    owner=Owner(area=JIANGSU),
                    events=["ticket.new"],
                ),
                settings=base_settings,
            )
        assert refused.value.errors == [{"field": "url", "message": refused.value.detail}]


def test_who_keeps_which_channels(client: TestClient, auth: Auth, receivers: Receivers) -> None:
    admin, district = auth.staff("admin"), auth.staff(DISTRICT)
    urls = receivers.urls()
    street = body("street", "wecom", urls["wecom"])
    assert client.post("/v1/admin/channels", headers=district, json=street).status_code == 201
    unit = {**body("unit", "wecom", urls["wecom"]), "owner": {"unit": "roads_310105001"}}
    assert client.post("/v1/admin/channels", headers=district, json=unit).status_code == 201
    for role in ("officer_310105002", "crew_roads_310105002"):
        assert_problem(
            client.post(
                "/v1/admin/channels",
                headers=auth.staff(role),
                json=body("x", "wecom", urls["wecom"]),
            ),
            403,
            "forbidden",
        )
        assert client.get("/v1/admin/channels", headers=auth.staff(role)).status_code == 403
    assert [
        c["code"] for c in client.get("/v1/admin/channels", headers=district).json()["items"]
    ] == [
        "street",
        "unit",
    ]
    assert client.delete("/v1/admin/channels/unit", headers=admin).status_code == 204
    assert client.get("/v1/admin/channels/unit", headers=district).status_code == 404

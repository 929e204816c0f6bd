"""Where the service may call out to (SSRF): every block of the IANA special-purpose
address registries is refused — a platform's webhook when it is set, and every call the
worker makes (webhook deliveries, Open311 forwarding) — even where Python's
``ipaddress.is_global`` calls the address global (192.0.0.8, 3fff::1 …)."""

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import Webhook, utcnow
from app.open311 import forwarding
from tests.conftest import Auth
from tests.helpers import JIANGSU, assert_problem, fake_dns, forward_new_tickets, report_at

# One address of each block, with the RFC that sets the block aside.
SPECIAL = [
    "0.0.0.0",  # "this host", RFC 1122
    "0.1.2.3",  # "this network" 0.0.0.0/8, RFC 791
    "10.0.0.1",  # private use, RFC 1918
    "100.64.0.1",  # shared address space (CGNAT) 100.64.0.0/10, RFC 6598
    "100.127.255.254",
    "127.0.0.1",  # loopback, RFC 1122
    "127.255.255.254",
    "169.254.169.254",  # link local, RFC 3927 (a cloud's metadata service)
    "172.16.0.1",  # private use, RFC 1918
    "172.31.255.254",
    "192.0.0.1",  # IETF protocol assignments 192.0.0.0/24, RFC 6890
    "192.0.0.8",  # IPv4 dummy address, RFC 7600
    "192.0.0.9",  # Port Control Protocol anycast, RFC 7723
    "192.0.0.10",  # TURN anycast, RFC 8155
    "192.0.0.170",  # NAT64/DNS64 discovery, RFC 7050
    "192.0.0.255",
    "192.0.2.1",  # TEST-NET-1, RFC 5737
    "192.31.196.1",  # AS112-v4, RFC 7535
    "192.52.193.1",  # AMT, RFC 7450
    "192.88.99.1",  # deprecated 6to4 relay anycast, RFC 7526
    "192.168.1.1",  # private use, RFC 1918
    "192.175.48.1",  # AS112 direct delegation, RFC 7534
    "198.18.0.1",  # benchmarking 198.18.0.0/15, RFC 2544
    "198.19.255.254",
    "198.51.100.1",  # TEST-NET-2, RFC 5737
    "203.0.113.1",  # TEST-NET-3, RFC 5737
    "224.0.0.1",  # multicast 224.0.0.0/4, RFC 5771
    "239.255.255.250",
    "240.0.0.1",  # reserved 240.0.0.0/4, RFC 1112
    "255.255.255.255",  # limited broadcast, RFC 919
    "[::]",  # unspecified, RFC 4291
    "[::1]",  # loopback, RFC 4291
    "[::7f00:1]",  # IPv4-compatible (deprecated), RFC 4291
    "[::ffff:127.0.0.1]",  # IPv4-mapped, RFC 4291: judged by its IPv4
    "[::ffff:192.0.0.8]",
    "[64:ff9b::7f00:1]",  # NAT64 well-known prefix, RFC 6052: 127.0.0.1 inside
    "[64:ff9b::c000:8]",  # 192.0.0.8 inside
    "[64:ff9b:1::808:808]",  # local-use NAT64 64:ff9b:1::/48, RFC 8215
    "[100::1]",  # discard-only 100::/64, RFC 6666
    "[100:0:0:1::1]",  # dummy IPv6 prefix, RFC 9780
    "[2001::1]",  # Teredo 2001::/32, RFC 4380
    "[2001:0:4136:e378:8000:63bf:f7f7:f7f7]",  # Teredo whose client is 8.8.8.8
    "[2001:1::1]",  # PCP anycast, RFC 7723 (in 2001::/23, RFC 2928)
    "[2001:2::1]",  # benchmarking, RFC 5180
    "[2001:3::1]",  # AMT, RFC 7450
    "[2001:4:112::1]",  # AS112-v6, RFC 7535
    "[2001:20::1]",  # ORCHIDv2, RFC 7343
    "[2001:1ff:ffff::1]",  # the end of 2001::/23
    "[2001:db8::1]",  # documentation, RFC 3849
    "[2002:a00:1::]",  # 6to4, RFC 3056: judged by its IPv4, here 10.0.0.1
    "[2002:7f00:1::1]",  # 127.0.0.1 inside
    "[2620:4f:8000::1]",  # AS112 direct delegation, RFC 7534
    "[3fff::1]",  # documentation 3fff::/20, RFC 9637
    "[3fff:fff:ffff::1]",
    "[5f00::1]",  # SRv6 SIDs, RFC 9602
    "[fc00::1]",  # unique local fc00::/7, RFC 4193
    "[fd12:3456::1]",
    "[fe80::1]",  # link-local, RFC 4291
    "[fec0::1]",  # site-local (deprecated), RFC 3879
    "[ff02::1]",  # multicast, RFC 4291
    "[4000::1]",  # outside 2000::/3, the only IPv6 space given out for unicast
    "special.example",  # a name answering 192.0.0.8
    "special-v6.example",  # a name answering 3fff::1
    "partly-special.example",  # one public answer, one special: refused
]

PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "100.128.0.1",  # just past 100.64.0.0/10
    "192.0.1.1",  # just past 192.0.0.0/24
    "198.20.0.1",  # just past 198.18.0.0/15
    "[2400:3200::1]",
    "[2606:4700:4700::1111]",
    "[::ffff:8.8.8.8]",  # IPv4-mapped, of a public IPv4
    "[64:ff9b::808:808]",  # NAT64 of 8.8.8.8
    "[2002:808:808::1]",  # 6to4 of 8.8.8.8
    "[2001:200::1]",  # just past 2001::/23
    "[3fff:1000::1]",  # just past 3fff::/20
    "public.example",  # a name answering a public IPv4 and IPv6
]


@pytest.fixture(autouse=True)
def _dns(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(
        monkeypatch,
        {
            "special.example": ["192.0.0.8"],
            "special-v6.example": ["3fff::1"],
            "partly-special.example": ["93.184.215.14", "192.0.0.9"],
            "public.example": ["93.184.215.14", "2400:3200::1"],
        },
    )


def stored(database: Database) -> list[str]:
    with database.session(write=False) as session:
        return [w.url for w in session.scalars(select(Webhook))]


@pytest.mark.parametrize("host", SPECIAL)
def test_a_webhook_at_a_special_purpose_address_is_refused_and_nothing_is_stored(
    client: TestClient, auth: Auth, database: Database, settings: Settings, host: str
) -> None:
    assert not settings.allow_private_webhooks
    meituan = auth.platform("meituan")

    response = client.put(
        "/v1/platform/webhook", headers=meituan, json={"url": f"http://{host}/hook"}
    )

    body = assert_problem(response, 422, "webhook_url_refused")
    assert body["errors"][0]["field"] == "url"
    assert "which is not a public address" in body["detail"]
    assert stored(database) == []
    assert_problem(client.get("/v1/platform/webhook", headers=meituan), 404, "not_found")


@pytest.mark.parametrize("host", PUBLIC)
def test_a_webhook_at_a_public_address_is_accepted(
    client: TestClient, auth: Auth, database: Database, host: str
) -> None:
    url = f"https://{host}/hook"
    response = client.put(
        "/v1/platform/webhook", headers=auth.platform("meituan"), json={"url": url}
    )
    assert response.status_code == 200, response.text
    assert stored(database) == [url]


def test_a_special_purpose_address_is_accepted_where_private_ones_are_allowed(
    client: TestClient, auth: Auth, app: FastAPI, settings: Settings
) -> None:
    """SENTINEL_ALLOW_PRIVATE_WEBHOOKS (development and tests) still lets everything through."""
    app.state.settings = settings.model_copy(update={"allow_private_webhooks": True})
    for url in ("http://192.0.0.8/hook", "http://[3fff::1]/hook", "http://special.example/"):
        response = client.put(
            "/v1/platform/webhook", headers=auth.platform("meituan"), json={"url": url}
        )
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("host", SPECIAL)
def test_a_department_at_a_special_purpose_address_is_never_called(
    client: TestClient, auth: Auth, database: Database, settings: Settings, host: str
) -> None:
    """An admin's forwarding rule is checked for its form when it is made (its host is
    resolved at each call, like a webhook's at each delivery): the worker refuses to call
    it, and the attempt says why."""
    assert not settings.allow_private_webhooks
    forward_new_tickets(
        client, auth, category="waste", name="市容系统", endpoint=f"http://{host}/open311/v2"
    )
    ticket = report_at(client, auth.rider("meituan", "fw-ssrf"), JIANGSU, category="waste")

    assert forwarding.forward_due(database, settings=settings, now=utcnow()) == 1

    log = client.get(
        f"/v1/office/tickets/{ticket['ticket']['id']}/forwarding",
        headers=auth.staff("officer_310105002"),
    ).json()
    assert log["state"] == "pending" and log["external_id"] is None
    [attempt] = log["attempts"]
    assert attempt["status_code"] is None
    assert attempt["error"].startswith("refused: ")
    assert attempt["error"].endswith("which is not a public address")

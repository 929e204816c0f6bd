"""The console's pages over HTTP: sign-in and its cookie, CSRF, the scope of every page
with two streets side by side, languages, CSV, and what the pages are made of."""

import csv
import hashlib
import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from babel.messages.extract import extract_from_dir
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select

from app.config import Settings
from app.console import i18n
from app.db import Database
from app.models import Staff, Ticket, TicketStatus
from app.security import TokenKind, issue_token
from tests.apps import another_client
from tests.conftest import Auth, Baseline
from tests.console.conftest import (
    DISTRICT,
    OFFICER,
    OTHER_OFFICER,
    Clerk,
    csrf_of,
    photo_of,
    report,
)
from tests.helpers import HUAYANG, JIANGSU, forward_new_tickets

CONSOLE = Path(__file__).parents[2] / "app" / "console"


@pytest.fixture
def clerk(app: FastAPI, baseline: Baseline) -> Iterator[Clerk]:
    c = Clerk(app, baseline, OFFICER)
    yield c
    c.http.close()


def set_cookie(response: httpx.Response, name: str) -> str:
    headers = response.headers.get_list("set-cookie")
    found = [h for h in headers if h.startswith(f"{name}=")]
    assert found, f"no {name} cookie set: {headers}"
    return found[0]


# -- signing in


def test_signing_in_sets_an_httponly_samesite_cookie_that_expires_with_the_token(
    app: FastAPI, baseline: Baseline, settings: Settings
) -> None:
    clerk = Clerk(app, baseline, OFFICER)
    assert clerk.response.status_code == 303
    assert clerk.response.headers["location"] == "/console/queue"
    cookie = set_cookie(clerk.response, "sentinel_console").lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/console" in cookie
    assert "secure" not in cookie.replace("sentinel_console", "")
    match = re.search(r"max-age=(\d+)", cookie)
    assert match is not None
    max_age = int(match[1])
    assert abs(max_age - settings.staff_token_ttl_h * 3600) < 60
    assert clerk.get("/console/queue").status_code == 200


def test_behind_https_the_cookies_are_secure(app: FastAPI, baseline: Baseline) -> None:
    clerk = Clerk(app, baseline, OFFICER, base_url="https://testserver")
    assert "; secure" in set_cookie(clerk.response, "sentinel_console").lower()


def test_a_wrong_password_signs_nobody_in(app: FastAPI, baseline: Baseline) -> None:
    http = another_client(app, follow_redirects=False)
    csrf = csrf_of(http.get("/console/login").text)
    response = http.post(
        "/console/login", data={"username": OFFICER, "password": "wrong", "csrf_token": csrf}
    )
    assert response.status_code == 401
    assert "用户名或密码错误" in response.text
    assert "sentinel_console=" not in response.headers.get("set-cookie", "")
    assert http.get("/console/queue").status_code == 303


def test_pages_send_anyone_not_signed_in_to_the_sign_in_page(app: FastAPI) -> None:
    http = another_client(app, follow_redirects=False)
    response = http.get("/console/queue?status=new")
    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=%2Fconsole%2Fqueue%3Fstatus%3Dnew"
    htmx = http.get("/console/queue", headers={"HX-Request": "true"})
    assert htmx.headers["HX-Redirect"].startswith("/console/login?next=")
    for path in (
        "/console/map/tickets",
        "/console/queue.csv",
        "/console/dashboard",
        f"/console/media/{uuid.uuid4()}",
        "/console/admin/categories",
    ):
        assert http.get(path).status_code == 303, path


def test_an_expired_session_signs_out(
    app: FastAPI, baseline: Baseline, settings: Settings, database: Database
) -> None:
    clerk = Clerk(app, baseline, OFFICER)
    token = clerk.http.cookies.get("sentinel_console")
    assert token
    with database.session() as session:
        staff_id = session.scalar(select(Staff.id).where(Staff.username == OFFICER))
    expired = issue_token(
        kind=TokenKind.STAFF, subject=staff_id, ttl=timedelta(seconds=-5), settings=settings
    )
    clerk.http.cookies.set("sentinel_console", expired.token, path="/console")
    assert clerk.get("/console/queue").status_code == 303


def test_signing_out_ends_the_session(clerk: Clerk) -> None:
    response = clerk.post("/console/logout", {})
    assert response.status_code == 303
    assert (
        'sentinel_console=""' in set_cookie(response, "sentinel_console")
        or "max-age=0" in set_cookie(response, "sentinel_console").lower()
    )
    assert clerk.get("/console/queue").status_code == 303


# -- CSRF


def test_a_cross_site_post_is_refused_and_changes_nothing(
    clerk: Clerk, client: TestClient, auth: Auth, database: Database
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    action = f"/console/tickets/{ticket['id']}/actions"
    form = {"action": "accept", "version": "1"}
    no_token = clerk.http.post(action, data=form)
    foreign = clerk.post(action, form, headers={"Origin": "https://evil.example"})
    cross_site = clerk.post(action, form, headers={"Sec-Fetch-Site": "cross-site"})
    forged = clerk.http.post(action, data={**form, "csrf_token": "forged.0123"})
    for response in (no_token, foreign, cross_site, forged):
        assert response.status_code == 403
        assert "无法确认请求来自本控制台页面" in response.text
    with database.session() as session:
        assert session.get(Ticket, uuid.UUID(ticket["id"])).status == TicketStatus.NEW
    done = clerk.post(action, form)
    assert done.status_code == 303


def test_signing_in_needs_the_token_of_the_sign_in_page(app: FastAPI, baseline: Baseline) -> None:
    http = another_client(app, follow_redirects=False)
    response = http.post(
        "/console/login", data={"username": OFFICER, "password": baseline.password(OFFICER)}
    )
    assert response.status_code == 403
    assert "sentinel_console=" not in response.headers.get("set-cookie", "")


# -- scope: two streets side by side


def test_an_officer_never_sees_another_streets_ticket(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    mine = report(client, auth, JIANGSU, description="我的", media_ids=[photo_of(client, auth)])
    theirs = report(
        client,
        auth,
        HUAYANG,
        rider="c-2",
        description="别人的",
        media_ids=[photo_of(client, auth, rider="c-2")],
    )
    officer = Clerk(app, baseline, OFFICER)
    other = Clerk(app, baseline, OTHER_OFFICER)
    district = Clerk(app, baseline, DISTRICT)

    def refs(clerk: Clerk) -> set[str]:
        html = clerk.get("/console/queue").text
        return set(re.findall(r">([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})<", html))

    def on_map(clerk: Clerk) -> set[str]:
        features = clerk.get("/console/map/tickets").json()["features"]
        return {f["properties"]["ref"] for f in features}

    def in_csv(clerk: Clerk) -> set[str]:
        body = clerk.get("/console/queue.csv").content.decode("utf-8-sig")
        return {row["ref"] for row in csv.DictReader(io.StringIO(body))}

    m, t = mine["ticket"]["ref"], theirs["ticket"]["ref"]
    assert refs(officer) == on_map(officer) == in_csv(officer) == {m}
    assert refs(other) == on_map(other) == in_csv(other) == {t}
    assert refs(district) == on_map(district) == in_csv(district) == {m, t}

    assert officer.get(f"/console/tickets/{theirs['ticket']['id']}").status_code == 404
    assert officer.get(f"/console/tickets/{theirs['ticket']['id']}/print").status_code == 404
    assert officer.get("/console/tickets/not-a-uuid").status_code == 404
    refused = officer.post(
        f"/console/tickets/{theirs['ticket']['id']}/actions", {"action": "accept", "version": "1"}
    )
    assert refused.status_code == 404
    their_photo = theirs["media_ids"][0] if "media_ids" in theirs else None
    page = other.get(f"/console/tickets/{theirs['ticket']['id']}").text
    photo_ids = re.findall(r"/console/media/([0-9a-f-]{36})/thumbnail", page)
    assert photo_ids and (their_photo is None or their_photo in photo_ids)
    assert other.get(f"/console/media/{photo_ids[0]}").status_code == 200
    assert officer.get(f"/console/media/{photo_ids[0]}").status_code == 404
    assert officer.get(f"/console/media/{photo_ids[0]}/thumbnail").status_code == 404
    assert district.get(f"/console/media/{photo_ids[0]}").status_code == 200

    bulk = officer.post(
        "/console/bulk",
        {"action": "accept", "ticket": [mine["ticket"]["id"], theirs["ticket"]["id"]]},
    )
    assert bulk.status_code == 200
    assert "完成 1 / 2" in bulk.text
    assert t not in bulk.text  # not even its ref is told


def test_each_role_has_its_own_pages(app: FastAPI, baseline: Baseline) -> None:
    admin = Clerk(app, baseline, "admin")
    assert admin.response.headers["location"] == "/console/admin/categories"
    assert admin.get("/console/queue").status_code == 403
    assert admin.get("/console/admin/categories").status_code == 200
    officer = Clerk(app, baseline, OFFICER)
    for path in (
        "/console/admin/categories",
        "/console/admin/staff",
        "/console/admin/platforms",
        "/console/admin/areas",
    ):
        assert officer.get(path).status_code == 403, path
    refused = officer.post("/console/admin/platforms", {"code": "didi", "name": "滴滴"})
    assert refused.status_code == 403


def test_the_district_sees_the_unrouted_queue(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth, database: Database
) -> None:
    routed = report(client, auth, JIANGSU)["ticket"]
    unrouted = report(client, auth, HUAYANG, rider="c-2")["ticket"]
    with database.transaction() as session:
        ticket = session.get(Ticket, uuid.UUID(unrouted["id"]))
        assert ticket is not None
        ticket.street_id, ticket.community_id = None, None
    district = Clerk(app, baseline, DISTRICT)
    page = district.get("/console/queue?unrouted=1").text
    assert unrouted["ref"] in page and routed["ref"] not in page
    assert "未分派街道" in page
    officer = Clerk(app, baseline, OTHER_OFFICER)
    assert unrouted["ref"] not in officer.get("/console/queue").text


def test_the_queue_filters_by_text_and_keeps_its_state_in_the_url(
    clerk: Clerk, client: TestClient, auth: Auth
) -> None:
    pothole = report(client, auth, JIANGSU, description="井盖缺失 50%_off")["ticket"]
    other = report(client, auth, JIANGSU, north_m=-200, rider="c-2", description="路灯")["ticket"]
    found = clerk.get("/console/queue", params={"q": "50%_"}).text
    assert pothole["ref"] in found and other["ref"] not in found
    by_ref = clerk.get("/console/queue", params={"q": other["ref"][:9]}).text
    assert other["ref"] in by_ref and pothole["ref"] not in by_ref
    assert 'value="50%_"' in found  # the filter form shows what is applied
    percent = clerk.get("/console/queue", params={"q": "%"}).text
    assert pothole["ref"] in percent and other["ref"] not in percent  # a % is a %, not "any"


def test_the_csv_names_categories_and_areas_in_chinese(
    clerk: Clerk, client: TestClient, auth: Auth
) -> None:
    report(client, auth, JIANGSU, category="waste")
    response = clerk.get("/console/queue.csv")
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 1
    assert rows[0]["category"] == "waste" and rows[0]["category_name"] == "垃圾堆放"
    assert rows[0]["street"] == "310105002" and rows[0]["street_name"] == "江苏路街道"
    assert rows[0]["community_name"].startswith("江苏路街道")


def test_acting_on_a_stale_version_says_who_changed_it_and_changes_nothing(
    clerk: Clerk, client: TestClient, auth: Auth, database: Database
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    action = f"/console/tickets/{ticket['id']}/actions"
    district = auth.staff(DISTRICT)
    client.post(
        f"/v1/office/tickets/{ticket['id']}/actions", headers=district, json={"action": "accept"}
    )
    response = clerk.post(action, {"action": "reject", "reason": "spam", "version": "1"})
    assert response.status_code == 409
    assert "您查看期间此工单已被修改" in response.text
    assert "changning" in response.text
    with database.session() as session:
        row = session.get(Ticket, uuid.UUID(ticket["id"]))
        assert row is not None and row.status == TicketStatus.ACCEPTED and row.version == 2


def test_a_refused_action_is_said_on_the_page(clerk: Clerk, client: TestClient, auth: Auth) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    action = f"/console/tickets/{ticket['id']}/actions"
    no_note = clerk.post(action, {"action": "comment", "version": "1", "note": "  "})
    assert no_note.status_code == 422 and "表单中有内容缺失" in no_note.text
    wrong_status = clerk.post(action, {"action": "close", "version": "1"})
    assert wrong_status.status_code == 409 and "工单当前状态下不能执行此操作" in wrong_status.text


# -- languages


def test_pages_follow_accept_language_and_the_switch_is_remembered(
    app: FastAPI, baseline: Baseline
) -> None:
    http = another_client(app, follow_redirects=False)
    assert "登录街道工作台" in http.get("/console/login").text
    english = http.get("/console/login", headers={"Accept-Language": "en-GB,en;q=0.9,zh;q=0.5"})
    assert "Sign in to the street-office console" in english.text and 'lang="en"' in english.text
    csrf = csrf_of(english.text)
    switched = http.post(
        "/console/language", data={"locale": "en", "next": "/console/login", "csrf_token": csrf}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/console/login"
    assert "Sign in to the street-office console" in http.get("/console/login").text
    away = http.post(
        "/console/language",
        data={"locale": "zh_CN", "next": "https://evil.example/", "csrf_token": csrf},
    )
    assert away.headers["location"] == "/console/"


@pytest.mark.parametrize(
    ("header", "locale"),
    [
        (None, "zh_CN"),
        ("en-US,en;q=0.9", "en"),
        ("fr-FR, en;q=0.5", "en"),
        ("zh-TW,zh;q=0.9,en;q=0.8", "zh_CN"),
        ("de", "zh_CN"),
        ("en;q=0.2, zh;q=0.8", "zh_CN"),
    ],
)
def test_the_language_is_negotiated(header: str | None, locale: str) -> None:
    assert i18n.negotiate(header, None) == locale
    assert i18n.negotiate(header, "en") == "en"


def test_every_message_has_its_chinese_translation() -> None:
    found = {
        message
        for _, _, message, _, _ in extract_from_dir(
            str(CONSOLE),
            method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
            keywords={"_": None},
        )
    }
    translations = i18n.messages("zh_CN")
    assert found, "no message found: the extraction is broken"
    missing = sorted(m for m in found if not translations.get(m))
    assert missing == [], f"untranslated: {missing}"
    placeholders = re.compile(r"%\((\w+)\)s")
    for message in found:
        assert sorted(placeholders.findall(message)) == sorted(
            placeholders.findall(translations[message])
        ), message


def test_times_are_shown_in_shanghai() -> None:
    formats = i18n.Formats("zh_CN")
    assert formats.time(datetime(2026, 12, 1, 16, 30, tzinfo=UTC)) == "2026-12-02 00:30"


# -- what the pages are made of


def test_vendored_files_match_their_manifest() -> None:
    vendor = CONSOLE / "static" / "vendor"
    manifest = json.loads((vendor / "MANIFEST.json").read_text())
    listed = {}
    for package in manifest["packages"]:
        assert package["name"] and package["version"] and package["licence"], package
        listed.update(package["files"])
    on_disk = {
        str(p.relative_to(vendor))
        for p in vendor.rglob("*")
        if p.is_file() and p.name != "MANIFEST.json"
    }
    assert set(listed) == on_disk
    for name, sha256 in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == sha256, name


def test_pages_load_nothing_from_elsewhere() -> None:
    remote = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""", re.I)
    for template in (CONSOLE / "templates").rglob("*.html"):
        assert not remote.search(template.read_text()), template
    css = (CONSOLE / "static" / "console.css").read_text()
    assert "url(http" not in css and "@import" not in css


def test_pages_forbid_framing_caching_and_foreign_scripts(clerk: Clerk) -> None:
    response = clerk.get("/console/queue")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy


def test_the_dashboard_counts_the_window_and_the_district_sees_each_street(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    first = report(client, auth, JIANGSU, category="waste")["ticket"]
    report(client, auth, JIANGSU, north_m=-100, rider="c-2", category="waste")
    report(client, auth, HUAYANG, rider="c-3", category="road_damage")
    client.post(
        f"/v1/office/tickets/{first['id']}/actions",
        headers=auth.staff(OFFICER),
        json={"action": "accept"},
    )
    officer = Clerk(app, baseline, OFFICER).get("/console/dashboard").text
    assert re.search(r'id="kpi-total">2<', officer) and re.search(r'id="kpi-open">2<', officer)
    assert "垃圾堆放" in officer and "道路破损" not in officer
    assert "按街道" not in officer  # the table by street is the district's
    district = Clerk(app, baseline, DISTRICT)
    page = district.get("/console/dashboard").text
    assert re.search(r'id="kpi-total">3<', page)
    rows = dict(re.findall(r'street=(\d+)">[^<]+</a></th>\s*<td class="num">(\d+)</td>', page))
    assert rows["310105002"] == "2" and rows["310105001"] == "1" and len(rows) == 10
    tomorrow = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    empty = district.get("/console/dashboard", params={"from": tomorrow, "to": tomorrow}).text
    assert re.search(r'id="kpi-total">0<', empty)


def test_the_work_order_prints_what_a_crew_needs(
    clerk: Clerk, client: TestClient, auth: Auth
) -> None:
    photo = photo_of(client, auth)
    receipt = report(
        client, auth, JIANGSU, category="road_damage", description="路面塌陷", media_ids=[photo]
    )
    page = clerk.get(f"/console/tickets/{receipt['ticket']['id']}/print").text
    assert receipt["ticket"]["ref"] in page and "派工单" in page
    assert "道路破损" in page and "路面塌陷" in page and "江苏路街道" in page
    assert f"/console/media/{photo}" in page and "签字" in page
    assert "<form" not in page  # nothing to press on paper


def test_a_forwarded_ticket_shows_where_it_went(
    clerk: Clerk, client: TestClient, auth: Auth, database: Database, settings: Settings
) -> None:
    from app.models import utcnow
    from app.open311 import forwarding

    forward_new_tickets(
        client, auth, category="waste", name="环卫作业系统", endpoint="http://10.9.9.9/open311/v2"
    )
    ticket = report(client, auth, JIANGSU, category="waste")["ticket"]
    forwarding.forward_due(database, settings=settings, now=utcnow())
    page = clerk.get(f"/console/tickets/{ticket['id']}").text
    assert "已转送至" in page and "环卫作业系统" in page and "等待发送" in page
    assert "not a public address" in page


def test_odd_values_in_the_url_and_forms_are_no_server_errors(
    clerk: Clerk, client: TestClient, auth: Auth
) -> None:
    ticket = report(client, auth, JIANGSU)["ticket"]
    for path in (
        "/console/queue?to=9999-12-31&from=0001-01-01",
        "/console/dashboard?from=0001-01-01&to=9999-12-31",
        "/console/queue?bbox=1,2,3&sort=nonsense&limit=x&status=bogus",
    ):
        assert clerk.get(path).status_code == 200, path
    odd = clerk.post(
        f"/console/tickets/{ticket['id']}/actions",
        {"action": "set_priority", "version": "1", "priority": "²"},
    )
    assert odd.status_code == 422
    forged = clerk.http.post(
        f"/console/tickets/{ticket['id']}/actions",
        data={"action": "accept", "version": "1"},
        headers={"X-CSRF-Token": b"\xe9" * 8},  # not ASCII: still a plain refusal
    )
    assert forged.status_code == 403


def test_cookies_are_secure_when_the_setting_says_so(app: FastAPI) -> None:
    """Behind a TLS proxy whose headers are not trusted, the request looks like http."""
    app.state.settings = app.state.settings.model_copy(update={"console_secure_cookies": True})
    page = another_client(app).get("/console/login")
    assert "; secure" in set_cookie(page, "sentinel_csrf").lower()


def test_the_dashboard_shows_the_kpis_and_the_district_downloads_its_table(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    first = report(client, auth, JIANGSU, category="waste")["ticket"]
    report(client, auth, HUAYANG, rider="k-2", category="road_damage")
    for action in ({"action": "accept"}, {"action": "resolve", "note": "已清理"}):
        answer = client.post(
            f"/v1/office/tickets/{first['id']}/actions", headers=auth.staff(OFFICER), json=action
        )
        assert answer.status_code == 200, answer.text
    district = Clerk(app, baseline, DISTRICT)
    page = district.get("/console/dashboard").text
    api = client.get("/v1/office/stats", headers=auth.staff(DISTRICT)).json()
    assert re.search(r'id="kpi-closure">50\.0%<', page) and api["closure_rate"] == 0.5
    assert "结案率" in page and "返工率" in page and 'id="streets-xlsx"' in page
    # Ranked by closure rate, highest first: 江苏路 (1 of 1) before 华阳路 (0 of 1).
    ranked = district.get("/console/dashboard", params={"sort": "-closure_rate"}).text
    order = re.findall(r'queue\?street=(\d+)">', ranked)
    assert order.index("310105002") < order.index("310105001")
    assert 'aria-sort="descending"' in ranked
    workbook = district.get("/console/dashboard/streets.xlsx", params={"sort": "-closure_rate"})
    assert workbook.status_code == 200
    sheet = load_workbook(io.BytesIO(workbook.content)).active
    codes = [row[0].value for row in sheet.iter_rows(min_row=2, max_row=11)]
    assert len(codes) == 10 and codes[0] == "310105002"
    officer = Clerk(app, baseline, OFFICER)
    assert officer.get("/console/dashboard/streets.xlsx").status_code == 403


def test_the_district_sees_a_sighting_on_the_alerts_page_and_closes_it(
    app: FastAPI, baseline: Baseline, client: TestClient, auth: Auth
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    published = client.post(
        "/v1/office/alerts",
        headers=auth.staff(DISTRICT),
        json={
            "kind": "hazard",
            "title": "广告牌松动，请绕行",
            "area": {"area_code": "310105002"},
            "expires_at": expires,
        },
    )
    assert published.status_code == 201, published.text
    alert_id = published.json()["id"]
    district = Clerk(app, baseline, DISTRICT)
    listed = district.get("/console/alerts").text
    assert "广告牌松动，请绕行" in listed and f"/console/alerts/{alert_id}" in listed
    assert "<td>险情</td><td>进行中</td>" in listed  # its kind and status, in the clerk's words
    page = district.get(f"/console/alerts/{alert_id}").text
    assert 'id="sightings-count">0<' in page and 'hx-trigger="every 5s"' in page
    rider = auth.rider("meituan", "sees-it")
    sent = client.post(
        f"/v1/alerts/{alert_id}/sightings",
        headers=rider,
        json={"lat": JIANGSU["lat"], "lon": JIANGSU["lon"], "coord_sys": "gcj02", "note": "还在晃"},
    )
    assert sent.status_code == 201, sent.text
    part = district.get(f"/console/alerts/{alert_id}/sightings").text
    assert 'id="sightings-count">1<' in part and "还在晃" in part and "meituan" in part
    # An officer reads it but cannot close it; the district closes it.
    officer = Clerk(app, baseline, OFFICER).get(f"/console/alerts/{alert_id}").text
    assert "还在晃" in officer and "close-alert" not in officer
    closed = district.post(
        f"/console/alerts/{alert_id}/close", data={"outcome": "resolved", "note": "已加固"}
    )
    assert closed.status_code == 303
    after = client.get(f"/v1/office/alerts/{alert_id}", headers=auth.staff(DISTRICT)).json()
    assert after["status"] == "closed" and after["outcome"] == "resolved"
    assert "已结束 · 已解决" in district.get(f"/console/alerts/{alert_id}").text

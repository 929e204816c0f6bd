"""Open311 GeoReport v2 at /open311/v2: every answer validated against the spec's JSON
Schemas, the XML read back and compared with the JSON, errors in the spec's shape, open
data that shows no rider, and POSTs shaped as FixMyStreet and other clients send them."""

import json
import re
import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import Rider
from tests.conftest import Auth, Baseline, Clock
from tests.helpers import HUAYANG, JIANGSU, report_at
from tests.reporting import CountRows

SCHEMAS = Path(__file__).parents[1] / "data" / "open311"
BASE = "/open311/v2"
OFFSET_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")
REGISTRY = Registry().with_resources(
    (name, Resource.from_contents(json.loads((SCHEMAS / name).read_text()), DRAFT7))
    for name in (
        "request.json",
        "requests.json",
        "service.json",
        "services.json",
        "service-definition.json",
    )
)
SWAGGER = json.loads((SCHEMAS / "swagger.json").read_text())


def valid(body: Any, schema: str) -> Any:
    """``body``, after checking it against the spec's schema ``schema``."""
    errors = list(Draft7Validator({"$ref": schema}, registry=REGISTRY).iter_errors(body))
    assert errors == [], [e.message for e in errors]
    return body


def posted(body: Any) -> Any:
    """A POST's answer, checked against the spec's ``RequestResponse``."""
    schema = {"type": "array", "items": SWAGGER["definitions"]["RequestResponse"]}
    errors = list(Draft7Validator(schema).iter_errors(body))
    assert errors == [] and len(body) == 1, [e.message for e in errors]
    for entry in body:
        assert set(entry) <= {"service_request_id", "service_notice", "account_id", "token"}
    return body


def xml_items(response: httpx.Response, root: str, item: str) -> list[dict[str, str | None]]:
    """The items of an Open311 XML list, each as {element: text}."""
    assert response.headers["content-type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    tree = ET.fromstring(response.content)
    assert tree.tag == root and all(child.tag == item for child in tree)
    return [{field.tag: field.text for field in entry} for entry in tree]


def as_xml_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def same_as_json(items: list[dict[str, str | None]], body: list[dict[str, Any]]) -> None:
    assert [
        {k: as_xml_text(v) for k, v in entry.items() if not isinstance(v, list)} for entry in body
    ] == items


def open311_form(key: str, **fields: Any) -> dict[str, Any]:
    """A POST as FixMyStreet sends one: form-encoded, ``jurisdiction_id`` always present."""
    return {
        "api_key": key,
        "jurisdiction_id": "",
        "service_code": "road_damage",
        "lat": "31.2185",
        "long": "121.4287",
        "description": "路面有坑",
        "account_id": "fms-1",
        "first_name": "Zhang",
        "last_name": "San",
        "email": "zhang@example.org",
        "phone": "13800000000",
        **fields,
    }


@pytest.fixture
def key(baseline: Baseline) -> str:
    return baseline.api_key("meituan")


def accept(client: TestClient, auth: Auth, *ticket_ids: str) -> None:
    """The district accepts the tickets: what makes them open data."""
    for ticket_id in ticket_ids:
        response = client.post(
            f"/v1/office/tickets/{ticket_id}/actions",
            headers=auth.staff("changning"),
            json={"action": "accept"},
        )
        assert response.status_code == 200, response.text


# -- services


def test_services_are_the_categories_in_both_formats(client: TestClient) -> None:
    body = valid(client.get(f"{BASE}/services.json").json(), "services.json")
    codes = [s["service_code"] for s in body]
    assert "road_damage" in codes and all(s["metadata"] is False for s in body)
    assert {s["type"] for s in body} == {"realtime"}
    items = xml_items(client.get(f"{BASE}/services.xml"), "services", "service")
    same_as_json(items, body)
    definition = valid(
        client.get(f"{BASE}/services/road_damage.json").json(), "service-definition.json"
    )
    assert definition == {"service_code": "road_damage", "attributes": []}
    tree = ET.fromstring(client.get(f"{BASE}/services/road_damage.xml").content)
    assert tree.tag == "service_definition" and tree.findtext("service_code") == "road_damage"


def test_discovery_names_this_server(client: TestClient) -> None:
    body = client.get(f"{BASE}/discovery.json").json()
    assert body["endpoints"][0]["url"].endswith("/open311/v2")
    assert body["endpoints"][0]["formats"] == ["application/json", "text/xml"]
    tree = ET.fromstring(client.get(f"{BASE}/discovery.xml").content)
    assert [f.text for f in tree.iter("format")] == ["application/json", "text/xml"]


# -- service requests: open data


def test_a_ticket_reads_open_then_closed_and_shows_no_rider(
    client: TestClient, auth: Auth, count_rows: CountRows, database: Database
) -> None:
    rider = auth.rider("meituan", "o-1")
    with database.session() as session:
        pseudonym = session.scalar(select(Rider.pseudonym).where(Rider.external_id == "o-1"))
    assert pseudonym
    photo = client.post(
        "/v1/media", headers=rider, files={"file": ("p.png", _png(), "image/png")}
    ).json()["id"]
    receipt = report_at(
        client, rider, JIANGSU, category="waste", description="垃圾堆在路口", media_ids=[photo]
    )
    ticket_id = receipt["ticket"]["id"]
    office = auth.staff("officer_310105002")

    def read() -> dict[str, Any]:
        body = valid(client.get(f"{BASE}/requests/{ticket_id}.json").json(), "requests.json")
        assert len(body) == 1
        return dict(body[0])

    unseen = client.get(f"{BASE}/requests/{ticket_id}.json")
    assert unseen.status_code == 404  # new: not open data until an office accepts it
    client.post(
        f"/v1/office/tickets/{ticket_id}/actions",
        headers=office,
        json={"action": "comment", "note": "内部：联系了环卫"},
    )
    client.post(
        f"/v1/office/tickets/{ticket_id}/actions", headers=office, json={"action": "accept"}
    )
    first = read()
    assert first["status"] == "open" and first["status_notes"] == "accepted"
    assert first["service_code"] == "waste" and first["service_name"] == "垃圾堆放"
    assert first["agency_responsible"] == "江苏路街道"
    assert first["description"] == "垃圾堆在路口"
    # The place to about ten metres (four decimals), not where the rider stood.
    assert first["lat"] == round(receipt["lat"], 4) and first["long"] == round(receipt["lon"], 4)
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert OFFSET_TIME.match(first[name]), first[name]
    detail = client.get(f"/v1/office/tickets/{ticket_id}", headers=office).json()
    assert first["expected_datetime"][:19] == detail["resolve_by"][:19]

    assert first["media_url"] is None  # no photo before staff publish a blurred copy
    client.post(
        f"/v1/office/tickets/{ticket_id}/actions",
        headers=office,
        json={"action": "resolve", "note": "已清运"},
    )
    published = client.put(f"/v1/office/media/{photo}/public", headers=office, json={"boxes": []})
    assert published.status_code == 200, published.text
    closed = read()
    assert closed["status"] == "closed" and closed["status_notes"] == "resolved: 已清运"
    everything = json.dumps(client.get(f"{BASE}/requests.json").json(), ensure_ascii=False)
    for secret in ("o-1", "meituan", "联系了环卫", "officer_310105002", pseudonym):
        assert secret not in everything

    photo_url = closed["media_url"]
    assert photo_url and photo in photo_url
    path = httpx.URL(photo_url)
    shown = client.get(path.path, params=dict(path.params))
    assert shown.status_code == 200 and shown.headers["content-type"] == "image/jpeg"
    forged = client.get(path.path, params={"sig": "x" * 24})
    assert forged.status_code == 404 and forged.json()[0]["code"] == 404


def test_a_photo_link_works_for_a_day_and_then_expires(
    client: TestClient, auth: Auth, clock: Clock, settings: Settings
) -> None:
    clock.now = clock.now.replace(minute=10, second=0)
    rider = auth.rider("meituan", "o-2")
    photo = client.post(
        "/v1/media", headers=rider, files={"file": ("p.png", _png(), "image/png")}
    ).json()["id"]
    ticket_id = report_at(client, rider, JIANGSU, category="waste", media_ids=[photo])["ticket"][
        "id"
    ]
    office = auth.staff("officer_310105002")
    accepted = client.post(
        f"/v1/office/tickets/{ticket_id}/actions", headers=office, json={"action": "accept"}
    )
    assert accepted.status_code == 200, accepted.text
    assert client.put(
        f"/v1/office/media/{photo}/public", headers=office, json={"boxes": []}
    ).is_success

    def link() -> httpx.URL:
        body = client.get(f"{BASE}/requests/{ticket_id}.json").json()
        return httpx.URL(body[0]["media_url"])

    url = link()
    expires = int(url.params["exp"])
    # On the hour, a day or so from now: the same link for every reader of the hour.
    assert expires % 3600 == 0
    ttl = settings.open311_media_ttl_h * 3600
    assert ttl <= expires - clock.now.timestamp() < ttl + 3600
    clock.advance(minutes=1)
    assert link() == url  # the same hour: the same link
    shown = client.get(url.path, params=dict(url.params))
    assert shown.status_code == 200
    left = expires - int(clock.now.timestamp())
    assert f"max-age={min(left, 31536000)}" in shown.headers["cache-control"]
    # A later expiry, or another version, is not the signed one.
    for forged in ({"exp": str(expires + 86400)}, {"v": "other"}):
        changed = client.get(url.path, params={**dict(url.params), **forged})
        assert changed.status_code == 404 and changed.json()[0]["code"] == 404

    clock.now = datetime.fromtimestamp(expires, UTC)
    expired = client.get(url.path, params=dict(url.params))
    assert expired.status_code == 403
    assert "expired" in expired.json()[0]["description"]
    # The request read again gives a link that works.
    fresh = link()
    assert fresh != url and client.get(fresh.path, params=dict(fresh.params)).status_code == 200


def test_the_xml_says_what_the_json_says_with_one_request_and_with_many(
    client: TestClient, auth: Auth
) -> None:
    x1 = report_at(client, auth.rider("meituan", "x-1"), JIANGSU, category="road_damage")
    accept(client, auth, x1["ticket"]["id"])
    one = valid(client.get(f"{BASE}/requests.json").json(), "requests.json")
    same_as_json(xml_items(client.get(f"{BASE}/requests.xml"), "service_requests", "request"), one)
    x2 = report_at(client, auth.rider("eleme", "x-2"), HUAYANG, category="waste")
    accept(client, auth, x2["ticket"]["id"])
    many = valid(client.get(f"{BASE}/requests.json").json(), "requests.json")
    assert len(many) == 2
    items = xml_items(client.get(f"{BASE}/requests.xml"), "service_requests", "request")
    same_as_json(items, many)


def test_requests_filter_as_the_spec_says(client: TestClient, auth: Auth) -> None:
    a = report_at(client, auth.rider("meituan", "f-1"), JIANGSU, category="road_damage")
    b = report_at(client, auth.rider("meituan", "f-2"), HUAYANG, category="waste")
    spam = report_at(client, auth.rider("meituan", "f-3"), HUAYANG, north_m=-300, category="waste")
    accept(client, auth, a["ticket"]["id"], b["ticket"]["id"])
    office = auth.staff("officer_310105001")
    client.post(
        f"/v1/office/tickets/{b['ticket']['id']}/actions",
        headers=office,
        json={"action": "resolve", "note": "已清运"},
    )
    client.post(
        f"/v1/office/tickets/{spam['ticket']['id']}/actions",
        headers=office,
        json={"action": "reject", "reason": "spam"},
    )

    def ids(**params: str) -> list[str]:
        response = client.get(f"{BASE}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return [r["service_request_id"] for r in valid(response.json(), "requests.json")]

    ta, tb = a["ticket"]["id"], b["ticket"]["id"]
    assert ids() == [tb, ta]
    assert ids(service_code="waste") == [tb]
    assert ids(status="open") == [ta] and ids(status="closed") == [tb]
    assert ids(service_request_id=f"{ta},{tb}", status="open") == [tb, ta]  # ids override
    assert ids(jurisdiction_id="310105") == [tb, ta] and ids(jurisdiction_id="") == [tb, ta]
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ids(start_date=later) == []
    assert ids(end_date=(datetime.now(UTC) - timedelta(days=1)).isoformat()) == []
    assert ids(bbox="121.40,31.20,121.425,31.23") == [tb]  # an extension: HUAYANG only
    assert client.get(f"{BASE}/requests/{tb}.json").json()[0]["status_notes"] == (
        "resolved: 已清运"
    )
    rejected = client.get(f"{BASE}/requests/{spam['ticket']['id']}.json")
    assert rejected.status_code == 404  # turned down as spam: never open data

    first = client.get(f"{BASE}/requests.json", params={"page_size": "1"})
    assert [r["service_request_id"] for r in first.json()] == [tb]
    following = re.match(r'^<([^>]+)>; rel="next"$', first.headers["link"])
    assert following
    link = httpx.URL(following[1])
    second = client.get(link.path, params=dict(link.params))
    assert [r["service_request_id"] for r in second.json()] == [ta]
    assert "link" not in second.headers


def test_errors_come_in_the_specs_shape_and_format(client: TestClient, key: str) -> None:
    cases = [
        ("get", f"{BASE}/services/no_such.json", None, 404),
        ("get", f"{BASE}/requests/{uuid.uuid4()}.json", None, 404),
        ("get", f"{BASE}/requests/not-an-id.json", None, 404),
        ("get", f"{BASE}/requests.json?jurisdiction_id=999999", None, 404),
        ("get", f"{BASE}/requests.json?start_date=yesterday", None, 400),
        ("get", f"{BASE}/requests.json?service_code=no_such", None, 400),
        ("get", f"{BASE}/requests.json?service_request_id=1,2", None, 400),
        ("post", f"{BASE}/requests.json", open311_form("not-a-key"), 403),
        ("post", f"{BASE}/requests.json", open311_form(key, service_code="no_such"), 400),
        ("post", f"{BASE}/requests.json", open311_form(key, lat="31.2397", long="121.4998"), 400),
        ("post", f"{BASE}/requests.json", open311_form(key, lat=""), 400),
        ("post", f"{BASE}/requests.json", open311_form(key, account_id=""), 400),
        ("post", f"{BASE}/requests.json", open311_form(key, description="长" * 4001), 400),
        ("get", f"{BASE}/nothing.json", None, 404),
    ]
    for method, path, form, status in cases:
        response = client.request(method, path, data=form)
        assert response.status_code == status, (path, response.text)
        body = response.json()
        assert isinstance(body, list) and body[0]["code"] == status and body[0]["description"]
        as_xml = client.request(method, path.replace(".json", ".xml"), data=form)
        assert as_xml.status_code == status
        errors = xml_items(as_xml, "errors", "error")
        assert errors[0]["code"] == str(status), path


def test_a_bad_post_stores_nothing(client: TestClient, key: str, count_rows: CountRows) -> None:
    before = (count_rows("reports"), count_rows("tickets"), count_rows("riders"))
    for form in (
        open311_form("not-a-key"),
        open311_form(key, lat="31.2397", long="121.4998", account_id="new-rider"),
        open311_form(key, service_code="no_such"),
    ):
        assert client.post(f"{BASE}/requests.json", data=form).status_code in (400, 403)
    assert (count_rows("reports"), count_rows("tickets"), count_rows("riders")) == before


# -- posting


def test_a_fixmystreet_post_goes_through_the_intake_and_a_second_joins_it(
    client: TestClient, auth: Auth, key: str, count_rows: CountRows
) -> None:
    form = open311_form(
        key,
        **{
            "attribute[depth]": "10cm",
            "attribute[hazards][]": ["traffic", "night"],
            "media_url": "http://10.0.0.1/never-fetched.jpg",
        },
    )
    response = client.post(f"{BASE}/requests.json", data=form)
    assert response.status_code == 201, response.text
    request_id = posted(response.json())[0]["service_request_id"]
    assert "service_notice" not in response.json()[0]
    again = client.post(
        f"{BASE}/requests.xml", data=open311_form(key, account_id="fms-2", description="")
    )
    assert again.status_code == 201
    answer = xml_items(again, "service_requests", "request")[0]
    assert answer["service_request_id"] == request_id
    assert "joins service request" in (answer["service_notice"] or "")

    accept(client, auth, request_id)
    shown = valid(client.get(f"{BASE}/requests/{request_id}.json").json(), "requests.json")[0]
    assert shown["description"] == "路面有坑\ndepth: 10cm; hazards: traffic, night"
    assert shown["media_url"] is None  # a client's URL is never fetched
    office = client.get(f"/v1/office/tickets/{request_id}", headers=auth.staff("changning")).json()
    assert office["report_count"] == 2
    assert {r["rider"]["platform"] for r in office["reports"]} == {"meituan"}
    stored = json.dumps(office, ensure_ascii=False)
    for personal in ("Zhang", "zhang@example.org", "13800000000"):
        assert personal not in stored
    points = client.get("/v1/platform/riders/fms-1/stats", headers=auth.platform("meituan")).json()
    assert points["reports"] == 1


def test_the_rate_limit_holds_for_open311_too(
    client: TestClient, key: str, settings: Any, app: Any
) -> None:
    limit = app.state.settings.rider_reports_per_hour
    statuses = [
        client.post(
            f"{BASE}/requests.json",
            data=open311_form(key, account_id="busy"),  # each joins the first: still counted
        ).status_code
        for _ in range(limit + 1)
    ]
    assert statuses[:limit] == [201] * limit and statuses[-1] == 429


def _png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def test_a_form_of_raw_utf8_bytes_reads_as_utf8(client: TestClient, auth: Auth, key: str) -> None:
    """As ``curl -d`` sends Chinese: the bytes themselves, not percent-encoded."""
    body = f"api_key={key}&account_id=raw-1&service_code=waste&lat=31.2185&long=121.4287"
    body += "&description=垃圾堆在路口"
    response = client.post(
        f"{BASE}/requests.json",
        content=body.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 201, response.text
    request_id = response.json()[0]["service_request_id"]
    accept(client, auth, request_id)
    shown = client.get(f"{BASE}/requests/{request_id}.json").json()[0]
    assert shown["description"] == "垃圾堆在路口"
    latin = client.post(
        f"{BASE}/requests.json",
        content=b"api_key=x&description=\xff\xfe",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert latin.status_code == 400 and latin.json()[0]["code"] == 400


def test_odd_inputs_are_refused_cleanly(
    client: TestClient, key: str, count_rows: CountRows
) -> None:
    before = count_rows("reports")
    for form in (
        open311_form(key, description="坑\x0b\x00"),
        open311_form(key, address_string="路口\x1b"),
        open311_form(key, **{"attribute[depth]": "1\x07"}),
    ):
        response = client.post(f"{BASE}/requests.json", data=form)
        assert response.status_code == 400 and response.json()[0]["code"] == 400
    assert count_rows("reports") == before
    for query in (
        "start_date=0001-01-01T00:00:00%2B08:00",
        "end_date=0001-01-05T00:00:00Z",
        "end_date=9999-12-31T00:00:00Z",
        "cursor=WyIyMDI2LTEyLTAxVDE2OjE2OjUzIiwiMDAwMDAwMDAtMDAwMC0wMDAwLTAwMDAtMDAwMDAwMDAwMDAwIl0",
        "status=opened",
    ):
        response = client.get(f"{BASE}/requests.json?{query}")
        assert response.status_code == 400, (query, response.text)
    photo = client.get(f"{BASE}/media/{uuid.uuid4()}", params={"sig": "é" * 10})
    assert photo.status_code == 404 and photo.json()[0]["code"] == 404


def test_status_and_service_code_take_lists(client: TestClient, auth: Auth) -> None:
    a = report_at(client, auth.rider("meituan", "l-1"), JIANGSU, category="road_damage")
    b = report_at(client, auth.rider("meituan", "l-2"), HUAYANG, category="waste")
    c = report_at(client, auth.rider("meituan", "l-3"), HUAYANG, north_m=-200, category="other")
    accept(client, auth, a["ticket"]["id"], b["ticket"]["id"], c["ticket"]["id"])

    def ids(**params: str) -> set[str]:
        response = client.get(f"{BASE}/requests.json", params=params)
        assert response.status_code == 200, response.text
        return {r["service_request_id"] for r in response.json()}

    assert ids(service_code="road_damage,waste") == {a["ticket"]["id"], b["ticket"]["id"]}
    assert ids(status="open,closed") == {a["ticket"]["id"], b["ticket"]["id"], c["ticket"]["id"]}
    unknown = client.get(f"{BASE}/requests.json", params={"service_code": "waste,no_such"})
    assert unknown.status_code == 400 and "no_such" in unknown.json()[0]["description"]


def test_a_reopened_ticket_no_longer_shows_its_resolution_note(
    client: TestClient, auth: Auth
) -> None:
    ticket = report_at(client, auth.rider("meituan", "n-1"), JIANGSU, category="waste")["ticket"]
    office = auth.staff("officer_310105002")
    for action in ({"action": "accept"}, {"action": "resolve", "note": "已清运"}):
        client.post(f"/v1/office/tickets/{ticket['id']}/actions", headers=office, json=action)
    assert client.get(f"{BASE}/requests/{ticket['id']}.json").json()[0]["status_notes"] == (
        "resolved: 已清运"
    )
    client.post(
        f"/v1/office/tickets/{ticket['id']}/actions",
        headers=office,
        json={"action": "reopen", "note": "又堆起来了"},
    )
    shown = client.get(f"{BASE}/requests/{ticket['id']}.json").json()[0]
    assert shown["status"] == "open" and shown["status_notes"] == "accepted: 又堆起来了"


def test_the_xml_never_carries_a_character_xml_cannot_hold() -> None:
    from app.schemas.open311 import to_xml

    document = to_xml("service_requests", "request", [{"description": "a\x0bb\x00c\td"}])
    assert ET.fromstring(document).findtext("request/description") == "abc\td"

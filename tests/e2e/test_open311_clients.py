"""Open311 clients from PyPI against a live server on 127.0.0.1: georeport reads (JSON and
XML, through xmltodict), civicbot writes a request as a form and reads it back."""

from typing import Any

import httpx
import pytest
from civicbot.http import HttpTransport, RateLimiter
from civicbot.open311 import CONFIRM_TOKEN, Open311Client
from civicbot.registry import Endpoint
from georeport import GeoReport

from tests.conftest import Baseline


@pytest.fixture
def endpoint(live_server: str) -> str:
    return f"{live_server}/open311/v2"


def accept(live_server: str, baseline: Baseline, ticket_id: str) -> None:
    """The district accepts the ticket, which makes it open data."""
    token = httpx.post(
        f"{live_server}/v1/auth/token",
        data={"username": "changning", "password": baseline.password("changning")},
    ).json()["access_token"]
    accepted = httpx.post(
        f"{live_server}/v1/office/tickets/{ticket_id}/actions",
        headers={"Authorization": f"Bearer {token}"},
        json={"action": "accept"},
    )
    assert accepted.status_code == 200, accepted.text


def test_civicbot_files_a_request_that_georeport_reads_in_json_and_xml(
    endpoint: str, live_server: str, baseline: Baseline
) -> None:
    civic = Open311Client(
        Endpoint(id="changning", name="长宁区", base_url=endpoint, write=True),
        transport=HttpTransport(rate_limiter=RateLimiter(min_interval=0)),
        jurisdiction_id="310105",
    )
    services = civic.list_services()
    assert "fire_exit_blocked" in {s["service_code"] for s in services}
    filed = civic.create_request(
        "fire_exit_blocked",
        dry_run=False,
        confirm=CONFIRM_TOKEN,
        api_key=baseline.api_key("eleme"),
        account_id="civic-1",
        lat=31.2185,
        lng=121.4287,
        description="消防通道被电动车堵住",
        attributes={"floor": "1", "blocked": ["door", "stairs"]},
        email="someone@example.org",
        validate_remote=True,
    )
    request_id = filed.response[0]["service_request_id"]
    accept(live_server, baseline, request_id)
    assert civic.get_request(request_id)["status"] == "open"

    for output_format in ("json", "xml"):
        reader = GeoReport(endpoint, jurisdiction="310105", output_format=output_format)
        found: Any = reader.get_service_request(request_id)
        assert found["service_code"] == "fire_exit_blocked", output_format
        assert found["status"] == "open"
        assert found["description"] == "消防通道被电动车堵住\nblocked: door, stairs; floor: 1"
        assert float(found["lat"]) == pytest.approx(31.2185)
        listed = reader.get_service_requests(service_code="fire_exit_blocked")
        # xmltodict gives one element as a dict and many as a list: a list of one here.
        items = listed if isinstance(listed, list) else [listed]
        assert [r["service_request_id"] for r in items] == [request_id]
        assert "someone@example.org" not in str(listed) and "civic-1" not in str(listed)
    assert {s["service_code"] for s in GeoReport(endpoint).get_service_list()} == {
        s["service_code"] for s in services
    }

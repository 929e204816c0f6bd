"""Two clerks act on one ticket at the same moment: one wins, the other is told, nothing lost."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.apps import http_client
from tests.conftest import Auth


@pytest.mark.parametrize("if_match", [True, False])
def test_concurrent_actions_on_one_ticket(live_server: str, auth: Auth, if_match: bool) -> None:
    with http_client(live_server, timeout=30) as http:
        rider = auth.rider("meituan", "r-race")
        report = http.post(
            "/v1/reports",
            headers=rider,
            json={"category": "road_damage", "lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"},
        )
        ticket = report.json()["ticket"]["id"]
        officer = auth.staff("officer_310105002")
        headers = officer | ({"If-Match": '"1"'} if if_match else {})

        def accept(_: int) -> httpx.Response:
            with http_client(live_server, timeout=30) as own:
                return own.post(
                    f"/v1/office/tickets/{ticket}/actions",
                    headers=headers,
                    json={"action": "accept", "note": "on it"},
                )

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(accept, range(8)))
        statuses = Counter(r.status_code for r in responses)
        assert statuses[200] == 1, [r.text for r in responses]
        losers = {r.json()["code"] for r in responses if r.status_code != 200}
        assert losers <= ({"version_mismatch"} if if_match else {"invalid_transition"})
        detail = http.get(f"/v1/office/tickets/{ticket}", headers=officer).json()
        assert detail["status"] == "accepted" and detail["version"] == 2
        assert [e["type"] for e in detail["events"]] == ["created", "accept"]

"""What a scanner looks for first: the answers of a real ``sentinel serve`` name no
server, forbid sniffing, and grant no other origin anything."""

from pathlib import Path

import pytest

from app.config import Settings
from tests.apps import request
from tests.e2e.processes import ServerProcess

pytestmark = pytest.mark.processes


def test_a_served_answer_has_no_banner_no_sniffing_and_no_cors(
    settings: Settings, tmp_path: Path, baseline: object
) -> None:
    server = ServerProcess(settings, tmp_path).start()
    try:
        for path in ("/healthz", "/v1/categories", "/v1/office/tickets", "/no/such/path"):
            response = request(
                "GET", f"{server.url}{path}", headers={"Origin": "https://evil.example"}, timeout=5
            )
            assert "server" not in response.headers, path
            assert response.headers["x-content-type-options"] == "nosniff", path
            assert not any(h.startswith("access-control-") for h in response.headers), path
        preflight = request(
            "OPTIONS",
            f"{server.url}/v1/reports",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
            timeout=5,
        )
        assert "access-control-allow-origin" not in preflight.headers
    finally:
        server.kill()

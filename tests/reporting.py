"""What the tests of the rider's front door share: a hand-moved clock, two riders, spots
around one point, and the calls a rider's app makes."""

import base64
import io
import json
import math
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response
from PIL import Image
from sqlalchemy import select

from app.db import Database
from app.geo.coords import CoordSys, to_wgs84
from app.models import Ticket, TicketEvent, TicketStatus
from tests.conftest import Headers
from tests.helpers import assert_problem

CountRows = Callable[[str], int]

# Everything a report can leave behind.
STORED = ("reports", "tickets", "ticket_events", "report_media", "idempotency_records")

# A point in 江苏路街道 (310105002): the demo's GCJ-02 landmark, in WGS-84. Other points
# are placed so many metres north and east of it.
BASE_LON, BASE_LAT = to_wgs84(121.4330, 31.2200, CoordSys.GCJ02)
M_LAT = 1 / 111_320
M_LON = 1 / (111_320 * math.cos(math.radians(31.22)))
THE_BUND = {"lat": 31.2397, "lon": 121.4998}  # Huangpu: outside every district served
BEIJING = timezone(timedelta(hours=8))


def spot(north: float = 0.0, east: float = 0.0) -> dict[str, float]:
    """WGS-84 lat/lon ``north`` and ``east`` metres from the base point."""
    return {"lat": BASE_LAT + north * M_LAT, "lon": BASE_LON + east * M_LON}


def report(
    category: str = "road_damage", north: float = 0.0, east: float = 0.0, **extra: Any
) -> dict[str, Any]:
    return {"category": category, **spot(north, east), **extra}


def post(
    client: TestClient, headers: Headers, body: dict[str, Any], key: str | None = None
) -> Response:
    if key is not None:
        headers = {**headers, "Idempotency-Key": key}
    return client.post("/v1/reports", headers=headers, json=body)


def submit(
    client: TestClient, headers: Headers, body: dict[str, Any], key: str | None = None
) -> dict[str, Any]:
    response = post(client, headers, body, key)
    assert response.status_code == 201, response.text
    assert "idempotent-replayed" not in response.headers
    received: dict[str, Any] = response.json()
    return received


def stored(count_rows: CountRows) -> dict[str, int]:
    return {table: count_rows(table) for table in STORED}


def set_status(database: Database, ticket_id: str, status: TicketStatus) -> None:
    """Triage is not built yet: move a ticket as an office would, straight in the table."""
    with database.transaction() as session:
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        ticket.status = status


def ticket_row(database: Database, ticket_id: str) -> Ticket:
    with database.session(write=False) as session:
        ticket = session.get(Ticket, uuid.UUID(ticket_id))
        assert ticket is not None
        return ticket


def event_types(database: Database, ticket_id: str) -> Counter[str]:
    with database.session(write=False) as session:
        return Counter(
            session.scalars(
                select(TicketEvent.type).where(TicketEvent.ticket_id == uuid.UUID(ticket_id))
            )
        )


def png(color: tuple[int, int, int] = (200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), color).save(buffer, "PNG")
    return buffer.getvalue()


def upload(client: TestClient, headers: Headers, data: bytes) -> str:
    response = client.post(
        "/v1/media", headers=headers, files={"file": ("photo.png", data, "image/png")}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def assert_refused(
    count_rows: CountRows,
    response_of: Callable[[], Response],
    status: int,
    code: str,
    field: str | None,
) -> Response:
    """The request is refused with this problem and leaves no row behind."""
    before = stored(count_rows)
    response = response_of()
    problem = assert_problem(response, status, code)
    if field is not None:
        assert field in {e["field"] for e in problem["errors"]}, problem
    assert stored(count_rows) == before
    return response


# --- bad input -------------------------------------------------------------------------


def batch(client: TestClient, headers: Headers, items: list[dict[str, Any]]) -> Response:
    return client.post("/v1/reports/batch", headers=headers, json={"reports": items})


def pages(client: TestClient, headers: Headers, limit: int) -> Iterator[dict[str, Any]]:
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = client.get("/v1/reports", headers=headers, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        yield page
        if page["next_cursor"] is None:
            return
        params["cursor"] = page["next_cursor"]


def forged_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")

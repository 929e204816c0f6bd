"""Reports racing each other through a real server: one ticket, one report per key.

Requests go out from many threads at once (a barrier releases them together) to a real
uvicorn server, so they really overlap in the app's thread pool and in the database.
"""

import math
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.db import Database, _lock_key
from app.services import idempotency
from app.services.coords import CoordSys, to_wgs84
from tests.conftest import Auth
from tests.helpers import assert_problem

CountRows = Callable[[str], int]
Headers = dict[str, str]

# The corner of four 0.01° cells, in 江苏路街道: reports around it straddle cell borders,
# which is where a lock per (category, cell) could let two of them pass each other.
CORNER_LON, CORNER_LAT = 121.43, 31.22
M_LAT = 1 / 111_320
M_LON = 1 / (111_320 * math.cos(math.radians(CORNER_LAT)))


def fire(base_url: str, requests: list[tuple[Headers, dict[str, Any]]]) -> list[httpx.Response]:
    """POST every (headers, body) to /v1/reports at the same moment, one thread each."""
    start = threading.Barrier(len(requests))

    def send(request: tuple[Headers, dict[str, Any]]) -> httpx.Response:
        headers, body = request
        with httpx.Client(base_url=base_url, timeout=60) as http:
            start.wait(timeout=30)
            return http.post("/v1/reports", headers=headers, json=body)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, requests))


def dialect(database: Database) -> str:
    return database.engine.dialect.name


@pytest.mark.parametrize("category", ["road_damage", "ebike_parking"])
def test_sixteen_riders_at_one_spot_make_one_ticket(live_server: str, auth: Auth,
                                                    count_rows: CountRows,
                                                    category: str) -> None:
    riders = [auth.rider("meituan" if n % 2 else "eleme", f"racer-{n}") for n in range(16)]
    # On a circle of 2.5 m around the corner: no two more than 5 m apart.
    bodies = [{"category": category,
               "lat": CORNER_LAT + 2.5 * math.sin(n * math.pi / 8) * M_LAT,
               "lon": CORNER_LON + 2.5 * math.cos(n * math.pi / 8) * M_LON}
              for n in range(16)]
    responses = fire(live_server, list(zip(riders, bodies, strict=True)))

    assert [r.status_code for r in responses] == [201] * 16, [r.text for r in responses]
    receipts = [r.json() for r in responses]
    assert Counter(r["outcome"] for r in receipts) == {"new_ticket": 1, "joined_ticket": 15}
    assert len({r["ticket"]["id"] for r in receipts}) == 1
    # Each report saw the count the one before it left: none was lost or counted twice.
    assert sorted(r["ticket"]["report_count"] for r in receipts) == list(range(1, 17))
    assert count_rows("tickets") == 1 and count_rows("reports") == 16
    assert count_rows("ticket_events") == 16

    detail = httpx.get(f"{live_server}/v1/reports/{receipts[0]['id']}", headers=riders[0])
    assert detail.json()["ticket"]["report_count"] == 16


def test_reports_far_apart_do_not_merge_under_load(live_server: str, auth: Auth,
                                                   count_rows: CountRows) -> None:
    riders = [auth.rider("meituan", f"spread-{n}") for n in range(8)]
    # 8 points 60 m apart along a line across the cell border: 8 tickets.
    bodies = [{"category": "road_damage", "lat": CORNER_LAT,
               "lon": CORNER_LON + (n - 4) * 60 * M_LON} for n in range(8)]
    responses = fire(live_server, list(zip(riders, bodies, strict=True)))
    assert [r.status_code for r in responses] == [201] * 8
    assert {r.json()["outcome"] for r in responses} == {"new_ticket"}
    assert count_rows("tickets") == 8


def _same_key_eight_times(live_server: str, auth: Auth) -> list[httpx.Response]:
    headers = {**auth.rider("meituan", "retrier"), "Idempotency-Key": "flaky-4g-0001"}
    body = {"category": "waste", "lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02",
            "description": "a flaky 4G link sends this eight times"}
    return fire(live_server, [(headers, body)] * 8)


def test_concurrent_retries_of_one_key_store_one_report(
        live_server: str, auth: Auth, count_rows: CountRows) -> None:
    """Each retry either waited and got the first response, or found the first still
    running and got 409; never a second report."""
    responses = _same_key_eight_times(live_server, auth)
    created = [r for r in responses if r.status_code == 201]
    assert created, [r.text for r in responses]
    assert all(r.json() == created[0].json() for r in created)
    assert sum(r.headers.get("idempotent-replayed") is None for r in created) <= 1
    for r in responses:
        if r.status_code != 201:
            assert_problem(r, 409, "idempotency_key_in_flight")
    assert count_rows("reports") == 1 and count_rows("idempotency_records") == 1
    lon, lat = to_wgs84(121.4330, 31.2200, CoordSys.GCJ02)
    assert (created[0].json()["lon"], created[0].json()["lat"]) == pytest.approx((lon, lat),
                                                                                abs=1e-9)


def _hold_key(database: Database, rider_id: uuid.UUID, key: str) -> Iterator[None]:
    """Pretend the first request with ``key`` is still running: on PostgreSQL as another
    process would, holding only the key's advisory lock (so the 409 must come from it);
    on SQLite in this process's registry of keys in flight."""
    if dialect(database) != "postgresql":
        with idempotency.in_flight(rider_id, key):
            yield
        return
    lock = _lock_key(("idempotency", rider_id, key))
    with database.engine.connect() as holder:
        holder.execute(text("SELECT pg_advisory_lock(:k)"), {"k": lock})
        try:
            yield
        finally:
            holder.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": lock})


def test_a_key_in_flight_is_409(live_server: str, auth: Auth, database: Database,
                                count_rows: CountRows) -> None:
    rider = auth.rider("meituan", "slow")
    rider_id = uuid.UUID(httpx.get(f"{live_server}/v1/me", headers=rider).json()["id"])
    headers = {**rider, "Idempotency-Key": "slow-1"}
    body = {"category": "other", "lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"}

    with contextmanager(_hold_key)(database, rider_id, "slow-1"):
        response = httpx.post(f"{live_server}/v1/reports", headers=headers, json=body)
        assert_problem(response, 409, "idempotency_key_in_flight")
        assert count_rows("reports") == 0 and count_rows("idempotency_records") == 0
        # Another key of the same rider is not held up.
        other = httpx.post(f"{live_server}/v1/reports", json=body,
                           headers={**rider, "Idempotency-Key": "slow-2"})
        assert other.status_code == 201
    # Once the first is done, the retry goes through.
    response = httpx.post(f"{live_server}/v1/reports", headers=headers, json=body)
    assert response.status_code == 201, response.text
    assert count_rows("reports") == 2

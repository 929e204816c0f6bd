"""Reports racing each other through real servers: one ticket, one report per key.

Requests go out from many threads at once (a barrier releases them together) to a real
uvicorn server — or to two ``sentinel serve`` processes, each with its own intake writer —
so they really overlap in the writers' batches and in the database.
"""

import math
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.config import Settings
from app.db import Database, lock_key
from app.geo.coords import CoordSys, to_wgs84
from tests.apps import http_client, request
from tests.conftest import Auth
from tests.e2e.processes import serving
from tests.helpers import assert_problem

CountRows = Callable[[str], int]
Headers = dict[str, str]

# The corner of four 0.01° cells, in 江苏路街道: reports around it straddle cell borders,
# which is where a lock per (category, cell) could let two of them pass each other.
CORNER_LON, CORNER_LAT = 121.43, 31.22
M_LAT = 1 / 111_320
M_LON = 1 / (111_320 * math.cos(math.radians(CORNER_LAT)))


def fire(
    base_url: str | list[str], requests: list[tuple[Headers, dict[str, Any]]]
) -> list[httpx.Response]:
    """POST every (headers, body) to /v1/reports at the same moment, one thread each (to
    the servers in turn, given several)."""
    servers = [base_url] if isinstance(base_url, str) else base_url
    start = threading.Barrier(len(requests))

    def send(numbered: tuple[int, tuple[Headers, dict[str, Any]]]) -> httpx.Response:
        n, (headers, body) = numbered
        with http_client(servers[n % len(servers)], timeout=60) as http:
            start.wait(timeout=30)
            return http.post("/v1/reports", headers=headers, json=body)

    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(send, enumerate(requests)))


@pytest.fixture
def two_servers(settings: Settings, baseline: object, tmp_path: Path) -> Iterator[list[str]]:
    """Two ``sentinel serve`` processes on the test database."""
    with serving(settings, [tmp_path, tmp_path]) as urls:
        yield urls


def dialect(database: Database) -> str:
    return database.engine.dialect.name


def sixteen_riders_at_one_spot(
    servers: str | list[str], auth: Auth, count_rows: CountRows, category: str
) -> None:
    riders = [auth.rider("meituan" if n % 2 else "eleme", f"racer-{n}") for n in range(16)]
    # On a circle of 2.5 m around the corner: no two more than 5 m apart.
    bodies = [
        {
            "category": category,
            "lat": CORNER_LAT + 2.5 * math.sin(n * math.pi / 8) * M_LAT,
            "lon": CORNER_LON + 2.5 * math.cos(n * math.pi / 8) * M_LON,
        }
        for n in range(16)
    ]
    responses = fire(servers, list(zip(riders, bodies, strict=True)))

    assert [r.status_code for r in responses] == [201] * 16, [r.text for r in responses]
    receipts = [r.json() for r in responses]
    assert Counter(r["outcome"] for r in receipts) == {"new_ticket": 1, "joined_ticket": 15}
    assert len({r["ticket"]["id"] for r in receipts}) == 1
    # Each report saw the count the one before it left: none was lost or counted twice.
    assert sorted(r["ticket"]["report_count"] for r in receipts) == list(range(1, 17))
    assert count_rows("tickets") == 1 and count_rows("reports") == 16
    assert count_rows("ticket_events") == 16

    first = servers if isinstance(servers, str) else servers[0]
    detail = request("GET", f"{first}/v1/reports/{receipts[0]['id']}", headers=riders[0])
    assert detail.json()["ticket"]["report_count"] == 16


@pytest.mark.parametrize("category", ["road_damage", "ebike_parking"])
def test_sixteen_riders_at_one_spot_make_one_ticket(
    live_server: str, auth: Auth, count_rows: CountRows, category: str
) -> None:
    sixteen_riders_at_one_spot(live_server, auth, count_rows, category)


@pytest.mark.processes
def test_sixteen_riders_at_one_spot_through_two_processes_make_one_ticket(
    two_servers: list[str], auth: Auth, count_rows: CountRows
) -> None:
    """Each process batches its own reports; the locks (PostgreSQL) or the one write lock
    (SQLite) still let only one of them open the ticket."""
    sixteen_riders_at_one_spot(two_servers, auth, count_rows, "road_damage")


def test_reports_far_apart_do_not_merge_under_load(
    live_server: str, auth: Auth, count_rows: CountRows
) -> None:
    riders = [auth.rider("meituan", f"spread-{n}") for n in range(8)]
    # 8 points 60 m apart along a line across the cell border: 8 tickets.
    bodies = [
        {"category": "road_damage", "lat": CORNER_LAT, "lon": CORNER_LON + (n - 4) * 60 * M_LON}
        for n in range(8)
    ]
    responses = fire(live_server, list(zip(riders, bodies, strict=True)))
    assert [r.status_code for r in responses] == [201] * 8
    assert {r.json()["outcome"] for r in responses} == {"new_ticket"}
    assert count_rows("tickets") == 8


def _same_key_eight_times(live_server: str, auth: Auth) -> list[httpx.Response]:
    headers = {**auth.rider("meituan", "retrier"), "Idempotency-Key": "flaky-4g-0001"}
    body = {
        "category": "waste",
        "lat": 31.2200,
        "lon": 121.4330,
        "coord_sys": "gcj02",
        "description": "a flaky 4G link sends this eight times",
    }
    return fire(live_server, [(headers, body)] * 8)


def test_concurrent_retries_of_one_key_store_one_report(
    live_server: str, auth: Auth, count_rows: CountRows
) -> None:
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
    assert (created[0].json()["lon"], created[0].json()["lat"]) == pytest.approx(
        (lon, lat), abs=1e-9
    )


@contextmanager
def _holding(database: Database, *keys: int) -> Iterator[None]:
    """Hold the advisory locks ``keys`` from another connection (PostgreSQL), as another
    process's batch would; on SQLite, the database's write lock (any key): a batch of the
    server then waits for it."""
    if database.is_sqlite:
        holder = database.engine.raw_connection()
        holder.driver_connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            holder.driver_connection.execute("ROLLBACK")
            holder.close()
        return
    with database.engine.connect() as connection:
        for key in keys:
            connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
        try:
            yield
        finally:
            for key in keys:
                connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})


def _rider(live_server: str, auth: Auth, name: str) -> tuple[Headers, uuid.UUID]:
    rider = auth.rider("meituan", name)
    return rider, uuid.UUID(request("GET", f"{live_server}/v1/me", headers=rider).json()["id"])


BODY = {"category": "other", "lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"}


def test_a_key_in_flight_in_another_process_is_409(
    live_server: str, auth: Auth, database: Database, count_rows: CountRows
) -> None:
    """Another process's batch holds the key's lock (PostgreSQL): 409 at once, nothing
    stored; another key of the rider goes through; once the lock is free, so does the
    key. (On SQLite a retry from another process waits for the write lock instead, and
    then gets its replay.)"""
    if database.is_sqlite:
        pytest.skip("SQLite has no lock per key: another process's retry waits its turn")
    rider, rider_id = _rider(live_server, auth, "slow")
    headers = {**rider, "Idempotency-Key": "slow-1"}
    with _holding(database, lock_key("idempotency", rider_id, "slow-1")):
        response = request("POST", f"{live_server}/v1/reports", headers=headers, json=BODY)
        assert_problem(response, 409, "idempotency_key_in_flight")
        assert count_rows("reports") == 0 and count_rows("idempotency_records") == 0
        other = request(
            "POST",
            f"{live_server}/v1/reports",
            json=BODY,
            headers={**rider, "Idempotency-Key": "slow-2"},
        )
        assert other.status_code == 201
    response = request("POST", f"{live_server}/v1/reports", headers=headers, json=BODY)
    assert response.status_code == 201, response.text
    assert count_rows("reports") == 2


def test_a_retry_while_the_first_is_being_stored_is_409(
    live_server: str, auth: Auth, database: Database, count_rows: CountRows
) -> None:
    """Two requests with one key at once, while batches wait (for the rider's lock, or
    SQLite's write lock): the one that came first waits in its batch, the other is refused
    at once with 409 and stores nothing; once the first is stored, a retry gets its
    response again."""
    rider, rider_id = _rider(live_server, auth, "flaky")
    headers = {**rider, "Idempotency-Key": "flaky-1"}
    with ThreadPoolExecutor(max_workers=2) as pool:
        with _holding(database, lock_key("rate", rider_id)):
            start = threading.Barrier(2)

            def send() -> httpx.Response:
                start.wait(timeout=10)
                return request(
                    "POST", f"{live_server}/v1/reports", headers=headers, json=BODY, timeout=60
                )

            both = [pool.submit(send) for _ in range(2)]
            done, waiting = wait(both, timeout=30, return_when=FIRST_COMPLETED)
            assert len(done) == 1 and len(waiting) == 1
            assert_problem(done.pop().result(), 409, "idempotency_key_in_flight")
            assert count_rows("reports") == 0
        stored = waiting.pop().result(timeout=30)
    assert stored.status_code == 201, stored.text
    again = request("POST", f"{live_server}/v1/reports", headers=headers, json=BODY)
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.json() == stored.json()
    assert count_rows("reports") == 1 and count_rows("idempotency_records") == 1

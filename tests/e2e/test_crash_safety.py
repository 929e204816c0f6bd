"""A server killed (SIGKILL) in the middle of a burst of reports loses no acknowledged
report, and a retry of every key makes no second one.

Riders send a burst with a key each, through a real ``sentinel serve``; the server is
killed while requests are in flight, restarted, killed again, restarted. A 201 is the
promise: that report is stored. A request cut off by the kill may or may not have been
stored (its batch may have committed just before); its retry, with the same key and
body, tells which: the first response again, or a report stored now.
"""

import itertools
import math
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import IdempotencyRecord, Report
from tests.apps import request
from tests.conftest import Auth
from tests.e2e.processes import ServerProcess

pytestmark = pytest.mark.processes

RIDERS = 12
REPORTS = 240
KILLS = 3
CENTRE_LON, CENTRE_LAT = 121.43, 31.22  # 江苏路街道


def body(n: int) -> dict[str, Any]:
    # Spread over a few hundred metres, so that some merge and some open tickets.
    angle, radius = n * 2.4, 8 * math.sqrt(n)
    return {
        "category": ["road_damage", "waste", "other"][n % 3],
        "lat": CENTRE_LAT + radius * math.sin(angle) / 111_320,
        "lon": CENTRE_LON + radius * math.cos(angle) / 95_000,
        "description": f"burst report {n}",
    }


def send(url: str, headers: dict[str, str], n: int) -> httpx.Response | None:
    try:
        return request(
            "POST",
            f"{url}/v1/reports",
            json=body(n),
            timeout=30,
            headers={**headers, "Idempotency-Key": f"burst-{n}"},
        )
    except httpx.TransportError:
        return None  # cut off: stored or not, the retry will tell


def test_reports_survive_sigkill_and_retries_store_nothing_twice(
    settings: Settings, baseline: object, database: Database, auth: Auth, tmp_path: Path
) -> None:
    riders = [auth.rider("meituan" if r % 2 else "eleme", f"burst-{r}") for r in range(RIDERS)]
    headers_of = {n: riders[n % RIDERS] for n in range(REPORTS)}
    server = ServerProcess(settings, tmp_path).start()
    acknowledged: dict[int, dict[str, Any]] = {}
    cut_off = 0
    try:
        chunks = iter(range(REPORTS))
        per_life = REPORTS // (KILLS + 1)
        for life in range(KILLS + 1):
            numbers = list(itertools.islice(chunks, per_life))
            with ThreadPoolExecutor(max_workers=16) as pool:
                futures = [pool.submit(send, server.url, headers_of[n], n) for n in numbers]
                if life < KILLS:
                    # Kill once a third of this life's reports are answered: the rest
                    # are queued, in a batch, or on the wire.
                    answered = 0
                    for future in futures:
                        if future.result() is not None:
                            answered += 1
                        if answered >= len(numbers) // 3:
                            break
                    server.kill()
                results = [future.result() for future in futures]
            for n, response in zip(numbers, results, strict=True):
                if response is None:
                    cut_off += 1
                    continue
                assert response.status_code == 201, response.text
                acknowledged[n] = response.json()
            server = ServerProcess(settings, tmp_path).start() if life < KILLS else server
        assert cut_off > 0, "no request was in flight at a kill: the test proved nothing"

        # Every acknowledged report is stored, as it was acknowledged.
        with database.session(write=False) as session:
            stored = {
                row.id: row
                for row in session.execute(select(Report.id, Report.ticket_id, Report.rider_id))
            }
            kept = session.scalar(select(IdempotencyRecord).limit(1))
        assert kept is not None
        for receipt in acknowledged.values():
            row = stored.get(uuid.UUID(receipt["id"]))
            assert row is not None, receipt
            assert str(row.ticket_id) == receipt["ticket"]["id"]

        # A retry of every key, same body: the acknowledged ones replay their response;
        # the cut-off ones are stored now or replay what their batch stored; none twice.
        with ThreadPoolExecutor(max_workers=16) as pool:
            retries = list(pool.map(lambda n: send(server.url, headers_of[n], n), range(REPORTS)))
        for n, retry in enumerate(retries):
            assert retry is not None and retry.status_code == 201, retry
            if n in acknowledged:
                assert retry.headers.get("idempotent-replayed") == "true"
                assert retry.json() == acknowledged[n]
        with database.session(write=False) as session:
            reports = list(session.execute(select(Report.id, Report.rider_id)))
        assert len(reports) == REPORTS
        assert {r["id"] for r in (retry.json() for retry in retries if retry)} == {
            str(r.id) for r in reports
        }
    finally:
        server.stop()

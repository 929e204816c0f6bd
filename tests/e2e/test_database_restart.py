"""PostgreSQL restarted while riders report through a real ``sentinel serve``: what comes
while it is down is a 503 with Retry-After, the API recovers by itself (no restart), and
every acknowledged report is stored."""

import os
import shutil
import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import Report
from tests.apps import Apps, http_client
from tests.conftest import Auth
from tests.e2e.processes import ServerProcess
from tests.helpers import JIANGSU

pytestmark = [
    pytest.mark.processes,
    pytest.mark.exclusive,
    pytest.mark.skipif(
        not os.environ.get("SENTINEL_TEST_DATABASE_URL"), reason="restarts the PostgreSQL server"
    ),
]


def restart_postgres() -> None:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else []
    if not versions or shutil.which("pg_ctlcluster") is None:
        pytest.fail("this PostgreSQL cannot be restarted here (no pg_ctlcluster)")
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            versions[-1],
            "main",
            "restart",
            "-m",
            "fast",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def test_a_restart_under_load_is_503s_then_recovery_with_nothing_lost(
    settings: Settings,
    database: Database,
    auth: Auth,
    tmp_path: Path,
    baseline: object,
    apps: Apps,
) -> None:
    rider = auth.rider("meituan", "restart-1")
    busy = settings.model_copy(update={"rider_reports_per_hour": 100_000})
    server = ServerProcess(busy, tmp_path).start()
    outcomes: list[tuple[str, int | None, str | None, str | None]] = []
    stop = threading.Event()

    def report() -> None:
        with http_client(server.url, timeout=30) as http:
            n = 0
            while not stop.is_set():
                key = f"restart-{n}"
                n += 1
                body = {"category": "other", **JIANGSU, "lat": JIANGSU["lat"] - n * 2e-5}
                try:
                    response = http.post(
                        "/v1/reports", json=body, headers={**rider, "Idempotency-Key": key}
                    )
                    stored = response.json().get("id") if response.status_code == 201 else None
                    retry = response.headers.get("retry-after")
                    outcomes.append((key, response.status_code, retry, stored))
                except httpx.TransportError:
                    outcomes.append((key, None, None, None))
                time.sleep(0.02)

    sender = threading.Thread(target=report, daemon=True)
    try:
        sender.start()
        deadline = time.monotonic() + 30
        while sum(o[1] == 201 for o in outcomes) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        before = len(outcomes)
        restart_postgres()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            recent = [o[1] for o in outcomes[-5:]]
            if len(outcomes) > before + 5 and recent and all(s == 201 for s in recent):
                break
            time.sleep(0.2)
        stop.set()
        sender.join(timeout=30)
    finally:
        stop.set()
        server.stop()
        # This process's connections died with the server too: the engine's, and those
        # the shared apps' intake writers hold (they are started again when next asked for).
        database.engine.dispose()
        apps.close()

    statuses = [o[1] for o in outcomes]
    assert statuses[-1] == 201, "the API did not recover by itself"
    unavailable = [o for o in outcomes if o[1] == 503]
    assert unavailable, "no request came while the database was down: nothing was proved"
    assert all(o[2] is not None for o in unavailable), "a 503 without Retry-After"
    assert set(statuses) <= {201, 503}, set(statuses)
    acknowledged = {uuid.UUID(o[3]) for o in outcomes if o[1] == 201 and o[3]}
    with database.session(write=False) as session:
        stored = set(session.scalars(select(Report.id).where(Report.id.in_(acknowledged))))
    assert stored == acknowledged  # every acknowledged report, none lost
    print(
        f"restart under load: {len(outcomes)} requests, {len(acknowledged)} acknowledged and "
        f"stored, {len(unavailable)} answered 503 with Retry-After"
    )

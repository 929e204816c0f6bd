"""Where a report's CPU goes: the parts of intake measured apart, in this process.

``bench/intake.py`` measures the whole server under load; this splits the cost of a
report into what the framework costs (the trivial ``async def`` POST that is the
ceiling), what the app's request path costs above it (its middleware, the rider's
token, the body, the answer — with the writer answering at once), and what the writer
costs (a batch of reports looked up, decided and stored, on each database). Each is
CPU time of this process (``time.process_time``) per report, so the database server's
own work is not in it (SQLite's is: it runs in the process). Run from the project
root::

    .venv/bin/python bench/intake_phases.py --db both
"""

import asyncio
import hashlib
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import bench.intake as load
from app import intake
from app.config import Environment
from app.db import Database
from app.geo.coords import CoordSys, from_wgs84
from app.main import create_app
from app.models import Category, Rider
from app.schemas.reports import receipt_json
from app.tickets import reference
from bench.common import arguments, databases
from bench.common import settings as bench_settings
from tests.asgi import http_scope

BODY = {
    "category": "road_damage",
    "lat": 31.211752,
    "lon": 121.41459,
    "coord_sys": "gcj02",
    "accuracy_m": 8,
    "description": "bench",
}


async def asgi_cost(app: Any, requests: int, headers: list[tuple[bytes, bytes]]) -> float:
    """CPU seconds per POST /v1/reports through ``app``, called as the server would."""
    body = json.dumps(BODY).encode()

    async def one(n: int) -> None:
        scope = http_scope(
            "POST",
            "/v1/reports",
            [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
                (b"idempotency-key", f"phase-{n}".encode()),
            ],
        )
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.sleep(3600)
            return {"type": "http.disconnect"}

        status: list[int] = []

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await app(scope, receive, send)
        assert status == [201], status

    for n in range(requests // 10):
        await one(n)
    started = time.process_time()
    for n in range(requests):
        await one(n)
    return (time.process_time() - started) / requests


def framework_costs(url: str, token: str, requests: int) -> tuple[float, float]:
    """The ceiling's request path, and the app's with a writer that answers at once."""
    from bench.ceiling_app import app as ceiling

    settings = bench_settings(
        url, env=Environment.PRODUCTION, log_level="INFO", embedded_worker=False
    )
    app = create_app(settings)
    answered = intake.Received(201, {"id": "stub"}, replayed=False)

    def at_once(self: intake.IntakeWriter, *, rider_id: uuid.UUID, reports: list[Any]) -> list[Any]:
        loop = asyncio.get_running_loop()
        futures = []
        for _ in reports:
            future = loop.create_future()
            future.set_result(answered)
            futures.append(future)
        return futures

    real = intake.IntakeWriter.submit_all
    intake.IntakeWriter.submit_all = at_once  # type: ignore[method-assign]
    devnull = open(os.devnull, "w")  # noqa: SIM115 - the access log's lines go nowhere
    stderr, sys.stderr = sys.stderr, devnull
    try:
        trivial = asyncio.run(asgi_cost(ceiling, requests, []))
        ours = asyncio.run(
            asgi_cost(app, requests, [(b"authorization", f"Bearer {token}".encode())])
        )
    finally:
        sys.stderr = stderr
        devnull.close()
        intake.IntakeWriter.submit_all = real  # type: ignore[method-assign]
    return trivial, ours


def writer_cost(url: str, batch: int, batches: int) -> dict[str, float]:
    """CPU seconds per report of the writer, batches of ``batch`` reports at once."""
    settings = bench_settings(url, rider_reports_per_hour=100_000)
    database = Database(url)
    with database.session(write=False) as session:
        riders = list(session.scalars(select(Rider.id)))
        codes = list(session.scalars(select(Category.code)))
        reference.current_reference(session)
    areas = load.communities(database)
    rng = random.Random(batch)
    inputs = []
    for x, y, *_ in load.random_points(rng, areas, 2000):
        lon, lat = from_wgs84(x, y, CoordSys.GCJ02)
        inputs.append(
            intake.ReportInput(
                category=rng.choice(codes),
                lat=lat,
                lon=lon,
                coord_sys=CoordSys.GCJ02,
                accuracy_m=8,
                description="bench",
                address_hint=None,
                observed_at=None,
                media_ids=(),
            )
        )

    async def run() -> tuple[float, float]:
        writer = intake.IntakeWriter(database, settings, render_receipt=receipt_json)

        async def one(k: int) -> None:
            answers = []
            for n in range(batch):
                key = f"phase-{k}-{n}"
                answers += writer.submit_all(
                    rider_id=rng.choice(riders),
                    reports=[
                        (
                            rng.choice(inputs),
                            key,
                            hashlib.sha256(key.encode()).hexdigest(),
                            datetime.now(UTC),
                        )
                    ],
                )
            for answer in await asyncio.gather(*answers):
                assert answer.status == 201

        await one(-1)
        started, wall = time.process_time(), time.perf_counter()
        for k in range(batches):
            await one(k)
        cost = (time.process_time() - started) / (batch * batches)
        wall = (time.perf_counter() - wall) / batches
        await writer.stop()
        return cost, wall

    try:
        cpu, wall = asyncio.run(run())
        return {"cpu": cpu, "wall": wall}
    finally:
        database.dispose()


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3, help="medians of this many")
    args = parser.parse_args()
    kinds = databases(args)
    rows: list[tuple[str, float]] = []
    walls: list[tuple[str, float]] = []
    for kind in kinds:
        workdir = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
        url = load.fresh_database(kind, args.pg_url, workdir)
        try:
            tokens = load.seed(url, 1000, riders=2000, rng=random.Random(1))
            if kind == kinds[0]:
                costs = [framework_costs(url, tokens[0], args.requests) for _ in range(args.rounds)]
                rows.append(
                    (
                        "the framework: the ceiling's request path",
                        statistics.median(c[0] for c in costs),
                    )
                )
                rows.append(
                    (
                        "the app's request path above it (writer answering at once)",
                        statistics.median(c[1] - c[0] for c in costs),
                    )
                )
            for batch in (1, 8, 32):
                costs = [writer_cost(url, batch, 200 // batch + 5) for _ in range(args.rounds)]
                rows.append(
                    (
                        f"the writer, {kind}, batches of {batch}",
                        statistics.median(c["cpu"] for c in costs),
                    )
                )
                walls.append(
                    (f"{kind}, batches of {batch}", statistics.median(c["wall"] for c in costs))
                )
        finally:
            load.drop_database(url)
            shutil.rmtree(workdir, ignore_errors=True)
    print(
        "\nCPU of this process per report, µs (medians of "
        f"{args.rounds} rounds; SQLite's own work runs in the process, PostgreSQL's does "
        "not)\n"
    )
    print("| part | µs per report |\n|---|---:|")
    for what, seconds in rows:
        print(f"| {what} | {seconds * 1e6:,.0f} |")
    print(
        "\nWall time of a batch, ms (from the first report queued to the last answered; "
        "on PostgreSQL this includes the server's work and the commit's flush)\n"
    )
    print("| batch | ms per batch | ms per report |\n|---|---:|---:|")
    for what, seconds in walls:
        size = int(what.rsplit(" ", 1)[1])
        print(f"| {what} | {seconds * 1e3:,.2f} | {seconds * 1e3 / size:,.3f} |")


if __name__ == "__main__":
    main()

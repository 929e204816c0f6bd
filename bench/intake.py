"""Intake throughput and latency against the framework's ceiling, on SpatiaLite and PostGIS.

For each database and each number of existing open tickets: a fresh database with the
Changning demo and that many open tickets (bulk-inserted), a real server (``sentinel
serve``, one uvicorn worker) in its own process, then from this process an async load
generator keeping ``--concurrency`` requests in flight:

1. ``GET /healthz`` — the same app doing nothing: the framework's ceiling on this machine;
2. ``POST /v1/reports`` — GCJ-02 points spread over Changning as a rider's app sends them,
   random categories, each with its own Idempotency-Key, from many riders.

Prints reports/s, p50 and p99 latency and the ratio intake ÷ ceiling. Run from the
project root, e.g.::

    .venv/bin/python bench/intake.py --db both --tickets 1000,100000
"""

import argparse
import asyncio
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import shapely
from sqlalchemy import create_engine, insert, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import migrate  # noqa: E402
from app.config import Environment, Settings  # noqa: E402
from app.db import Database  # noqa: E402
from app.models import Area, Category, Platform, Rider, Ticket, TicketStatus, utcnow  # noqa: E402
from app.services.coords import CoordSys, from_wgs84  # noqa: E402
from app.services.demo import load_demo  # noqa: E402
from app.services.intake import new_ticket_ref, wkt_point  # noqa: E402
from app.services.security import TokenKind, issue_token  # noqa: E402

SECRET = "bench-secret-key-0123456789abcdefghijklmnop"
SEED_BATCH = 5000


@dataclass
class Result:
    requests: int
    seconds: float
    latencies: list[float]
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(kind: str, pg_url: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    name = f"sentinel_bench_{uuid.uuid4().hex[:8]}"
    server = create_engine(make_url(pg_url).set(database="postgres"),
                           isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    return make_url(pg_url).set(database=name).render_as_string(hide_password=False)


def drop_database(url: str) -> None:
    if url.startswith("sqlite"):
        return
    server = create_engine(make_url(url).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)'))
    server.dispose()


def communities(database: Database) -> list[tuple[int, int, int, shapely.Geometry]]:
    """(community id, street id, district id, boundary) of every demo community."""
    from geoalchemy2.shape import to_shape

    with database.session(write=False) as s:
        streets = {row.id: row.parent_id for row in s.execute(
            select(Area.id, Area.parent_id).where(Area.level == "street"))}
        return [(a.id, a.parent_id, streets[a.parent_id], to_shape(a.boundary))
                for a in s.scalars(select(Area).where(Area.level == "community"))]


def random_points(rng: random.Random, areas: list, n: int):
    """``n`` random points inside random communities, with the areas that own them."""
    for _ in range(n):
        community_id, street_id, district_id, boundary = rng.choice(areas)
        min_x, min_y, max_x, max_y = boundary.bounds
        while True:
            x, y = rng.uniform(min_x, max_x), rng.uniform(min_y, max_y)
            if boundary.contains(shapely.Point(x, y)):
                break
        yield x, y, community_id, street_id, district_id


def seed(url: str, tickets: int, riders: int, rng: random.Random) -> list[str]:
    settings = Settings(env=Environment.TEST, database_url=url, secret_key=SECRET,
                        argon2_time_cost=1, argon2_memory_kib=64)
    migrate.upgrade(url)
    database = Database(url)
    with database.transaction() as s:
        load_demo(s, settings)
    areas = communities(database)
    with database.session(write=False) as s:
        categories = list(s.execute(select(Category.id, Category.respond_within_h,
                                           Category.resolve_within_h)))
        platform_id = s.scalar(select(Platform.id).where(Platform.code == "meituan"))
    now = utcnow()
    started = time.perf_counter()
    points = random_points(rng, areas, tickets)
    for first in range(0, tickets, SEED_BATCH):
        rows = []
        for x, y, community_id, street_id, district_id in (
                next(points) for _ in range(min(SEED_BATCH, tickets - first))):
            category_id, respond_h, resolve_h = rng.choice(categories)
            created = now - timedelta(minutes=rng.uniform(1, 48 * 60))
            rows.append({"id": uuid.uuid4(), "ref": new_ticket_ref(), "category_id": category_id,
                         "status": TicketStatus.NEW, "priority": 2, "location": wkt_point(x, y),
                         "district_id": district_id, "street_id": street_id,
                         "community_id": community_id, "report_count": 1, "version": 1,
                         "respond_by": created + timedelta(hours=respond_h),
                         "resolve_by": created + timedelta(hours=resolve_h),
                         "created_at": created, "updated_at": created})
        with database.transaction() as s:
            s.execute(insert(Ticket), rows)
    if not url.startswith("sqlite"):
        with database.transaction() as s:
            s.execute(text("ANALYZE"))
    rider_rows = [{"id": uuid.uuid4(), "platform_id": platform_id, "external_id": f"bench-{i}",
                   "pseudonym": f"R-B{i:06d}", "created_at": now, "updated_at": now}
                  for i in range(riders)]
    with database.transaction() as s:
        s.execute(insert(Rider), rider_rows)
    print(f"  seeded {tickets} open tickets in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    database.dispose()
    return [issue_token(kind=TokenKind.RIDER, subject=r["id"], ttl=timedelta(hours=2),
                        settings=settings).token for r in rider_rows]


async def drive(base: str, requests: list[tuple[str, str, dict | None, dict]],
                concurrency: int) -> Result:
    latencies: list[float] = []
    errors = 0
    queue = iter(requests)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        async def worker() -> None:
            nonlocal errors
            for method, path, body, headers in queue:
                t0 = time.perf_counter()
                response = await client.request(method, path, json=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                if response.status_code >= 300:
                    errors += 1
                    if errors <= 3:
                        print(f"  {response.status_code} {response.text[:200]}", file=sys.stderr)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return Result(len(latencies), seconds, latencies, errors)


def start_server(url: str, port: int, workdir: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "SENTINEL_DATABASE_URL": url, "SENTINEL_SECRET_KEY": SECRET,
           "SENTINEL_ENV": "production", "SENTINEL_LOG_LEVEL": "WARNING",
           "SENTINEL_MEDIA_DIR": str(workdir / "media"), "SENTINEL_EMBEDDED_WORKER": "0",
           "SENTINEL_RIDER_REPORTS_PER_HOUR": "100000"}
    sentinel = shutil.which("sentinel", path=str(Path(sys.executable).parent)) or "sentinel"
    server = subprocess.Popen([sentinel, "serve", "--port", str(port), "--workers", "1"],
                              env=env, cwd=workdir, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("the server did not start")


def report_requests(rng: random.Random, areas: list, tokens: list[str], n: int,
                    categories: list[str]) -> list[tuple[str, str, dict | None, dict]]:
    requests = []
    for x, y, *_ in random_points(rng, areas, n):
        lon, lat = from_wgs84(x, y, CoordSys.GCJ02)
        requests.append(("POST", "/v1/reports", {
            "category": rng.choice(categories), "lat": round(lat, 6), "lon": round(lon, 6),
            "coord_sys": "gcj02", "accuracy_m": 8, "description": "bench"},
            {"Authorization": f"Bearer {rng.choice(tokens)}",
             "Idempotency-Key": uuid.uuid4().hex}))
    return requests


def run(kind: str, tickets: int, args: argparse.Namespace) -> tuple[Result, Result]:
    rng = random.Random(tickets)
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    url = fresh_database(kind, args.pg_url, workdir)
    try:
        tokens = seed(url, tickets, riders=200, rng=rng)
        database = Database(url)
        areas = communities(database)
        with database.session(write=False) as s:
            codes = list(s.scalars(select(Category.code)))
        database.dispose()
        port = free_port()
        server = start_server(url, port, workdir)
        base = f"http://127.0.0.1:{port}"
        try:
            warm = report_requests(rng, areas, tokens, 200, codes)
            asyncio.run(drive(base, warm, args.concurrency))
            ceiling = asyncio.run(drive(base, [("GET", "/healthz", None, {})] * args.requests,
                                        args.concurrency))
            intake = asyncio.run(drive(base, report_requests(rng, areas, tokens, args.requests,
                                                             codes), args.concurrency))
        finally:
            server.terminate()
            server.wait(timeout=30)
        return ceiling, intake
    finally:
        drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--tickets", default="100000",
                        help="existing open tickets; several, comma-separated")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pg-url", default=os.environ.get(
        "SENTINEL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    header = (f"| database | open tickets | ceiling req/s | intake reports/s | p50 ms | "
              f"p99 ms | intake ÷ ceiling | errors |")
    rows = []
    for kind in kinds:
        for tickets in (int(t) for t in args.tickets.split(",")):
            print(f"{kind}, {tickets} open tickets …", file=sys.stderr)
            ceiling, intake = run(kind, tickets, args)
            rows.append(f"| {kind} | {tickets:,} | {ceiling.rate:,.0f} | {intake.rate:,.0f} | "
                        f"{intake.percentile(0.5):.1f} | {intake.percentile(0.99):.1f} | "
                        f"{intake.rate / ceiling.rate:.2f} | {intake.errors} |")
    print(f"\n{args.concurrency} in flight, {args.requests} requests each\n")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

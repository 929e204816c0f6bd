"""Intake throughput and latency against the framework's ceiling, on SpatiaLite and PostGIS.

For each database and each number of existing open tickets: a fresh database with the
Changning demo and that many open tickets (bulk-inserted), a real server (``sentinel
serve``, one uvicorn worker) in its own process, then wrk keeping ``--concurrency``
requests in flight:

1. ``GET /healthz`` — the same app doing nothing: the framework's ceiling on this machine;
2. ``POST /v1/reports`` — GCJ-02 points spread over Changning as a rider's app sends them,
   random categories, each with its own Idempotency-Key, from many riders.

Prints reports/s, p50 and p99 latency and the ratio intake ÷ ceiling. Run from the
project root, e.g.::

    .venv/bin/python bench/intake.py --db both --tickets 1000,100000

wrk comes from Debian's package of that name.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import shapely
from sqlalchemy import create_engine, insert, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import migrate
from app.config import Environment, Settings
from app.db import Database
from app.models import (
    Area,
    Category,
    Platform,
    Rider,
    RiderTotals,
    Ticket,
    TicketStatus,
    utcnow,
)
from app.services.coords import CoordSys, from_wgs84
from app.services.demo import load_demo
from app.services.intake import new_ticket_ref, wkt_point
from app.services.security import TokenKind, issue_token

SECRET = "bench-secret-key-0123456789abcdefghijklmnop"
SEED_BATCH = 5000


@dataclass
class Result:
    rate: float
    p50_ms: float
    p99_ms: float
    errors: int

    @classmethod
    def from_wrk(cls, output: str) -> "Result":
        def latency(label: str) -> float:
            value = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
            if value is None:
                raise RuntimeError(f"wrk printed no {label}th percentile:\n{output}")
            return float(value[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[value[2]]

        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        if rate is None:
            raise RuntimeError(f"wrk printed no rate:\n{output}")
        return cls(float(rate[1]), latency("50"), latency("99"),
                   int(errors[1]) if errors else 0)


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


def seed(url: str, tickets: int, riders: int, rng: random.Random,
         status_of: Callable[[], TicketStatus] = lambda: TicketStatus.NEW) -> list[str]:
    """``tickets`` tickets of the last 48 hours, stored oldest first as time would have
    written them, each in the status ``status_of()`` gives; ``riders`` riders. Returns a
    token for each rider."""
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
    ages = sorted((rng.uniform(1, 48 * 60) for _ in range(tickets)), reverse=True)  # minutes
    for first in range(0, tickets, SEED_BATCH):
        rows = []
        for age, (x, y, community_id, street_id, district_id) in zip(
                ages[first:first + SEED_BATCH], points, strict=False):
            category_id, respond_h, resolve_h = rng.choice(categories)
            created = now - timedelta(minutes=age)
            rows.append({"id": uuid.uuid4(), "ref": new_ticket_ref(), "category_id": category_id,
                         "status": status_of(), "priority": 2, "location": wkt_point(x, y),
                         "district_id": district_id, "street_id": street_id,
                         "community_id": community_id, "report_count": 1, "version": 1,
                         "respond_by": created + timedelta(hours=respond_h),
                         "resolve_by": created + timedelta(hours=resolve_h),
                         "created_at": created, "updated_at": created})
        with database.transaction() as s:
            s.execute(insert(Ticket), rows)
    # Let the database settle before measuring: no autovacuum or checkpoint of the seed
    # should land in the middle of a measurement.
    with database.engine.connect() as c:
        if url.startswith("sqlite"):
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            c = c.execution_options(isolation_level="AUTOCOMMIT")
            c.exec_driver_sql("VACUUM (ANALYZE)")
            c.exec_driver_sql("CHECKPOINT")
    rider_rows = [{"id": uuid.uuid4(), "platform_id": platform_id, "external_id": f"bench-{i}",
                   "pseudonym": f"R-B{i:06d}", "created_at": now, "updated_at": now}
                  for i in range(riders)]
    with database.transaction() as s:
        s.execute(insert(Rider), rider_rows)
        s.execute(insert(RiderTotals), [{"rider_id": r["id"], "platform_id": platform_id}
                                        for r in rider_rows])
    print(f"  seeded {tickets} tickets in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    database.dispose()
    return [issue_token(kind=TokenKind.RIDER, subject=r["id"], ttl=timedelta(hours=2),
                        settings=settings).token for r in rider_rows]


def measure(base: str, seconds: int, concurrency: int, script: Path | None) -> Result:
    """Load ``base`` with wrk: ``concurrency`` connections for ``seconds``."""
    command = ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    # A fresh nonce per run: the warm-up's keys must not come back as replays.
    target = [base + ("/v1/reports" if script else "/healthz"), "--", uuid.uuid4().hex]
    output = subprocess.run([*command, *target], capture_output=True, text=True,
                            check=True).stdout
    return Result.from_wrk(output)


def profile_summary(raw: Path, top: int = 25) -> str:
    """py-spy's folded stacks as a table: the share of busy samples spent in (under) each
    function of the request path, and in the layers below it."""
    totals: dict[str, int] = {}
    samples = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples += int(count)
        seen = set()
        for frame in stack.split(";"):
            function, _, where = frame.partition(" (")
            module = where.split(":")[0].split("site-packages/")[-1].split("/work/main/")[-1]
            name = f"{function} ({module})"
            if name not in seen:
                seen.add(name)
                totals[name] = totals.get(name, 0) + int(count)
    rows = sorted(((n, c) for n, c in totals.items()
                   if "app/" in n or "sqlalchemy/engine" in n or "psycopg" in n
                   or "pysqlite3" in n or "pydantic" in n),
                  key=lambda item: -item[1])[:top]
    return "\n".join(["| function (inclusive) | share of busy samples |", "|---|---:|",
                      *(f"| `{n}` | {100 * c / max(samples, 1):.0f}% |" for n, c in rows)])


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


def report_script(rng: random.Random, areas: list, tokens: list[str], n: int,
                  categories: list[str], path: Path) -> Path:
    """A wrk script sending ``n`` distinct reports (then again, with new keys), as an app
    would: GCJ-02 points inside Changning's communities, random categories and riders."""
    bodies = []
    for x, y, *_ in random_points(rng, areas, n):
        lon, lat = from_wgs84(x, y, CoordSys.GCJ02)
        bodies.append(json.dumps({"category": rng.choice(categories), "lat": round(lat, 6),
                                  "lon": round(lon, 6), "coord_sys": "gcj02", "accuracy_m": 8,
                                  "description": "bench"}))
    lua = """
local bodies = {{{}}}
local tokens = {{{}}}
local counter, thread_id = 0, 0
local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("id", threads)
end
local nonce = ""
function init(args)
  thread_id = id
  nonce = args[1] or ""
end
function request()
  counter = counter + 1
  local i = (counter * 7919 + thread_id * 104729) % #bodies + 1
  return wrk.format("POST", "/v1/reports", {{
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. tokens[(counter + thread_id) % #tokens + 1],
    ["Idempotency-Key"] = "bench-" .. nonce .. "-" .. thread_id .. "-" .. counter}}, bodies[i])
end
""".format(",".join(f"[[{b}]]" for b in bodies), ",".join(f'"{t}"' for t in tokens))
    path.write_text(lua)
    return path


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
        script = report_script(rng, areas, tokens, 20_000, codes, workdir / "reports.lua")
        try:
            measure(base, 2, args.concurrency, script)  # warm up: pools, caches, JIT-free paths
            ceiling = measure(base, args.seconds, args.concurrency, None)
            spy = None
            if args.profile:
                spy = subprocess.Popen(
                    [shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy",
                     "record", "--pid", str(server.pid), "--duration",
                     str(args.seconds), "--format", "raw", "--rate", "100", "--nonblocking",
                     "-o", str(workdir / "profile.txt")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            intake = measure(base, args.seconds, args.concurrency, script)
            if spy is not None:
                spy.wait(timeout=60)
                print(f"\nprofile of the server during intake ({kind}, {tickets} open "
                      f"tickets):\n\n{profile_summary(workdir / 'profile.txt')}\n")
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
    parser.add_argument("--seconds", type=int, default=10, help="per measurement")
    parser.add_argument("--profile", action="store_true",
                        help="sample the server with py-spy during intake and print where "
                             "its time goes (pip install py-spy)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--pg-url", default=os.environ.get(
        "SENTINEL_BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    header = ("| database | open tickets | ceiling req/s | intake reports/s | p50 ms | "
              "p99 ms | intake ÷ ceiling | errors |")
    if shutil.which("wrk") is None:
        sys.exit("bench/intake.py drives the server with wrk: apt-get install wrk")
    rows = []
    for kind in kinds:
        for tickets in (int(t) for t in args.tickets.split(",")):
            print(f"{kind}, {tickets} open tickets …", file=sys.stderr)
            ceiling, intake = run(kind, tickets, args)
            rows.append(f"| {kind} | {tickets:,} | {ceiling.rate:,.0f} | {intake.rate:,.0f} | "
                        f"{intake.p50_ms:.1f} | {intake.p99_ms:.1f} | "
                        f"{intake.rate / ceiling.rate:.2f} | {intake.errors} |")
    print(f"\n{args.concurrency} connections, {args.seconds} s per measurement\n")
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()

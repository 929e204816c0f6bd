"""Intake throughput and latency against the framework's ceiling, on SpatiaLite and PostGIS.

One run prints, each from wrk keeping ``--concurrency`` requests in flight on a server in
a process of its own (uvicorn with uvloop and httptools, as ``sentinel serve`` runs):

1. the ceiling: a trivial ``async def`` FastAPI POST of a report-shaped body, in this venv
   with the same server options (``bench/ceiling_app.py``);
2. ``GET /healthz`` of the app with the access log on (INFO) and off (WARNING), taken in
   turns, so that the cost of the log and the metrics shows as their difference;
3. ``POST /v1/reports`` on SpatiaLite and on PostGIS, for each number of open tickets, on
   one worker and (PostGIS) on two: GCJ-02 points inside Changning's communities, as a
   rider's app sends them, random categories, thousands of riders, each report with its
   own Idempotency-Key.

For each: requests/s, p50 and p99 latency, the ratio to the ceiling, the answers that
were not 2xx, and the reports stored against the 2xx answers (a report whose batch
committed as wrk stopped is stored without an answer counted: at most the requests in
flight). Run from the project root::

    .venv/bin/python bench/intake.py --db both --tickets 1000,100000

wrk comes from Debian's package of that name. Run it alone on the machine: it measures
the machine.
"""

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import shapely
from sqlalchemy import create_engine, insert, make_url, select, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.db import Database, migrate, wkt_point
from app.geo.coords import CoordSys, from_wgs84
from app.intake.rules import new_ticket_ref
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
from app.ops.demo import load_demo
from app.security import TokenKind, issue_token
from bench.common import SECRET, arguments, databases
from bench.common import settings as bench_settings

SEED_BATCH = 5000
RIDERS = 5000  # a storm: thousands of riders, each sending a few reports
BIN = Path(sys.executable).parent


@dataclass
class Result:
    requests: int
    rate: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int  # connect, read, write and timeout errors of wrk

    @classmethod
    def from_wrk(cls, output: str) -> "Result":
        def latency(label: str) -> float:
            value = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", output, re.M)
            if value is None:
                raise RuntimeError(f"wrk printed no {label}th percentile:\n{output}")
            return float(value[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[value[2]]

        rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
        total = re.search(r"(\d+) requests in", output)
        non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
        errors = re.search(
            r"Socket errors: connect (\d+), read (\d+), write (\d+), "
            r"timeout (\d+)",
            output,
        )
        if rate is None or total is None:
            raise RuntimeError(f"wrk printed no rate:\n{output}")
        return cls(
            int(total[1]),
            float(rate[1]),
            latency("50"),
            latency("99"),
            int(non_2xx[1]) if non_2xx else 0,
            sum(int(n) for n in errors.groups()) if errors else 0,
        )

    @property
    def answered_2xx(self) -> int:
        return self.requests - self.non_2xx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fresh_database(kind: str, pg_url: str, workdir: Path) -> str:
    if kind == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    name = f"sentinel_bench_{uuid.uuid4().hex[:8]}"
    server = create_engine(make_url(pg_url).set(database="postgres"), isolation_level="AUTOCOMMIT")
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


def ticket_row(
    point: tuple[float, float, int, int, int],
    *,
    category_id: int,
    status: TicketStatus,
    priority: int,
    created: datetime,
    hours: tuple[int, int],
    **columns: Any,
) -> dict[str, Any]:
    """A ticket of one report, opened at ``created`` on ``point`` (from
    ``random_points``), to respond to and resolve within ``hours``."""
    x, y, community_id, street_id, district_id = point
    respond_h, resolve_h = hours
    return {
        "id": uuid.uuid4(),
        "ref": new_ticket_ref(),
        "category_id": category_id,
        "status": status,
        "priority": priority,
        "location": wkt_point(x, y),
        "district_id": district_id,
        "street_id": street_id,
        "community_id": community_id,
        "report_count": 1,
        "version": 1,
        "respond_by": created + timedelta(hours=respond_h),
        "resolve_by": created + timedelta(hours=resolve_h),
        "created_at": created,
        "updated_at": created,
        **columns,
    }


def communities(database: Database) -> list[tuple[int, int, int, shapely.Geometry]]:
    """(community id, street id, district id, boundary) of every demo community."""
    from geoalchemy2.shape import to_shape

    with database.session(write=False) as s:
        streets = {
            row.id: row.parent_id
            for row in s.execute(select(Area.id, Area.parent_id).where(Area.level == "street"))
        }
        return [
            (a.id, a.parent_id, streets[a.parent_id], to_shape(a.boundary))
            for a in s.scalars(select(Area).where(Area.level == "community"))
        ]


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


def seed(
    url: str,
    tickets: int,
    riders: int,
    rng: random.Random,
    status_of: Callable[[], TicketStatus] = lambda: TicketStatus.NEW,
) -> list[str]:
    """``tickets`` tickets of the last 48 hours, stored oldest first as time would have
    written them, each in the status ``status_of()`` gives; ``riders`` riders. Returns a
    token for each rider."""
    settings = bench_settings(url)
    migrate.upgrade(url)
    database = Database(url)
    with database.transaction() as s:
        load_demo(s, settings)
    areas = communities(database)
    with database.session(write=False) as s:
        categories = list(
            s.execute(select(Category.id, Category.respond_within_h, Category.resolve_within_h))
        )
        platform_id = s.scalar(select(Platform.id).where(Platform.code == "meituan"))
    now = utcnow()
    started = time.perf_counter()
    points = random_points(rng, areas, tickets)
    ages = sorted((rng.uniform(1, 48 * 60) for _ in range(tickets)), reverse=True)  # minutes
    for first in range(0, tickets, SEED_BATCH):
        rows = []
        for age, (x, y, community_id, street_id, district_id) in zip(
            ages[first : first + SEED_BATCH], points, strict=False
        ):
            category_id, respond_h, resolve_h = rng.choice(categories)
            rows.append(
                ticket_row(
                    (x, y, community_id, street_id, district_id),
                    category_id=category_id,
                    status=status_of(),
                    priority=2,
                    created=now - timedelta(minutes=age),
                    hours=(respond_h, resolve_h),
                )
            )
        with database.transaction() as s:
            s.execute(insert(Ticket), rows)
    rider_rows = [
        {
            "id": uuid.uuid4(),
            "platform_id": platform_id,
            "external_id": f"bench-{i}",
            "pseudonym": f"R-B{i:06d}",
            "created_at": now,
            "updated_at": now,
        }
        for i in range(riders)
    ]
    with database.transaction() as s:
        s.execute(insert(Rider), rider_rows)
        s.execute(
            insert(RiderTotals),
            [{"rider_id": r["id"], "platform_id": platform_id} for r in rider_rows],
        )
    settle(database)
    print(f"  seeded {tickets} tickets in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    database.dispose()
    return [
        issue_token(
            kind=TokenKind.RIDER, subject=r["id"], ttl=timedelta(hours=2), settings=settings
        ).token
        for r in rider_rows
    ]


def settle(database: Database) -> None:
    """Let the database settle before measuring: no autovacuum or checkpoint of what was
    just written should land in the middle of a measurement."""
    with database.engine.connect() as c:
        if database.is_sqlite:
            c.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            c = c.execution_options(isolation_level="AUTOCOMMIT")
            c.exec_driver_sql("VACUUM (ANALYZE)")
            c.exec_driver_sql("CHECKPOINT")


def wait_for(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url).status_code in (200, 405):
                return
        except httpx.TransportError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"the server behind {url} did not start")


def start_server(
    url: str, port: int, workdir: Path, *, workers: int = 1, log_level: str = "WARNING"
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SENTINEL_DATABASE_URL": url,
        "SENTINEL_SECRET_KEY": SECRET,
        "SENTINEL_ENV": "production",
        "SENTINEL_LOG_LEVEL": log_level,
        "SENTINEL_MEDIA_DIR": str(workdir / "media"),
        "SENTINEL_EMBEDDED_WORKER": "0",
    }
    sentinel = shutil.which("sentinel", path=str(BIN)) or "sentinel"
    server = subprocess.Popen(
        [sentinel, "serve", "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(f"http://127.0.0.1:{port}/healthz", server)
    return server


def start_ceiling(port: int) -> subprocess.Popen[bytes]:
    """The ceiling app with the options ``sentinel serve`` gives uvicorn."""
    server = subprocess.Popen(
        [
            str(BIN / "uvicorn"),
            "bench.ceiling_app:app",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for(f"http://127.0.0.1:{port}/v1/reports", server)
    return server


def stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()


def measure(url: str, seconds: int, concurrency: int, script: Path | None) -> Result:
    """Load ``url`` with wrk: ``concurrency`` connections for ``seconds``."""
    command = ["wrk", "-t2", f"-c{concurrency}", f"-d{seconds}s", "--latency", "--timeout", "10s"]
    if script is not None:
        command += ["-s", str(script)]
    # A fresh nonce per run: an earlier run's keys must not come back as replays.
    output = subprocess.run(
        [*command, url, "--", uuid.uuid4().hex], capture_output=True, text=True, check=True
    ).stdout
    return Result.from_wrk(output)


def report_script(
    rng: random.Random, areas: list, tokens: list[str], n: int, categories: list[str], path: Path
) -> Path:
    """A wrk script sending ``n`` distinct reports (then again, with new keys), as apps
    would: GCJ-02 points inside Changning's communities, random categories and riders."""
    bodies = []
    for x, y, *_ in random_points(rng, areas, n):
        lon, lat = from_wgs84(x, y, CoordSys.GCJ02)
        bodies.append(
            json.dumps(
                {
                    "category": rng.choice(categories),
                    "lat": round(lat, 6),
                    "lon": round(lon, 6),
                    "coord_sys": "gcj02",
                    "accuracy_m": 8,
                    "description": "bench",
                }
            )
        )
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
    ["Authorization"] = "Bearer " .. tokens[(counter * 31 + thread_id * 977) % #tokens + 1],
    ["Idempotency-Key"] = "bench-" .. nonce .. "-" .. thread_id .. "-" .. counter}}, bodies[i])
end
""".format(",".join(f"[[{b}]]" for b in bodies), ",".join(f'"{t}"' for t in tokens))
    path.write_text(lua)
    return path


def count_reports(url: str) -> int:
    database = Database(url)
    try:
        with database.session(write=False) as s:
            return int(s.execute(text("SELECT count(*) FROM reports")).scalar_one())
    finally:
        database.dispose()


def settled_count(url: str) -> int:
    """The reports stored, once the requests that wrk left in flight are stored too (so
    that a run's count takes none of the run before it)."""
    count = count_reports(url)
    while True:
        time.sleep(0.5)
        again = count_reports(url)
        if again == count:
            return count
        count = again


def profile_summary(raw: Path, top: int = 25) -> str:
    """py-spy's folded stacks as a table: the share of busy samples spent in (under) each
    function of the request path."""
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
    rows = sorted(
        (
            (n, c)
            for n, c in totals.items()
            if "app/" in n
            or "psycopg" in n
            or "pysqlite3" in n
            or "fastapi" in n
            or "pydantic" in n
            or "uvicorn" in n
        ),
        key=lambda item: -item[1],
    )[:top]
    return "\n".join(
        [
            "| function (inclusive) | share of samples holding the GIL |",
            "|---|---:|",
            *(f"| `{n}` | {100 * c / max(samples, 1):.0f}% |" for n, c in rows),
        ]
    )


@dataclass
class Intake:
    database: str
    tickets: int
    workers: int
    result: Result
    stored: int  # reports stored during the measurement


def intake_runs(kind: str, tickets: int, args: argparse.Namespace, ceiling: float) -> list[Intake]:
    rng = random.Random(tickets)
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    url = fresh_database(kind, args.pg_url, workdir)
    runs = []
    try:
        tokens = seed(url, tickets, riders=RIDERS, rng=rng)
        database = Database(url)
        areas = communities(database)
        with database.session(write=False) as s:
            codes = list(s.scalars(select(Category.code)))
        database.dispose()
        script = report_script(rng, areas, tokens, 20_000, codes, workdir / "reports.lua")
        for workers in [1, 2] if kind == "postgres" else [1]:
            port = free_port()
            server = start_server(url, port, workdir, workers=workers)
            target = f"http://127.0.0.1:{port}/v1/reports"
            try:
                measure(target, 2, args.concurrency, script)  # warm up: connections, caches
                before = settled_count(url)
                spy = None
                if args.profile:
                    spy = subprocess.Popen(
                        [
                            shutil.which("py-spy", path=str(BIN)) or "py-spy",
                            "record",
                            "--pid",
                            str(server.pid),
                            "--duration",
                            str(args.seconds),
                            "--format",
                            "raw",
                            "--rate",
                            "200",
                            "--gil",
                            "--nonblocking",
                            "--subprocesses",
                            "-o",
                            str(workdir / "profile.txt"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL,
                    )
                result = measure(target, args.seconds, args.concurrency, script)
                stored = settled_count(url) - before
                if spy is not None:
                    spy.wait(timeout=60)
                    print(
                        f"\nprofile of the server during intake ({kind}, {tickets:,} open "
                        f"tickets, {workers} worker(s)):\n\n"
                        f"{profile_summary(workdir / 'profile.txt')}\n"
                    )
            finally:
                stop(server)
            runs.append(Intake(kind, tickets, workers, result, stored))
            print(
                f"  {kind}, {tickets:,} tickets, {workers} worker(s): "
                f"{result.rate:,.0f} reports/s ({result.rate / ceiling:.2f} of the ceiling)",
                file=sys.stderr,
            )
            settle_url(url)
    finally:
        drop_database(url)
        shutil.rmtree(workdir, ignore_errors=True)
    return runs


def settle_url(url: str) -> None:
    database = Database(url)
    try:
        settle(database)
    finally:
        database.dispose()


def healthz_runs(args: argparse.Namespace) -> dict[str, list[Result]]:
    """``/healthz`` at INFO and at WARNING, in turns (``--rounds`` of each)."""
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-bench-"))
    url = f"sqlite:///{workdir / 'healthz.db'}"
    migrate.upgrade(url)
    results: dict[str, list[Result]] = {"INFO": [], "WARNING": []}
    try:
        for _ in range(args.rounds):
            for level in results:
                port = free_port()
                server = start_server(url, port, workdir, log_level=level)
                try:
                    target = f"http://127.0.0.1:{port}/healthz"
                    measure(target, 1, args.concurrency, None)
                    results[level].append(measure(target, args.seconds, args.concurrency, None))
                finally:
                    stop(server)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def main() -> None:
    parser = arguments(__doc__)
    parser.add_argument(
        "--tickets", default="1000,100000", help="existing open tickets; several, comma-separated"
    )
    parser.add_argument("--seconds", type=int, default=10, help="per measurement")
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="of the ceiling and of /healthz at each log level (medians)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the server with py-spy during intake and print where "
        "its time goes (pip install py-spy)",
    )
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("bench/intake.py drives the servers with wrk: apt-get install wrk")
    kinds = databases(args)

    print("the ceiling …", file=sys.stderr)
    ceilings = []
    for _ in range(args.rounds):
        port = free_port()
        server = start_ceiling(port)
        try:
            script = Path(tempfile.mkdtemp(prefix="sentinel-bench-")) / "ceiling.lua"
            script.write_text(
                'wrk.method = "POST"\nwrk.headers["Content-Type"] = '
                '"application/json"\nwrk.body = \'{"category": "road_damage", '
                '"lat": 31.2201, "lon": 121.4332, "coord_sys": "gcj02", '
                '"accuracy_m": 8, "description": "bench"}\'\n'
            )
            measure(f"http://127.0.0.1:{port}/v1/reports", 1, args.concurrency, script)
            ceilings.append(
                measure(
                    f"http://127.0.0.1:{port}/v1/reports", args.seconds, args.concurrency, script
                )
            )
        finally:
            stop(server)
    ceiling = statistics.median(r.rate for r in ceilings)
    print("/healthz …", file=sys.stderr)
    health = healthz_runs(args)
    runs = []
    for kind in kinds:
        for tickets in (int(t) for t in args.tickets.split(",")):
            print(f"{kind}, {tickets:,} open tickets …", file=sys.stderr)
            runs.extend(intake_runs(kind, tickets, args, ceiling))

    print(
        f"\n{args.concurrency} connections, {args.seconds} s per measurement; "
        f"ceiling and /healthz: medians of {args.rounds} rounds\n"
    )
    print("| what | req/s | p50 ms | p99 ms | ÷ ceiling | non-2xx | stored − 2xx |")
    print("|---|---:|---:|---:|---:|---:|---:|")

    def row(what: str, r: Result, stored: str = "") -> None:
        print(
            f"| {what} | {r.rate:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | "
            f"{r.rate / ceiling:.2f} | {r.non_2xx + r.errors} | {stored} |"
        )

    def median(results: list[Result]) -> Result:
        return sorted(results, key=lambda r: r.rate)[len(results) // 2]

    row("ceiling: trivial `async def` POST", median(ceilings))
    for level, results in health.items():
        row(f"`GET /healthz`, log level {level}", median(results))
    for run in runs:
        row(
            f"`POST /v1/reports`, {run.database}, {run.tickets:,} open tickets, "
            f"{run.workers} worker{'s' if run.workers > 1 else ''}",
            run.result,
            f"{run.stored - run.result.answered_2xx:+d}",
        )
    info = statistics.median(r.rate for r in health["INFO"])
    warning = statistics.median(r.rate for r in health["WARNING"])
    print(
        f"\naccess log and metrics: /healthz at INFO is {info / warning:.2f} of WARNING "
        f"(rounds at INFO: {', '.join(f'{r.rate:,.0f}' for r in health['INFO'])}; "
        f"at WARNING: {', '.join(f'{r.rate:,.0f}' for r in health['WARNING'])})"
    )
    for kind in kinds:
        one = [r for r in runs if r.database == kind and r.workers == 1]
        if len(one) > 1:
            print(
                f"{kind}: intake at {one[-1].tickets:,} open tickets is "
                f"{one[-1].result.rate / one[0].result.rate:.2f}× intake at "
                f"{one[0].tickets:,}"
            )
        for tickets in {r.tickets for r in one}:
            two = [
                r for r in runs if r.database == kind and r.workers == 2 and r.tickets == tickets
            ]
            if two:
                single = next(r for r in one if r.tickets == tickets)
                print(
                    f"{kind}, {tickets:,} open tickets: two workers give "
                    f"{two[0].result.rate / single.result.rate:.2f}× one worker"
                )


if __name__ == "__main__":
    main()

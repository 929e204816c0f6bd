"""A city's day on one machine: every kind of user at once, on the city of ``bench/city.py``.

On the city that ``bench/city.py`` built (its ``--out`` JSON: ``--city``; its database:
``--pg-url``, else the one the JSON names), one API process (``sentinel serve``, uvicorn
as in production) and one worker (``sentinel worker``) run for ``--seconds`` while an
open-loop generator sends every kind of request at steady arrival rates, whatever the
answers take (a request is sent when its time comes, on a connection of its own if the
others are busy; its time is counted from that moment, so a generator or server that
falls behind shows as latency, not as fewer requests; a request that follows another —
a report after its photo, an action after its page — counts from when it was sent):

* riders' reports at a storm's rate (``--reports-per-s``), a tenth (``--photo-share``)
  with a photo uploaded first; riders of the three platforms, their tokens minted with
  the platforms' keys; points where the city's tickets are (so in its streets), moved by
  a few metres, in the GCJ-02 datum apps send;
* ``--clerks`` officers of the busiest streets signed in through the console's form, each
  viewing a page every ``--clerk-page-every`` seconds (their queue and a ticket of it in
  turns) and acting on a ticket every ``--action-every`` seconds through the ticket
  page's form and its CSRF token (sign for, accept, start, resolve, else a comment);
* the 16 districts' dashboards (``/console/dashboard``) and ``GET /v1/office/stats``,
  each every ``--dashboard-every`` seconds;
* the three platforms pulling rider statistics, a rider's statistics and summaries
  (``/v1/platform/…``), each every ``--platform-every`` seconds, and receiving their
  webhooks at real receivers on 127.0.0.1 (the ports the city's webhooks name, signatures
  checked, in a process of their own);
* Open311 readers (``/open311/v2/requests.json`` and single requests) and public page
  readers (``/public/``, a street's, a ticket's), ``--open311-per-s`` and ``--public-per-s``;
* (``--channels``, the default) a webhook channel for each district, made through the
  admin API before the load and removed after it, told of new, reopened, escalated and
  late tickets, at a receiver of its own (the city has no channels of its own).

It prints, per kind of request, the count, p50, p99, the worst and the errors; the intake
rate achieved and the reports stored; the webhooks' delay from their event's
``created_at`` to the receiver (p50, p99) and the worker's record of its deliveries; the
delay from a new ticket's creation to its notification sent; the worker's backlog over
time (pending outbox events and notifications, every ``--sample-every`` seconds); the
CPU of the API, the worker, PostgreSQL (all of it, and the city's connections), the
receivers and the generator itself, from /proc; memory (RSS) at the start and the end of
the load. After the load, the worker is given up to ``--drain`` seconds to deliver what
is left (with channels, at least as long as it waits before telling of an event). The
city keeps what the run added (reports, tickets, staff's actions).

The generator (asyncio on uvloop, httptools' parser, keep-alive connections: no
framework) is measured first against the trivial app ``bench/ceiling_app.py`` at the run's
whole request rate for ``--check-seconds``: its CPU, and whether it keeps its schedule.
``--profile`` samples the API with py-spy during the load and
prints where its time goes (``pip install -e .[bench]``).

``--alone`` measures instead each page with nothing else running (no worker): the
district's queue, a street's queue, a ticket page, the dashboard, the street table, the
office's stats, the platform's rider stats and summary, Open311 requests, the public page:
p50 and p99 of ``--repeat`` sequential requests each. Run from the project root, alone on
the machine::

    .venv/bin/python bench/city.py --scale 1.0 --out test-artifacts/city.json --check
    .venv/bin/python bench/city_day.py --alone
    .venv/bin/python bench/city_day.py --seconds 120 --reports-per-s 300 --profile

Linux only (it reads /proc).
"""

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import math
import os
import random
import re
import resource
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import httptools
import orjson
import psycopg
import uvloop
from sqlalchemy import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.geo.coords import CoordSys, from_wgs84
from app.notify.outbox import SETTLE
from bench.common import SECRET, table
from bench.intake import BIN, free_port, profile_summary, start_ceiling, stop, wait_for
from bench.replica import ReplicaLag, replica_lag, start_replica, stop_replica

CITY_JSON = Path("test-artifacts/city.json")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

# --- a lean HTTP/1.1 client: what the generator sends with ------------------------------


class Answer:
    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def header(self, name: str) -> str | None:
        wanted = name.lower().encode()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None

    def cookies(self) -> dict[str, str]:
        found = {}
        for key, value in self.headers:
            if key.lower() == b"set-cookie":
                pair = value.decode("latin-1").split(";", 1)[0]
                name, _, cookie = pair.partition("=")
                found[name.strip()] = cookie.strip().strip('"')
        return found

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.closed = False
        self.keep_alive = True
        self.got_bytes = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's own class

    def data_received(self, data: bytes) -> None:
        self.got_bytes = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as bad:
            self._fail(ConnectionError(f"bad answer: {bad}"))
            self.close()

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = Answer(self.parser.get_status_code(), self.headers, b"".join(self.body))
        self.keep_alive = self.parser.should_keep_alive()
        self.headers, self.body = [], []
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._fail(ConnectionError(str(exc) if exc else "closed by the server"))

    def _fail(self, exc: Exception) -> None:
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def send(self, data: bytes) -> "asyncio.Future[Answer]":
        assert self.transport is not None
        self.waiter = asyncio.get_running_loop().create_future()
        self.got_bytes = False
        self.transport.write(data)
        return self.waiter

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class Client:
    """Keep-alive connections to one server on 127.0.0.1, at most ``limit`` at once."""

    def __init__(self, port: int, *, limit: int = 1000, timeout: float = 30.0) -> None:
        self.port, self.timeout = port, timeout
        self.host = f"127.0.0.1:{port}"
        self.idle: list[_Connection] = []
        self.slots = asyncio.Semaphore(limit)
        self.opened = 0

    async def _connection(self) -> tuple[_Connection, bool]:
        while self.idle:
            connection = self.idle.pop()
            if not connection.closed:
                return connection, True
        loop = asyncio.get_running_loop()
        _, connection = await loop.create_connection(_Connection, "127.0.0.1", self.port)
        self.opened += 1
        return connection, False

    async def request(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes = b"",
    ) -> Answer:
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers)
        if body or method != "GET":
            head += f"Content-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode("latin-1") + body
        async with self.slots:
            for attempt in (1, 2):
                connection, reused = await self._connection()
                try:
                    answer = await asyncio.wait_for(connection.send(data), self.timeout)
                except ConnectionError:
                    connection.close()
                    # A kept connection the server closed as it went idle: once more, on
                    # a new one (nothing of the request was answered).
                    if reused and attempt == 1 and not connection.got_bytes:
                        continue
                    raise
                except BaseException:
                    connection.close()
                    raise
                if connection.keep_alive and not connection.closed:
                    self.idle.append(connection)
                else:
                    connection.close()
                return answer
        raise AssertionError("unreachable")

    def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


def form(fields: dict[str, str]) -> tuple[list[tuple[str, str]], bytes]:
    return [("Content-Type", "application/x-www-form-urlencoded")], urlencode(fields).encode()


def cookie_header(cookies: dict[str, str]) -> tuple[str, str]:
    return "Cookie", "; ".join(f"{k}={v}" for k, v in cookies.items())


# --- what was answered ------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (``share`` in 0–1); NaN of nothing."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


@dataclass
class Kind:
    name: str
    times: list[float] = field(default_factory=list)  # ms, from the moment it was due
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    refused: int = 0  # a clerk's action on a ticket another changed first (409)


class Book:
    """Every request's time and answer, by kind."""

    def __init__(self) -> None:
        self.kinds: dict[str, Kind] = {}
        self.lag: list[float] = []  # ms the generator sent each request after its time

    def kind(self, name: str) -> Kind:
        if name not in self.kinds:
            self.kinds[name] = Kind(name)
        return self.kinds[name]

    def done(
        self,
        name: str,
        due: float,
        answer: Answer | BaseException,
        *,
        ok: Iterable[int] = (200, 201),
        refused: Iterable[int] = (),
    ) -> bool:
        """Counts one request due at ``due`` (loop time); True if it was answered ``ok``."""
        kind = self.kind(name)
        kind.times.append((time.perf_counter() - due) * 1000)
        if isinstance(answer, BaseException):
            what = type(answer).__name__
            if str(answer):
                what += f": {str(answer)[:80]}"
            kind.errors[what] += 1
            return False
        kind.statuses[answer.status] += 1
        if answer.status in ok:
            return True
        if answer.status in refused:
            kind.refused += 1
        else:
            kind.errors[f"HTTP {answer.status}"] += 1
        return False


# --- the processes and what they cost ---------------------------------------------------


def read_procs() -> dict[int, tuple[int, str, float]]:
    """Every process: (parent, command, CPU seconds so far)."""
    procs = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        close = raw.rfind(")")
        rest = raw[close + 2 :].split()
        cpu = (int(rest[11]) + int(rest[12])) / TICK
        procs[int(entry)] = (int(rest[1]), raw[raw.find("(") + 1 : close], cpu)
    return procs


def tree(procs: dict[int, tuple[int, str, float]], root: int) -> set[int]:
    pids, grew = {root}, True
    while grew:
        more = {pid for pid, (parent, _, _) in procs.items() if parent in pids} - pids
        pids |= more
        grew = bool(more)
    return pids & set(procs)


def machine_cpu() -> tuple[float, float, float]:
    """Seconds of all cores so far: busy, all, stolen."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    total = sum(fields[:8])
    idle = fields[3] + fields[4]
    steal = fields[7] if len(fields) > 7 else 0
    return (total - idle) / TICK, total / TICK, steal / TICK


def rss_mb(pids: Iterable[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    return total / 2**20


def pss_mb(pids: Iterable[int]) -> float:
    """Proportional set size: shared memory counted once over the processes sharing it."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            pass
    return total / 2**20


class CpuOf:
    """CPU seconds a changing set of processes spent since ``start``: a process seen at
    the start counts from there, one born after counts whole, one that ended keeps what
    it was last seen with."""

    def __init__(self) -> None:
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.started = False

    def see(self, procs: dict[int, tuple[int, str, float]], pids: Iterable[int]) -> None:
        for pid in pids:
            if pid not in procs:
                continue
            cpu = procs[pid][2]
            if pid not in self.first:
                self.first[pid] = cpu if not self.started else 0.0
            self.last[pid] = cpu

    def start(self, procs: dict[int, tuple[int, str, float]], pids: Iterable[int]) -> None:
        self.first, self.last, self.started = {}, {}, False
        self.see(procs, pids)
        self.started = True

    @property
    def seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)


@dataclass
class Processes:
    api: subprocess.Popen[bytes]
    worker: subprocess.Popen[bytes] | None
    receivers: subprocess.Popen[bytes] | None
    logs: Path
    replica: int | None = None  # the replica's postmaster

    def groups(self, procs: dict[int, tuple[int, str, float]], city: set[int]) -> dict[str, set]:
        groups = {"API": tree(procs, self.api.pid)}
        if self.worker is not None:
            groups["worker"] = tree(procs, self.worker.pid)
        groups["PostgreSQL, all"] = {p for p, (_, c, _) in procs.items() if c == "postgres"}
        groups["PostgreSQL, the city's connections"] = city
        if self.replica is not None:
            groups["PostgreSQL, the replica"] = tree(procs, self.replica)
        if self.receivers is not None:
            groups["webhook receivers"] = tree(procs, self.receivers.pid)
        groups["generator (this)"] = {os.getpid()}
        return groups

    def stop(self) -> None:
        for process in (self.worker, self.api):
            if process is not None:
                stop(process)


def environment(
    url: str, media: Path, log_level: str, read_url: str | None = None
) -> dict[str, str]:
    return {
        **os.environ,
        **({"SENTINEL_READ_DATABASE_URL": read_url} if read_url else {}),
        "SENTINEL_DATABASE_URL": url,
        "SENTINEL_SECRET_KEY": SECRET,
        "SENTINEL_ENV": "production",
        "SENTINEL_LOG_LEVEL": log_level,
        "SENTINEL_MEDIA_DIR": str(media.resolve()),
        "SENTINEL_EMBEDDED_WORKER": "0",
        "SENTINEL_ALLOW_PRIVATE_WEBHOOKS": "1",
    }


def start(
    args: argparse.Namespace, url: str, port: int, workdir: Path, *, worker: bool, hooks: Path
) -> Processes:
    env = environment(url, args.media_dir, args.log_level, args.read_url)
    sentinel = str(BIN / "sentinel")
    logs = workdir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    receivers = None
    if hooks.exists():
        receivers = subprocess.Popen(
            [sys.executable, __file__, "--serve-receivers", str(hooks)],
            stdout=subprocess.DEVNULL,
            stderr=(logs / "receivers.log").open("wb"),
        )
    api = subprocess.Popen(
        [sentinel, "serve", "--port", str(port), "--workers", str(args.api_workers)],
        env=env,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=(logs / "api.log").open("wb"),
    )
    wait_for(f"http://127.0.0.1:{port}/healthz", api)
    running = None
    if worker:
        running = subprocess.Popen(
            [sentinel, "worker"],
            env=env,
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=(logs / "worker.log").open("wb"),
        )
    return Processes(api, running, receivers, logs)


# --- the platforms' webhook receivers (a process of their own) --------------------------

NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


def serve_receivers(spec_path: Path) -> None:
    """Receives the platforms' webhooks on the ports ``spec_path`` names until SIGTERM,
    checks each signature, then writes what came (event, type, its created_at and when it
    arrived) to the spec's ``out``."""
    spec = json.loads(spec_path.read_text())
    seen: list[tuple[str, str, str, float, float, bool]] = []

    class Receiver(asyncio.Protocol):
        def __init__(self, platform: str, secret: str) -> None:
            self.platform, self.secret = platform, secret.encode()
            self.parser = httptools.HttpRequestParser(self)
            self.transport: asyncio.Transport | None = None
            self.signature = ""
            self.body: list[bytes] = []

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport  # type: ignore[assignment]  # uvloop's own class

        def data_received(self, data: bytes) -> None:
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserError:
                assert self.transport is not None
                self.transport.close()

        def on_header(self, name: bytes, value: bytes) -> None:
            if name.lower() == b"x-sentinel-signature":
                self.signature = value.decode("latin-1")

        def on_body(self, body: bytes) -> None:
            self.body.append(body)

        def on_message_complete(self) -> None:
            arrived = time.time()
            body, self.body = b"".join(self.body), []
            parts = dict(p.split("=", 1) for p in self.signature.split(",") if "=" in p)
            mac = hmac.new(self.secret, f"{parts.get('t', '')}.".encode() + body, hashlib.sha256)
            signed = hmac.compare_digest(mac.hexdigest(), parts.get("v1", ""))
            try:
                event = orjson.loads(body)
                created = datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
                seen.append(
                    (
                        self.platform,
                        event["id"],
                        event["type"],
                        created.timestamp(),
                        arrived,
                        signed,
                    )
                )
            except (ValueError, KeyError, TypeError):
                seen.append((self.platform, "", "unreadable", arrived, arrived, signed))
            assert self.transport is not None
            self.transport.write(NO_CONTENT)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stopped = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stopped.set)
        servers = []
        for hook in spec["hooks"]:
            servers.append(
                await loop.create_server(
                    lambda hook=hook: Receiver(hook["platform"], hook["secret"]),
                    "127.0.0.1",
                    hook["port"],
                )
            )
        Path(spec["ready"]).write_text("ready")
        await stopped.wait()
        for server in servers:
            server.close()
        Path(spec["out"]).write_bytes(orjson.dumps(seen))

    uvloop.run(main())


CHANNEL_PREFIX = "cityday-"  # the channels a run makes (and removes)
CHANNEL_SECRET = "city-day-channel-secret"
CHANNEL_EVENTS = ["ticket.new", "ticket.reopened", "ticket.escalated", "sla.breached"]


def receivers_spec(city: dict[str, Any], workdir: Path, channel_port: int | None) -> Path:
    hooks = []
    if channel_port is not None:
        hooks.append({"platform": "channels", "port": channel_port, "secret": CHANNEL_SECRET})
    for platform in city["platforms"]:
        url = urlsplit(platform["webhook_url"])
        if url.hostname not in ("127.0.0.1", "localhost") or url.port is None:
            continue
        hooks.append(
            {"platform": platform["code"], "port": url.port, "secret": platform["webhook_secret"]}
        )
    spec = workdir / "receivers.json"
    spec.write_text(
        json.dumps(
            {
                "hooks": hooks,
                "out": str(workdir / "webhooks.json"),
                "ready": str(workdir / "receivers.ready"),
            }
        )
    )
    return spec


# --- the city: who signs in, where riders stand ------------------------------------------


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass
class CityData:
    points: list[tuple[float, float, str]]  # WGS-84 lon, lat and a category code
    riders: list[tuple[str, str]]  # platform code, rider id
    counts: dict[str, int]


def read_city(url: str, *, points: int, riders: int, seed: int) -> CityData:
    with psycopg.connect(libpq(url)) as connection:
        connection.execute("SELECT setseed(%s)", (1 / (seed + 2),))
        found = connection.execute(
            "SELECT ST_X(t.location), ST_Y(t.location), c.code FROM tickets t "
            "JOIN categories c ON c.id = t.category_id ORDER BY random() LIMIT %s",
            (points,),
        ).fetchall()
        rider_rows = connection.execute(
            "SELECT p.code, r.external_id FROM riders r JOIN platforms p ON p.id = "
            "r.platform_id WHERE r.erased_at IS NULL ORDER BY random() LIMIT %s",
            (riders,),
        ).fetchall()
        counts = {
            "tickets": connection.execute("SELECT count(*) FROM tickets").fetchone()[0],
            "open": connection.execute(
                "SELECT count(*) FROM tickets WHERE status NOT IN ('closed', 'rejected')"
            ).fetchone()[0],
            "reports": connection.execute("SELECT count(*) FROM reports").fetchone()[0],
            "riders": connection.execute("SELECT count(*) FROM riders").fetchone()[0],
        }
    return CityData([(x, y, c) for x, y, c in found], list(rider_rows), counts)


def clerks_of(city: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """``n`` officers, from the busiest streets down, one a street at a time."""
    by_street: dict[str, list[dict[str, Any]]] = {}
    for account in city["staff"]:
        if account["role"] == "officer" and account.get("area"):
            by_street.setdefault(account["area"], []).append(account)
    streets = sorted(city["streets"], key=lambda s: -s["open_tickets"])
    chosen: list[dict[str, Any]] = []
    turn = 0
    while len(chosen) < n:
        added = False
        for street in streets:
            officers = by_street.get(street["code"], [])
            if turn < len(officers) and len(chosen) < n:
                chosen.append(officers[turn])
                added = True
        if not added:
            break
        turn += 1
    return chosen


def districts_of(city: dict[str, Any]) -> list[dict[str, Any]]:
    first: dict[str, dict[str, Any]] = {}
    for account in city["staff"]:
        if account["role"] == "district":
            first.setdefault(account["area"], account)
    return list(first.values())


TICKET_LINK = re.compile(r'href="/console/tickets/([0-9a-f-]{36})"')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
VERSION = re.compile(r'name="version" value="(\d+)"')
ACTIONS = re.compile(r'class="action action-[a-z_]+" data-action="([a-z_]+)"')
PUBLIC_LINK = re.compile(r'href="/public/tickets/([A-Za-z0-9-]+)')


@dataclass
class Staffer:
    username: str
    area: str
    cookies: dict[str, str] = field(default_factory=dict)
    csrf: str = ""
    tickets: list[str] = field(default_factory=list)
    token: str = ""  # a bearer token for the API (district users)

    def headers(self) -> list[tuple[str, str]]:
        return [cookie_header(self.cookies)]

    def saw(self, page: Answer, *, queue: bool = False) -> None:
        """What a page tells: its CSRF token; a queue's, its tickets."""
        self.cookies |= {k: v for k, v in page.cookies().items() if v}
        text = page.text()
        if token := CSRF.search(text):
            self.csrf = token[1]
        if queue and page.status == 200:
            self.tickets = list(dict.fromkeys(TICKET_LINK.findall(text)))


async def retrying(call: Callable[[], Awaitable[Answer]], *, tries: int = 20) -> Answer:
    """``call`` again while the server says to wait (429, 503)."""
    for _ in range(tries):
        answer = await call()
        if answer.status not in (429, 503):
            return answer
        await asyncio.sleep(float(answer.header("retry-after") or 1))
    return answer


async def sign_in(client: Client, staffer: Staffer, password: str) -> None:
    """Through the console's form, as a browser: the page (its CSRF cookie and token),
    then the form posted; the session cookie comes back."""
    page = await client.request("GET", "/console/login")
    staffer.saw(page)

    async def post() -> Answer:
        headers, body = form(
            {"csrf_token": staffer.csrf, "username": staffer.username, "password": password}
        )
        return await client.request("POST", "/console/login", [*headers, *staffer.headers()], body)

    answer = await retrying(post)
    if answer.status != 303:
        raise RuntimeError(f"{staffer.username} could not sign in: HTTP {answer.status}")
    staffer.cookies |= answer.cookies()


async def api_token(client: Client, staffer: Staffer, password: str) -> None:
    headers, body = form({"username": staffer.username, "password": password})
    answer = await retrying(lambda: client.request("POST", "/v1/auth/token", headers, body))
    if answer.status != 200:
        raise RuntimeError(f"{staffer.username} got no token: HTTP {answer.status}")
    staffer.token = orjson.loads(answer.body)["access_token"]


async def make_channels(
    client: Client, city: dict[str, Any], port: int
) -> tuple[str, list[str]] | None:
    """As the admin: a webhook channel for each district, told of new, reopened,
    escalated and late tickets, at the receivers' ``port`` (those of an earlier run that
    stopped short removed first). Returns the admin's token and the channels' codes."""
    admin = next((a for a in city["staff"] if a["role"] == "admin"), None)
    if admin is None:
        return None
    staffer = Staffer(admin["username"], "")
    await api_token(client, staffer, city["password"])
    bearer = ("Authorization", f"Bearer {staffer.token}")
    await remove_channels(client, staffer.token, None)
    codes = []
    for district in city["districts"]:
        code = f"{CHANNEL_PREFIX}{district['code']}"
        answer = await client.request(
            "POST",
            "/v1/admin/channels",
            [bearer, ("Content-Type", "application/json")],
            orjson.dumps(
                {
                    "code": code,
                    "kind": "webhook",
                    "url": f"http://127.0.0.1:{port}/channels/{district['code']}",
                    "secret": CHANNEL_SECRET,
                    "owner": {"area": district["code"]},
                    "events": CHANNEL_EVENTS,
                    "quiet_hours": False,
                }
            ),
        )
        if answer.status != 201:
            raise RuntimeError(f"channel {code} not made: HTTP {answer.status} {answer.text()}")
        codes.append(code)
    return staffer.token, codes


async def remove_channels(client: Client, token: str, codes: list[str] | None) -> None:
    """The run's channels (``None``: every one named as a run names them), with their
    queues and logs."""
    bearer = ("Authorization", f"Bearer {token}")
    if codes is None:
        listed = await client.request("GET", "/v1/admin/channels", [bearer])
        codes = [
            c["code"]
            for c in orjson.loads(listed.body).get("items", [])
            if c["code"].startswith(CHANNEL_PREFIX)
        ]
    for code in codes:
        await client.request("DELETE", f"/v1/admin/channels/{code}", [bearer])


async def mint_tokens(
    client: Client, city: dict[str, Any], riders: list[tuple[str, str]], *, at_once: int = 8
) -> list[str]:
    keys = {p["code"]: p["api_key"] for p in city["platforms"]}
    tokens: list[str] = []
    queue = list(riders)

    async def minting() -> None:
        while queue:
            platform, rider = queue.pop()
            answer = await retrying(
                lambda platform=platform, rider=rider: client.request(
                    "POST",
                    "/v1/platform/rider-tokens",
                    [
                        ("Authorization", f"Bearer {keys[platform]}"),
                        ("Content-Type", "application/json"),
                    ],
                    orjson.dumps({"rider_id": rider}),
                )
            )
            if answer.status != 201:
                raise RuntimeError(f"no token for {platform} {rider}: HTTP {answer.status}")
            tokens.append(orjson.loads(answer.body)["token"])

    await asyncio.gather(*(minting() for _ in range(at_once)))
    return tokens


async def in_turns(items: list[Any], work: Callable[[Any], Awaitable[None]], at_once: int) -> None:
    queue = list(items)

    async def one() -> None:
        while queue:
            await work(queue.pop())

    await asyncio.gather(*(one() for _ in range(at_once)))


def photo_bytes(pixels: int, seed: int) -> bytes:
    """A phone-like photo (``pixels`` wide, 4:3, some texture so it does not shrink to
    nothing), as JPEG."""
    from PIL import Image, ImageFilter

    width, height = pixels, pixels * 3 // 4
    rng = random.Random(seed)
    noise = Image.effect_noise((width, height), 60).filter(ImageFilter.GaussianBlur(1))
    gradient = Image.linear_gradient("L").resize((width, height))
    image = Image.merge("RGB", (noise, gradient, Image.blend(noise, gradient, rng.random())))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def unique_jpeg(jpeg: bytes, tag: str) -> bytes:
    """The same picture with a comment of its own: other bytes, the same decoding."""
    comment = tag.encode()
    return jpeg[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + jpeg[2:]


def multipart(data: bytes) -> tuple[list[tuple[str, str]], bytes]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"'
            f"\r\nContent-Type: image/jpeg\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return [("Content-Type", f"multipart/form-data; boundary={boundary}")], body


def report_bodies(points: list[tuple[float, float, str]], rng: random.Random) -> list[dict]:
    """Where reports are made: each point moved by up to about 25 m, as apps send it
    (GCJ-02); each report moves again by up to about 10 m (``Load.report``)."""
    bodies = []
    for x, y, category in points:
        lon, lat = from_wgs84(
            x + rng.uniform(-2.5e-4, 2.5e-4), y + rng.uniform(-2.2e-4, 2.2e-4), CoordSys.GCJ02
        )
        bodies.append(
            {
                "category": category,
                "lat": round(lat, 6),
                "lon": round(lon, 6),
                "coord_sys": "gcj02",
                "accuracy_m": 10,
                "description": "city day bench",
            }
        )
    return bodies


# --- the load ---------------------------------------------------------------------------


@dataclass
class Load:
    """Everything that sends: who, with what, and at which rates."""

    args: argparse.Namespace
    city: dict[str, Any]
    book: Book
    clients: dict[str, Client]
    tokens: list[str]
    bodies: list[dict[str, Any]]
    clerks: list[Staffer]
    districts: list[Staffer]
    photo: bytes
    open311_ids: list[str]
    public_refs: list[str]
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:10])
    rng: random.Random = field(default_factory=random.Random)
    outcomes: Counter[str] = field(default_factory=Counter)
    actions: Counter[str] = field(default_factory=Counter)
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    # -- intake

    async def report(self, i: int, due: float) -> None:
        token = self.tokens[i % len(self.tokens)]
        auth = ("Authorization", f"Bearer {token}")
        body = dict(self.bodies[i % len(self.bodies)])
        body["lon"] = round(body["lon"] + self.rng.uniform(-1e-4, 1e-4), 6)
        body["lat"] = round(body["lat"] + self.rng.uniform(-0.8e-4, 0.8e-4), 6)
        share = self.args.photo_share
        if share > 0 and i % max(1, round(1 / share)) == 0:
            headers, data = multipart(unique_jpeg(self.photo, f"{self.nonce}-{i}"))
            try:
                answer: Answer | BaseException = await self.clients["media"].request(
                    "POST", "/v1/media", [auth, *headers], data
                )
            except (OSError, TimeoutError) as failed:
                answer = failed
            if not self.book.done("intake: photo upload (POST /v1/media)", due, answer):
                return
            assert isinstance(answer, Answer)
            body["media_ids"] = [orjson.loads(answer.body)["id"]]
            due = time.perf_counter()
        try:
            answer = await self.clients["intake"].request(
                "POST",
                "/v1/reports",
                [
                    auth,
                    ("Content-Type", "application/json"),
                    ("Idempotency-Key", f"day-{self.nonce}-{i}"),
                ],
                orjson.dumps(body),
            )
        except (OSError, TimeoutError) as failed:
            answer = failed
        if self.book.done("intake: POST /v1/reports", due, answer, ok=(201,)):
            assert isinstance(answer, Answer)
            self.outcomes[orjson.loads(answer.body).get("outcome", "?")] += 1

    # -- clerks

    async def page(
        self, kind: str, client: str, due: float, path: str, headers: list, **ok: Any
    ) -> Answer | None:
        try:
            answer: Answer | BaseException = await self.clients[client].request(
                "GET", path, headers
            )
        except (OSError, TimeoutError) as failed:
            answer = failed
        if self.book.done(kind, due, answer, **ok):
            assert isinstance(answer, Answer)
            return answer
        return None

    async def clerk_page(self, i: int, due: float) -> None:
        clerk = self.clerks[i % len(self.clerks)]
        turn = i // len(self.clerks)
        queue = turn % 2 == 0 or not clerk.tickets
        if queue:
            seen = await self.page(
                "clerk: queue page", "console", due, "/console/queue", clerk.headers()
            )
        else:
            ticket = clerk.tickets[turn % len(clerk.tickets)]
            seen = await self.page(
                "clerk: ticket page", "console", due, f"/console/tickets/{ticket}", clerk.headers()
            )
        if seen is not None:
            clerk.saw(seen, queue=queue)

    async def clerk_action(self, i: int, due: float) -> None:
        clerk = self.clerks[i % len(self.clerks)]
        if not clerk.tickets:
            seen = await self.page(
                "clerk: queue page", "console", due, "/console/queue", clerk.headers()
            )
            if seen is None:
                return
            clerk.saw(seen, queue=True)
            if not clerk.tickets:
                self.actions["none: an empty queue"] += 1
                return
            due = time.perf_counter()
        ticket = clerk.tickets[i % len(clerk.tickets)]
        path = f"/console/tickets/{ticket}"
        seen = await self.page("clerk: ticket page", "console", due, path, clerk.headers())
        if seen is None:
            return
        clerk.saw(seen)
        text = seen.text()
        offered = ACTIONS.findall(text)
        version = VERSION.search(text)
        # The office's steps in turns (sign for, accept, start, resolve): the first of
        # them the page offers, from this action's turn on; else a comment.
        turn = (i + i // len(self.clerks)) % len(STEPS)
        action = next((a for a in STEPS[turn:] + STEPS[:turn] if a in offered), None)
        action = action or ("comment" if "comment" in offered else None)
        if action is None or version is None:
            self.actions["none offered"] += 1
            return
        fields = {"csrf_token": clerk.csrf, "action": action, "version": version[1]}
        if action in ("resolve", "comment"):
            fields["note"] = f"city day bench: {action}"
        headers, body = form(fields)
        due = time.perf_counter()
        try:
            answer: Answer | BaseException = await self.clients["console"].request(
                "POST", f"{path}/actions", [*headers, *clerk.headers()], body
            )
        except (OSError, TimeoutError) as failed:
            answer = failed
        if self.book.done("clerk: an action (form POST)", due, answer, ok=(303,), refused=(409,)):
            assert isinstance(answer, Answer)
            self.actions[action] += 1
            location = answer.header("location") or path
            clerk.cookies |= {k: v for k, v in answer.cookies().items() if v}
            due = time.perf_counter()
            after = await self.page("clerk: ticket page", "console", due, location, clerk.headers())
            if after is not None:
                clerk.saw(after)
        else:
            self.actions[f"{action}: not done"] += 1

    # -- districts

    async def dashboard(self, i: int, due: float) -> None:
        district = self.districts[i % len(self.districts)]
        await self.page(
            "district: dashboard (console)",
            "console",
            due,
            "/console/dashboard",
            district.headers(),
        )

    async def office_stats(self, i: int, due: float) -> None:
        district = self.districts[i % len(self.districts)]
        since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        await self.page(
            "district: GET /v1/office/stats",
            "api",
            due,
            f"/v1/office/stats?from={since}",
            [("Authorization", f"Bearer {district.token}")],
        )

    # -- platforms

    def platform(self, i: int) -> dict[str, Any]:
        return self.city["platforms"][i % len(self.city["platforms"])]

    async def rider_list(self, i: int, due: float) -> None:
        platform = self.platform(i)
        sort = ("-points", "-reports")[i // 3 % 2]
        await self.page(
            "platform: GET /v1/platform/riders/stats",
            "api",
            due,
            f"/v1/platform/riders/stats?limit=50&sort={sort}",
            [("Authorization", f"Bearer {platform['api_key']}")],
        )

    async def rider_detail(self, i: int, due: float) -> None:
        platform = self.platform(i)
        riders = [
            r["rider_id"] for r in self.city["busiest_riders"] if r["platform"] == platform["code"]
        ] or ["none"]
        rider = riders[i // 3 % len(riders)]
        await self.page(
            "platform: a rider's stats",
            "api",
            due,
            f"/v1/platform/riders/{quote(rider)}/stats",
            [("Authorization", f"Bearer {platform['api_key']}")],
        )

    async def summary(self, i: int, due: float) -> None:
        platform = self.platform(i)
        group = ("day", "category", "street")[i // 3 % 3]
        await self.page(
            "platform: GET /v1/platform/summary",
            "api",
            due,
            f"/v1/platform/summary?group_by={group}",
            [("Authorization", f"Bearer {platform['api_key']}")],
        )

    # -- Open311 and the public page

    async def open311_list(self, i: int, due: float) -> None:
        categories = self.city["categories"]
        query = ("", "?status=open", f"?service_code={categories[i % len(categories)]}")[i % 3]
        await self.page(
            "Open311: GET requests.json", "public", due, f"/open311/v2/requests.json{query}", []
        )

    async def open311_one(self, i: int, due: float) -> None:
        if not self.open311_ids:
            return
        request_id = self.open311_ids[i % len(self.open311_ids)]
        await self.page(
            "Open311: a request", "public", due, f"/open311/v2/requests/{request_id}.json", []
        )

    async def public_index(self, i: int, due: float) -> None:
        street = self.city["streets"][i % len(self.city["streets"])]["code"]
        path = "/public/" if i % 3 else f"/public/?street={street}"
        await self.page("public: the page", "public", due, path, [])

    async def public_ticket(self, i: int, due: float) -> None:
        if not self.public_refs:
            return
        ref = self.public_refs[i % len(self.public_refs)]
        await self.page("public: a ticket", "public", due, f"/public/tickets/{ref}", [])

    # -- the schedule

    def streams(self) -> list[tuple[str, float, Callable[[int, float], Awaitable[None]]]]:
        """(kind, arrivals a second, what each arrival does)."""
        a = self.args
        clerks, districts = len(self.clerks), len(self.districts)
        platforms = len(self.city["platforms"])
        return [
            ("intake", a.reports_per_s, self.report),
            ("clerk pages", clerks / a.clerk_page_every if clerks else 0, self.clerk_page),
            ("clerk actions", clerks / a.action_every if clerks else 0, self.clerk_action),
            ("dashboards", districts / a.dashboard_every, self.dashboard),
            ("office stats", districts / a.dashboard_every, self.office_stats),
            ("rider lists", platforms / a.platform_every, self.rider_list),
            ("rider details", platforms / a.platform_every, self.rider_detail),
            ("summaries", platforms / a.platform_every, self.summary),
            ("Open311 lists", a.open311_per_s * 0.7, self.open311_list),
            ("Open311 requests", a.open311_per_s * 0.3, self.open311_one),
            ("public pages", a.public_per_s * 0.7, self.public_index),
            ("public tickets", a.public_per_s * 0.3, self.public_ticket),
        ]


async def arrivals(
    book: Book,
    tasks: set[asyncio.Task[None]],
    rate: float,
    start: float,
    seconds: float,
    fire: Callable[[int, float], Awaitable[None]],
) -> None:
    """Starts ``fire(i, due)`` at ``start + i / rate`` for ``seconds``, whatever the
    earlier ones are doing (open loop)."""
    if rate <= 0:
        return
    loop = asyncio.get_running_loop()
    for i in range(int(seconds * rate)):
        due = start + i / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        book.lag.append((time.perf_counter() - due) * 1000)
        task = loop.create_task(fire(i, due))  # type: ignore[arg-type]
        tasks.add(task)
        task.add_done_callback(tasks.discard)


STEPS = ("acknowledge", "accept", "start", "resolve")


# --- sampling: the worker's backlog, the CPU --------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the start of the load
    pending_events: int
    oldest_pending_s: float | None
    pending_notifications: int
    cpu: dict[str, float]  # CPU seconds of each group since the previous sample
    intake_ok: int  # reports answered 201 since the previous sample


BACKLOG_SQL = """
SELECT (SELECT count(*) FROM outbox_events WHERE state = 'pending'),
       (SELECT extract(epoch FROM now() - min(created_at)) FROM outbox_events
        WHERE state = 'pending'),
       (SELECT count(*) FROM notifications WHERE state = 'pending'),
       ARRAY(SELECT pid FROM pg_stat_activity WHERE datname = current_database()
             AND pid <> pg_backend_pid())
"""


class Sampler:
    def __init__(self, url: str, processes: Processes, book: Book) -> None:
        self.url, self.processes, self.book = url, processes, book
        self.samples: list[Sample] = []
        self.replica_url: str | None = None
        self.lags: list[ReplicaLag] = []
        self.cpu: dict[str, CpuOf] = {}
        self.city_pids: set[int] = set()
        self.connection: psycopg.AsyncConnection[Any] | None = None
        self.machine = (0.0, 0.0, 0.0)
        self.rss_start: dict[str, float] = {}
        self.rss_end: dict[str, float] = {}

    async def backlog(self) -> tuple[int, float | None, int]:
        if self.connection is None:
            self.connection = await psycopg.AsyncConnection.connect(
                libpq(self.url), autocommit=True
            )
        row = await (await self.connection.execute(BACKLOG_SQL)).fetchone()
        assert row is not None
        events, oldest, notifications, pids = row
        self.city_pids = set(pids)
        return events, float(oldest) if oldest is not None else None, notifications

    def memory(self) -> dict[str, float]:
        procs = read_procs()
        groups = self.processes.groups(procs, self.city_pids)
        return {
            name: (pss_mb(pids) if name.startswith("PostgreSQL") else rss_mb(pids))
            for name, pids in groups.items()
        }

    async def begin(self) -> None:
        await self.backlog()
        procs = read_procs()
        for name, pids in self.processes.groups(procs, self.city_pids).items():
            self.cpu.setdefault(name, CpuOf()).start(procs, pids)
        self.machine = machine_cpu()
        self.rss_start = self.memory()
        self.last = {name: 0.0 for name in self.cpu}
        self.started = time.perf_counter()
        self.intake_seen = 0

    async def sample(self) -> Sample:
        events, oldest, notifications = await self.backlog()
        if self.replica_url is not None:
            self.lags.append(
                await asyncio.to_thread(replica_lag, self.replica_url, primary_url=self.url)
            )
        procs = read_procs()
        for name, pids in self.processes.groups(procs, self.city_pids).items():
            self.cpu[name].see(procs, pids)
        spent = {name: cpu.seconds - self.last[name] for name, cpu in self.cpu.items()}
        self.last = {name: cpu.seconds for name, cpu in self.cpu.items()}
        kind = self.book.kinds.get("intake: POST /v1/reports")
        ok = kind.statuses[201] if kind else 0
        sample = Sample(
            time.perf_counter() - self.started,
            events,
            oldest,
            notifications,
            spent,
            ok - self.intake_seen,
        )
        self.intake_seen = ok
        self.samples.append(sample)
        return sample

    async def every(self, seconds: float, until: asyncio.Event) -> None:
        while not until.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(until.wait(), seconds)
            await self.sample()

    def finish(self) -> tuple[float, float, float]:
        self.rss_end = self.memory()
        busy, total, steal = machine_cpu()
        return busy - self.machine[0], total - self.machine[1], steal - self.machine[2]


# --- printing ---------------------------------------------------------------------------


def ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def kinds_table(book: Book, seconds: float, title: str) -> None:
    rows = []
    for kind in sorted(book.kinds.values(), key=lambda k: k.name):
        others = ", ".join(
            f"{status}: {n}"
            for status, n in sorted(kind.statuses.items())
            if status not in (200, 201, 303)
        )
        errors = sum(kind.errors.values())
        refused = f" ({kind.refused} refused: changed first)" if kind.refused else ""
        rows.append(
            f"| {kind.name} | {len(kind.times):,} | {len(kind.times) / seconds:.1f} | "
            f"{ms(percentile(kind.times, 0.5))} | {ms(percentile(kind.times, 0.99))} | "
            f"{ms(max(kind.times, default=math.nan))} | {errors}{refused} | {others} |"
        )
    table(
        title,
        ["kind of request", "count", "/s", "p50 ms", "p99 ms", "max ms", "errors", "answers"],
        rows,
        numbers=7,
    )
    table_errors = [
        f"  {kind.name}: {what} × {n}"
        for kind in book.kinds.values()
        for what, n in kind.errors.most_common(4)
    ]
    if table_errors:
        print("\nerrors:\n" + "\n".join(table_errors))


def webhooks_table(
    platforms: list[str], received: list[list[Any]], start: float, end: float
) -> None:
    rows = []
    ids: Counter[str] = Counter()
    for platform in platforms:
        mine = [r for r in received if r[0] == platform and start <= r[3] < end]
        ids.update(r[1] for r in mine)
        delays = [r[4] - r[3] for r in mine]
        kinds = Counter(r[2] for r in mine)
        unsigned = sum(1 for r in mine if not r[5])
        rows.append(
            f"| {platform} | {len(mine):,} | {ms(percentile(delays, 0.5) * 1000)} | "
            f"{ms(percentile(delays, 0.99) * 1000)} | {ms(max(delays, default=math.nan) * 1000)} | "
            f"{unsigned} | {', '.join(f'{k} {n}' for k, n in kinds.most_common())} |"
        )
    table(
        "webhooks of the events made during the load, at the receivers (delay from the "
        "event's created_at)",
        ["platform", "received", "p50 ms", "p99 ms", "max ms", "bad signature", "types"],
        rows,
        numbers=6,
    )
    again = sum(n - 1 for n in ids.values() if n > 1)
    earlier = sum(1 for r in received if r[3] < start)
    print(
        f"\nevents received more than once: {again}; events of before the load received "
        f"(an earlier run's, retried): {earlier}"
    )


def backlog_table(samples: list[Sample], names: list[str]) -> None:
    rows = []
    previous = 0.0
    for sample in samples:
        span = max(sample.at - previous, 1e-9)
        previous = sample.at
        oldest = "–" if sample.oldest_pending_s is None else f"{sample.oldest_pending_s:.1f}"
        cpu = " | ".join(f"{100 * sample.cpu.get(n, 0) / span:.0f}" for n in names)
        rows.append(
            f"| {sample.at:.0f} | {sample.intake_ok / span:.0f} | {sample.pending_events:,} | "
            f"{oldest} | {sample.pending_notifications:,} | {cpu} |"
        )
    table(
        "the worker's backlog over time (and each process's CPU, % of one core, since the "
        "sample before)",
        ["s", "intake 201/s", "pending events", "oldest pending s", "pending notifications"]
        + [f"{n} %" for n in names],
        rows,
        numbers=5 + len(names),
    )


# --- the runs ---------------------------------------------------------------------------


def planned_rate(args: argparse.Namespace, clerks: int, districts: int, platforms: int) -> float:
    """Requests a second the run's arrivals make (a photo and an action count twice)."""
    return (
        args.reports_per_s * (1 + args.photo_share)
        + clerks / args.clerk_page_every
        + 3 * clerks / args.action_every
        + 2 * districts / args.dashboard_every
        + 3 * platforms / args.platform_every
        + args.open311_per_s
        + args.public_per_s
    )


async def check_generator(args: argparse.Namespace, rate: float) -> None:
    """The generator against the trivial app, at the run's whole rate, as report POSTs."""
    port = free_port()
    server = start_ceiling(port)
    book = Book()
    tasks: set[asyncio.Task[None]] = set()
    client = Client(port, timeout=args.timeout)
    body = orjson.dumps(
        {"category": "road_damage", "lat": 31.2201, "lon": 121.4332, "coord_sys": "gcj02"}
    )

    async def post(i: int, due: float) -> None:
        try:
            answer: Answer | BaseException = await client.request(
                "POST", "/v1/reports", [("Content-Type", "application/json")], body
            )
        except (OSError, TimeoutError) as failed:
            answer = failed
        book.done("trivial POST", due, answer)

    try:
        await arrivals(book, tasks, 50, time.perf_counter() + 0.1, 1, post)  # warm up
        await asyncio.gather(*tasks)
        book = Book()
        procs = read_procs()
        served = CpuOf()
        served.start(procs, tree(procs, server.pid))
        mine = resource.getrusage(resource.RUSAGE_SELF)
        started = time.perf_counter()
        await arrivals(book, tasks, rate, started + 0.1, args.check_seconds, post)
        await asyncio.gather(*tasks)
        spent = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_SELF)
        procs = read_procs()
        served.see(procs, tree(procs, server.pid))
    finally:
        client.close()
        stop(server)
    kind = book.kind("trivial POST")
    cpu = (after.ru_utime + after.ru_stime) - (mine.ru_utime + mine.ru_stime)
    print(
        f"\nthe generator against a trivial app (bench/ceiling_app.py), {rate:,.0f} POSTs/s "
        f"for {args.check_seconds:g} s: {len(kind.times):,} sent, "
        f"{sum(kind.errors.values())} errors, p50 {ms(percentile(kind.times, 0.5))} ms, "
        f"p99 {ms(percentile(kind.times, 0.99))} ms; the generator's CPU "
        f"{100 * cpu / spent:.0f}% of a core ({1e6 * cpu / max(len(kind.times), 1):.0f} µs a "
        f"request), the trivial app's {100 * served.seconds / spent:.0f}%; sent late by "
        f"p50 {ms(percentile(book.lag, 0.5))} ms, p99 {ms(percentile(book.lag, 0.99))} ms"
    )


async def setup(
    args: argparse.Namespace, city: dict[str, Any], data: CityData, port: int, book: Book
) -> Load:
    clients = {
        name: Client(port, limit=args.max_connections, timeout=args.timeout)
        for name in ("intake", "media", "console", "api", "public")
    }
    setup_client = Client(port, timeout=120)
    started = time.perf_counter()
    tokens = await mint_tokens(setup_client, city, data.riders)
    print(
        f"  {len(tokens)} rider tokens minted in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    password = city["password"]
    clerks = [Staffer(a["username"], a["area"]) for a in clerks_of(city, args.clerks)]
    districts = [Staffer(a["username"], a["area"]) for a in districts_of(city)]
    started = time.perf_counter()

    async def clerk_in(clerk: Staffer) -> None:
        await sign_in(setup_client, clerk, password)
        queue = await setup_client.request("GET", "/console/queue", clerk.headers())
        clerk.saw(queue, queue=True)

    async def district_in(district: Staffer) -> None:
        await sign_in(setup_client, district, password)
        await api_token(setup_client, district, password)

    await in_turns(clerks, clerk_in, 2)
    await in_turns(districts, district_in, 2)
    print(
        f"  {len(clerks)} clerks and {len(districts)} district users signed in "
        f"in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    listed = await setup_client.request("GET", "/open311/v2/requests.json")
    open311_ids = [r["service_request_id"] for r in orjson.loads(listed.body)][:200]
    index = await setup_client.request("GET", "/public/")
    public_refs = list(dict.fromkeys(PUBLIC_LINK.findall(index.text())))
    setup_client.close()
    rng = random.Random(args.seed)
    return Load(
        args,
        city,
        book,
        clients,
        tokens,
        report_bodies(data.points, rng),
        clerks,
        districts,
        photo_bytes(args.photo_px, args.seed),
        open311_ids,
        public_refs,
    )


async def city_day(args: argparse.Namespace, city: dict[str, Any], url: str) -> None:
    seconds = args.seconds
    reports = int(seconds * args.reports_per_s)
    riders = max(200, math.ceil(reports / args.reports_per_rider))
    print("the city …", file=sys.stderr)
    spots = max(1, math.ceil(reports / args.reports_per_spot))
    data = read_city(url, points=spots, riders=riders, seed=args.seed)
    clerk_count = len(clerks_of(city, args.clerks))
    rate = planned_rate(args, clerk_count, len(districts_of(city)), len(city["platforms"]))
    print(
        f"city: {make_url(url).database}, scale {city.get('scale')}: "
        f"{data.counts['tickets']:,} tickets ({data.counts['open']:,} open), "
        f"{data.counts['reports']:,} reports, {data.counts['riders']:,} riders\n"
        f"load for {seconds:g} s: {args.reports_per_s:g} reports/s ({args.photo_share:.0%} "
        f"with a {args.photo_px}-pixel photo uploaded first) from {riders:,} riders at "
        f"{spots:,} spots; "
        f"{clerk_count} clerks (a page every {args.clerk_page_every:g} s, an action every "
        f"{args.action_every:g} s); {len(districts_of(city))} dashboards and office stats "
        f"every {args.dashboard_every:g} s; {len(city['platforms'])} platforms' rider lists, "
        f"riders and summaries every {args.platform_every:g} s; Open311 "
        f"{args.open311_per_s:g}/s; public page {args.public_per_s:g}/s; about {rate:,.0f} "
        f"requests/s in all; API: {args.api_workers} uvicorn worker(s), log level "
        f"{args.log_level}"
    )
    if args.check_seconds > 0 or args.check_only:
        print("the generator against the trivial app …", file=sys.stderr)
        await check_generator(args, args.check_rate or rate)
    if args.check_only:
        return

    workdir = Path(tempfile.mkdtemp(prefix="sentinel-city-day-"))
    channel_port = free_port() if args.channels else None
    hooks = receivers_spec(city, workdir, channel_port)
    port = free_port()
    replica_dir = Path(f"/var/lib/postgresql/replica-{args.replica_port}")
    if args.replica:
        print("a streaming replica of the cluster (pg_basebackup) …", file=sys.stderr)
        made = time.monotonic()
        args.read_url = start_replica(replica_dir, args.replica_port, primary_url=url)
        print(f"  up in {time.monotonic() - made:.0f} s: {args.read_url}", file=sys.stderr)
    print("the API, the worker, the receivers …", file=sys.stderr)
    try:
        processes = start(args, url, port, workdir, worker=True, hooks=hooks)
    except BaseException:
        if args.replica:
            stop_replica(replica_dir, args.replica_port, primary_url=url)
        raise
    if args.replica:
        processes.replica = int((replica_dir / "postmaster.pid").read_text().split()[0])
    book = Book()
    admin = Client(port, timeout=120)
    channels: tuple[str, list[str]] | None = None
    notified: Notified | None = None
    try:
        deadline = time.monotonic() + 30
        while not (workdir / "receivers.ready").exists():
            if time.monotonic() > deadline or (
                processes.receivers is not None and processes.receivers.poll() is not None
            ):
                raise RuntimeError(f"the receivers did not start: {processes.logs}")
            await asyncio.sleep(0.1)
        print("signing in, minting tokens …", file=sys.stderr)
        load = await setup(args, city, data, port, book)
        if channel_port is not None:
            channels = await make_channels(admin, city, channel_port)
        sampler = Sampler(url, processes, book)
        sampler.replica_url = args.read_url
        await sampler.begin()
        loop = asyncio.get_running_loop()
        start_at = time.perf_counter() + 0.5
        wall_start = time.time() + 0.5
        ended = asyncio.Event()
        sampling = loop.create_task(sampler.every(args.sample_every, ended))
        print(f"the load, {seconds:g} s …", file=sys.stderr)
        spy = profiler(processes.api.pid, seconds, workdir) if args.profile else None
        await asyncio.gather(
            *(
                arrivals(book, load.tasks, per_s, start_at, seconds, fire)
                for _, per_s, fire in load.streams()
            )
        )
        await asyncio.sleep(max(0.0, start_at + seconds - time.perf_counter()))
        wall_end = time.time()
        if load.tasks:
            await asyncio.wait(list(load.tasks), timeout=args.timeout + 5)
        ended.set()
        await sampling
        if spy is not None:
            spy.wait(timeout=120)
        spent = time.perf_counter() - start_at
        machine = sampler.finish()
        load_cpu = {name: cpu.seconds for name, cpu in sampler.cpu.items()}
        drain_started = time.perf_counter()
        # The worker delivers what is left: until nothing is pending, or --drain; with
        # channels, not before the worker has told them of the load's last events (it
        # tells of an event once it is SETTLE old).
        print("the worker drains …", file=sys.stderr)
        now = time.perf_counter()
        at_least = now + (SETTLE.total_seconds() + 15 if channels is not None else 0)
        drained_by = max(now + args.drain, at_least)
        while time.perf_counter() < drained_by:
            latest = sampler.samples[-1] if sampler.samples else None
            if (
                latest
                and latest.pending_events == 0
                and latest.pending_notifications == 0
                and time.perf_counter() >= at_least
            ):
                break
            await asyncio.sleep(min(args.sample_every, max(0.0, drained_by - time.perf_counter())))
            await sampler.sample()
        drain = (
            time.perf_counter() - drain_started,
            {name: cpu.seconds - load_cpu[name] for name, cpu in sampler.cpu.items()},
        )
        for client in load.clients.values():
            client.close()
        stored = stored_since(url, wall_start)
        if channels is not None:
            notified = notifications(url, channels[1], wall_start)
    finally:
        if channels is not None:
            await remove_channels(admin, *channels)
        admin.close()
        if processes.receivers is not None:
            processes.receivers.terminate()
            processes.receivers.wait(timeout=30)
        processes.stop()
        if args.replica:
            stop_replica(replica_dir, args.replica_port, primary_url=url)
    received = []
    if (workdir / "webhooks.json").exists():
        received = orjson.loads((workdir / "webhooks.json").read_bytes())
    report(args, book, load, sampler, received, (wall_start, wall_end), stored)
    cpu_table(sampler, load_cpu, spent, machine, drain)
    if args.profile and (workdir / "profile.txt").exists():
        print(
            "\nprofile of the API during the load (py-spy, samples holding the GIL):\n\n"
            + profile_summary(workdir / "profile.txt", top=40)
        )
    if notified is not None:
        messages = sum(1 for r in received if r[0] == "channels")
        print(notified.said(messages))
    problems = [
        line
        for name in ("api.log", "worker.log", "receivers.log")
        for line in (processes.logs / name).read_text(errors="replace").splitlines()
        if "ERROR" in line or "Traceback" in line
    ]
    if problems:
        print(f"\nthe processes' logs ({processes.logs}) say, among others:")
        print("\n".join(f"  {line[:300]}" for line in problems[:10]))
    else:
        shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Notified:
    """The district channels' ``ticket.new`` notifications of the tickets the load made."""

    channels: int
    tickets: int  # made during the load (and its last answers)
    states: dict[str, int]
    delays: list[float]  # s, from a ticket's creation to its message sent

    def said(self, messages: int) -> str:
        told = sum(self.states.values())
        return (
            f"\nnotifications: {self.channels} district channels (webhook channels made for "
            f"the run, then removed), {messages:,} messages at their receiver; of the "
            f"{self.tickets:,} tickets the load made, {told:,} ticket.new notifications ("
            + ", ".join(f"{state} {n:,}" for state, n in sorted(self.states.items()))
            + f"; merged: sent within another's message), {self.tickets - told:,} not yet "
            f"written; sent after the ticket's creation: p50 {percentile(self.delays, 0.5):.1f} "
            f"s, p99 {percentile(self.delays, 0.99):.1f} s, at worst "
            f"{max(self.delays, default=math.nan):.1f} s (the worker tells of an event once it "
            f"is {SETTLE.total_seconds():.0f} s old)"
        )


def notifications(url: str, codes: list[str], since: float) -> Notified:
    new = (
        "FROM notifications n JOIN channels c ON c.id = n.channel_id JOIN tickets t ON t.id = "
        "n.ticket_id WHERE c.code = ANY(%s) AND n.event = 'ticket.new' AND t.created_at >= "
        "to_timestamp(%s)"
    )
    with psycopg.connect(libpq(url)) as connection:
        tickets = connection.execute(
            "SELECT count(*) FROM tickets WHERE created_at >= to_timestamp(%s)", (since,)
        ).fetchone()
        states = connection.execute(
            f"SELECT n.state, count(*) {new} GROUP BY 1", (codes, since)
        ).fetchall()
        delays = connection.execute(
            f"SELECT extract(epoch FROM n.sent_at - t.created_at) {new} AND n.sent_at IS NOT NULL",
            (codes, since),
        ).fetchall()
    assert tickets is not None
    return Notified(len(codes), tickets[0], dict(states), [float(d) for (d,) in delays])


def profiler(pid: int, seconds: float, workdir: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling ``pid`` (and its children) for ``seconds``, into profile.txt."""
    spy = shutil.which("py-spy", path=str(BIN)) or shutil.which("py-spy")
    if spy is None:
        sys.exit("--profile samples the API with py-spy: pip install -e .[bench]")
    return subprocess.Popen(
        [
            spy, "record", "--pid", str(pid), "--duration", str(math.ceil(seconds)),
            "--format", "raw", "--rate", "100", "--gil", "--nonblocking", "--subprocesses",
            "-o", str(workdir / "profile.txt"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip


def stored_since(url: str, since: float) -> tuple[int, int, int, list[tuple[str, int]]]:
    """The reports stored since ``since``; the webhook deliveries tried since, those that
    the receiver took, and why the others failed."""
    with psycopg.connect(libpq(url)) as connection:
        row = connection.execute(
            "SELECT count(*) FROM reports WHERE received_at >= to_timestamp(%s)", (since,)
        ).fetchone()
        tried = connection.execute(
            "SELECT count(*), count(*) FILTER (WHERE status_code BETWEEN 200 AND 299) "
            "FROM webhook_deliveries WHERE attempted_at >= to_timestamp(%s)",
            (since,),
        ).fetchone()
        why = connection.execute(
            "SELECT coalesce(error, 'HTTP ' || status_code), count(*) FROM webhook_deliveries "
            "WHERE attempted_at >= to_timestamp(%s) AND status_code IS DISTINCT FROM 200 "
            "AND NOT coalesce(status_code BETWEEN 200 AND 299, false) GROUP BY 1 "
            "ORDER BY 2 DESC LIMIT 5",
            (since,),
        ).fetchall()
    assert row is not None and tried is not None
    return int(row[0]), int(tried[0]), int(tried[1]), [(str(w), int(n)) for w, n in why]


def report(
    args: argparse.Namespace,
    book: Book,
    load: Load,
    sampler: Sampler,
    received: list[list[Any]],
    window: tuple[float, float],
    stored: tuple[int, int, int, list[tuple[str, int]]],
) -> None:
    seconds = args.seconds
    kinds_table(book, seconds, f"requests during the {seconds:g} s of the load")
    intake = book.kinds.get("intake: POST /v1/reports", Kind(""))
    offered = int(seconds * args.reports_per_s)
    print(
        f"\nintake: {intake.statuses[201]:,} of {offered:,} reports answered 201, "
        f"{intake.statuses[201] / seconds:.1f}/s of {args.reports_per_s:g} planned; "
        f"stored since the start: {stored[0]:,}; "
        + ", ".join(f"{k} {n:,}" for k, n in load.outcomes.most_common())
    )
    print(
        "clerks' actions: "
        + (", ".join(f"{k} {n}" for k, n in load.actions.most_common()) or "none")
    )
    print(
        f"the generator sent late by p50 {ms(percentile(book.lag, 0.5))} ms, "
        f"p99 {ms(percentile(book.lag, 0.99))} ms, at worst {ms(max(book.lag, default=0))} ms"
    )
    webhooks_table([p["code"] for p in load.city["platforms"]], received, *window)
    tried, taken, why = stored[1:]
    print(
        f"webhook deliveries tried since the start (the worker's record): {tried:,}, "
        f"{taken:,} taken by the receiver" + "".join(f"; {what}: {n:,}" for what, n in why)
    )
    backlog_table(sampler.samples, ["API", "worker", "PostgreSQL, all", "generator (this)"])
    if sampler.replica_url is not None:
        replica_table(sampler.lags)


def replica_table(lags: list[ReplicaLag]) -> None:
    """The replica's lag over the run, as the primary measured it at each sample."""
    replay = [lag.replay_lag_s for lag in lags if lag.replay_lag_s is not None]
    behind = [lag.behind_bytes for lag in lags if lag.behind_bytes is not None]
    states = Counter(lag.state or "not connected" for lag in lags)
    print(
        f"\nthe read replica ({len(lags)} samples; "
        + ", ".join(f"{state}: {n}" for state, n in states.items())
        + "): replay lag "
        + (
            f"p50 {ms(percentile(replay, 0.5) * 1000)} ms, "
            f"p99 {ms(percentile(replay, 0.99) * 1000)} ms, at worst {ms(max(replay) * 1000)} ms"
            if replay
            else "not measured (nothing to replay)"
        )
        + f"; WAL not yet replayed at worst {max(behind, default=0):,} bytes"
    )


def cpu_table(
    sampler: Sampler,
    load_cpu: dict[str, float],
    spent: float,
    machine: tuple[float, float, float],
    drain: tuple[float, dict[str, float]],
) -> None:
    drained, drain_cpu = drain
    rows = [
        f"| {name} | {cpu:,.1f} | {100 * cpu / spent:.0f} | "
        f"{sampler.rss_start.get(name, 0):,.0f} | {sampler.rss_end.get(name, 0):,.0f} | "
        f"{100 * drain_cpu[name] / max(drained, 1e-9):.0f} |"
        for name, cpu in load_cpu.items()
    ]
    busy, total, steal = machine
    cores = os.cpu_count() or 1
    rows.append(f"| the machine ({cores} cores) | {busy:,.1f} | {100 * busy / spent:.0f} | | | |")
    table(
        f"CPU during the {spent:.0f} s of the load (and its last answers); memory (RSS; "
        f"PostgreSQL: PSS) at its start and its end; CPU in the {drained:.0f} s of the drain",
        ["process", "CPU s", "% of a core", "MB at the start", "MB at the end", "drain %"],
        rows,
        numbers=5,
    )
    print(
        f"\nthe machine was busy {100 * busy / max(total, 1e-9):.0f}% of its {cores} cores' "
        f"time (stolen: {100 * steal / max(total, 1e-9):.1f}%); PostgreSQL's figures include "
        "every database of the server"
    )


async def alone(args: argparse.Namespace, city: dict[str, Any], url: str) -> None:
    """Each page with nothing else running: ``--repeat`` sequential requests."""
    workdir = Path(tempfile.mkdtemp(prefix="sentinel-city-alone-"))
    port = free_port()
    processes = start(args, url, port, workdir, worker=False, hooks=workdir / "none")
    try:
        client = Client(port, timeout=300)
        password = city["password"]
        officer = Staffer(**{k: clerks_of(city, 1)[0][k] for k in ("username", "area")})
        busiest = max(
            city["districts"],
            key=lambda d: sum(
                s["open_tickets"] for s in city["streets"] if s["district"] == d["code"]
            ),
        )["code"]
        district = next(
            Staffer(a["username"], a["area"]) for a in districts_of(city) if a["area"] == busiest
        )
        for staffer in (officer, district):
            await sign_in(client, staffer, password)
        await api_token(client, district, password)
        district.saw(await client.request("GET", "/console/queue", district.headers()), queue=True)
        platform = city["platforms"][0]
        key = [("Authorization", f"Bearer {platform['api_key']}")]
        rider = next(
            r["rider_id"] for r in city["busiest_riders"] if r["platform"] == platform["code"]
        )
        since = (datetime.now(UTC) - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        bearer = [("Authorization", f"Bearer {district.token}")]
        tickets = district.tickets or ["none"]
        streets = f"/v1/office/stats/streets?from={since}"
        console, office, n = district.headers(), bearer, len(tickets)
        riders, open311_list = "/v1/platform/riders/stats?limit=50", "/open311/v2/requests.json"
        one = f"/v1/platform/riders/{quote(rider)}/stats"
        pages: list[tuple[str, Callable[[int], str], list[tuple[str, str]]]] = [
            ("the district's queue (console)", lambda i: "/console/queue", console),
            ("a street's queue (console)", lambda i: "/console/queue", officer.headers()),
            ("a ticket page (console)", lambda i: f"/console/tickets/{tickets[i % n]}", console),
            ("the dashboard (console, district)", lambda i: "/console/dashboard", console),
            ("the street table (/v1/office/stats/streets)", lambda i: streets, office),
            ("office stats (/v1/office/stats)", lambda i: f"/v1/office/stats?from={since}", office),
            ("platform rider stats (/v1/platform/riders/stats)", lambda i: riders, key),
            ("a rider's stats (/v1/platform/riders/…/stats)", lambda i: one, key),
            ("platform summary (/v1/platform/summary)", lambda i: "/v1/platform/summary", key),
            ("Open311 requests (/open311/v2/requests.json)", lambda i: open311_list, []),
            ("the public page (/public/)", lambda i: "/public/", []),
        ]
        rows = []
        for name, path_of, headers in pages:
            times, statuses, size = [], Counter[int](), 0
            for i in range(args.warm + args.repeat):
                path = path_of(i)
                started = time.perf_counter()
                answer = await client.request("GET", path, headers)
                if i >= args.warm:
                    times.append((time.perf_counter() - started) * 1000)
                    statuses[answer.status] += 1
                    size = len(answer.body)
            print(f"  {name}: {ms(percentile(times, 0.5))} ms", file=sys.stderr)
            other = ", ".join(f"{s}: {n}" for s, n in statuses.items() if s != 200)
            rows.append(
                f"| {name} | {ms(percentile(times, 0.5))} | {ms(percentile(times, 0.99))} | "
                f"{ms(max(times))} | {size / 1024:,.0f} | {other} |"
            )
        client.close()
    finally:
        processes.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    table(
        f"each page alone (nothing else running), {args.repeat} sequential requests after "
        f"{args.warm} to warm up; {officer.username} and {district.username} "
        f"(the busiest district's)",
        ["page", "p50 ms", "p99 ms", "max ms", "KiB", "not 200"],
        rows,
        numbers=5,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--city", type=Path, default=CITY_JSON, help="bench/city.py's --out")
    parser.add_argument("--pg-url", help="the city's database (default: the one --city names)")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument("--reports-per-s", type=float, default=300)
    parser.add_argument("--photo-share", type=float, default=0.1, help="of reports, with a photo")
    parser.add_argument("--photo-px", type=int, default=1280, help="the photos' width (4:3)")
    parser.add_argument(
        "--reports-per-rider",
        type=int,
        default=40,
        help="in the run at most (the app allows a rider 60 an hour)",
    )
    parser.add_argument(
        "--reports-per-spot",
        type=float,
        default=3,
        help="reports of the run at each spot (near a ticket of the city), a few metres apart",
    )
    parser.add_argument("--clerks", type=int, default=100)
    parser.add_argument("--clerk-page-every", type=float, default=10, help="seconds, each clerk")
    parser.add_argument("--action-every", type=float, default=60, help="seconds, each clerk")
    parser.add_argument("--dashboard-every", type=float, default=30, help="seconds, each district")
    parser.add_argument("--platform-every", type=float, default=2, help="seconds, each platform")
    parser.add_argument("--open311-per-s", type=float, default=5)
    parser.add_argument("--public-per-s", type=float, default=5)
    parser.add_argument(
        "--channels",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="a webhook channel for each district during the run (notifications)",
    )
    parser.add_argument(
        "--media-dir",
        type=Path,
        default=Path("test-artifacts/city-media"),
        help="the photos the runs upload (kept: the city's reports name them)",
    )
    parser.add_argument("--api-workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--replica",
        action="store_true",
        help="make a streaming replica of the cluster (bench/replica.py) for the run and send "
        "the reads that may lag there (SENTINEL_READ_DATABASE_URL); removed after",
    )
    parser.add_argument("--replica-port", type=int, default=5433)
    parser.add_argument("--read-url", help="SENTINEL_READ_DATABASE_URL of an existing replica")
    parser.add_argument("--log-level", default="WARNING", help="of the API and the worker")
    parser.add_argument("--sample-every", type=float, default=5, help="seconds")
    parser.add_argument("--drain", type=float, default=30, help="seconds at most, after the load")
    parser.add_argument("--timeout", type=float, default=30, help="of a request, seconds")
    parser.add_argument("--max-connections", type=int, default=1000, help="of each kind")
    parser.add_argument(
        "--check-seconds", type=float, default=10, help="the generator's check; 0: none"
    )
    parser.add_argument(
        "--check-rate", type=float, help="requests/s of the check (default: the run's whole rate)"
    )
    parser.add_argument("--check-only", action="store_true", help="the generator's check alone")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the API with py-spy during the load and print where its time goes",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--alone", action="store_true", help="each page alone, no load")
    parser.add_argument("--repeat", type=int, default=30, help="with --alone")
    parser.add_argument("--warm", type=int, default=3, help="with --alone: first, not timed")
    parser.add_argument("--serve-receivers", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_receivers:
        serve_receivers(args.serve_receivers)
        return
    if not args.city.exists():
        sys.exit(f"{args.city} is missing: build the city first (bench/city.py --out {args.city})")
    city = json.loads(args.city.read_text())
    url = args.pg_url or city["database_url"]
    uvloop.run(alone(args, city, url) if args.alone else city_day(args, city, url))


if __name__ == "__main__":
    main()

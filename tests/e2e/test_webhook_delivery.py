"""Webhooks delivered by the worker to a real HTTP receiver on 127.0.0.1.

The worker's job is driven directly with a moved clock: backoff is stepped over, never
waited for. The receiver records every request and can be told to fail or to hang.
"""

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.models import OutboxEvent, WebhookDelivery, utcnow
from app.ops.worker import JOBS
from app.platforms import outbox
from app.platforms.webhooks import GIVE_UP_AFTER, RETRY_BASE, RETRY_CAP
from tests.conftest import Auth
from tests.helpers import emit_event, fake_dns

DELIVER = next(j for j in JOBS if j.name == "deliver_webhooks")
REPORT_ID, TICKET_ID = str(uuid.uuid4()), str(uuid.uuid4())
REPORT_UPDATED = {
    "report_id": REPORT_ID,
    "rider_id": "mt-rider-7",
    "ticket": {
        "id": TICKET_ID,
        "ref": "7KQ2-M9XD-3HPA",
        "status": "accepted",
        "previous_status": "new",
    },
    "event": "accept",
}
POINTS_AWARDED = {
    "rider_id": "mt-rider-7",
    "report_id": REPORT_ID,
    "ticket_id": TICKET_ID,
    "reason": "opened_accepted",
    "points": 10,
    "total_points": 130,
}


def verify(secret: str, body: bytes, header: str, tolerance_s: int = 300) -> bool:
    """The check of docs/webhooks.md, as a platform engineer would write it."""
    parts = dict(item.split("=", 1) for item in header.split(",") if "=" in item)
    timestamp, received = parts.get("t", ""), parts.get("v1", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_s:
        return False
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(expected, received)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    status: int

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """Answers 500 to the first ``failures`` requests and 204 after; while ``hold`` is
    clear, keeps each request waiting (up to 30 s) before answering."""

    url: str = ""
    failures: int = 0
    requests: list[Received] = field(default_factory=list)
    arrived: threading.Event = field(default_factory=threading.Event)
    hold: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.hold.set()

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self.lock:
            status = 500 if self.failures > 0 else 204
            self.failures -= 1
            self.requests.append(Received(path, headers, body, status))
        self.arrived.set()
        self.hold.wait(30)
        return status

    def ids(self, status: int | None = None) -> list[str]:
        return [r.event["id"] for r in self.requests if status in (None, r.status)]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status = state.answer(self.path, dict(self.headers), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 64  # two workers' senders at once, never turned away

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield state
    state.hold.set()
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The receiver is on 127.0.0.1."""
    return settings.model_copy(update={"allow_private_webhooks": True})


def set_hook(http: httpx.Client, auth: Auth, platform: str, url: str) -> str:
    response = http.put("/v1/platform/webhook", headers=auth.platform(platform), json={"url": url})
    assert response.status_code == 200, response.text
    return str(response.json()["secret"])


def outbox_event(database: Database, event_id: uuid.UUID | None) -> OutboxEvent:
    with database.session(write=False) as session:
        event = session.get(OutboxEvent, event_id)
        assert event is not None
        return event


def deliveries(http: httpx.Client, auth: Auth, platform: str) -> list[dict[str, Any]]:
    response = http.get(
        "/v1/platform/webhook/deliveries", headers=auth.platform(platform), params={"limit": 200}
    )
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def test_events_arrive_signed_and_once(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    secret = set_hook(http, auth, "meituan", f"{receiver.url}/hooks/sentinel")
    now = utcnow()
    updated = emit_event(database, "meituan", now=now, data=REPORT_UPDATED)
    awarded = emit_event(
        database, "meituan", now=now, type=outbox.EventType.POINTS_AWARDED, data=POINTS_AWARDED
    )

    assert DELIVER.run(database, settings, now=now) == 2

    assert sorted(receiver.ids()) == sorted([str(updated), str(awarded)])
    for request in receiver.requests:
        assert request.path == "/hooks/sentinel"
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["User-Agent"].startswith("FlowingSentinel-Webhooks/")
        assert request.headers["X-Sentinel-Event-Id"] == request.event["id"]
        signature = request.headers["X-Sentinel-Signature"]
        assert verify(secret, request.body, signature)
        assert not verify(secret, request.body.replace(b'"data":{', b'"data":{"x":1,'), signature)
        assert not verify("whsec_another", request.body, signature)
        assert not verify(secret, request.body, signature, tolerance_s=-1)
        assert set(request.event) == {"id", "type", "created_at", "data"}
        assert datetime.fromisoformat(request.event["created_at"]) == now
    by_type = {r.event["type"]: r.event["data"] for r in receiver.requests}
    assert by_type == {"report.updated": REPORT_UPDATED, "points.awarded": POINTS_AWARDED}
    assert outbox_event(database, updated).state == "delivered"

    # Delivered is done: later rounds send nothing again.
    for later in (timedelta(minutes=11), timedelta(hours=2), timedelta(hours=30)):
        assert DELIVER.run(database, settings, now=now + later) == 0
    assert len(receiver.requests) == 2
    listed = deliveries(http, auth, "meituan")
    assert sorted(
        (d["event_id"], d["attempt"], d["status_code"], d["error"]) for d in listed
    ) == sorted((i, 1, 204, None) for i in (str(updated), str(awarded)))


def test_a_failing_receiver_gets_the_same_event_again_later_and_later(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    secret = set_hook(http, auth, "meituan", receiver.url)
    receiver.failures = 4
    event_id = emit_event(database, "meituan", now=utcnow(), data=REPORT_UPDATED)
    due = outbox_event(database, event_id).next_attempt_at
    delays = []
    for attempt in range(1, 6):
        assert DELIVER.run(database, settings, now=due - timedelta(seconds=1)) == 0  # not yet
        assert DELIVER.run(database, settings, now=due) == 1
        event = outbox_event(database, event_id)
        assert event.attempts == attempt
        if attempt < 5:
            assert event.state == "pending"
            delays.append((event.next_attempt_at - due).total_seconds())
            due = event.next_attempt_at
    assert event.state == "delivered" and event.delivered_at == due

    # Exponential, with at most half of each wait left to chance.
    for attempt, delay in enumerate(delays, start=1):
        ceiling = RETRY_BASE.total_seconds() * 2 ** (attempt - 1)
        assert ceiling / 2 <= delay <= ceiling, (attempt, delays)
    assert delays == sorted(delays)

    # At least once, never more after it got through: one id, one success.
    assert receiver.ids() == [str(event_id)] * 5
    assert receiver.ids(204) == [str(event_id)]
    assert all(verify(secret, r.body, r.headers["X-Sentinel-Signature"]) for r in receiver.requests)
    assert DELIVER.run(database, settings, now=due + timedelta(hours=1)) == 0
    listed = deliveries(http, auth, "meituan")
    assert [(d["attempt"], d["status_code"]) for d in listed] == [
        (5, 204),
        (4, 500),
        (3, 500),
        (2, 500),
        (1, 500),
    ]
    assert all(d["event_id"] == str(event_id) and d["type"] == "report.updated" for d in listed)


def test_delivery_gives_up_24_hours_after_the_event(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    set_hook(http, auth, "meituan", receiver.url)
    receiver.failures = 10**6
    created = utcnow()
    event_id = emit_event(
        database, "meituan", now=created, data=POINTS_AWARDED, type=outbox.EventType.POINTS_AWARDED
    )
    attempts_at = []
    event = outbox_event(database, event_id)
    while event.state == "pending":
        assert len(attempts_at) < 100
        attempts_at.append(event.next_attempt_at)
        assert DELIVER.run(database, settings, now=event.next_attempt_at) == 1
        event = outbox_event(database, event_id)

    assert event.state == "failed" and event.delivered_at is None
    assert attempts_at[-1] <= created + GIVE_UP_AFTER
    # It kept trying to the end: the next wait (at most the cap) would have passed 24 h.
    assert attempts_at[-1] > created + GIVE_UP_AFTER - RETRY_CAP
    gaps = [b - a for a, b in pairwise(attempts_at)]
    assert max(gaps) <= RETRY_CAP and min(gaps[-5:]) >= RETRY_CAP / 2
    assert len(receiver.requests) == len(attempts_at) == event.attempts
    assert DELIVER.run(database, settings, now=created + timedelta(days=3)) == 0
    assert len(receiver.requests) == len(attempts_at)
    with database.session(write=False) as session:
        assert (
            session.scalar(
                select(WebhookDelivery.attempt).order_by(WebhookDelivery.attempt.desc()).limit(1)
            )
            == event.attempts
        )


def test_a_hanging_receiver_times_out_in_the_worker_while_the_api_answers(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    set_hook(http, auth, "meituan", receiver.url)
    event_id = emit_event(database, "meituan", now=utcnow(), data=REPORT_UPDATED)
    receiver.hold.clear()
    patient = settings.model_copy(update={"webhook_timeout_s": 2.0})
    worker = threading.Thread(
        target=DELIVER.run, args=(database, patient), kwargs={"now": utcnow()}
    )
    worker.start()
    try:
        assert receiver.arrived.wait(10)
        # The delivery hangs; the API (a write, too) does not wait for it.
        token = http.post(
            "/v1/platform/rider-tokens",
            headers=auth.platform("meituan"),
            json={"rider_id": "while-hanging"},
        )
        listed = deliveries(http, auth, "meituan")
        assert worker.is_alive()
        assert token.status_code == 201 and listed == []
        worker.join(10)
        assert not worker.is_alive()
    finally:
        receiver.hold.set()
    [attempt] = deliveries(http, auth, "meituan")
    assert attempt["status_code"] is None and attempt["error"] == "timeout after 2 s"
    assert 1900 <= attempt["duration_ms"] < 10_000
    event = outbox_event(database, event_id)
    assert event.state == "pending" and event.attempts == 1


def test_two_workers_at_once_send_each_event_once(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    set_hook(http, auth, "meituan", receiver.url)
    now = utcnow()
    ids = {str(emit_event(database, "meituan", now=now, data={"n": n})) for n in range(150)}
    workers = [Database(settings.database_url, pool_size=2) for _ in range(2)]
    start = threading.Barrier(2)
    sent: list[int] = []

    def run(own: Database) -> None:
        start.wait()
        sent.append(DELIVER.run(own, settings, now=now))

    threads = [threading.Thread(target=run, args=(own,)) for own in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for own in workers:
        own.dispose()

    assert sorted(sent) == [50, 100]  # one batch each, nothing claimed twice
    assert Counter(receiver.ids()) == dict.fromkeys(ids, 1)
    with database.session(write=False) as session:
        assert set(session.scalars(select(OutboxEvent.state))) == {"delivered"}


def test_events_of_a_removed_webhook_are_dropped_unsent(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    set_hook(http, auth, "meituan", receiver.url)
    event_id = emit_event(database, "meituan", now=utcnow(), data=REPORT_UPDATED)
    assert http.delete("/v1/platform/webhook", headers=auth.platform("meituan")).status_code == 204
    assert emit_event(database, "meituan", now=utcnow(), data=REPORT_UPDATED) is None

    assert DELIVER.run(database, settings, now=utcnow()) == 0

    assert outbox_event(database, event_id).state == "failed"
    assert receiver.requests == [] and deliveries(http, auth, "meituan") == []


def test_each_delivery_goes_to_an_address_checked_at_that_moment(
    http: httpx.Client,
    auth: Auth,
    database: Database,
    settings: Settings,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port = receiver.url.rsplit(":", 1)[1]
    dns = {"hooks.meituan.example": ["::1", "127.0.0.1"]}  # nothing listens on ::1
    fake_dns(monkeypatch, dns)
    set_hook(http, auth, "meituan", f"http://hooks.meituan.example:{port}/in")
    first = emit_event(database, "meituan", now=utcnow(), data=REPORT_UPDATED)

    assert DELIVER.run(database, settings, now=utcnow()) == 1
    [request] = receiver.requests
    assert request.event["id"] == str(first)
    assert request.headers["Host"] == f"hooks.meituan.example:{port}"

    # The name now answers with a loopback address only, where it answered with a public
    # one when the URL was set (DNS rebinding): with private addresses refused, nothing
    # is sent, and the attempt says why.
    dns["hooks.meituan.example"] = ["127.0.0.1"]
    second = emit_event(database, "meituan", now=utcnow(), data=REPORT_UPDATED)
    strict = settings.model_copy(update={"allow_private_webhooks": False})
    assert DELIVER.run(database, strict, now=utcnow()) == 1
    assert len(receiver.requests) == 1
    latest = deliveries(http, auth, "meituan")[0]
    assert latest["event_id"] == str(second) and latest["status_code"] is None
    assert latest["error"] == (
        "refused: hooks.meituan.example resolves to 127.0.0.1, which is not a public address"
    )
    assert outbox_event(database, second).state == "pending"


def test_a_triage_action_reaches_the_riders_platform(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    """End to end: a rider reports, the street office accepts, and the worker tells the
    rider's platform (and only it) — signed, with the points and the new status."""
    secret = set_hook(http, auth, "meituan", receiver.url)
    set_hook(http, auth, "eleme", receiver.url + "/eleme")
    rider = auth.rider("meituan", "mt-rider-e2e")
    report = http.post(
        "/v1/reports",
        headers=rider,
        json={"category": "waste", "lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"},
    )
    assert report.status_code == 201, report.text
    ticket = report.json()["ticket"]["id"]
    accepted = http.post(
        f"/v1/office/tickets/{ticket}/actions",
        headers=auth.staff("changning"),
        json={"action": "accept"},
    )
    assert accepted.status_code == 200, accepted.text

    assert DELIVER.run(database, settings, now=utcnow()) == 2
    assert all(verify(secret, r.body, r.headers["X-Sentinel-Signature"]) for r in receiver.requests)
    assert {r.path for r in receiver.requests} == {"/"}  # nothing for Ele.me
    events = {r.event["type"]: r.event["data"] for r in receiver.requests}
    assert events["report.updated"]["ticket"]["status"] == "accepted"
    assert events["report.updated"]["report_id"] == report.json()["id"]
    assert events["points.awarded"] == {
        "rider_id": "mt-rider-e2e",
        "report_id": report.json()["id"],
        "ticket_id": ticket,
        "reason": "opened_accepted",
        "points": 10,
        "total_points": 10,
    }


def test_history_is_forgotten_a_week_after_delivery(
    http: httpx.Client, auth: Auth, database: Database, settings: Settings, receiver: Receiver
) -> None:
    purge = next(j for j in JOBS if j.name == "purge_webhook_history")
    set_hook(http, auth, "meituan", receiver.url)
    now = utcnow()
    delivered = emit_event(database, "meituan", now=now, data=REPORT_UPDATED)
    assert DELIVER.run(database, settings, now=now) == 1
    receiver.failures = 100
    pending = emit_event(database, "meituan", now=now, data=REPORT_UPDATED)
    assert DELIVER.run(database, settings, now=now) == 1  # failed once, to be retried
    assert purge.run(database, settings, now=now + timedelta(days=6)) == 0
    assert purge.run(database, settings, now=now + timedelta(days=8)) == 1
    with database.session(write=False) as session:
        assert session.get(OutboxEvent, delivered) is None
        assert session.get(OutboxEvent, pending) is not None
        assert {d.event_id for d in session.scalars(select(WebhookDelivery))} == {pending}

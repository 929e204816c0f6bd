"""Assertions and helpers shared by the tests."""

import http.client
import socket
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.db import Database, begin_writes
from app.models import Platform, WorkingCalendarYear
from app.platforms import outbox
from app.tickets.calendar import seed_calendar
from tests.conftest import Auth

# The demo's ten streets of Changning, by official code.
DEMO_STREETS = (
    "310105001",
    "310105002",
    "310105004",
    "310105005",
    "310105006",
    "310105008",
    "310105009",
    "310105010",
    "310105011",
    "310105102",
)


def assert_problem(response: Response, status: int, code: str) -> dict[str, Any]:
    """``response`` is an RFC 9457 problem with this status and stable ``code``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] and body["title"] and body["detail"]
    return body


def window_around_now(days: int = 90) -> str:
    """``from=…&to=…``: the ``days`` either side of now, for statistics over what a test
    has just stored, whatever the date it runs on."""
    now = datetime.now(UTC).replace(microsecond=0)
    start, end = (now - timedelta(days=days)).isoformat(), (now + timedelta(days=days)).isoformat()
    return f"from={start.replace('+00:00', 'Z')}&to={end.replace('+00:00', 'Z')}"


def calendar_holding(database: Database, *years: int) -> None:
    """The working calendar holds ``years`` as the chinesecalendar package has them, and no
    other year: a test of a calendar names the years it tests, not those of today's date."""
    with database.transaction() as session:
        begin_writes(session)
        session.execute(delete(WorkingCalendarYear))
        for year in years:
            assert year in seed_calendar(session, date(year, 1, 1)), f"chinesecalendar lacks {year}"
        session.execute(delete(WorkingCalendarYear).where(WorkingCalendarYear.year.not_in(years)))


def fake_dns(monkeypatch: pytest.MonkeyPatch, names: dict[str, list[str]]) -> None:
    """Resolve each of ``names`` to its addresses (none: it does not resolve), without
    the network; every other name resolves as usual. The test may change ``names`` later."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in names:
            return real(host, port, *args, **kwargs)
        if not names[host]:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in names[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def emit_event(
    database: Database,
    platform: str,
    *,
    now: datetime,
    data: dict[str, Any],
    type: outbox.EventType = outbox.EventType.REPORT_UPDATED,
) -> uuid.UUID | None:
    """Queue an event for ``platform`` as the triage and points code does, in a transaction
    of its own; its id, or None if the platform has no webhook."""
    with database.transaction() as session:
        platform_id = session.scalar(select(Platform.id).where(Platform.code == platform))
        assert platform_id is not None
        event = outbox.emit(session, platform_id=platform_id, type=type, data=data, now=now)
        return None if event is None else event.id


def plan_of_sql(
    session: Session, database: Database, sql: str, params: Any, *, off: Sequence[str] = ()
) -> str:
    """The plan of ``sql`` in ``session``'s transaction, one line per node joined by " | ".
    On PostgreSQL the planner's choices named in ``off`` (``seqscan``, ``sort``,
    ``bitmapscan`` …) are turned off for the transaction: the test tables are small, where
    those would rightly win, and the test asks which index serves a large table."""
    connection = session.connection()
    if database.is_sqlite:
        return " | ".join(
            str(row[-1]) for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
        )
    for choice in off:
        connection.exec_driver_sql(f"SET LOCAL enable_{choice} = off")
    return " | ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}", params))


def plan_of_query(session: Session, database: Database, query: Any) -> str:
    """``plan_of_sql`` of a statement, its parameters as the driver gets them (through
    each column type's own conversion: a UUID, a time), with sequential scans, sorts and
    bitmap scans off: which index serves it on a large table."""
    compiled = query.compile(
        dialect=session.get_bind().dialect, compile_kwargs={"render_postcompile": True}
    )
    convert = compiled._bind_processors
    values = {k: convert[k](v) if k in convert else v for k, v in compiled.params.items()}
    params: Any = (
        tuple(values[k] for k in compiled.positiontup or ()) if database.is_sqlite else values
    )
    return plan_of_sql(
        session, database, str(compiled), params, off=("seqscan", "sort", "bitmapscan")
    )


def act(client: Any, staff: dict[str, str], ticket_id: str, *actions: dict[str, Any]) -> None:
    """Apply ``actions`` to the ticket, in order, as the staff member whose headers these
    are; each must succeed."""
    for action in actions:
        response = client.post(
            f"/v1/office/tickets/{ticket_id}/actions", headers=staff, json=action
        )
        assert response.status_code == 200, response.text


# Two points of the demo, in GCJ-02 as a rider's app has them, in two streets side by side.
JIANGSU = {"lat": 31.2200, "lon": 121.4330, "coord_sys": "gcj02"}  # street 310105002
HUAYANG = {"lat": 31.2220, "lon": 121.4245, "coord_sys": "gcj02"}  # street 310105001


def report_at(
    client: TestClient,
    rider: dict[str, str],
    where: dict[str, Any],
    *,
    north_m: float = 0,
    category: str = "other",
    description: str | None = None,
    media_ids: Sequence[str] = (),
) -> dict[str, Any]:
    """A rider's report ``north_m`` metres north of ``where``, through the API: its receipt."""
    body = {
        "category": category,
        **where,
        "lat": where["lat"] + north_m / 111_320,
        "description": description,
        "media_ids": list(media_ids),
    }
    response = client.post("/v1/reports", headers=rider, json=body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def forward_new_tickets(
    client: TestClient,
    auth: Auth,
    *,
    category: str,
    name: str,
    endpoint: str,
    api_key: str = "k",
) -> int:
    """As the admin, forward ``category``'s tickets to the Open311 endpoint of the
    department's system ``name`` as soon as they are reported: the rule's id."""
    response = client.post(
        "/v1/admin/forwards",
        headers=auth.staff("admin"),
        json={
            "category": category,
            "name": name,
            "endpoint": endpoint,
            "api_key": api_key,
            "service_code": category,
            "trigger": "created",
        },
    )
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def rider_token(
    client: TestClient, platform: dict[str, str], rider_id: str, **body: Any
) -> Response:
    """The platform whose headers these are asks for a token for its rider ``rider_id``."""
    return client.post(
        "/v1/platform/rider-tokens", headers=platform, json={"rider_id": rider_id, **body}
    )


def category_body(
    zh: str,
    en: str,
    *,
    priority: int,
    respond_within_h: float,
    resolve_within_h: float,
    dedup_radius_m: float,
    **more: Any,
) -> dict[str, Any]:
    """A category's PUT body: what it must name (its names, priority, hours to answer and to
    fix, radius of duplicates), and ``more``."""
    return {
        "name": {"zh": zh, "en": en},
        "priority": priority,
        "respond_within_h": respond_within_h,
        "resolve_within_h": resolve_within_h,
        "dedup_radius_m": dedup_radius_m,
        **more,
    }


# -- a request whose body is never sent whole: is it judged before its body is read?

SENT = 64 * 1024
ANSWER_WITHIN_S = 10
BOUNDARY = "gate-test-boundary"


@dataclass
class Answer:
    status: int
    headers: http.client.HTTPMessage
    text: str


def post_partly(
    base_url: str,
    path: str,
    *,
    declared: int,
    content_type: str = f"multipart/form-data; boundary={BOUNDARY}",
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """POSTs ``path`` declaring a body of ``declared`` bytes, sends its first ``SENT`` and
    reads the answer; a server that waits for the rest times the read out."""
    parts = urlsplit(base_url)
    head = [
        f"POST {path} HTTP/1.1",
        f"Host: {parts.netloc}",
        f"Content-Type: {content_type}",
        f"Content-Length: {declared}",
        "Connection: close",
    ]
    if cookies:
        head.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
    head += [f"{name}: {value}" for name, value in (headers or {}).items()]
    start = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; '
        'filename="areas.geojson"\r\nContent-Type: application/geo+json\r\n\r\n'
    ).encode()
    start += b" " * (SENT - len(start))
    assert declared > 10 * SENT
    with socket.create_connection((parts.hostname, parts.port), timeout=ANSWER_WITHIN_S) as s:
        s.sendall(("\r\n".join(head) + "\r\n\r\n").encode() + start)
        response = http.client.HTTPResponse(s)
        response.begin()  # raises TimeoutError if the server waits for the rest
        return Answer(response.status, response.headers, response.read().decode())

"""Assertions and helpers shared by the tests."""

import socket
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pytest
from httpx import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database
from app.models import Platform
from app.services import outbox

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


def act(client: Any, staff: dict[str, str], ticket_id: str, *actions: dict[str, Any]) -> None:
    """Apply ``actions`` to the ticket, in order, as the staff member whose headers these
    are; each must succeed."""
    for action in actions:
        response = client.post(
            f"/v1/office/tickets/{ticket_id}/actions", headers=staff, json=action
        )
        assert response.status_code == 200, response.text

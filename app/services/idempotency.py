"""``Idempotency-Key``: a retried request gets the first response again, not a second report.

A key is scoped to its rider. The first successful response is stored in the same
transaction as what it created, so a replay can never describe something that was not
stored. While the first request is still running, a second one with the same key is
refused with 409: within a process by a registry of keys in flight, across processes by
a PostgreSQL advisory lock held until the first transaction ends. (On SQLite, a retry
from another process waits for the write lock and then gets its replay.)
"""

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.db import try_lock
from app.errors import IdempotencyKeyInFlight, IdempotencyKeyReused, InvalidIdempotencyKey
from app.models import IdempotencyRecord

KEEP_FOR = timedelta(hours=48)  # the contract promises at least 24 h
_in_flight: set[tuple[uuid.UUID, str]] = set()
_in_flight_guard = threading.Lock()


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: dict[str, Any]


def check_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidIdempotencyKey(errors=[{"field": "Idempotency-Key",
                                             "message": "1–255 printable characters"}])
    return key


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@contextmanager
def in_flight(rider_id: uuid.UUID, key: str | None) -> Iterator[None]:
    """While this block runs, the same key from the same rider is refused with 409 in this
    process. (Across processes: the advisory lock on PostgreSQL; on SQLite a retry that
    slips past waits for the write lock and then finds the stored response.)"""
    if key is None:
        yield
        return
    entry = (rider_id, key)
    with _in_flight_guard:
        if entry in _in_flight:
            raise IdempotencyKeyInFlight()
        _in_flight.add(entry)
    try:
        yield
    finally:
        with _in_flight_guard:
            _in_flight.discard(entry)


def stored_response(session: Session, *, rider_id: uuid.UUID, key: str,
                    fingerprint: str) -> StoredResponse | None:
    """The stored first response for this key, or None if there is none (yet)."""
    record = session.get(IdempotencyRecord, (rider_id, key))
    if record is None:
        return None
    if record.request_hash != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key came with a different body before")
    return StoredResponse(record.response_status, record.response_body)


def previous_response(session: Session, *, rider_id: uuid.UUID, key: str,
                      fingerprint: str) -> StoredResponse | None:
    """Like :func:`stored_response`, in the write transaction that would store the key:
    409 while another transaction holds the key (PostgreSQL; SQLite serialises writes)."""
    if not try_lock(session, "idempotency", rider_id, key):
        raise IdempotencyKeyInFlight()
    return stored_response(session, rider_id=rider_id, key=key, fingerprint=fingerprint)


def remember_response(session: Session, *, rider_id: uuid.UUID, key: str, fingerprint: str,
                      response: StoredResponse, now: datetime) -> None:
    session.add(IdempotencyRecord(rider_id=rider_id, key=key, request_hash=fingerprint,
                                  response_status=response.status,
                                  response_body=response.body, created_at=now))


def purge_expired(session: Session, now: datetime) -> int:
    result = session.execute(delete(IdempotencyRecord)
                             .where(IdempotencyRecord.created_at < now - KEEP_FOR))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]

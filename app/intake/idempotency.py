"""``Idempotency-Key``: a retried request gets the first response again, not a second report.

A key is scoped to its rider. The first successful response is stored in the same
transaction as what it created, so a replay can never describe something that was not
stored. While the first request is still running, a second one with the same key is
refused with 409: within a process by the intake writer's registry of keys in flight,
across processes by a PostgreSQL advisory lock its batch holds until it commits. (On
SQLite, a retry from another process waits for the write lock and then gets its replay.)
The replay itself is decided where the report is stored (``app.intake``).
"""

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.errors import InvalidIdempotencyKey
from app.models import IdempotencyRecord

KEEP_FOR = timedelta(hours=48)  # the contract promises at least 24 h


def check_key(key: str) -> str:
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise InvalidIdempotencyKey(
            errors=[{"field": "Idempotency-Key", "message": "1–255 printable characters"}]
        )
    return key


def request_hash(payload: dict[str, Any]) -> str:
    canonical = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def purge_expired(session: Session, now: datetime) -> int:
    result = session.execute(
        delete(IdempotencyRecord).where(IdempotencyRecord.created_at < now - KEEP_FOR)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
